"""Where a cold loop of separate ``run()`` calls spends its wall time, per thread.

The loop of :func:`benchmarks.submit.run_separate` (20 distinct logical 4-qubit circuits,
each submitted by its own ``backend.run(qc)`` on a fresh backend, ``cloud`` profile),
measured per round with CPU clocks instead of wall time alone:

* ``loop wall``: from the first ``run()`` call until the last one returned;
* ``caller CPU``: the calling thread's CPU time over that span (compile, bind, submit);
* ``loop-thread CPU``: the submitter's event-loop thread's CPU time until the last
  ``run()`` returned (it starts inside the first ``run()``): taking the calls in,
  cutting jobs, the create requests and the first status polls; it holds the GIL
  while the caller waits for it;
* ``server CPU``: the other threads of the process over the span (the in-process
  :class:`~qstore_qiskit.server.LocalServer`; zero against ``ServerProcess``);
* ``catch-up``: how many ``submit()`` calls waited for the loop thread
  (``BatchSubmitter._catch_up``, instrumented here) and their total wait;
* ``not on CPU``: loop wall minus the three CPU times (waiting for a core taken by
  other processes, or for the GIL while no thread of ours runs);
* ``tail``: from the last ``run()`` to the last result; ``x LB``: the round's wall
  time over the server's lower bound.

Medians over ``--repeat`` rounds with the range; the load average is printed with
each table (the numbers depend on it: the machine is shared).

Usage::

    python benchmarks/run_breakdown.py [--repeat 7] [--server-process] [--seed 7]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import threading
import time

import numpy as np

from qstore_qiskit.client import submitter as submitter_module
from qstore_qiskit.providers import QStoreProvider
from qstore_qiskit.server import LocalServer, ServerProcess

try:  # run as a script (benchmarks/ on sys.path) or as a module
    from submit import _distinct_logical, _ProcessServerView
except ImportError:  # pragma: no cover
    from benchmarks.submit import _distinct_logical, _ProcessServerView


def _thread_cpu(ident: int | None) -> float:
    """CPU seconds of the thread ``ident`` so far (0 once it has ended)."""
    if ident is None:
        return 0.0
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(ident))
    except (OSError, ValueError, AttributeError):
        return 0.0


def _round(srv, circuits, shots: int, waits: list[float]) -> dict:
    provider = QStoreProvider(token="benchmark", url=srv.url)
    backend = provider.get_backend("ionq_simulator")
    backend.set_options(template_cache_dir=False)
    me = threading.get_ident()
    others = [t.ident for t in threading.enumerate() if t.ident != me]
    waits.clear()
    other0 = sum(_thread_cpu(i) for i in others)
    caller0 = time.thread_time()
    start = time.perf_counter()
    jobs = [backend.run(qc, shots=shots) for qc in circuits]
    loop_wall = time.perf_counter() - start
    caller = time.thread_time() - caller0
    subs = list(backend._submitters.values())  # noqa: SLF001 - the one submitter of this backend
    loop_cpu = sum(_thread_cpu(s._thread.ident) for s in subs)  # noqa: SLF001
    server = sum(_thread_cpu(i) for i in others) - other0
    catch_ups, waited = len(waits), sum(waits)
    for job in jobs:
        job.result()
    wall = time.perf_counter() - start
    gates = [len(p.body["circuit"]) for job in jobs for p in job._prepared]  # noqa: SLF001
    provider.close()
    return {
        "loop wall": loop_wall,
        "caller CPU": caller,
        "loop-thread CPU": loop_cpu,
        "server CPU": server,
        "catch-up calls": catch_ups,
        "catch-up wait": waited,
        "not on CPU": loop_wall - caller - loop_cpu - server,
        "tail": wall - loop_wall,
        "x LB": wall / srv.lower_bound_seconds(gates, shots),
    }


def run(repeat: int, server_process: bool, seed: int, n: int = 20, shots: int = 1024) -> list[dict]:
    """``repeat`` timed rounds (after one warm-up round); one dict per round."""
    waits: list[float] = []
    original = submitter_module.BatchSubmitter._catch_up  # noqa: SLF001

    def timed_catch_up(self, seq: int) -> None:
        t0 = time.perf_counter()
        original(self, seq)
        waits.append(time.perf_counter() - t0)

    rng = np.random.default_rng(seed + 1)
    rows = []
    submitter_module.BatchSubmitter._catch_up = timed_catch_up  # noqa: SLF001
    try:
        with contextlib.ExitStack() as stack:
            if server_process:
                srv = _ProcessServerView(stack.enter_context(ServerProcess(profile="cloud", seed=seed)), "benchmark")
            else:
                srv = stack.enter_context(LocalServer(profile="cloud", seed=seed))
            for r in range(repeat + 1):
                row = _round(srv, _distinct_logical(n, rng, f"b{r}c"), shots, waits)
                if r:
                    rows.append(row)
    finally:
        submitter_module.BatchSubmitter._catch_up = original  # noqa: SLF001
    return rows


def print_rows(rows: list[dict], where: str) -> None:
    print(f"\n# cold loop of 20 run() calls, {where}, medians of {len(rows)} rounds "
          f"(load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
    for key in rows[0]:
        vals = sorted(r[key] for r in rows)
        unit = "" if key in ("catch-up calls", "x LB") else " s"
        print(f"{key:<16} {statistics.median(vals):8.4f}{unit:<2}  ({vals[0]:.4f}..{vals[-1]:.4f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--server-process", action="store_true", help="also against ServerProcess")
    args = parser.parse_args()
    print_rows(run(args.repeat, False, args.seed), "LocalServer (in-process thread)")
    if args.server_process:
        print_rows(run(args.repeat, True, args.seed), "ServerProcess (child process)")


if __name__ == "__main__":
    main()
