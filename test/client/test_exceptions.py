"""The client's exceptions survive pickling (Ray tasks, process pools) unchanged."""

from __future__ import annotations

import pickle

import pytest

from qstore_qiskit.client.exceptions import (
    IonQAuthenticationError,
    IonQClientError,
    IonQConnectionError,
    IonQJobFailedError,
    IonQRateLimitError,
    IonQRequestError,
    IonQResponseError,
    IonQServerError,
    QueueTimeoutError,
    SubmitterClosedError,
)

CASES = [
    IonQAuthenticationError(401, "bad key"),
    IonQRequestError(400, "gate 'foo' is not supported", "POST", "/v0.4/jobs"),
    IonQServerError(503, "busy", "GET", "/v0.4/jobs/x"),
    IonQRateLimitError(2.5, "POST", "/v0.4/jobs"),
    IonQConnectionError("connection refused"),
    IonQResponseError("truncated JSON"),
    IonQJobFailedError("job-1", "failed", "SimulationError", "too wide"),
    QueueTimeoutError(["a", "b"], 12.0),
    SubmitterClosedError("closed"),
]


@pytest.mark.parametrize("exc", CASES, ids=lambda e: type(e).__name__)
def test_round_trip_keeps_type_message_and_attributes(exc: IonQClientError) -> None:
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc)
    assert str(back) == str(exc)
    assert back.args == exc.args
    assert vars(back) == vars(exc)
    assert isinstance(back, IonQClientError)


def test_redacted_text_stays_redacted_after_pickling() -> None:
    exc = IonQRequestError(400, "echo: Authorization: apiKey [redacted]")
    back = pickle.loads(pickle.dumps(exc))
    assert back.server_message == "echo: Authorization: apiKey [redacted]"
