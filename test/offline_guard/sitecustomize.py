"""Loaded by the child processes some tests start (``PYTHONPATH``): any lookup of, or
connection to, a host outside this machine ends the process with exit code 97, before a
packet leaves, and names the host on stderr and, if ``QSTORE_OFFLINE_GUARD_LOG`` names a
file, in that file (for processes whose exit code nobody reads, such as the ones Ray
starts). The subprocess counterpart of test/conftest.py's guard."""

import os
import sys

from local_hosts import is_local  # beside this file, on PYTHONPATH with it


def _hook(event, args):
    host = None
    if event == "socket.getaddrinfo":
        host = args[0]
    elif event == "socket.connect" and isinstance(args[1], tuple):
        host = args[1][0]
    if host is not None and not is_local(host):
        line = f"offline guard: {event} to non-local host {host!r} in {sys.argv[:1]}\n"
        sys.stderr.write(line)
        sys.stderr.flush()
        log = os.environ.get("QSTORE_OFFLINE_GUARD_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(line)
        os._exit(97)


sys.addaudithook(_hook)
