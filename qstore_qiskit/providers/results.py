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
from qiskit.result import Counts, Result

from .prepared import PreparedCircuit, decode_layout

if TYPE_CHECKING:  # pragma: no cover
    from ..client import CircuitResult


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


def clbit_probabilities(probabilities: dict[int, float], meas_map: list[int | None]) -> dict[int, float]:
    """Probabilities over qubits -> probabilities over clbits (marginalised like counts)."""
    out: dict[int, float] = {}
    for outcome, p in probabilities.items():
        key = _remap(outcome, meas_map)
        out[key] = out.get(key, 0.0) + float(p)
    return out


def retrieved_layout(result: "CircuitResult", position: int, name: str) -> PreparedCircuit:
    """How to decode a result retrieved without its circuit (e.g. in a new process).

    Uses the job's ``qstore_layout`` metadata when the job was made by qstore; otherwise
    every qubit of the job is reported, one clbit each, like IonQ measures them.
    """
    layout = decode_layout((result.metadata or {}).get("qstore_layout"), position)
    width = max(int(result.num_qubits), 1)
    if layout is not None:
        meas_map, creg_sizes = layout
    else:
        meas_map, creg_sizes = list(range(width)), [["meas", width]]
    labels = [[reg, i] for reg, size in creg_sizes for i in range(int(size))]
    return PreparedCircuit(
        name=name,
        body={},
        gateset="",
        meas_map=meas_map,
        payload_qubits=0,
        creg_sizes=creg_sizes,
        clbit_labels=labels,
    )


class QStoreResult(Result):
    """A Qiskit :class:`~qiskit.result.Result` with qiskit-ionq's ``get_probabilities``."""

    def get_probabilities(self, experiment: Any = None) -> Counts | list[Counts]:
        """The service's probabilities over the circuit's clbits (not sampled counts).

        Args:
            experiment: index, name or circuit of one experiment; ``None`` for all.

        Returns:
            One :class:`~qiskit.result.Counts` of floats, or a list when ``experiment``
            is ``None`` and there are several experiments (as in qiskit-ionq).
        """
        keys = range(len(self.results)) if experiment is None else [experiment]
        out = []
        for key in keys:
            exp = self._get_experiment(key)
            header = exp.header if isinstance(exp.header, dict) else {}
            probs = self.data(key).get("probabilities")
            if probs is None:
                raise KeyError(f"no probabilities for experiment {key!r}")
            out.append(
                Counts(
                    probs,
                    creg_sizes=header.get("creg_sizes"),
                    memory_slots=header.get("memory_slots"),
                )
            )
        return out[0] if len(out) == 1 else out


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
    probabilities = clbit_probabilities(result.probabilities or {}, prepared.meas_map)
    data: dict[str, Any] = {
        "counts": {hex(k): v for k, v in counts.items()},
        "probabilities": {hex(k): p for k, p in probabilities.items()},
    }
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
