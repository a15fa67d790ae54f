"""Loaded by the benchmark scripts that test/benchmarks starts (PYTHONPATH): any lookup
of, or connection to, a host outside this machine ends the process with exit code 97
and names the host on stderr (the subprocess counterpart of test/conftest.py's guard)."""

import ipaddress
import os
import socket
import sys

_LOCAL_NAMES = {"localhost", "ip6-localhost", "ip6-loopback", socket.gethostname()}


def _is_local(host):
    if host in (None, "", b""):
        return True
    name = host.decode() if isinstance(host, bytes) else str(host)
    if name in _LOCAL_NAMES or name.startswith("/"):
        return True
    try:
        return ipaddress.ip_address(name.split("%")[0]).is_loopback
    except ValueError:
        return False


def _hook(event, args):
    host = None
    if event == "socket.getaddrinfo":
        host = args[0]
    elif event == "socket.connect" and isinstance(args[1], tuple):
        host = args[1][0]
    if host is not None and not _is_local(host):
        sys.stderr.write(f"offline guard: {event} to non-local host {host!r}\n")
        sys.stderr.flush()
        os._exit(97)


sys.addaudithook(_hook)
