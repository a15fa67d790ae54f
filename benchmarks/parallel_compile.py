#!/usr/bin/env python
# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""Parallel compile of many distinct circuits: serial loop vs forked workers.

Compiles the same batch of distinct circuits (MQT Bench at 8-12 qubits plus random
circuits) three ways, interleaved round by round, best of ``--repeat``:

* ``serial``: ``[pm.run(c) for c in circuits]``;
* ``parallel``: ``pm.run(circuits)`` (:class:`~qstore_qiskit.transpiler.parallel.ParallelPassManager`:
  one forked worker per usable core);
* ``parallel-1``: ``run_parallel(pm.run, circuits, num_processes=1)`` (must cost the
  same as the serial loop: no loss on one core);

and checks that all three give identical circuits. Prints the times and the speed-up.

Usage::

    python benchmarks/parallel_compile.py [--quick] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# pylint: disable=wrong-import-position
from _mqt import load_cases, random_cases  # noqa: E402

from qstore_qiskit.transpiler import generate_ionq_pass_manager  # noqa: E402
from qstore_qiskit.transpiler.parallel import run_parallel, usable_cores  # noqa: E402


def main(argv=None) -> int:
    """Run the comparison; always returns 0 (this is a report)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller batch")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="aria-1")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    names = ("qftentangled", "qpeinexact", "ae", "vqe_two_local", "randomcircuit", "qaoa")
    sizes = (8, 10) if args.quick else (8, 10, 12)
    cases = load_cases([(n, s) for n in names for s in sizes])
    cases += random_cases(sizes, count=4 if args.quick else 8)
    circuits = [c.circuit for c in cases]
    pm = generate_ionq_pass_manager(args.device, 2, qubits_initially_zero=True)
    pm.run(circuits[0])  # warm-up
    print(
        f"# {len(circuits)} distinct circuits, {sum(len(c.data) for c in circuits)} instructions; "
        f"usable cores: {usable_cores()}, load average: {os.getloadavg()[0]:.1f}"
    )
    best = {"serial": float("inf"), "parallel": float("inf"), "parallel-1": float("inf")}
    outputs = {}
    for _ in range(args.repeat):
        for label, run in (
            ("serial", lambda: [pm.run(c) for c in circuits]),
            ("parallel", lambda: pm.run(circuits)),
            ("parallel-1", lambda: run_parallel(pm.run, circuits, num_processes=1)),
        ):
            start = time.perf_counter()
            outputs[label] = run()
            best[label] = min(best[label], time.perf_counter() - start)
    same = outputs["serial"] == outputs["parallel"] == outputs["parallel-1"]
    for label, seconds in best.items():
        print(f"{label:11s} {seconds:8.2f} s   speed-up vs serial {best['serial'] / seconds:5.2f}x")
    print(f"identical outputs: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
