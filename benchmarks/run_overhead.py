"""CPU of a cold ``backend.run(qc)`` outside the compiler, per new circuit.

Each round makes a fresh backend (empty template cache, no persistent store) against
an in-process :class:`~qstore_qiskit.server.LocalServer` (``instant`` profile: the
server does no waiting) and calls ``backend.run(qc)`` once for each of ``--n`` distinct
logical 4-qubit circuits (``benchmarks/submit.py``'s ``_distinct_logical``), then the
same circuits again (``warm``: their templates are cached). Per ``run()`` call it
measures, with thread CPU clocks:

* ``caller``: the calling thread's CPU inside ``run()``;
* ``compile``: the part of it inside the pass manager (``backend._compile``);
* ``non-compile``: ``caller - compile`` (scan, planning, template build, bind, submit,
  job object): what the backend, cache and client add to the compiler's time;
* ``loop thread``: the submitter's event-loop thread's CPU per job, up to the last
  result (taking the call in, cutting, the create request, polls, results).

Prints medians over ``--repeat`` rounds (after one warm-up round) in milliseconds, with
the range and the load average (the machine may be shared).

Usage::

    python benchmarks/run_overhead.py [--repeat 9] [--n 20] [--seed 11]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from submit import _distinct_logical  # noqa: E402  pylint: disable=wrong-import-position

from qstore_qiskit.providers import QStoreProvider  # noqa: E402
from qstore_qiskit.server import LocalServer  # noqa: E402


def _thread_cpu(ident: int) -> float:
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(ident))
    except (OSError, ValueError, AttributeError):
        return 0.0


def _round(url: str, circuits, shots: int) -> dict[str, float]:
    provider = QStoreProvider(token="benchmark", url=url)
    backend = provider.get_backend("ionq_simulator")
    backend.set_options(template_cache_dir=False)
    spent = [0.0]
    compile_fn = backend._compile  # noqa: SLF001 - instrumented: the compiler's own CPU

    def timed_compile(*args, **kwargs):
        t0 = time.thread_time()
        try:
            return compile_fn(*args, **kwargs)
        finally:
            spent[0] += time.thread_time() - t0

    backend._compile = timed_compile  # noqa: SLF001
    backend._cache._compile_fn = timed_compile  # noqa: SLF001 - the cache holds the bound method
    out: dict[str, float] = {}
    n = len(circuits)
    for temp in ("cold", "warm"):
        spent[0] = 0.0
        t0 = time.thread_time()
        jobs = [backend.run(qc, shots=shots) for qc in circuits]
        caller = time.thread_time() - t0
        for job in jobs:
            job.result()
        loop = sum(_thread_cpu(s._thread.ident) for s in backend._submitters.values())  # noqa: SLF001
        out[f"{temp} caller"] = caller / n
        out[f"{temp} compile"] = spent[0] / n
        out[f"{temp} non-compile"] = (caller - spent[0]) / n
        out[f"{temp} loop thread"] = (loop - out.get("_loop", 0.0)) / n
        out["_loop"] = loop
    out.pop("_loop")
    provider.close()
    return out


def run(repeat: int, n: int, seed: int, shots: int = 1024) -> list[dict[str, float]]:
    """``repeat`` rounds after a warm-up round; one dict of per-run() seconds each."""
    rng = np.random.default_rng(seed)
    rows = []
    with LocalServer(profile="instant", seed=seed) as srv:
        for r in range(repeat + 1):
            row = _round(srv.url, _distinct_logical(n, rng, f"o{r}c"), shots)
            if r:
                rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    rows = run(args.repeat, args.n, args.seed)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"# per run() CPU, {args.n} distinct logical 4-qubit circuits, medians of {len(rows)} rounds, ms "
          f"(load average {load})")
    for key in rows[0]:
        vals = sorted(r[key] * 1e3 for r in rows)
        print(f"{key:<20} {statistics.median(vals):7.3f}  ({vals[0]:.3f}..{vals[-1]:.3f})")


if __name__ == "__main__":
    main()
