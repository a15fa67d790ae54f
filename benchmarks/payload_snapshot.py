#!/usr/bin/env python
# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""Snapshot the job bodies ``backend.run`` sends, to check a speed change sends the same.

A change that only makes ``run()`` cheaper must leave every request body the same, byte
for byte. This script runs a seeded set of a few hundred circuits through
``QStoreBackend.run`` against an in-process :class:`~qstore_qiskit.server.LocalServer`
(``instant`` profile) and records, in order, a SHA-256 of every ``POST /jobs`` body
(canonical JSON: sorted keys, floats by ``repr``, so values are compared bit for bit;
the random ``submission_id`` is replaced by a placeholder) and of what the job keeps
to decode its results (each :class:`~qstore_qiskit.providers.PreparedCircuit`'s
measurement map, registers, gate counts, estimated fidelity). Each ``run()`` is
waited for before the next, so that jobs never coalesce by timing.

The set (``--seed``): distinct logical 2-6-qubit circuits, each run cold (a first
sighting: exact template), again (cached), and with new angles (the structure's second
sighting: the lifted bind-many template), one at a time and in lists; parameterized
ansatzes bound with several parameter sets (``parameter_binds``) and by
``assign_parameters``; measurements on subsets of the qubits, several classical
registers, no measurement; already-native circuits (``transpile(qc, backend)``); and
runs with other options (``noise_model``, ``shots``, ``name``, ``extra_metadata``).

Usage::

    PYTHONPATH=/path/to/base python benchmarks/payload_snapshot.py --save base.json
    python benchmarks/payload_snapshot.py --compare base.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from typing import Any

import numpy as np
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister, transpile
from qiskit.circuit import Parameter, ParameterVector

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from submit import random_logical_circuit  # noqa: E402  pylint: disable=wrong-import-position

from qstore_qiskit.client import rest  # noqa: E402
from qstore_qiskit.providers import QStoreProvider  # noqa: E402
from qstore_qiskit.server import LocalServer  # noqa: E402

_SUB = "<submission>"


def _canonical(doc: Any, submission_id: str) -> str:
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return text.replace(submission_id, _SUB) if submission_id else text


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _ansatz(n: int, reps: int, rng: np.random.Generator, tag: str) -> QuantumCircuit:
    theta = ParameterVector(f"t{tag}", n * (reps + 1))
    qc = QuantumCircuit(n, name=f"ansatz{tag}")
    k = 0
    for r in range(reps + 1):
        for q in range(n):
            [qc.ry, qc.rx, qc.rz][int(rng.integers(3))](theta[k], q)
            k += 1
        if r < reps:
            for q in range(n - 1):
                qc.cx(q, q + 1)
    return qc


def _subset_measured(n: int, rng: np.random.Generator, tag: str) -> QuantumCircuit:
    qr = QuantumRegister(n, "q")
    a, b = ClassicalRegister(2, "a"), ClassicalRegister(1, "b")
    qc = QuantumCircuit(qr, a, b, name=f"subset{tag}")
    for q in range(n):
        qc.ry(float(rng.uniform(0.1, 3.0)), q)
    for q in range(n - 1):
        qc.cz(q, q + 1) if rng.integers(2) else qc.cx(q + 1, q)
        qc.rz(float(rng.uniform(-3, 3)), q)
    picks = rng.choice(n, 3, replace=False)
    qc.measure(int(picks[0]), a[1])
    qc.measure(int(picks[1]), b[0])
    qc.measure(int(picks[2]), a[0])
    return qc


def _unmeasured(n: int, rng: np.random.Generator, tag: str) -> QuantumCircuit:
    qc = QuantumCircuit(n, name=f"bare{tag}")
    for q in range(n):
        qc.h(q)
        qc.rz(float(rng.uniform(-3, 3)), q)
    qc.rzz(float(rng.uniform(0.1, 3.0)), 0, n - 1)
    qc.swap(0, 1)
    return qc


def _with_angles(qc: QuantumCircuit, rng: np.random.Generator) -> QuantumCircuit:
    """The same structure with new numeric angles."""
    out = qc.copy_empty_like()
    for inst in qc.data:
        params = [float(rng.uniform(0.1, 6.0)) if isinstance(p, float) else p for p in inst.operation.params]
        op = inst.operation
        if params:
            op = op.copy()
            op.params = params
        out.append(op, inst.qubits, inst.clbits)
    return out


