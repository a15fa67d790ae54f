"""Turn IonQ per-circuit results into Qiskit experiment results.

IonQ returns, per circuit, a histogram over *all* qubits (qubit 0 the least significant
bit). Qiskit wants counts over the circuit's classical bits. Each clbit reads the qubit
that the circuit measured into it (its measurement map); clbits never measured read 0.
A circuit without any measurement is reported over all its qubits, like IonQ measures
them.

Per-shot memory: IonQ returns a histogram, not a shot list, so memory is made from the
integer counts: every outcome repeated ``count`` times, in an order shuffled by a
generator seeded with the backend's ``sampler_seed`` option and the circuit's position in
the ``run`` call (so the same run with the same seed gives the same memory; without a
seed the order comes from fresh entropy).
Counts and memory therefore always agree exactly; the order of shots carries no
information, as on IonQ's service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..client import CircuitResult
    from .backend import PreparedCircuit


def _remap(outcome: int, meas_map: list[int | None]) -> int:
    value = 0
    for clbit, qubit in enumerate(meas_map):
        if qubit is not None and (outcome >> qubit) & 1:
            value |= 1 << clbit
    return value


def clbit_counts(qubit_counts: dict[int, int], meas_map: list[int | None]) -> dict[int, int]:
    """Counts over qubits -> counts over clbits (see the module docstring)."""
    out: dict[int, int] = {}
    for outcome, n in qubit_counts.items():
        key = _remap(outcome, meas_map)
        out[key] = out.get(key, 0) + n
    return out


def experiment_result(
    prepared: "PreparedCircuit",
    result: "CircuitResult",
    shots: int,
    memory: bool,
    seed: int | None,
    position: int = 0,
) -> dict[str, Any]:
    """One ``Result.from_dict`` experiment for one circuit (``position``: its index in
    the ``run`` call, which seeds the memory order together with ``seed``)."""
    if result.num_qubits < prepared.payload_qubits:
        raise ValueError(
            f"result for circuit '{prepared.name}' covers {result.num_qubits} qubits, "
            f"expected {prepared.payload_qubits}"
        )
    counts = clbit_counts(result.counts or {}, prepared.meas_map)
    data: dict[str, Any] = {"counts": {hex(k): v for k, v in counts.items()}}
    if memory:
        outcomes = np.repeat(
            np.fromiter(counts.keys(), dtype=np.int64, count=len(counts)),
            np.fromiter(counts.values(), dtype=np.int64, count=len(counts)),
        )
        rng = np.random.default_rng(None if seed is None else [int(seed), int(position)])
        rng.shuffle(outcomes)
        data["memory"] = [hex(int(x)) for x in outcomes]
    metadata = {
        "ionq_job_id": result.job_id,
        "ionq_child_job_id": result.child_job_id,
        "native_gate_counts": prepared.native_gate_counts,
        "estimated_fidelity": prepared.estimated_fidelity,
        "gateset": prepared.gateset,
    }
    return {
        "shots": shots,
        "success": True,
        "meas_level": 2,
        "data": data,
        "header": {
            "name": prepared.name,
            "memory_slots": len(prepared.meas_map),
            "creg_sizes": prepared.creg_sizes,
            "clbit_labels": prepared.clbit_labels,
            "metadata": prepared.metadata,
        },
        "metadata": metadata,
    }
