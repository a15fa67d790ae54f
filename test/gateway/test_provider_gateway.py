"""``QStoreProvider(gateway="ray")`` on a worker, without Ray running (no job is sent)."""

from __future__ import annotations

import pytest

from qstore_qiskit import QStoreProvider
from qstore_qiskit.providers.backend import DEVICES
from qstore_qiskit.server import LocalServer

KEY = "provider-gateway-key-" + "5eed" * 8


@pytest.fixture
def server():
    srv = LocalServer(profile="instant", api_key=KEY, seed=1)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def no_key_in_env(monkeypatch):
    for name in ("QISKIT_IONQ_API_TOKEN", "IONQ_API_KEY", "IONQ_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_a_keyless_gateway_worker_gets_its_backend_without_the_key(server, no_key_in_env):
    # The key lives on the gateway only: the worker must not ask the service (a 401).
    provider = QStoreProvider(url=server.url, gateway="ray")
    backend = provider.get_backend("ionq_simulator")
    assert backend.num_qubits == DEVICES[backend._device].num_qubits  # the device table
    requests = server.stats()["requests"]
    assert requests == 0
    # Without the gateway, the same keyless provider is refused at get_backend.
    from qstore_qiskit.client import IonQAuthenticationError

    with pytest.raises(IonQAuthenticationError):
        QStoreProvider(url=server.url).get_backend("ionq_simulator")


def test_gateway_backends_lift_from_the_first_sighting(server):
    plain = QStoreProvider(token=KEY, url=server.url).get_backend("ionq_simulator")
    shared = QStoreProvider(token=KEY, url=server.url, gateway="ray").get_backend("ionq_simulator")
    assert plain._cache.adaptive_lifting is True
    assert shared._cache.adaptive_lifting is False