def collect(seed: int, scale: int) -> list[dict[str, str]]:
    """Run the seeded set; one record per POST /jobs body and per prepared circuit."""
    rng = np.random.default_rng(seed)
    records: list[dict[str, str]] = []
    sent: list[dict] = []
    original = rest.IonQHttpClient.create_job

    async def create_job(self, body):
        sent.append(body)
        return await original(self, body)

    rest.IonQHttpClient.create_job = create_job
    try:
        with LocalServer(profile="instant", seed=seed) as srv:
            provider = QStoreProvider(token="snapshot", url=srv.url)
            backend = provider.get_backend("ionq_simulator")
            backend.set_options(template_cache_dir=False)
            aria = provider.get_backend("ionq_qpu.aria-1")
            aria.set_options(template_cache_dir=False)

            def run(tag: str, circuits, target=backend, **options) -> None:
                sent.clear()
                job = target.run(circuits, **options)
                job.result()
                for body in sent:
                    sid = body.get("metadata", {}).get("submission_id", "")
                    records.append({"what": f"{tag} body", "sha256": _digest(_canonical(body, sid))})
                for p in job._prepared:  # noqa: SLF001 - what the job decodes with
                    doc = {
                        "name": p.name, "gateset": p.gateset, "meas_map": p.meas_map,
                        "payload_qubits": p.payload_qubits, "creg_sizes": p.creg_sizes,
                        "clbit_labels": p.clbit_labels, "metadata": p.metadata,
                        "native_gate_counts": p.native_gate_counts,
                        "estimated_fidelity": p.estimated_fidelity, "input_gates": p.input_gates,
                        "body": p.body,
                    }
                    records.append({"what": f"{tag} prepared {p.name}", "sha256": _digest(_canonical(doc, ""))})

            logical = [
                random_logical_circuit(int(rng.integers(2, 7)), int(rng.integers(1, 7)), rng, f"L{i}")
                for i in range(8 * scale)
            ]
            for i, qc in enumerate(logical):  # one run() each: cold, cached, new angles
                run(f"cold {i}", qc)
                run(f"again {i}", qc)
                run(f"angles {i}", _with_angles(qc, rng))
            for i in range(0, len(logical), 4):  # lists: new angles of known structures
                run(f"list {i}", [_with_angles(qc, rng) for qc in logical[i : i + 4]])
            for i in range(3 * scale):
                ansatz = _ansatz(int(rng.integers(2, 7)), int(rng.integers(1, 4)), rng, str(i))
                ansatz.measure_all()
                values = rng.uniform(-np.pi, np.pi, (5, ansatz.num_parameters))
                binds = [{p: list(values[:, j]) for j, p in enumerate(ansatz.parameters)}]
                run(f"binds {i}", ansatz, parameter_binds=binds)
                run(f"assigned {i}", [ansatz.assign_parameters(v) for v in values[:3]])
            for i in range(2 * scale):
                run(f"subset {i}", _subset_measured(int(rng.integers(3, 7)), rng, str(i)))
                run(f"bare {i}", _unmeasured(int(rng.integers(2, 7)), rng, str(i)))
            for i in range(scale):
                qc = random_logical_circuit(4, 3, rng, f"N{i}")
                run(f"native {i}", transpile(qc, backend, optimization_level=1, seed_transpiler=seed))
                run(f"options {i}", logical[i], shots=100 + i, name=f"job{i}", extra_metadata={"k": str(i)},
                    noise_model="aria-1", sampler_seed=i)
                run(f"aria {i}", _with_angles(logical[i], rng), target=aria)
            provider.close()
    finally:
        rest.IonQHttpClient.create_job = original
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save", metavar="FILE")
    parser.add_argument("--compare", metavar="FILE")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--scale", type=int, default=8, help="size of the set (8: ~600 circuits)")
    args = parser.parse_args()
    records = collect(args.seed, args.scale)
    bodies = sum(1 for r in records if r["what"].endswith(" body"))
    print(f"{len(records)} records ({bodies} job bodies)")
    if args.save:
        with open(args.save, "w", encoding="utf-8") as fh:
            json.dump({"seed": args.seed, "scale": args.scale, "records": records}, fh, indent=0)
        print(f"saved to {args.save}")
    if args.compare:
        with open(args.compare, encoding="utf-8") as fh:
            base = json.load(fh)
        if (base["seed"], base["scale"]) != (args.seed, args.scale):
            sys.exit("the snapshot was taken with another --seed/--scale")
        old = base["records"]
        diff = [
            (i, a, b) for i, (a, b) in enumerate(zip(old, records)) if a != b
        ]
        if len(old) != len(records):
            print(f"DIFFERENT: {len(old)} records before, {len(records)} now")
        for i, a, b in diff[:20]:
            print(f"DIFFERENT #{i}: {a['what']} {a['sha256'][:12]} -> {b['what']} {b['sha256'][:12]}")
        if diff or len(old) != len(records):
            sys.exit(f"{len(diff)} record(s) differ")
        print("identical")


if __name__ == "__main__":
    main()
