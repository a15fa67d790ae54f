# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""What a short-lived local server costs, with and without worker prestart.

Starts and stops ``LocalServer`` (and, with ``--process``, ``ServerProcess``) ``--repeat``
times per setting, the two settings interleaved so that they share the machine's load.
Each server answers one ``GET /v0.4/backends`` and lives ``--life`` seconds. Prints, per
setting, the range of CPU time (this process plus the worker processes it reaped) and
of wall time per server, and the ratio prestart / on-demand of the medians.

``prestart_workers=True`` is the server's default; the test suite, which starts a few
hundred mostly short-lived servers, runs with ``QSTORE_PRESTART_WORKERS=0``
(``prestart_workers=False`` here). CPU is the robust number on a shared machine; note
the load printed with it.

Usage::

    python benchmarks/server_start.py --repeat 5 --life 2
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import urllib.request

from qstore_qiskit.server import LocalServer, ServerProcess


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def one_server(kind: type, prestart: bool, life: float) -> tuple[float, float]:
    """CPU and wall seconds of one server's start, one request, ``life`` s, stop."""
    cpu, wall = _cpu(), time.perf_counter()
    with kind(prestart_workers=prestart, seed=1) as srv:
        with urllib.request.urlopen(srv.base_url + "/v0.4/backends", timeout=120) as resp:  # noqa: S310 - loopback
            resp.read()
        time.sleep(life)
    return _cpu() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--life", type=float, default=2.0, help="seconds each server lives")
    parser.add_argument("--process", action="store_true", help="also ServerProcess")
    args = parser.parse_args()
    kinds: list[type] = [LocalServer] + ([ServerProcess] if args.process else [])
    LocalServer(prestart_workers=False).start().stop()  # imports out of the measurement
    runs: dict[tuple[str, bool], list[tuple[float, float]]] = {}
    for _ in range(args.repeat):
        for kind in kinds:
            for prestart in (True, False):
                runs.setdefault((kind.__name__, prestart), []).append(
                    one_server(kind, prestart, args.life))
    print(f"{'server':14s} {'prestart':>8s} {'CPU s/server':>14s} {'wall s/server':>14s}")
    for (name, prestart), values in runs.items():
        cpus, walls = sorted(v[0] for v in values), sorted(v[1] for v in values)
        print(f"{name:14s} {str(prestart):>8s} {cpus[0]:6.2f}-{cpus[-1]:<6.2f}"
              f"  {walls[0]:6.2f}-{walls[-1]:<6.2f}")
    for kind in kinds:
        on, off = runs[(kind.__name__, True)], runs[(kind.__name__, False)]
        cpu_on, cpu_off = (statistics.median(v[0] for v in r) for r in (on, off))
        wall_on, wall_off = (statistics.median(v[1] for v in r) for r in (on, off))
        print(f"{kind.__name__}: prestart/on-demand median CPU {cpu_on:.2f}/{cpu_off:.2f} s, "
              f"wall {wall_on:.2f}/{wall_off:.2f} s (x{wall_on / max(wall_off, 1e-9):.1f})")
    with open("/proc/loadavg", encoding="ascii") as fh:
        print("load", fh.read().strip())


if __name__ == "__main__":
    main()
