"""The records of the gateway's rounds (see :meth:`QStoreGateway._gate
<qstore_qiskit.gateway.ray_gateway.QStoreGateway>`): a held call, one submitter call made
for a round's calls of equal settings, each caller's slice of it, the job budget that
bounds how far rounds are split, and the request journal's reader (which request owns
which circuits of a round's submission).

Guarantees: a caller gets exactly its own slice of its round's results, in its own
order; one caller's cancellation never cancels the others' results (the circuits not yet
sent are dropped only when every caller of the submission gave up).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from ..client.results import CircuitResult


class Held:
    """One call held for its round."""

    __slots__ = ("client", "digest", "circuits", "settings", "indices", "gate", "new")

    def __init__(self, client, digest, circuits, settings, indices, gate, new) -> None:  # noqa: ANN001
        self.client, self.digest, self.circuits = client, digest, circuits
        self.settings, self.indices, self.gate, self.new = settings, indices, gate, new


class Submission:
    """One submitter call made for several callers' circuits (one round, equal settings)."""

    def __init__(self, future: Any, members: int) -> None:
        self.future = future
        self.waiting = members
        self._wrapped: asyncio.Future | None = None

    def wrapped(self) -> asyncio.Future:
        if self._wrapped is None:
            self._wrapped = asyncio.wrap_future(self.future)
        return self._wrapped

    def drop_member(self) -> None:
        self.waiting -= 1
        if self.waiting <= 0:  # every caller gave up: drop the circuits not yet sent
            self.future.cancel()


class Share:
    """A caller's slice ``[offset, offset + count)`` of a :class:`Submission`."""

    def __init__(self, submission: Submission, offset: int, count: int) -> None:
        self.submission, self.offset, self.count = submission, offset, count

    async def results(self) -> list[CircuitResult]:
        try:
            # Shielded: one caller's cancellation must not cancel the others' results.
            results = await asyncio.shield(self.submission.wrapped())
        except asyncio.CancelledError:
            self.cancel()
            raise
        return list(results[self.offset : self.offset + self.count])

    def cancel(self) -> None:
        self.submission.drop_member()


class JobBudget:
    """The gateway's ``job_budget``: a submission of ``calls`` calls may be split into no
    more jobs than the calls have earned (``per_call`` each; credit left unused carries
    over, up to ``most`` jobs). Every submission makes at least one job: the credit may
    go below zero, and later submissions pay it back. Charged with the cap handed to the
    submitter (an upper bound of the jobs it makes), so it is never overspent."""

    def __init__(self, per_call: float | None, most: int) -> None:
        self.per_call, self.most, self.credit = per_call, most, 0.0

    def charge(self, calls: int, cap: int) -> int:
        """The cap of a submission of ``calls`` calls that could use ``cap`` jobs."""
        if self.per_call is None:
            return cap
        self.credit = min(self.credit + calls * self.per_call, float(self.most))
        cap = max(1, min(cap, int(self.credit)))
        self.credit -= cap
        return cap


def unclaimed_owners(requests_path: str) -> list[tuple[str, int, str, list[int]]]:
    """``(submitter tag, offset, request digest, request indices)`` of the unclaimed
    requests in the gateway's request journal ``requests_path`` (and its ``.prev``)."""
    owners: list[tuple[str, int, str, list[int]]] = []
    claimed: set[str] = set()
    for path in (f"{requests_path}.prev", f"{requests_path}"):
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                    if "claimed" in rec:
                        claimed.add(str(rec["claimed"]))
                    else:
                        owners.append(
                            (str(rec["tag"]), int(rec.get("offset", 0)), str(rec["rid"]),
                             [int(i) for i in rec["indices"]])
                        )
                except (ValueError, KeyError, TypeError):  # a torn last line after a crash
                    continue
    return [owner for owner in owners if owner[2] not in claimed]


__all__ = ["Held", "Submission", "Share", "JobBudget", "unclaimed_owners"]
