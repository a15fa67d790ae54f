"""``QStoreProvider``: IonQ backends backed by qstore's compiler, cache and batcher."""

from __future__ import annotations

import os
import secrets
import threading
import warnings
from typing import Any

from qiskit.providers.exceptions import QiskitBackendNotFoundError

from ..client import IonQAuthenticationError, IonQClientError, IonQConnectionError, IonQRequestError
from .backend import QStoreBackend
from .job import QStoreJob
from .prepared import parse_job_id
from .service import ServiceClient

DEFAULT_URL = "https://api.ionq.co/v0.4"

# name -> (compiler device, IonQ API backend name, description, simulator?)
_BACKENDS: dict[str, tuple[str, str, str, bool]] = {
    "ionq_simulator": ("simulator", "simulator", "IonQ cloud simulator", True),
    "ionq_qpu": ("aria-1", "qpu", "IonQ trapped-ion QPU (the service picks the device)", False),
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


def _env(*names: str) -> str | None:
    """The first non-empty environment variable of ``names`` (qiskit-ionq's order)."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def _canonical(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"backend name must be a string such as 'ionq_simulator', got {name!r}")
    key = name.strip().lower()
    if key in _BACKENDS:
        return key
    for candidate in (f"ionq_{key}", f"ionq_qpu.{key}", f"ionq_qpu.{key.removeprefix('qpu.')}"):
        if candidate in _BACKENDS:
            return candidate
    # QiskitBackendNotFoundError, like qiskit-ionq; it is not a ValueError subclass, so
    # callers of the previous release catching ValueError keep working via the mixin.
    raise BackendNotFoundError(f"unknown backend {name!r}; available: {', '.join(_BACKENDS)}")


class BackendNotFoundError(QiskitBackendNotFoundError, ValueError):
    """No backend of that name (a ``QiskitBackendNotFoundError`` and a ``ValueError``)."""


class QStoreProvider:
    """Provider of qstore backends for IonQ devices.

    Credentials work like qiskit-ionq's: ``token`` or the first of the environment
    variables ``QISKIT_IONQ_API_TOKEN``, ``IONQ_API_KEY``, ``IONQ_API_TOKEN``; ``url`` or
    ``QISKIT_IONQ_API_URL`` / ``IONQ_API_URL`` (qiskit-ionq also reads a ``.env`` file;
    qstore reads only the environment). With a token and no URL the backends talk to
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
            the gateway: ``journal_dir``, ``submitter_options``, ``runtime_env``,
            ``gather_window``, ``linger``, ``round_jobs``, ``release``, ``job_budget``,
            ``newcomer_quiet``.
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
        self._token = token if token is not None else _env("QISKIT_IONQ_API_TOKEN", "IONQ_API_KEY", "IONQ_API_TOKEN")
        self._url = url if url is not None else _env("QISKIT_IONQ_API_URL", "IONQ_API_URL")
        self._local_profile = local_profile or os.environ.get("QSTORE_LOCAL_PROFILE", "instant")
        self._local_server = None
        self._local_key = secrets.token_hex(16)
        self._lock = threading.Lock()
        self._backends: dict[tuple[str, str], QStoreBackend] = {}
        self._services: dict[str, ServiceClient] = {}
        self._checked: set[str] = set()  # service URLs whose key was accepted
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

    def _service(self, backend: QStoreBackend | None = None) -> ServiceClient:
        """The control-plane client for ``backend``'s service (one per service URL)."""
        token: str | None
        if (backend is not None and backend.name == "local") or self.uses_local_server:
            token, url = self._local_key, self.local_server().url
        else:
            token, url = self._token, self._url or DEFAULT_URL
        with self._lock:
            client = self._services.get(url)
            if client is None:
                client = self._services[url] = ServiceClient(token, url)
            return client

    def _backend_record(self, backend: QStoreBackend) -> dict | None:
        """``backend``'s record from the service's ``GET /backends``; ``None`` offline.

        Raises:
            IonQAuthenticationError: the service refused the API key (401/403).
        """
        if self._gateway is not None and self._token is None:
            # A keyless worker of a gateway: the key lives on the gateway only (which
            # checks it when it starts), so this worker cannot read the service's
            # records: the built-in device table.
            return None
        service = self._service(backend)
        try:
            self._check_key(service)
            records = service.backends(retry=False)
        except IonQAuthenticationError:
            raise  # names the problem (never the key); raised at get_backend, not at run()
        except IonQRequestError:
            return None  # the service publishes no backend list (4xx): the device table
        except (IonQConnectionError, IonQClientError) as exc:
            warnings.warn(
                f"cannot read backend {backend.name!r} from {service.url} ({type(exc).__name__}: {exc}); "
                "using the built-in device table",
                RuntimeWarning,
                stacklevel=3,
            )
            return None
        api = backend._api_backend
        for record in records:
            if isinstance(record, dict) and record.get("backend") == api:
                return record
        try:  # aliases (e.g. "qpu") are resolved by GET /backends/{name}
            record = service.request("GET", f"backends/{api}")
            return record if isinstance(record, dict) else None
        except IonQClientError:
            return None

    def _check_key(self, service: ServiceClient) -> None:
        """``GET /whoami`` once per service: a refused key raises here, at ``get_backend``.

        Services without ``/whoami`` (404) are not checked here; their first job is.
        """
        with self._lock:
            if service.url in self._checked:
                return
        try:
            service.whoami()
        except IonQRequestError as exc:
            if getattr(exc, "status", None) != 404:
                raise
        with self._lock:
            self._checked.add(service.url)

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

    def backends(self, name: str | None = None, filters: Any = None, **kwargs: Any) -> list[QStoreBackend]:
        """All backends, or those matching ``name``, ``filters`` (a callable, as in
        qiskit-ionq) and ``kwargs`` (attribute values, e.g. ``simulator=True``)."""
        names = list(_BACKENDS) if name is None else [_canonical(name)]
        out = [self.get_backend(n) for n in names]
        for key, value in kwargs.items():
            out = [b for b in out if getattr(b, key, getattr(b, f"_{key}", None)) == value]
        if filters is not None:
            out = [b for b in out if filters(b)]
        return out

    def get_backend(self, name: str = "ionq_simulator", gateset: str | None = None, **options: Any) -> QStoreBackend:
        """One backend by name, optionally with options set.

        Names as in qiskit-ionq (``"simulator"``, ``"ionq_simulator"``, ``"qpu.aria-1"``,
        ``"ionq_qpu.aria-1"``, ``"ionq_qpu"``) plus short ones (``"aria-1"``,
        ``"forte-1"``) and ``"local"`` (the embedded server).

        Args:
            name: backend name.
            gateset: ``"native"`` (default: qstore compiles to GPi/GPi2/MS before
                sending) or ``"qis"`` (the target is IonQ's QIS gates and IonQ's service
                compiles, as with qiskit-ionq's default).
            **options: backend options to set.

        Raises:
            QiskitBackendNotFoundError: unknown name (also a ``ValueError``).
            IonQAuthenticationError: the configured service refuses the API key (checked
                here, with ``GET /backends``, when the service is reachable).
        """
        key = _canonical(name)
        if gateset is None:
            gateset = "native"
        if gateset not in ("native", "qis"):
            raise ValueError(f"gateset must be 'qis' or 'native', got {gateset!r}")
        with self._lock:
            backend = self._backends.get((key, gateset))
            created = backend is None
            if backend is None:
                device, api_name, description, simulator = _BACKENDS[key]
                backend = QStoreBackend(self, key, device, api_name, description, simulator, gateset=gateset)
                if self._gateway is not None:
                    # The workers of a sweep run the same structures with other values, so
                    # the exact compile adaptive lifting makes of a structure's first bound
                    # circuit is never reused: lift from the first sighting, one compile
                    # per structure for the whole cluster (docs/scaling.rst).
                    backend._cache.adaptive_lifting = False  # pylint: disable=protected-access
                self._backends[(key, gateset)] = backend
        if created and key != "local" and not self.uses_local_server:
            try:
                backend._service_record()  # a wrong key fails here, not at run()
            except IonQAuthenticationError:
                with self._lock:
                    self._backends.pop((key, gateset), None)
                raise
        if options:
            backend.set_options(**options)
        return backend

    def retrieve_job(self, job_id: str) -> QStoreJob:
        """A job by id (see :meth:`QStoreBackend.retrieve_job`), on the backend the service
        says it ran on."""
        parts = parse_job_id(job_id)
        service = self._service(None)
        doc = service.get_job(parts[0][0])
        api = str(doc.get("backend") or doc.get("target") or "simulator")
        try:
            backend = self.get_backend(api)
        except QiskitBackendNotFoundError:
            backend = self.get_backend("ionq_simulator" if api.startswith("sim") else "ionq_qpu")
        return backend.retrieve_job(job_id)

    def close(self) -> None:
        """Close every backend's sessions and stop the embedded server (if started)."""
        with self._lock:
            backends, self._backends = list(self._backends.values()), {}
            server, self._local_server = self._local_server, None
            services, self._services = list(self._services.values()), {}
        for backend in backends:
            backend.close()
        for service in services:
            service.close()
        if server is not None:
            server.stop()

    def __enter__(self) -> "QStoreProvider":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
