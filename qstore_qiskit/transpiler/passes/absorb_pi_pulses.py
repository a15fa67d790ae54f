"""Remove GPi (pi-pulse) gates from a native circuit by tracking them as a Pauli frame."""

from __future__ import annotations

from typing import Any

from qiskit.dagcircuit import DAGCircuit
from qiskit.transpiler.basepasses import TransformationPass

from ..affine import Affine, affine_or_float
from ..native_ops import entries_to_dag
from ..native_ops import is_zero_angle as _is_zero_angle
from ..native_ops import norm_turns as _norm_turns
from ..synthesis import TWO_PI

_NATIVE = frozenset({"gpi", "gpi2", "ms", "zz", "rz", "measure", "reset", "barrier"})
#: Class names of the native gates the pass rewrites (a custom gate sharing a name is not).
_GATES = {"gpi": "GPIGate", "gpi2": "GPI2Gate", "ms": "MSGate", "zz": "ZZGate"}


class _Frame:
    """Per-qubit sweep state: ``(original so far) = X**x . Z(f) . (emitted so far)``.

    ``Z(f) = RZ(2 pi f)`` is a virtual Z rotation (``f`` in turns, a float or an
    :class:`~qstore_qiskit.transpiler.affine.Affine`), ``X`` a pending pi pulse.
    """

    __slots__ = ("x", "f", "last_gpi2", "last_is_measure")

    def __init__(self) -> None:
        self.x = False
        self.f: Any = 0.0
        self.last_gpi2: int | None = None  # output index of an absorbable trailing GPi2
        self.last_is_measure = False

    @property
    def sign(self) -> int:
        return -1 if self.x else 1


class AbsorbPiPulses(TransformationPass):
    """Commute every GPi forward as a Pauli frame and absorb it into later gates.

    A GPi is a Pauli X in a rotated frame, ``GPi(p) = X . RZ(-4 pi p)`` up to global
    phase, and X commutes with every native gate up to sign changes of its angles:
    ``X GPi(p) X = GPi(-p)``, ``X GPi2(p) X = GPi2(-p)``, X on one qubit of
    ``MS(p0, p1, t)`` turns it into ``MS(-p0, p1, t)`` and ``X ZZ(t) X = ZZ(-t)``. The
    pass sweeps the circuit once, keeping per qubit a pending X and a virtual Z frame
    (both arithmetic on the phases, so symbolic phases stay affine expressions of the
    same parameters): GPi gates are not emitted, two of them cancel into a Z frame, and
    a leftover X is merged into the last GPi2 of its wire (``X GPi2(p) = RZ(-4 pi p)
    GPi2(p + 1/2)``) or, if there is none to merge into, emitted as one GPi right before
    the measurement, reset, barrier or end of the wire that needs it.

    Guarantees:

    * the output's unitary equals the input's up to global phase (measurements, resets
      and barriers stay where they are; an X is never moved across them);
    * the output never has more single-qubit natives than the input, and the same MS and
      ZZ gates with the same angles (up to sign for ZZ): estimated success never drops;
    * a circuit in :class:`~qstore_qiskit.transpiler.passes.CheckNativeForm`'s native
      form stays in it. Input holding anything other than ``gpi``, ``gpi2``, ``ms``,
      ``zz``, ``rz``, ``measure``, ``reset`` and ``barrier`` is returned unchanged.

    This matters most for parameterized circuits: the lowering fuses a run of bound
    single-qubit gates into at most two GPi2 but must keep the fixed pi pulses of a run
    that contains a symbolic rotation; this pass removes them (for example 24 of the 128
    gates of an 8-qubit, 4-layer ``ry``/``rz``/``cx`` ansatz).
    """

    def run(self, dag: DAGCircuit) -> DAGCircuit:
        if not dag.count_ops(recurse=False).get("gpi"):
            return dag
        entries = []
        for node in dag.topological_op_nodes():
            name = node.name
            if name not in _NATIVE or node.cargs and name != "measure":
                return dag
            if name in _GATES:
                op = node.op  # a Python object for these: cheap to read
                if type(op).__name__ != _GATES[name]:
                    return dag  # a custom gate that only shares a name
                entries.append([name, node.params, None, node.qargs, ()])
            elif name == "rz":
                if not node.is_standard_gate():
                    return dag
                entries.append([name, node.params, None, node.qargs, ()])
            else:
                entries.append([name, None, node.op, node.qargs, node.cargs])
        out = absorb_entries(entries, dag.qubits)
        if out is None:
            return dag
        return entries_to_dag(dag, out)


