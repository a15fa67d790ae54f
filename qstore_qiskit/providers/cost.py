"""Cost before spend: the service's estimate of prepared circuits, and the ``max_cost`` check.

IonQ prices a job from its circuits' one- and two-qubit gate counts, qubit count and
shots; ``GET /jobs/estimate`` answers for one circuit. A ``run`` is priced as the sum
of its circuits' estimates, asking once per distinct ``(1q gates, 2q gates, qubits)``
shape (a parameter sweep of one ansatz costs one request, not one per binding).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:  # pragma: no cover
    from .service import ServiceClient


class CostLimitError(Exception):
    """A submission was refused because its estimated cost exceeds ``max_cost``.

    Nothing was sent to the service: no job exists for it.
    """


@dataclass
class CostEstimate:
    """The service's estimate for a set of circuits.

    Attributes:
        cost: total estimated cost (``cost_unit``, e.g. USD); 0 on simulators.
        cost_unit: the service's unit.
        execution_time: summed estimated execution time, seconds.
        queue_time: the service's predicted queue time, seconds.
        circuits: number of circuits priced.
        shots: shots per circuit.
        by_shape: ``[{"1q_gates", "2q_gates", "qubits", "circuits", "cost"}]``, one per
            distinct circuit shape.
    """

    cost: float
    cost_unit: str
    execution_time: float
    queue_time: float | None
    circuits: int
    shots: int
    by_shape: list[dict[str, Any]] = field(default_factory=list)


def gate_shape(body: dict) -> tuple[int, int, int]:
    """``(1q gates, 2q+ gates, qubits)`` of one IonQ circuit body."""
    one = two = 0
    for gate in body.get("circuit", ()):
        n = 0
        for key in ("target", "control"):
            if key in gate:
                n += 1
        for key in ("targets", "controls"):
            n += len(gate.get(key) or ())
        if n <= 1:
            one += 1
        else:
            two += 1
    return one, two, int(body.get("qubits", 1))


def estimate(
    service: "ServiceClient",
    bodies: Iterable[dict],
    *,
    backend: str,
    shots: int,
    error_mitigation: bool = False,
    session: bool = False,
) -> CostEstimate:
    """Price ``bodies`` with ``GET /jobs/estimate`` (one call per distinct shape)."""
    shapes: dict[tuple[int, int, int], int] = {}
    for body in bodies:
        key = gate_shape(body)
        shapes[key] = shapes.get(key, 0) + 1
    total = exec_s = 0.0
    unit = "usd"
    queue: float | None = None
    rows = []
    for (one, two, qubits), count in shapes.items():
        doc = service.estimate(
            {
                "type": "ionq.circuit.v1",
                "backend": backend,
                "1q_gates": str(one),
                "2q_gates": str(two),
                "qubits": str(qubits),
                "shots": str(shots),
                "error_mitigation": str(bool(error_mitigation)).lower(),
                "session": str(bool(session)).lower(),
            }
        )
        cost = float(doc.get("estimated_cost") or 0.0)
        unit = str(doc.get("cost_unit") or unit)
        exec_s += count * float(doc.get("estimated_execution_time") or 0.0)
        if doc.get("current_predicted_queue_time") is not None:
            queue = float(doc["current_predicted_queue_time"])
        total += count * cost
        rows.append({"1q_gates": one, "2q_gates": two, "qubits": qubits, "circuits": count, "cost": cost})
    return CostEstimate(
        cost=total,
        cost_unit=unit,
        execution_time=exec_s,
        queue_time=queue,
        circuits=sum(shapes.values()),
        shots=shots,
        by_shape=rows,
    )
