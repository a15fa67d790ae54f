"""Run the local IonQ-API server in a child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.request
from typing import Any

from .cli import API_KEY_ENV


class ServerProcess:
    """The local IonQ-API server in its own Python process, on a free loopback port.

    :class:`LocalServer` runs in a thread of the caller's process, so its request
    handling and simulation share the caller's GIL and garbage collector. IonQ's service
    shares neither. This class starts ``python -m qstore_qiskit.server`` instead, which
    gives timing measurements of client code closer to a remote service. It has the same
    :attr:`url`, :attr:`base_url` and :meth:`stats` as :class:`LocalServer` (the
    counters come from the server's ``GET /_qstore/stats``).

    Example::

        with ServerProcess(profile="cloud", seed=7) as srv:
            backend = QStoreProvider(token="any", url=srv.url).get_backend("ionq_simulator")

    Args:
        profile: ``"instant"`` or ``"cloud"``.
        seed: Server seed (reproducible sampling and faults).
        api_key: Require this key. It is handed to the child in its environment, never
            on its command line.
        start_timeout: Seconds to wait for the child to report its URL.
        **config_overrides: Any other :class:`~.config.ServerConfig` field (a limit, a
            timeout, ...), passed to the child as ``--set FIELD=<json>``.
    """

    def __init__(
        self,
        profile: str = "instant",
        seed: int | None = None,
        api_key: str | None = None,
        start_timeout: float = 60.0,
        **config_overrides: Any,
    ) -> None:
        self.profile = profile
        # Passed as ``--set FIELD=<json>``; checked by the child (a bad one fails start).
        self.config_overrides = dict(config_overrides)
        self.seed = seed
        self._api_key = api_key
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen | None = None
        self._url: str | None = None

    def start(self) -> "ServerProcess":
        """Start the child and wait until it serves; returns ``self``."""
        if self._proc is not None:
            raise RuntimeError("server process already started")
        cmd = [sys.executable, "-m", "qstore_qiskit.server", "--profile", self.profile, "--port", "0"]
        if self.seed is not None:
            cmd += ["--seed", str(self.seed)]
        for name, value in self.config_overrides.items():
            cmd += ["--set", f"{name}={json.dumps(value)}"]
        env = dict(os.environ)
        env.pop(API_KEY_ENV, None)
        if self._api_key:
            env[API_KEY_ENV] = self._api_key
        self._proc = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
        )
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self._proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(self.start_timeout)
        url = line[0].strip() if line else ""
        if not url.startswith("http://"):
            self.stop()
            raise RuntimeError(
                f"the server process did not start within {self.start_timeout} s"
                + (f" (it printed {url!r})" if url else "")
            )
        self._url = url
        return self

    def stop(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL after 10 s); idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        """The child's process id (``None`` when not running), e.g. to read its RSS."""
        return self._proc.pid if self._proc is not None else None

    @property
    def url(self) -> str:
        """The API base URL including the version (what ``url=`` of the providers takes)."""
        if self._url is None:
            raise RuntimeError("server process not started")
        return self._url

    @property
    def base_url(self) -> str:
        """``http://host:port`` without the API version."""
        return self.url.rsplit("/", 1)[0]

    def stats(self) -> dict[str, Any]:
        """The server's request counters, as :meth:`LocalServer.stats` returns them."""
        req = urllib.request.Request(self.base_url + "/_qstore/stats")
        if self._api_key:
            req.add_header("Authorization", f"apiKey {self._api_key}")
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback URL we started
            return json.loads(resp.read().decode())

    def __repr__(self) -> str:
        where = self._url if self._url else "not started"
        return f"ServerProcess(profile={self.profile!r}, {where})"


__all__ = ["ServerProcess"]
