"""Loaded by the child processes some tests start (``PYTHONPATH``): any lookup of, or
connection to, a host outside this machine ends the process with exit code 97, before a
packet leaves, and names the host on stderr and, if ``QSTORE_OFFLINE_GUARD_LOG`` names a
file, in that file (for processes whose exit code nobody reads, such as the ones Ray
starts). The subprocess counterpart of test/conftest.py's guard."""

import ipaddress
import os
import socket
import sys

_LOCAL_NAMES = {"localhost", "ip6-localhost", "ip6-loopback", socket.gethostname()}
try:  # this machine's own addresses (Ray's agents resolve the node's address)
    _LOCAL_NAMES |= {str(ai[4][0]) for ai in socket.getaddrinfo(socket.gethostname(), None)}
except OSError:
    pass
try:  # the IPv4 addresses of this machine's interfaces (Linux)
    with open("/proc/net/fib_trie", encoding="ascii") as _f:
        _lines = _f.read().splitlines()
    _LOCAL_NAMES |= {
        _lines[i - 1].split()[-1] for i, line in enumerate(_lines) if "/32 host LOCAL" in line and i
    }
except OSError:
    pass


def _is_local(host):
    if host in (None, "", b""):
        return True
    name = host.decode() if isinstance(host, bytes) else str(host)
    if name in _LOCAL_NAMES or name.startswith("/"):
        return True
    try:
        address = ipaddress.ip_address(name.split("%")[0])
        return address.is_loopback or address.is_unspecified  # 0.0.0.0: a bind address
    except ValueError:
        return False


def _hook(event, args):
    host = None
    if event == "socket.getaddrinfo":
        host = args[0]
    elif event == "socket.connect" and isinstance(args[1], tuple):
        host = args[1][0]
    if host is not None and not _is_local(host):
        line = f"offline guard: {event} to non-local host {host!r} in {sys.argv[:1]}\n"
        sys.stderr.write(line)
        sys.stderr.flush()
        log = os.environ.get("QSTORE_OFFLINE_GUARD_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(line)
        os._exit(97)


sys.addaudithook(_hook)
