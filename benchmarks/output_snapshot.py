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
parameter, so floats are compared bit for bit; the formula of a parameter expression).
``--save`` writes the snapshot; ``--compare`` compiles again and lists every circuit whose output differs.

Compile paths (``--paths``):

``T1``, ``T2``
    ``transpile(qc, target=ionq_target(device), *_method="qstore", optimization_level=1|2)``
    (qubits start in ``|0>``), the path of issue 15's timing.
``L2``
    ``generate_ionq_pass_manager(device, optimization_level=2).run(qc)`` (exact unitary).
``L3``
    The same at level 3 (slow: three-qubit resynthesis).
``B0``, ``B1``, ``B2``
    What ``QStoreBackend.run`` compiles with: ``generate_ionq_pass_manager("simulator",
    optimization_level=0|1|2, num_qubits=29, qubits_initially_zero=True).run(qc)``.

Suites (``--suite``):

``scale`` (default)
    The scale suite above (several minutes).
``small``
    A few hundred seeded small circuits, the size of issue 15's separate ``run()`` calls:
    random logical 2-6-qubit circuits as ``benchmarks/submit.py`` submits them (random
    ``rx``/``ry``/``rz`` layers and one CX per layer, measured), circuits of mixed
    standard gates (``h``, ``s``, ``sx``, ``u``, ``cz``, ``cp``, ``rzz``, ``swap``,
    ``ccx``, mid-circuit measurements, barriers, unmeasured wires), and circuits with free
    parameters. Use it with ``--paths B0,B1,B2,L2,T1,T2``.

Usage::

    PYTHONPATH=/path/to/main python benchmarks/output_snapshot.py --save before.json
    python benchmarks/output_snapshot.py --compare before.json
    PYTHONPATH=/path/to/main python benchmarks/output_snapshot.py --suite small \
        --paths B0,B1,B2,L2,T1,T2 --save small_before.json
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

        elif kind == "B":
            # The backend's compile (QStoreBackend._pass_manager): qubits start in |0>.
            manager = generate_ionq_pass_manager(
                "simulator", optimization_level=level, num_qubits=29, qubits_initially_zero=True
            )

            def run(qc, manager=manager):
                return manager.run(qc)

        else:

            def run(qc, level=level):
                return generate_ionq_pass_manager(device=device, optimization_level=level).run(qc)

        out[path] = run
    return out


def _param_text(value) -> str:
    """A parameter as text: ``repr`` (floats bit for bit), and for a parameter expression
    its formula (its ``repr`` holds the object's address)."""
    # pylint: disable=import-outside-toplevel
    from qiskit.circuit import ParameterExpression

    if isinstance(value, ParameterExpression):
        return f"expr({value})"
    return repr(value)


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
        params = ",".join(_param_text(p) for p in inst.operation.params)
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


def small_cases(count: int = 300, seed: int = 15) -> list[tuple[str, object]]:
    """The ``small`` suite: ``(label, circuit)`` pairs, seeded (see the module docs)."""
    # pylint: disable=import-outside-toplevel
    import numpy as np
    from qiskit import QuantumCircuit
    from qiskit.circuit import Parameter
    from submit import random_logical_circuit

    rng = np.random.default_rng(seed)
    cases: list[tuple[str, object]] = []
    for i in range(count // 2):  # what benchmarks/submit.py's separate run() loop sends
        width, layers = int(rng.integers(2, 7)), int(rng.integers(2, 7))
        cases.append((f"logical{i}-{width}q{layers}", random_logical_circuit(width, layers, rng, f"s{i}")))
    for i in range(count // 3):  # mixed standard gates
        width = int(rng.integers(2, 7))
        qc = QuantumCircuit(width, width)
        for _ in range(int(rng.integers(4, 25))):
            kind = int(rng.integers(14))
            a, b, c = (int(x) for x in rng.choice(width, 3, replace=width < 3))
            angle = float(rng.uniform(-7.0, 7.0))
            if kind == 0:
                qc.h(a)
            elif kind == 1:
                qc.s(a)
            elif kind == 2:
                qc.sx(a)
            elif kind == 3:
                qc.u(angle, 0.5 * angle, -angle, a)
            elif kind == 4 and a != b:
                qc.cz(a, b)
            elif kind == 5 and a != b:
                qc.cp(angle, a, b)
            elif kind == 6 and a != b:
                qc.rzz(angle, a, b)
            elif kind == 7 and a != b:
                qc.swap(a, b)
            elif kind == 8 and len({a, b, c}) == 3:
                qc.ccx(a, b, c)
            elif kind == 9:
                qc.measure(a, a)  # mid-circuit when gates follow
            elif kind == 10:
                qc.barrier()
            elif kind == 11:
                qc.rx(float(rng.choice([0.0, np.pi, np.pi / 2, angle])), a)
            elif kind == 12 and a != b:
                qc.cx(a, b)
            else:
                qc.ry(angle, a)
        if rng.integers(2):
            qc.measure(range(width), range(width))
        cases.append((f"mixed{i}-{width}q", qc))
    for i in range(count - len(cases)):  # free parameters
        width = int(rng.integers(2, 6))
        theta = [Parameter(f"t{k}") for k in range(3)]
        qc = random_logical_circuit(width, int(rng.integers(2, 5)), rng, f"p{i}")
        qc.remove_final_measurements()
        for k, q in enumerate(rng.choice(width, min(width, 3), replace=False)):
            [qc.rx, qc.ry, qc.rz][int(rng.integers(3))](theta[k] * float(rng.uniform(0.5, 2)) + 0.1 * k, int(q))
        qc.rzz(theta[0], 0, 1)
        qc.measure_all()
        cases.append((f"param{i}-{width}q", qc))
    return cases


def snapshot_small(device: str, paths: Sequence[str], count: int) -> dict:
    """Fingerprints of the ``small`` suite on every path."""
    compilers = _compilers(device, paths)
    result: dict = {}
    for label, circuit in small_cases(count):
        for path, run in compilers.items():
            result[f"{path}:{label}"] = fingerprint(run(circuit))
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
    parser.add_argument("--suite", choices=("scale", "small"), default="scale")
    parser.add_argument("--count", type=int, default=300, help="circuits of the small suite")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    start = time.perf_counter()
    if args.suite == "small":
        data = snapshot_small(args.device, args.paths.split(","), args.count)
    else:
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
