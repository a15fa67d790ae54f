"""``QStoreProvider``: IonQ backends backed by qstore's compiler, cache and batcher."""

from __future__ import annotations

import os
import secrets
import threading
from typing import Any

from .backend import QStoreBackend

DEFAULT_URL = "https://api.ionq.co/v0.4"

# name -> (compiler device, IonQ API backend name, description, simulator?)
_BACKENDS: dict[str, tuple[str, str, str, bool]] = {
    "ionq_simulator": ("simulator", "simulator", "IonQ cloud simulator", True),
    "ionq_qpu.aria-1": ("aria-1", "qpu.aria-1", "IonQ Aria 1 (25 qubits)", False),
    "ionq_qpu.aria-2": ("aria-2", "qpu.aria-2", "IonQ Aria 2 (25 qubits)", False),
    "ionq_qpu.forte-1": ("forte-1", "qpu.forte-1", "IonQ Forte 1 (36 qubits)", False),
    "ionq_qpu.forte-enterprise-1": (
        "forte-enterprise-1",
        "qpu.forte-enterprise-1",
        "IonQ Forte Enterprise 1 (36 qubits)",
        False,
    ),
    "local": ("simulator", "simulator", "IonQ-API simulator on the embedded local server", True),
}


def _canonical(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"backend name must be a string such as 'ionq_simulator', got {name!r}")
    key = name.strip().lower()
    if key in _BACKENDS:
        return key
    for candidate in (f"ionq_{key}", f"ionq_qpu.{key}", f"ionq_qpu.{key.removeprefix('qpu.')}"):
        if candidate in _BACKENDS:
            return candidate
    raise ValueError(f"unknown backend {name!r}; available: {', '.join(_BACKENDS)}")


class QStoreProvider:
    """Provider of qstore backends for IonQ devices.

    Credentials work like qiskit-ionq's: ``token`` or the ``IONQ_API_KEY`` environment
    variable; ``url`` or ``IONQ_API_URL``. With a token and no URL the backends talk to
    IonQ's service. With neither, an embedded local IonQ-API server (see
    :mod:`qstore_qiskit.server`) is started on demand on a free loopback port, so examples
    run with zero setup. The ``local`` backend always uses the embedded server.

    Args:
        token: IonQ API key. Never printed: not in ``repr``, logs, reports or errors.
        url: API base URL, e.g. ``http://127.0.0.1:8000/v0.4`` for a server you started.
        local_profile: Latency profile of the embedded server (``"instant"`` or
            ``"cloud"``; default ``QSTORE_LOCAL_PROFILE`` or ``"instant"``).
        gateway: ``"ray"``: submit through the Ray cluster's shared gateway actor for this
            URL and key instead of a submitter per backend (see ``docs/scaling.rst``);
            ``None`` (default): a submitter per backend in this process.
        gateway_options: Options used if this provider's worker is the one that starts
            the gateway: ``journal_dir``, ``submitter_options``, ``runtime_env``.
    """

    def __init__(
        self,
        token: str | None = None,
        url: str | None = None,
        *,
        local_profile: str | None = None,
        gateway: str | None = None,
        gateway_options: dict[str, Any] | None = None,
    ) -> None:
        if gateway not in (None, "ray"):
            raise ValueError(f"gateway must be None or 'ray', got {gateway!r}")
        self._token = token if token is not None else os.environ.get("IONQ_API_KEY")
        self._url = url if url is not None else os.environ.get("IONQ_API_URL")
        self._local_profile = local_profile or os.environ.get("QSTORE_LOCAL_PROFILE", "instant")
        self._local_server = None
        self._local_key = secrets.token_hex(16)
        self._lock = threading.Lock()
        self._backends: dict[str, QStoreBackend] = {}
        self._gateway = gateway
        self._gateway_options = dict(gateway_options or {})

    def __repr__(self) -> str:
        where = self._url or ("IonQ cloud" if self._token else "embedded local server")
        return f"<QStoreProvider({where})>"

    @property
    def uses_local_server(self) -> bool:
        """Whether the IonQ backends go to the embedded local server."""
        return self._token is None and self._url is None

    def _credentials(self, backend: QStoreBackend) -> tuple[str | None, str]:
        """(token, url) for ``backend``: starts the embedded server when needed."""
        if backend.name == "local" or self.uses_local_server:
            server = self.local_server()
            return self._local_key, server.url
        return self._token, self._url or DEFAULT_URL

    def _gateway_submitter(self, backend: QStoreBackend) -> Any:
        """A client of the cluster's gateway when ``gateway="ray"`` (one per backend
        submitter slot; closing it leaves the gateway serving), else ``None``."""
        if self._gateway is None:
            return None
        if backend.name == "local" or self.uses_local_server:
            raise ValueError(
                "gateway='ray' needs a service URL reachable from every worker (url= or IONQ_API_URL); "
                "the embedded local server lives in one process"
            )
        from ..gateway import GatewayClient

        return GatewayClient(self._url or DEFAULT_URL, self._token, **self._gateway_options)

    def local_server(self):
        """The embedded :class:`~qstore_qiskit.server.LocalServer` (started on first use)."""
        with self._lock:
            if self._local_server is None:
                from ..server import LocalServer

                server = LocalServer(profile=self._local_profile, api_key=self._local_key)
                server.start()
                self._local_server = server
            return self._local_server

    def backends(self, name: str | None = None, **filters: Any) -> list[QStoreBackend]:
        """All backends, or those matching ``name`` and ``filters`` (e.g. ``simulator=True``)."""
        names = list(_BACKENDS) if name is None else [_canonical(name)]
        out = [self.get_backend(n) for n in names]
        for key, value in filters.items():
            out = [b for b in out if getattr(b, key, getattr(b, f"_{key}", None)) == value]
        return out

    def get_backend(self, name: str = "ionq_simulator", **options: Any) -> QStoreBackend:
        """One backend by name (``"ionq_simulator"``, ``"simulator"``, ``"ionq_qpu.aria-1"``,
        ``"aria-1"``, ``"forte-1"``, ``"local"``, ...), optionally with options set."""
        key = _canonical(name)
        with self._lock:
            backend = self._backends.get(key)
            if backend is None:
                device, api_name, description, simulator = _BACKENDS[key]
                backend = QStoreBackend(self, key, device, api_name, description, simulator)
                self._backends[key] = backend
        if options:
            backend.set_options(**options)
        return backend

    def close(self) -> None:
        """Close every backend's sessions and stop the embedded server (if started)."""
        with self._lock:
            backends, self._backends = list(self._backends.values()), {}
            server, self._local_server = self._local_server, None
        for backend in backends:
            backend.close()
        if server is not None:
            server.stop()

    def __enter__(self) -> "QStoreProvider":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
