"""Which hosts count as this machine: shared by the suite's guard (test/conftest.py) and
the child-process guard (sitecustomize.py beside this file)."""

from __future__ import annotations

import ipaddress
import socket

LOCAL_NAMES = {"localhost", "ip6-localhost", "ip6-loopback", socket.gethostname()}
try:  # this machine's own addresses (Ray's agents resolve the node's address)
    LOCAL_NAMES |= {str(ai[4][0]) for ai in socket.getaddrinfo(socket.gethostname(), None)}
except OSError:
    pass
try:  # the IPv4 addresses of this machine's interfaces (Linux)
    with open("/proc/net/fib_trie", encoding="ascii") as _f:
        _lines = _f.read().splitlines()
    LOCAL_NAMES |= {_lines[i - 1].split()[-1] for i, line in enumerate(_lines) if "/32 host LOCAL" in line and i}
except OSError:
    pass


def is_local(host: object) -> bool:
    """True for no host, a name or address of this machine, loopback, or a bind-all
    address (``0.0.0.0``, ``::``); a Unix socket path counts as local too."""
    if host in (None, "", b""):
        return True
    name = host.decode() if isinstance(host, bytes) else str(host)
    if name in LOCAL_NAMES or name.startswith("/"):
        return True
    try:
        address = ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified
