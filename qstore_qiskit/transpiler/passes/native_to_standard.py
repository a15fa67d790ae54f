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

    * **Exact.** The output's unitary equals the input's, global phase included (with
      ``qubits_initially_zero``: the output prepares the same state from ``|0...0>``,
      see below).
    * **Only standard gates.** The output holds no ``gpi``, ``gpi2``, ``ms`` or ``zz``;
      every other instruction is kept, in order on its wires.
    * **Frames merged.** The ``rz`` frames between consecutive gates of a wire are
      merged into one ``rz`` (none where they cancel). A parameterized ``rz`` takes the
      numeric frames next to it into its angle (``rz(angle + c)``), so each
      parameterized ``rz`` of the input stays one ``rz``, affine in its own angle:
      parameter-shift rules still hold on the output. Numeric phases of native gates
      give numeric ``rz``; a parameterized phase gives ``rz`` gates affine in it.
    * **Frames moved where they cost no instruction.** A numeric frame is carried
      through an ``x`` (``x . rz(c) = rz(-c) . x``, exactly) and a frame of half a turn
      through an ``rxx``, whose angle then changes sign (``rxx(t) . (rz(pi) (x) 1) =
      (rz(pi) (x) 1) . rxx(-t)``, exactly), instead of being written as an ``rz`` before
      them: each such move removes that ``rz`` and adds at most the one after the gate,
      so the output never has more instructions than without it, and usually fewer
      (every instruction of an ISA circuit is paid again each time Qiskit's preset pass
      manager or a primitive handles it). The payload is the same up to a global phase.
    * **Cheap when there is nothing to do.** A circuit without native gates is returned
      as it is, without looking at its nodes.

    Args:
        qubits_initially_zero: Whether the circuit starts in ``|0...0>``. A numeric
            frame before the first gate of a wire then only changes the global phase of
            the prepared state and is dropped.
    """

    def __init__(self, qubits_initially_zero: bool = False) -> None:
        super().__init__()
        self.qubits_initially_zero = qubits_initially_zero

    def run(self, dag: DAGCircuit) -> DAGCircuit:
        if _NATIVE.isdisjoint(dag.count_ops(recurse=False)):
            return dag
        out = dag.copy_empty_like()
        phase: Any = dag.global_phase
        emitted: list[list] = []  # [name, angle or operation, qargs, cargs], in order

        def emit(name: str, value: Any, qargs: tuple, cargs: tuple = ()) -> None:
            emitted.append([name, value, qargs, cargs])

        pending: dict[Any, Any] = {}  # qubit -> rz angle (radians) still to apply
        held: dict[Any, ParameterExpression] = {}  # qubit -> parameterized rz not yet applied
        # Wires nothing has been written on yet (their numeric frames act on |0>).
        fresh = set(dag.qubits) if self.qubits_initially_zero else set()

        def flush(qubit: Any, then: float = 0.0) -> None:
            """Apply the pending frame of ``qubit`` less ``then`` as one rz (into the held
            parameterized rz, if any)."""
            nonlocal phase
            angle = pending.pop(qubit, 0.0) - then
            expression = held.pop(qubit, None)
            if expression is not None:
                angle = expression + angle if _symbolic(angle) or angle else expression
            if _symbolic(angle):  # a held rz, or the frame of a parameterized phase
                emit("rz", angle, (qubit,))
                fresh.discard(qubit)
                return
            if qubit in fresh:  # rz(a)|0> = e^{-ia/2}|0>: a global phase of the state
                fresh.discard(qubit)
                return
            angle = float(angle)
            # rz(a + 4 pi k) = rz(a); rz(a + 2 pi) = -rz(a): drop full turns exactly.
            reduced = math.remainder(angle, _FOUR_PI)
            if abs(abs(reduced) - _TWO_PI) < 1e-12:
                phase += math.pi
                return
            if abs(reduced) < 1e-12:
                return
            emit("rz", reduced, (qubit,))

        def movable(qubit: Any) -> bool:
            """Whether the pending frame of ``qubit`` is a number that may be moved on."""
            return qubit not in held and qubit not in fresh and not _symbolic(pending.get(qubit, 0.0))

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
            if name == "gpi" and movable(qargs[0]) and not _symbolic(node.op.params[0]):
                # GPi(phi) = rz(a) . x . rz(-a), a = 2 pi phi, after the frame f: the rz(f - a)
                # before the x is carried through it as rz(a - f), then rz(a) follows.
                a = _TWO_PI * node.op.params[0]
                emit("x", None, qargs)
                pending[qargs[0]] = 2.0 * a - pending.get(qargs[0], 0.0)
                continue
            if name in ("gpi", "gpi2"):
                a = _TWO_PI * node.op.params[0]
                flush(qargs[0], a)
                emit("x" if name == "gpi" else "sx", None, qargs)
                fresh.discard(qargs[0])
                if name == "gpi2":
                    phase -= math.pi / 4  # GPi2(0) = RX(pi/2) = e^{-i pi/4} SX
                pending[qargs[0]] = a
                continue
            if name == "ms":
                a0, a1 = (_TWO_PI * p for p in node.op.params[:2])
                theta = _TWO_PI * node.op.params[2]
                for qubit, a in ((qargs[0], a0), (qargs[1], a1)):
                    if movable(qubit) and _half_turn(pending.get(qubit, 0.0) - a):
                        # The frame f - a (half a turn) is carried through the rxx, whose
                        # angle changes sign; then rz(a) follows: f stays pending.
                        theta = -theta
                    else:
                        flush(qubit, a)
                        pending[qubit] = a
                emit("rxx", theta, qargs)
                fresh.difference_update(qargs)
                continue
            if name == "zz":  # diagonal: commutes with the frames, which stay pending
                emit("rzz", _TWO_PI * node.op.params[0], qargs)
                fresh.difference_update(qargs)
                continue
            for qubit in qargs:
                flush(qubit)
            emit("", node.op, qargs, node.cargs)
            fresh.difference_update(qargs)
        for qubit in list(pending.keys() | held.keys()):
            flush(qubit)
        return _write(out, emitted, phase, self.qubits_initially_zero)


def merge_frames(dag: DAGCircuit, qubits_initially_zero: bool = False) -> DAGCircuit:
    """``dag`` (a circuit of ``rz``, ``sx``, ``x``, ``rxx``, ``rzz`` and any other
    instructions) with its numeric ``rz`` merged into other ``rz`` where
    :class:`NativeToStandard` would merge them (its "frames moved" guarantee), e.g.
    after Qiskit's ``Optimize1qGatesDecomposition`` left a numeric ``rz`` next to a
    parameterized one (its runs never hold a parameter). Exact (global phase included),
    or with ``qubits_initially_zero`` exact on ``|0...0>``; never adds an instruction."""
    emitted: list[list] = []
    for node in dag.topological_op_nodes():
        name = node.op.name
        if name in ("rz", "rxx", "rzz"):
            emitted.append([name, node.op.params[0], node.qargs, ()])
        elif name in _SIMPLE:
            emitted.append([name, None, node.qargs, ()])
        else:
            emitted.append(["", node.op, node.qargs, node.cargs])
    return _write(dag.copy_empty_like(), emitted, dag.global_phase, qubits_initially_zero)


def _write(out: DAGCircuit, emitted: list[list], phase: Any, qubits_initially_zero: bool) -> DAGCircuit:
    """``out`` with the ``emitted`` entries (frames merged first) and global ``phase``."""
    phase += _merge_frames(emitted, qubits_initially_zero)
    for name, value, qargs, cargs in emitted:
        if name == "rz":
            op = RZGate(value)
        elif name in _SIMPLE:
            op = _SIMPLE[name]()
        elif name == "rxx":
            op = RXXGate(value)
        elif name == "rzz":
            op = RZZGate(value)
        else:
            op = value
        out.apply_operation_back(op, qargs, cargs, check=False)
    out.global_phase = phase
    return out


def _half_turn(angle: Any) -> bool:
    """Whether ``angle`` (radians) is a number equal to pi modulo 2 pi."""
    if _symbolic(angle):
        return False
    return abs(abs(math.remainder(float(angle), _TWO_PI)) - math.pi) < 1e-12


_SIMPLE = {"x": XGate, "sx": SXGate}


def _merge_frames(emitted: list[list], qubits_initially_zero: bool) -> float:
    """Merge each numeric ``rz`` of ``emitted`` into another ``rz`` of its wire where it
    can be moved there exactly; returns the global phase this adds.

    An ``rz(c)`` moves through an ``x`` (``x . rz(c) = rz(-c) . x``), through an
    ``rxx`` when ``c`` is half a turn (the ``rxx`` angle changes sign) and through an
    ``rzz`` (diagonal), backward to the ``rz`` before it (numeric or parameterized:
    ``rz(angle + c)`` stays affine in its own angle) or to the start of a wire that
    starts in ``|0>`` (where it is a global phase), else forward to the next ``rz``.
    Entries merged away are removed from ``emitted``; the list stays a topological
    order (only one-qubit ``rz`` entries leave it). Every move removes one ``rz``.
    """
    wires: dict[Any, list[int]] = {}
    for index, (_, _, qargs, _) in enumerate(emitted):
        for qubit in qargs:
            wires.setdefault(qubit, []).append(index)
    position: dict[tuple[Any, int], int] = {}
    for qubit, indices in wires.items():
        for k, index in enumerate(indices):
            position[(qubit, index)] = k
    gone: set[int] = set()
    phase = 0.0

    def walk(qubit: Any, index: int, step: int) -> tuple[int | None, int, list[int]] | None:
        """Where ``rz`` entry ``index`` can merge walking ``step`` along its wire: (the
        target entry, or ``None`` for a dropped frame at the start of a ``|0>`` wire;
        the sign the angle takes there; the ``rxx`` entries passed)."""
        indices = wires[qubit]
        half = _half_turn(emitted[index][1])
        sign, flips = 1, []
        k = position[(qubit, index)] + step
        while 0 <= k < len(indices):
            other = indices[k]
            k += step
            if other in gone:
                continue
            name = emitted[other][0]
            if name == "rz":
                return other, sign, flips
            if name == "x":
                sign = -sign
            elif name == "rxx" and half and not _symbolic(emitted[other][1]):
                flips.append(other)
            elif name != "rzz":
                return None
        if step < 0 and qubits_initially_zero:
            return None, sign, flips
        return None

    for index, entry in enumerate(emitted):
        if entry[0] != "rz" or index in gone or _symbolic(entry[1]):
            continue
        qubit = entry[2][0]
        found = walk(qubit, index, -1) or walk(qubit, index, +1)
        if found is None:
            continue
        target, sign, flips = found
        gone.add(index)
        for other in flips:
            emitted[other][1] = -emitted[other][1]
        if target is None:
            continue
        angle = emitted[target][1] + sign * entry[1]
        if _symbolic(angle):
            emitted[target][1] = angle
            continue
        reduced = math.remainder(float(angle), _FOUR_PI)
        if abs(abs(reduced) - _TWO_PI) < 1e-12 or abs(reduced) < 1e-12:
            gone.add(target)  # rz(+-2 pi) = -1, rz(0) = 1
            if abs(reduced) > 1.0:
                phase += math.pi
        else:
            emitted[target][1] = reduced
    emitted[:] = [entry for index, entry in enumerate(emitted) if index not in gone]
    return phase
