"""Suite-wide guard: nothing in the tests reaches a host outside this machine.

pytest-socket (``--allow-hosts`` in ``pyproject.toml``) refuses connections to any
address but loopback. A lookup of a name such as IonQ's cloud host fails earlier, in
name resolution, and clients like qiskit-ionq catch that and carry on with a default,
so the test would pass unnoticed; this guard refuses the lookup itself and fails the
test that made it.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import socket

import pytest

# The persistent template cache stays out of the user's cache directory: off for the
# whole suite (and the processes it starts); its own tests pass temporary directories.
os.environ["QSTORE_CACHE_DIR"] = "off"
# The suite starts a few hundred servers, most of which never see a body or job large
# enough for a worker process: they start their decode and simulation workers on demand
# (ServerConfig.prestart_workers left at None reads this, here and in the server
# processes the tests start), which saves ~2 s of CPU per server. The tests of the
# prestart itself pass prestart_workers=True. `QSTORE_PRESTART_WORKERS=1 pytest ...`
# runs the whole suite with prestart.
os.environ.setdefault("QSTORE_PRESTART_WORKERS", "0")

_real_getaddrinfo = socket.getaddrinfo
_attempts: list[str] = []


def _load_local_hosts():
    # By path: the name "test" is also the standard library's test package.
    path = pathlib.Path(__file__).resolve().parent / "offline_guard" / "local_hosts.py"
    spec = importlib.util.spec_from_file_location("qstore_test_local_hosts", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_is_local = _load_local_hosts().is_local


def _guarded_getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
    if not _is_local(host):
        _attempts.append(str(host))
        raise socket.gaierror(socket.EAI_NONAME, f"test guard: lookup of non-local host {host!r} refused")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _guarded_getaddrinfo


@pytest.fixture(autouse=True)
def _no_outside_hosts():
    """Fail any test that tried to resolve a host outside this machine."""
    del _attempts[:]
    yield
    if _attempts:
        hosts = sorted(set(_attempts))
        del _attempts[:]
        pytest.fail(f"test tried to reach host(s) outside this machine: {hosts}")