def absorb_entries(entries: list, qubits) -> list | None:
    """:class:`AbsorbPiPulses` on :mod:`~qstore_qiskit.transpiler.native_ops` entries
    in circuit order. Returns ``None`` (nothing to do) if there is no GPi or an entry
    other than a native gate, ``measure``, ``reset`` or ``barrier``.
    """
    if not any(entry[0] == "gpi" for entry in entries) or any(
        entry[0] not in _NATIVE for entry in entries
    ):
        return None
    frames = {q: _Frame() for q in qubits}
    out: list[list[Any]] = []  # entries; phases may be replaced in place

    def emit(entry: list) -> None:
        out.append(entry)
        for q in entry[3]:
            frames[q].last_gpi2 = None
            frames[q].last_is_measure = False

    def materialize(q) -> None:
        fr = frames[q]
        if not fr.x:
            return
        if fr.last_gpi2 is not None:
            # X . Z(f) . GPi2(p) = Z(-f) . X . GPi2(p) = Z(-f - 2p) . GPi2(p + 1/2)
            entry = out[fr.last_gpi2]
            p = affine_or_float(entry[1][0])
            entry[1] = [_norm_turns(p + 0.5)]
            fr.f = _reduce(-fr.f - 2.0 * p)
        else:
            # X . Z(f) = Z(-f) . X, and X = GPi(0)
            emit(["gpi", [0.0], None, (q,), ()])
            fr.f = _reduce(-fr.f)
        fr.x = False

    for entry in entries:
        name, qargs = entry[0], entry[3]
        params = entry[1] if entry[2] is None else entry[2].params
        if name == "rz":
            fr = frames[qargs[0]]
            fr.f = _reduce(fr.f + fr.sign * affine_or_float(params[0]) / TWO_PI)
        elif name == "gpi":
            fr = frames[qargs[0]]
            # X**x . GPi(p) ... : GPi(p) = X . Z(-2p) = Z(2p) . X
            fr.f = _reduce(fr.f - fr.sign * 2.0 * affine_or_float(params[0]))
            fr.x = not fr.x
        elif name == "gpi2":
            q = qargs[0]
            fr = frames[q]
            phase = fr.sign * affine_or_float(params[0]) - fr.f
            emit(["gpi2", [_norm_turns(phase)], None, qargs, ()])
            fr.last_gpi2 = len(out) - 1
        elif name == "ms":
            fa, fb = frames[qargs[0]], frames[qargs[1]]
            p0, p1, theta = (affine_or_float(p) for p in params)
            emit(
                [
                    "ms",
                    [_norm_turns(fa.sign * p0 - fa.f), _norm_turns(fb.sign * p1 - fb.f), _expr(theta)],
                    None,
                    qargs,
                    (),
                ]
            )
        elif name == "zz":
            sign = frames[qargs[0]].sign * frames[qargs[1]].sign
            emit(["zz", [_expr(sign * affine_or_float(params[0]))], None, qargs, ()])
        elif name == "measure":
            materialize(qargs[0])
            emit(entry)
            frames[qargs[0]].last_is_measure = True
        elif name == "reset":
            # Whatever was applied before a reset cannot matter.
            frames[qargs[0]].x = False
            frames[qargs[0]].f = 0.0
            emit(entry)
        else:  # barrier: keep pi pulses on their side of it; frames are virtual
            for q in qargs:
                materialize(q)
            emit(entry)
    for q in qubits:
        materialize(q)
        fr = frames[q]
        if not fr.last_is_measure and not _is_zero_angle(TWO_PI * fr.f if isinstance(fr.f, float) else fr.f):
            out.append(["rz", [_expr(TWO_PI * fr.f)], None, (q,), ()])
    return out


def _reduce(value):
    """Reduce a frame in turns modulo 1 (``Z(f + 1) = -Z(f)``, a global phase)."""
    if isinstance(value, Affine):
        return value.reduce_const(1.0) if value.terms else value.const
    return float(value) % 1.0


def _expr(value):
    return value.to_expression() if isinstance(value, Affine) else float(value)
