#!/usr/bin/env python
# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""Parallel compile of many distinct circuits: serial vs forked workers vs one core.

One batch of distinct circuits (MQT Bench at 8-12 qubits plus random circuits), compiled
side by side, rounds alternating between the modes; every mode's outputs must be
identical.

``backend.run`` (the default table): the wall time of ``backend.run(circuits)`` returning
(compile of every distinct structure through the template cache, bind, submit) on a
fresh backend (empty template cache, no persistent store) against
``LocalServer(profile="instant")``; the results are fetched outside the timed region
and compared too (same payloads, same counts with a fixed sampler seed):

* ``serial``: ``QISKIT_NUM_PROCS=1`` (the cache compiles the misses one by one);
* ``parallel``: the default (one forked worker per further usable core, unless the
  load average shows no idle core: the table says in how many rounds it forked);
* ``forced``: forked workers even when the load average says no core is idle (what
  forking costs or gains at the machine's current load);
* ``1 core``: the process pinned to one CPU (``os.sched_setaffinity``): the cache sees
  one usable core and must fall back to the serial loop (no loss on one core).

``--pm`` adds the same three modes for ``ParallelPassManager.run(list)`` (the pass
manager that ``generate_ionq_pass_manager`` returns).

The load average is printed before and after (other work on the machine slows the
parallel mode most: it needs both cores). Best and median of ``--repeat`` rounds.

Usage::

    python benchmarks/parallel_compile.py [--quick] [--repeat 5] [--pm]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# pylint: disable=wrong-import-position
from _mqt import load_cases, random_cases  # noqa: E402

from qstore_qiskit.providers import QStoreProvider  # noqa: E402
from qstore_qiskit.server import LocalServer  # noqa: E402
from qstore_qiskit.transpiler import generate_ionq_pass_manager  # noqa: E402
from qstore_qiskit.transpiler import parallel  # noqa: E402
from qstore_qiskit.transpiler.parallel import run_parallel, usable_cores  # noqa: E402

MODES = ("serial", "parallel", "forced", "1 core")
_CORES_BUSY = parallel._cores_busy  # pylint: disable=protected-access


@contextlib.contextmanager
def _mode(label: str):
    """Environment of one mode: serial by QISKIT_NUM_PROCS=1, one core by affinity."""
    saved_env = os.environ.get("QISKIT_NUM_PROCS")
    saved_cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    try:
        if label == "serial":
            os.environ["QISKIT_NUM_PROCS"] = "1"
        elif label == "forced":
            parallel._cores_busy = lambda workers: False  # pylint: disable=protected-access
        elif label == "1 core" and saved_cpus is not None:
            os.sched_setaffinity(0, {min(saved_cpus)})
        yield
    finally:
        if saved_env is None:
            os.environ.pop("QISKIT_NUM_PROCS", None)
        else:
            os.environ["QISKIT_NUM_PROCS"] = saved_env
        if label == "1 core" and saved_cpus is not None:
            os.sched_setaffinity(0, saved_cpus)
        parallel._cores_busy = _CORES_BUSY  # pylint: disable=protected-access


def _summary(times: dict[str, list[float]]) -> None:
    base = statistics.median(times["serial"])
    print(f"{'mode':10s} {'best s':>8s} {'median s':>9s} {'serial/median':>14s}")
    for label, samples in times.items():
        med = statistics.median(samples)
        print(f"{label:10s} {min(samples):8.3f} {med:9.3f} {base / med:13.2f}x")


def bench_backend(circuits, repeat: int, shots: int = 200) -> None:
    """``backend.run`` of the whole batch on a fresh backend per round and mode."""
    times: dict[str, list[float]] = {m: [] for m in MODES}
    reference = None
    same = True
    compiles = {}
    forked = {m: 0 for m in MODES}  # rounds in which the batch went to workers
    with LocalServer(profile="instant", seed=3) as srv:
        warm = QStoreProvider(token="bench", url=srv.url)
        backend = warm.get_backend("ionq_simulator")
        backend.set_options(template_cache_dir=False)
        backend.run(circuits[0], shots=shots).result()  # imports, connections, compiler
        for _ in range(repeat):
            for label in MODES:
                # A new provider and backend per round and mode: an empty template cache.
                provider = QStoreProvider(token="bench", url=srv.url)
                backend = provider.get_backend("ionq_simulator")
                backend.set_options(template_cache_dir=False)
                with _mode(label):
                    went = parallel.STATS["parallel_batches"]
                    start = time.perf_counter()
                    job = backend.run(circuits, shots=shots, sampler_seed=11)
                    times[label].append(time.perf_counter() - start)
                    forked[label] += parallel.STATS["parallel_batches"] > went
                compiles[label] = backend._cache.stats()["compiles"]
                bodies = [p.body for p in job._prepared]
                counts = job.result().get_counts()
                if reference is None:
                    reference = (bodies, counts)
                same = same and (bodies, counts) == reference
                provider.close()
        warm.close()
    print(f"## backend.run of {len(circuits)} distinct circuits (fresh template cache each round), "
          f"{repeat} rounds")
    _summary(times)
    print(f"compiles per round: {compiles}; identical payloads and counts: {same}")
    print(f"rounds compiled in workers: {forked} (a load average with no idle core keeps a batch in-process)")


def bench_pm(circuits, repeat: int, device: str) -> None:
    """``ParallelPassManager.run(list)``: serial loop, parallel, and one worker."""
    pm = generate_ionq_pass_manager(device, 2, qubits_initially_zero=True)
    pm.run(circuits[0])  # warm-up
    times: dict[str, list[float]] = {m: [] for m in ("serial", "forced", "1 core")}
    outputs = {}

    def forced():
        with _mode("forced"):
            return pm.run(circuits)

    for _ in range(repeat):
        for label, run in (
            ("serial", lambda: [pm.run(c) for c in circuits]),
            ("forced", forced),
            ("1 core", lambda: run_parallel(pm.run, circuits, num_processes=1)),
        ):
            start = time.perf_counter()
            outputs[label] = run()
            times[label].append(time.perf_counter() - start)
    print(f"## ParallelPassManager.run of {len(circuits)} circuits ('forced': workers whatever the load; "
          "'1 core' = num_processes=1)")
    _summary(times)
    print(f"identical outputs: {outputs['serial'] == outputs['forced'] == outputs['1 core']}")


def main(argv=None) -> int:
    """Run the comparison; always returns 0 (this is a report)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller batch (16 circuits, 8-10 qubits)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--device", default="aria-1")
    parser.add_argument("--pm", action="store_true", help="also time ParallelPassManager.run(list)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    names = ("qftentangled", "qpeinexact", "ae", "vqe_two_local", "randomcircuit", "qaoa")
    sizes = (8, 10) if args.quick else (8, 10, 12)
    cases = load_cases([(n, s) for n in names for s in sizes])
    cases += random_cases(sizes, count=4 if args.quick else 6)
    circuits = [c.circuit for c in cases]
    print(
        f"# {len(circuits)} distinct circuits, {sum(len(c.data) for c in circuits)} instructions; "
        f"usable cores: {usable_cores()}; load average before: "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    bench_backend(circuits, args.repeat)
    if args.pm:
        bench_pm(circuits, args.repeat, args.device)
    print("# load average after: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
