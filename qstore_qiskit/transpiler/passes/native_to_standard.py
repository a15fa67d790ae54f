"""Rewrite IonQ native gates as the Qiskit standard gates they are, around ``rz`` frames.

IonQ's GPi, GPi2, MS and ZZ are Python gates to Qiskit: its Rust passes
(``Optimize1qGatesDecomposition``, ``ConsolidateBlocks``, ``UnitarySynthesis``) call
back into Python for the matrix of each of them. Each is a standard gate conjugated by
Z rotations, which IonQ applies for free as frame changes::

    GPi(phi)            = rz(2 pi phi) . x . rz(-2 pi phi)
    GPi2(phi)           = rz(2 pi phi) . sx . rz(-2 pi phi)          (global phase -pi/4)
    MS(phi0, phi1, th)  = (rz(2 pi phi0) (x) rz(2 pi phi1)) . rxx(2 pi th)
                          . (rz(-2 pi phi0) (x) rz(-2 pi phi1))
    ZZ(th)              = rzz(2 pi th)

(matrix order: the rightmost factor acts first). The payload serializer and the template
builder read ``sx``, ``x``, ``rxx`` and ``rzz`` back as GPi2(0), GPi(0), MS(0, 0, t/2pi)
and ZZ(t/2pi) with the ``rz`` frames pushed into their phases, so the payload of the
rewritten circuit is the payload of the input.
"""

from __future__ import annotations

import math
from typing import Any

from qiskit.circuit import ParameterExpression
from qiskit.circuit.library import RXXGate, RZGate, RZZGate, SXGate, XGate
from qiskit.dagcircuit import DAGCircuit
from qiskit.transpiler.basepasses import TransformationPass

_NATIVE = frozenset({"gpi", "gpi2", "ms", "zz"})


def _symbolic(value: Any) -> bool:
    return isinstance(value, ParameterExpression) and bool(value.parameters)

_TWO_PI = 2.0 * math.pi
_FOUR_PI = 4.0 * math.pi


class NativeToStandard(TransformationPass):
    """Rewrite ``gpi``, ``gpi2``, ``ms`` and ``zz`` as ``x``, ``sx``, ``rxx`` and ``rzz``
    between ``rz`` frames.

    Guarantees:

    * **Exact.** The output's unitary equals the input's, global phase included.
    * **Only standard gates.** The output holds no ``gpi``, ``gpi2``, ``ms`` or ``zz``;
      every other instruction is kept, in order on its wires.
    * **Frames merged.** The ``rz`` frames between consecutive gates of a wire are
      merged into one ``rz`` (none where they cancel). A parameterized ``rz`` takes the
      numeric frames next to it into its angle (``rz(angle + c)``), so each
      parameterized ``rz`` of the input stays one ``rz``, affine in its own angle:
      parameter-shift rules still hold on the output. Numeric phases of native gates
      give numeric ``rz``; a parameterized phase gives ``rz`` gates affine in it.
    * **Cheap when there is nothing to do.** A circuit without native gates is returned
      as it is, without looking at its nodes.
    """

    def run(self, dag: DAGCircuit) -> DAGCircuit:
        if _NATIVE.isdisjoint(dag.count_ops(recurse=False)):
            return dag
        out = dag.copy_empty_like()
        phase: Any = dag.global_phase
        pending: dict[Any, Any] = {}  # qubit -> rz angle (radians) still to apply
        held: dict[Any, ParameterExpression] = {}  # qubit -> parameterized rz not yet applied

        def flush(qubit: Any, then: float = 0.0) -> None:
            """Apply the pending frame of ``qubit`` less ``then`` as one rz (into the held
            parameterized rz, if any)."""
            nonlocal phase
            angle = pending.pop(qubit, 0.0) - then
            expression = held.pop(qubit, None)
            if expression is not None:
                angle = expression + angle if _symbolic(angle) or angle else expression
            if _symbolic(angle):  # a held rz, or the frame of a parameterized phase
                out.apply_operation_back(RZGate(angle), (qubit,), (), check=False)
                return
            angle = float(angle)
            # rz(a + 4 pi k) = rz(a); rz(a + 2 pi) = -rz(a): drop full turns exactly.
            reduced = math.remainder(angle, _FOUR_PI)
            if abs(abs(reduced) - _TWO_PI) < 1e-12:
                phase += math.pi
                return
            if abs(reduced) < 1e-12:
                return
            out.apply_operation_back(RZGate(reduced), (qubit,), (), check=False)

        for node in dag.topological_op_nodes():
            name = node.op.name
            qargs = node.qargs
            if name == "rz":
                value = node.op.params[0]
                qubit = qargs[0]
                if _symbolic(value):
                    if qubit in held or _symbolic(pending.get(qubit, 0.0)):
                        flush(qubit)  # one parameterized rz each: the earlier one goes out
                    held[qubit] = value + pending.pop(qubit, 0.0)
                else:
                    pending[qubit] = pending.get(qubit, 0.0) + float(value)
                continue
            if name in ("gpi", "gpi2"):
                a = _TWO_PI * node.op.params[0]
                flush(qargs[0], a)
                out.apply_operation_back(XGate() if name == "gpi" else SXGate(), qargs, (), check=False)
                if name == "gpi2":
                    phase -= math.pi / 4  # GPi2(0) = RX(pi/2) = e^{-i pi/4} SX
                pending[qargs[0]] = a
                continue
            if name == "ms":
                a0, a1 = (_TWO_PI * p for p in node.op.params[:2])
                flush(qargs[0], a0)
                flush(qargs[1], a1)
                out.apply_operation_back(RXXGate(_TWO_PI * node.op.params[2]), qargs, (), check=False)
                pending[qargs[0]], pending[qargs[1]] = a0, a1
                continue
            if name == "zz":  # diagonal: commutes with the frames, which stay pending
                out.apply_operation_back(RZZGate(_TWO_PI * node.op.params[0]), qargs, (), check=False)
                continue
            for qubit in qargs:
                flush(qubit)
            out.apply_operation_back(node.op, qargs, node.cargs, check=False)
        for qubit in list(pending.keys() | held.keys()):
            flush(qubit)
        out.global_phase = phase
        return out
