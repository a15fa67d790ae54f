#!/usr/bin/env python
# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""Snapshot the compiler's outputs on the scale suite, to check a speed change is exact.

A change that only makes the compiler faster must leave every output the same, gate by
gate. This script compiles the scale suite of ``compile_quality.py`` (MQT Bench at
10-25 qubits on Aria, 10-36 on Forte, plus the seeded random circuits) with our
compiler and records, per circuit and compile path, the MS/ZZ and GPi/GPi2 counts and
a SHA-256 of every output instruction (name, qubit indices and the ``repr`` of each
parameter, so floats are compared bit for bit). ``--save`` writes the snapshot;
``--compare`` compiles again and lists every circuit whose output differs.

Compile paths (``--paths``):

``T1``, ``T2``
    ``transpile(qc, target=ionq_target(device), *_method="qstore", optimization_level=1|2)``
    (qubits start in ``|0>``), the path of issue 15's timing.
``L2``
    ``generate_ionq_pass_manager(device, optimization_level=2).run(qc)`` (exact unitary).
``L3``
    The same at level 3 (slow: three-qubit resynthesis).

Usage::

    PYTHONPATH=/path/to/main python benchmarks/output_snapshot.py --save before.json
    python benchmarks/output_snapshot.py --compare before.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import warnings
from collections.abc import Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _mqt import (  # noqa: E402  pylint: disable=wrong-import-position
    GROVER_MAX_QUBITS,
    SCALE_SIZES,
    SCALE_SUITE,
    load_cases,
    random_cases,
    transpile_with_qstore_stages,
)


def _compilers(device: str, paths: Sequence[str]) -> dict:
    # pylint: disable=import-outside-toplevel
    from qstore_qiskit.transpiler import generate_ionq_pass_manager, ionq_target

    target = ionq_target(device)
    out = {}
    for path in paths:
        kind, level = path[0], int(path[1:])
        if kind == "T":

            def run(qc, level=level):
                return transpile_with_qstore_stages(qc, target, level)

        else:

            def run(qc, level=level):
                return generate_ionq_pass_manager(device=device, optimization_level=level).run(qc)

        out[path] = run
    return out


def fingerprint(circuit) -> dict:
    """Gate counts and a SHA-256 of every instruction of a compiled circuit."""
    digest = hashlib.sha256()
    index = {q: i for i, q in enumerate(circuit.qubits)}
    two = one = 0
    for inst in circuit.data:
        name = inst.operation.name
        if name in ("ms", "zz"):
            two += 1
        elif name in ("gpi", "gpi2"):
            one += 1
        qargs = ",".join(str(index[q]) for q in inst.qubits)
        params = ",".join(repr(p) for p in inst.operation.params)
        digest.update(f"{name}|{qargs}|{params};".encode())
    return {"2q": two, "1q": one, "sha256": digest.hexdigest()}


def snapshot(device: str, paths: Sequence[str], names: Sequence[str], random: int) -> dict:
    family = "forte" if "forte" in device else "aria"
    sizes = SCALE_SIZES[family]
    pairs = [(n, s) for n in names for s in sizes if not (n == "grover" and s > GROVER_MAX_QUBITS)]
    cases = load_cases(pairs) + (random_cases(sizes, count=random) if random > 0 else [])
    compilers = _compilers(device, paths)
    result: dict = {}
    for case in cases:
        for path, run in compilers.items():
            result[f"{path}:{case.label}"] = fingerprint(run(case.circuit))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", metavar="PATH")
    group.add_argument("--compare", metavar="PATH")
    parser.add_argument("--device", default="aria-1")
    parser.add_argument("--paths", default="T2", help="comma-separated: T1,T2,L2,L3")
    parser.add_argument("--circuits", default=",".join(SCALE_SUITE))
    parser.add_argument("--random", type=int, default=20)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    start = time.perf_counter()
    data = snapshot(args.device, args.paths.split(","), args.circuits.split(","), args.random)
    print(f"# {len(data)} outputs compiled in {time.perf_counter() - start:.1f} s")
    if args.save:
        with open(args.save, "w", encoding="utf-8") as handle:
            json.dump({"device": args.device, "outputs": data}, handle, indent=1, sort_keys=True)
        print(f"# saved to {args.save}")
        return 0
    with open(args.compare, encoding="utf-8") as handle:
        saved = json.load(handle)["outputs"]
    differ = [key for key in data if key in saved and data[key] != saved[key]]
    missing = [key for key in data if key not in saved]
    for key in differ:
        print(f"DIFFERS {key}: saved {saved[key]} now {data[key]}")
    for key in missing:
        print(f"NOT IN SNAPSHOT {key}")
    same = len(data) - len(differ) - len(missing)
    print(f"# identical: {same} of {len(data)}; differ: {len(differ)}; not in snapshot: {len(missing)}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
