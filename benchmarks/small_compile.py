#!/usr/bin/env python
# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""CPU time of compiling one small new circuit, as ``backend.run(qc)`` does (issue 15).

Each round compiles ``--circuits`` fresh, distinct logical circuits (those of
``benchmarks/submit.py``'s separate-run loop: 4 qubits, 4 layers of random
``rx``/``ry``/``rz`` and one CX, measured) with the pass manager ``QStoreBackend`` uses
(``generate_ionq_pass_manager("simulator", 2, num_qubits=29,
qubits_initially_zero=True)``) and reports the calling thread's CPU time per circuit
(``time.thread_time``: compile work only, whatever the load). The median and range over
``--repeat`` rounds are printed with the load average.

Side by side in the same run (rounds interleaved, so that both see the same load):

* ``--base PATH``: the same measurement with the ``qstore_qiskit`` of another checkout
  (e.g. a worktree of ``main``) in a child process; prints the ratio;
* ``--peer``: qiskit-ionq's own compile of the same circuits (``transpile`` to its
  native-gate simulator backend, optimization level 1, offline), in a child process.

``--profile N`` prints the N functions with the most internal time of a cProfile run
over one round (this checkout only).

Usage::

    python benchmarks/small_compile.py --repeat 9 --circuits 200 --base /work/wt/main_base
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

#: One child process per side runs this module with ``--child``.
_HERE = os.path.abspath(__file__)


def _circuits(count: int, seed: int) -> list:
    from submit import random_logical_circuit  # pylint: disable=import-outside-toplevel

    rng = np.random.default_rng(seed)
    return [random_logical_circuit(4, 4, rng, f"c{seed}_{i}") for i in range(count)]


def _compiler(kind: str):
    # pylint: disable=import-outside-toplevel
    if kind == "peer":
        from qiskit import transpile
        from _mqt import qiskit_ionq_backend

        backend = qiskit_ionq_backend("simulator", gateset="native")
        return lambda qc: transpile(qc, backend=backend, optimization_level=1, seed_transpiler=7)
    from qstore_qiskit.transpiler import generate_ionq_pass_manager

    manager = generate_ionq_pass_manager(
        "simulator", optimization_level=2, num_qubits=29, qubits_initially_zero=True
    )
    return manager.run


def measure_round(compile_fn, count: int, seed: int) -> float:
    """Milliseconds of this thread's CPU per circuit, over ``count`` fresh circuits."""
    circuits = _circuits(count, seed)
    start = time.thread_time()
    for qc in circuits:
        compile_fn(qc)
    return (time.thread_time() - start) / count * 1e3


def _child(kind: str) -> None:
    """Serve rounds to the parent: one JSON line in (count, seed), one number out."""
    warnings.filterwarnings("ignore")
    compile_fn = _compiler(kind)
    measure_round(compile_fn, 20, 999)  # warm-up: imports, caches of Qiskit
    for line in sys.stdin:
        count, seed = json.loads(line)
        print(json.dumps(measure_round(compile_fn, count, seed)), flush=True)


class _Side:
    def __init__(self, kind: str, pythonpath: str) -> None:
        env = dict(os.environ, PYTHONPATH=pythonpath)
        self.proc = subprocess.Popen(  # noqa: S603 - this script, our own interpreter
            [sys.executable, _HERE, "--child", kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def round(self, count: int, seed: int) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps([count, seed]) + "\n")
        self.proc.stdin.flush()
        return float(json.loads(self.proc.stdout.readline()))

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--circuits", type=int, default=200)
    parser.add_argument("--base", metavar="PATH", help="checkout to compare with")
    parser.add_argument("--peer", action="store_true", help="also qiskit-ionq's transpile")
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument("--child", choices=("qstore", "peer"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child)
        return 0
    here = os.path.dirname(os.path.dirname(_HERE))
    sides = {"this": _Side("qstore", os.environ.get("PYTHONPATH", here))}
    if args.base:
        sides["base"] = _Side("qstore", args.base)
    if args.peer:
        sides["qiskit-ionq"] = _Side("peer", os.environ.get("PYTHONPATH", here))
    samples: dict[str, list[float]] = {name: [] for name in sides}
    try:
        for r in range(args.repeat):
            # Alternate which side goes first, with the same fresh circuits for all.
            order = list(sides.items())
            if r % 2:
                order.reverse()
            for name, side in order:
                samples[name].append(side.round(args.circuits, 1000 + r))
    finally:
        for side in sides.values():
            side.close()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"# compile CPU per small circuit (ms), {args.circuits} fresh circuits x {args.repeat} rounds, "
          f"load average {load}")
    mine = statistics.median(samples["this"])
    for name, values in samples.items():
        med = statistics.median(values)
        ratio = f"  this / {name} = {mine / med:.3f}" if name != "this" else ""
        print(f"{name:<12} median {med:.3f}  range {min(values):.3f}..{max(values):.3f}{ratio}")
    if args.base:
        paired = sorted(t / b for t, b in zip(samples["this"], samples["base"]))
        print(f"paired rounds this / base: median {statistics.median(paired):.3f} "
              f"range {paired[0]:.3f}..{paired[-1]:.3f}")
    if args.profile:
        import cProfile  # pylint: disable=import-outside-toplevel
        import pstats  # pylint: disable=import-outside-toplevel

        compile_fn = _compiler("qstore")
        measure_round(compile_fn, 20, 999)
        circuits = _circuits(args.circuits, 4242)
        profiler = cProfile.Profile()
        profiler.enable()
        for qc in circuits:
            compile_fn(qc)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
