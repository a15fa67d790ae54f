"""Lower a circuit of one- and two-qubit instructions to IonQ native gates."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from qiskit.circuit import Barrier, Measure, Reset
from qiskit.dagcircuit import DAGCircuit
from qiskit.quantum_info import Operator
from qiskit.transpiler import Target
from qiskit.transpiler.basepasses import TransformationPass
from qiskit.transpiler.exceptions import TranspilerError

from ..synthesis import (
    ANGLE_TOL,
    H,
    SX,
    TWO_PI,
    W_ZY,
    W_ZY_DG,
    DIAG_1_I as _DIAG_1_I,
    I2 as _I2,
    I4 as _I4,
    diagonal_angle,
    gpi_matrix,
    is_diagonal,
    is_symbolic,
    kron2,
    svd2 as _svd,
    zyz_angles,
)
from ..affine import Affine, affine_or_float
from ..wire_state import Wire as _Wire
from ..block_plan import TwoQubitBlockPlanner
from ..gauge import X as _X
from ...gc_pause import pauses_cyclic_gc
from ..native_ops import entries_to_dag
from ..native_ops import is_zero_angle as _is_zero_angle
from ..native_ops import norm_turns as _norm_turns
from .absorb_pi_pulses import absorb_entries
from ..target import DeviceSpec, spec_from_target

_HALF_PI = 0.5 * math.pi

#: How close to a threshold of :meth:`LowerToIonQNative._emit_1q_matrix`'s choice
#: (``ANGLE_TOL`` around 0, pi/2 and pi) pricing asks ``zyz_angles`` for ``theta``
#: instead of its own estimate.
_THETA_MARGIN = 1e-10

# Gates that are a pure Z rotation by their (first) parameter, up to global phase.
_Z_ROTATIONS = frozenset({"rz", "p", "u1"})

#: The first of Measure, Reset, Barrier an instruction class derives from (``None`` if
#: none), per class: ``isinstance`` against Qiskit's instruction classes goes through
#: ``ABCMeta.__instancecheck__``, three times for every barrier the lowering meets.
_KINDS: dict[type, Any] = {}


def _kind(cls: type) -> Any:
    kind = _KINDS.get(cls, _KINDS)
    if kind is _KINDS:
        kind = next((base for base in (Measure, Reset, Barrier) if issubclass(cls, base)), None)
        _KINDS[cls] = kind
    return kind


class LowerToIonQNative(TwoQubitBlockPlanner, TransformationPass):
    """Lower one- and two-qubit instructions to GPi, GPi2, MS (and ZZ) with virtual RZ.

    Guarantees, for an input of instructions acting on at most two qubits (run
    :class:`~qiskit.transpiler.passes.HighLevelSynthesis` first for wider gates):

    * the output holds only ``gpi``, ``gpi2``, ``ms``, ``zz`` (only when the target has
      it), ``measure``, ``reset``, ``barrier``, and ``rz`` *only* as the last operation of
      a wire that is not measured at its end (the virtual frame left over, which IonQ's
      final Z-basis readout makes irrelevant; it is kept so the circuit's unitary is
      exactly the input's up to global phase);
    * every maximal run of bound one-qubit gates becomes at most two GPi2, or one GPi,
      with every Z rotation absorbed into the phases of later native gates;
    * every bound two-qubit gate or block (e.g. a ``unitary`` from
      :class:`~qiskit.transpiler.passes.ConsolidateBlocks`) is resynthesised from its
      Weyl coordinates with one partial-angle MS (or ZZ) per non-zero coordinate, which
      is the minimum, choosing MS or ZZ by the target's estimated error;
    * parameterized gates keep their parameters: phases and MS/ZZ angles become affine
      :class:`~qiskit.circuit.ParameterExpression` s of the input's parameters
      (``rz``/``p``/``u1``/``rx``/``ry``/``r``/``u``/``u2``/``u3``/``gpi``/``gpi2`` and
      ``rxx``/``ryy``/``rzz``/``rzx``/``cp``/``cu1``/``crx``/``cry``/``crz``/``ms``/``zz``
      directly; other parameterized gates through their definitions). A symbolic MS
      angle may leave IonQ's ``[0, 1/4]`` turn range once bound; the payload serializer
      folds it back at bind time;
    * the transformation is idempotent on its own output up to the values of phases.

    Args:
        target: The IonQ target (an :class:`~qstore_qiskit.transpiler.IonQTarget` or any
            target holding the native gates); decides ZZ availability and error rates.
        approximation_degree: ``1.0`` (default) for exact synthesis; a value below one,
            or ``None`` for "as good as the hardware", lets the pass drop Weyl
            coordinates whose removal costs less fidelity than the gate would.
        qubits_initially_zero: Let the pass use that every qubit starts in ``|0>`` (as
            on hardware, and as Qiskit's ``transpile`` assumes by default): the first
            two-qubit block on a pair of untouched qubits only has to prepare a state,
            which takes at most one partial MS (Schmidt decomposition) instead of up to
            three. The output then equals the input on ``|0...0>`` (same state, hence
            same measurement statistics) rather than as a unitary. ``False`` by default.
        absorb_pi_pulses: Also apply :class:`AbsorbPiPulses` to the result, without
            building the intermediate circuit (same output as running that pass after
            this one). ``False`` by default.
    """

    def __init__(
        self,
        target: Target | None = None,
        approximation_degree: float | None = 1.0,
        device: DeviceSpec | None = None,
        qubits_initially_zero: bool = False,
        absorb_pi_pulses: bool = False,
    ) -> None:
        super().__init__()
        self.absorb_pi_pulses = absorb_pi_pulses
        self.qubits_initially_zero = qubits_initially_zero
        self.spec = device if device is not None else spec_from_target(target)
        self.target = target
        self.approximation_degree = approximation_degree
        self._use_zz = self.spec.has_zz and (target is None or "zz" in target.operation_names)
        self._plans: dict[bytes, tuple] = {}
        self._pricing = False

    # ------------------------------------------------------------------ driver
    @pauses_cyclic_gc
    def run(self, dag: DAGCircuit) -> DAGCircuit:
        entries = self.lower_entries(dag)
        if self.absorb_pi_pulses:
            entries = absorb_entries(entries, dag.qubits) or entries
        return entries_to_dag(dag, entries)

    def lower_entries(self, dag: DAGCircuit, pricing: bool = False) -> list:
        """Lower ``dag`` to :mod:`~qstore_qiskit.transpiler.native_ops` entries (the
        same result as :meth:`run`, before any gate object is built).

        With ``pricing``, the entries are only good for pricing: the same entries in the
        same order with the same MS and ZZ angles (and measurements, resets, barriers),
        but every single-qubit phase and MS phase is ``0.0`` (the virtual frames are not
        tracked) and the trailing ``rz`` entries are left out. Pi-pulse absorption
        (:func:`~.absorb_pi_pulses.absorb_entries`) removes and merges the same gates in
        them, since it only looks at which gates follow which, so
        :func:`~qstore_qiskit.transpiler.native_ops.entries_cost` of the absorbed result
        is exactly that of the full entries (the resynthesis round prices its candidate
        this way and lowers it in full only when it wins).
        """
        self._pricing = pricing
        self._ops: list = []
        self._wires: dict[Any, _Wire] = {q: _Wire(q) for q in dag.qubits}
        wires = self._wires
        for node in dag.topological_op_nodes():
            if (node.is_standard_gate() or node.name == "unitary") and not node.is_parameterized():
                # The matrix straight from the DAG: ``node.op`` would first build a Python
                # gate object, and its ``to_matrix`` is Python code for standard gates.
                qargs = node.qargs
                width = len(qargs)
                if width == 1 or width == 2:
                    matrix = node.matrix
                    if matrix is not None:
                        if width == 1:
                            wires[qargs[0]].push_matrix(np.asarray(matrix, dtype=complex))
                        else:
                            self._synthesize_2q(
                                np.asarray(matrix, dtype=complex), wires[qargs[0]], wires[qargs[1]]
                            )
                        continue
            name = node.name
            if name == "measure" or (name == "barrier" and node.is_directive()):
                # What ``_lower`` does for these (every instruction named "measure" takes
                # its measure branch; a directive named "barrier" is a barrier), keeping
                # the node instead of ``node.op``: ``entries_to_dag`` appends its
                # instruction as it is, no Python operation is built and converted back.
                qargs = node.qargs
                if name == "measure":
                    (q,) = qargs
                    wire = wires[q]
                    self._flush(wire)
                    wire.fresh = False
                    wire.last_is_measure = True
                else:
                    for q in qargs:
                        wire = wires[q]
                        self._flush(wire)
                    for q in qargs:
                        wire = wires[q]
                        wire.last_is_measure = False
                        wire.fresh = False
                self._ops.append([name, None, None, qargs, node.cargs, node])
                continue
            self._lower(node.op, node.qargs, node.cargs)
        for qubit, wire in wires.items():
            self._flush(wire)
            if pricing:
                continue
            if not wire.last_is_measure and not _is_zero_angle(wire.frame):
                frame = wire.frame.to_expression() if isinstance(wire.frame, Affine) else wire.frame
                self._ops.append(["rz", [frame], None, (qubit,), ()])
        ops = self._ops
        del self._ops, self._wires
        return ops

    # ------------------------------------------------------------------ dispatch
    def _lower(self, op, qargs, cargs) -> None:
        name = op.name
        kind = _kind(type(op))
        if kind is Measure or name == "measure":
            (q,) = qargs
            wire = self._wires[q]
            self._flush(wire)
            self._emit(op, qargs, cargs)
            wire.last_is_measure = True
            return
        if kind is Reset or name == "reset":
            (q,) = qargs
            wire = self._wires[q]
            # A local unitary right before a reset cannot change anything: drop it.
            wire.pending.clear()
            wire.frame = 0.0
            self._emit(op, qargs, cargs)
            return
        if kind is Barrier or name == "barrier":
            wires = self._wires
            for q in qargs:
                self._flush(wires[q])
            self._emit(op, qargs, cargs)
            return
        if getattr(op, "_directive", False):
            self._emit(op, qargs, cargs)
            return
        if cargs or op.num_clbits:
            raise TranspilerError(
                f"Instruction '{name}' uses classical bits and cannot be lowered to IonQ native gates."
            )
        if len(qargs) == 1:
            self._lower_1q(op, qargs[0])
        elif len(qargs) == 2:
            self._lower_2q(op, self._wires[qargs[0]], self._wires[qargs[1]])
        else:
            self._lower_definition(op, qargs)

    def _lower_definition(self, op, qargs) -> None:
        definition = getattr(op, "definition", None)
        if definition is None:
            reason = "it has unbound parameters and no rule" if any(
                is_symbolic(p) for p in getattr(op, "params", [])
            ) else "it has no definition"
            raise TranspilerError(
                f"Cannot lower instruction '{op.name}' on {len(qargs)} qubit(s) to IonQ native "
                f"gates: {reason}."
            )
        qubit_map = dict(zip(definition.qubits, qargs))
        for inner in definition.data:
            if inner.clbits:
                raise TranspilerError(
                    f"Instruction '{op.name}' has a definition with classical bits; cannot lower it."
                )
            self._lower(inner.operation, tuple(qubit_map[q] for q in inner.qubits), ())

    @staticmethod
    def _matrix(op) -> np.ndarray | None:
        """Numeric matrix of a bound unitary instruction, or ``None`` if symbolic."""
        params = getattr(op, "params", [])
        if any(is_symbolic(p) for p in params):
            return None
        try:
            return np.asarray(op.to_matrix(), dtype=complex)
        except Exception:  # noqa: BLE001 - gates without to_matrix: go through Operator
            try:
                return Operator(op).data
            except Exception as exc:  # noqa: BLE001
                why = (
                    "it is an opaque gate (no definition and no matrix)"
                    if getattr(op, "definition", None) is None
                    else f"it is not a unitary gate ({exc})"
                )
                raise TranspilerError(
                    f"Cannot lower instruction '{op.name}' to IonQ native gates: {why}."
                ) from exc

    # ------------------------------------------------------------------ 1q
    def _lower_1q(self, op, q) -> None:
        wire = self._wires[q]
        matrix = self._matrix(op)
        if matrix is not None:
            wire.push_matrix(matrix)
            return
        name, params = op.name, [affine_or_float(p) for p in op.params]
        if name in _Z_ROTATIONS:
            wire.push_rz(params[0])
        elif name == "ry":
            self._push_ry(wire, params[0])
        elif name == "rx":  # RX(t) = RZ(-pi/2) RY(t) RZ(pi/2)
            wire.push_rz(_HALF_PI)
            self._push_ry(wire, params[0])
            wire.push_rz(-_HALF_PI)
        elif name in ("u", "u3"):
            theta, phi, lam = params
            self._push_u(wire, theta, phi, lam)
        elif name == "u2":
            self._push_u(wire, _HALF_PI, params[0], params[1])
        elif name == "r":  # R(t, p) = U(t, p - pi/2, pi/2 - p)
            theta, phi = params
            self._push_u(wire, theta, phi - _HALF_PI, _HALF_PI - phi)
        elif name in ("gpi", "gpi2"):  # G(p) = RZ(2 pi p) G(0) RZ(-2 pi p)
            angle = TWO_PI * params[0]
            wire.push_rz(-angle)
            wire.push_matrix(_X if name == "gpi" else SX)
            wire.push_rz(angle)
        else:
            self._lower_definition(op, (q,))

    def _push_u(self, wire: _Wire, theta, phi, lam) -> None:
        wire.push_rz(lam)
        self._push_ry(wire, theta)
        wire.push_rz(phi)

    @staticmethod
    def _push_ry(wire: _Wire, theta) -> None:
        theta = affine_or_float(theta)
        if isinstance(theta, float):
            c, s = math.cos(theta / 2), math.sin(theta / 2)
            wire.push_matrix(np.array([[c, -s], [s, c]], dtype=complex))
            return
        # RY(t) = RZ(pi) SX RZ(t + pi) SX (circuit order: SX, RZ(t+pi), SX, RZ(pi)).
        wire.push_matrix(SX)
        wire.push_rz(theta + math.pi)
        wire.push_matrix(SX)
        wire.push_rz(math.pi)

    # ------------------------------------------------------------------ flushing 1q work
    def _flush(self, wire: _Wire) -> None:
        pending = wire.pending
        if not pending:
            return
        wire.pending = []
        for item in pending:
            if isinstance(item, np.ndarray):
                self._emit_1q_matrix(wire, item)
            else:
                wire.add_frame(item)

    def _emit_1q_matrix(self, wire: _Wire, u: np.ndarray) -> None:
        """Emit ``u`` as <= 2 GPi2 or 1 GPi, Z parts going to the frame."""
        if self._pricing:
            self._price_1q_matrix(wire, u)
            return
        if is_diagonal(u):
            wire.add_frame(diagonal_angle(u))
            return
        theta, phi, lam = zyz_angles(u)  # u = RZ(phi) RY(theta) RZ(lam), up to phase
        wire.add_frame(lam)
        if abs(theta - math.pi) < ANGLE_TOL:
            self._emit_equatorial(wire, "gpi", 0.25)  # RY(pi) ~ Y = GPI(1/4)
        elif abs(theta - _HALF_PI) < ANGLE_TOL:
            self._emit_equatorial(wire, "gpi2", 0.25)  # RY(pi/2) = GPI2(1/4)
        elif theta > ANGLE_TOL:
            # RY(t) = RZ(pi) SX RZ(t + pi) SX, SX = GPI2(0).
            self._emit_equatorial(wire, "gpi2", 0.0)
            wire.add_frame(theta + math.pi)
            self._emit_equatorial(wire, "gpi2", 0.0)
            wire.add_frame(math.pi)
        wire.add_frame(phi)

    def _price_1q_matrix(self, wire: _Wire, u: np.ndarray) -> None:
        """What :meth:`_emit_1q_matrix` emits for ``u``, with phases ``0.0`` (pricing).

        The gates depend on ``u`` only through the ZYZ angle ``theta`` (0, 1 or 2
        natives). It is computed here without the determinant's normalisation:
        ``2 atan2(|u10|, |u00|)`` is the same angle, because dividing both entries by
        ``sqrt(det)`` scales their moduli alike; in floating point the two values differ
        by a few rounding errors, under 1e-14 for the near-unitary products the lowering
        fuses, so when this value lies more than 1e-10 from every threshold of the
        decision (``ANGLE_TOL`` around 0, pi/2 and pi) it decides as
        :func:`~..synthesis.zyz_angles` would; closer than that, ``zyz_angles`` decides.
        """
        if is_diagonal(u):
            return
        theta = 2.0 * math.atan2(abs(u.item(1, 0)), abs(u.item(0, 0)))
        from_pi, from_half_pi = abs(theta - math.pi), abs(theta - _HALF_PI)
        if (
            abs(from_pi - ANGLE_TOL) < _THETA_MARGIN
            or abs(from_half_pi - ANGLE_TOL) < _THETA_MARGIN
            or abs(theta - ANGLE_TOL) < _THETA_MARGIN
        ):
            theta = zyz_angles(u)[0]
            from_pi, from_half_pi = abs(theta - math.pi), abs(theta - _HALF_PI)
        if from_pi < ANGLE_TOL:
            self._emit_native1("gpi", [0.0], wire)
        elif from_half_pi < ANGLE_TOL:
            self._emit_native1("gpi2", [0.0], wire)
        elif theta > ANGLE_TOL:
            self._emit_native1("gpi2", [0.0], wire)
            self._emit_native1("gpi2", [0.0], wire)

    def _emit_equatorial(self, wire: _Wire, name: str, phase_turns) -> None:
        """Emit a GPi/GPi2 whose logical phase is ``phase_turns``, through the frame."""
        self._emit_native1(name, [_norm_turns(phase_turns - wire.frame / TWO_PI)], wire)

    # ------------------------------------------------------------------ 2q
    def _lower_2q(self, op, wa: _Wire, wb: _Wire) -> None:
        matrix = self._matrix(op)
        if matrix is not None:
            self._synthesize_2q(matrix, wa, wb)
            return
        name, params = op.name, [affine_or_float(p) for p in op.params]
        if name == "rxx":
            self._emit_ms(wa, wb, 0.0, 0.0, params[0] / TWO_PI)
        elif name == "ryy":
            self._emit_ms(wa, wb, 0.25, 0.25, params[0] / TWO_PI)
        elif name == "rzz":
            self._emit_zz_interaction(wa, wb, params[0] / TWO_PI)
        elif name == "zz":
            self._emit_zz_interaction(wa, wb, params[0])
        elif name == "ms":
            self._emit_ms(wa, wb, params[0], params[1], params[2])
        elif name == "rzx":  # Z on a, X on b: H_a RXX H_a... via RZZ conjugated on b.
            wb.push_matrix(H)
            self._emit_zz_interaction(wa, wb, params[0] / TWO_PI)
            wb.push_matrix(H)
        elif name in ("cp", "cu1"):  # CP(l) = RZ_a(l/2) RZ_b(l/2) RZZ(-l/2)
            lam = params[0]
            wa.push_rz(lam / 2)
            wb.push_rz(lam / 2)
            self._emit_zz_interaction(wa, wb, -lam / (2 * TWO_PI))
        elif name in ("crz", "crx", "cry"):
            theta = params[0]
            pre, post = {"crz": (None, None), "crx": (H, H), "cry": (W_ZY_DG, W_ZY)}[name]
            if pre is not None:
                wb.push_matrix(pre)
            wb.push_rz(theta / 2)  # CRZ(t) = RZ_b(t/2) RZZ(-t/2)
            self._emit_zz_interaction(wa, wb, -theta / (2 * TWO_PI))
            if post is not None:
                wb.push_matrix(post)
        else:
            self._lower_definition(op, (wa.qubit, wb.qubit))

    def _emit_zz_interaction(self, wa: _Wire, wb: _Wire, turns) -> None:
        """Emit ``RZZ(2 pi turns)``: a native ZZ, or an MS conjugated by Hadamards."""
        if self._use_zz and self._prefer_zz(turns):
            self._flush(wa)
            self._flush(wb)
            self._emit_zz(wa, wb, turns)
            return
        wa.push_matrix(H)
        wb.push_matrix(H)
        self._emit_ms(wa, wb, 0.0, 0.0, turns)
        wa.push_matrix(H)
        wb.push_matrix(H)

    def _prefer_zz(self, turns) -> bool:
        angle = 0.25 if isinstance(turns, Affine) else float(turns)
        return self.spec.zz_error_at(angle) <= self.spec.ms_error_at(angle)

    def _emit_zz(self, wa: _Wire, wb: _Wire, turns) -> None:
        turns = affine_or_float(turns)
        if isinstance(turns, float):
            turns = math.remainder(turns, 1.0)  # ZZ(t + 1) = -ZZ(t)
            if abs(turns) < ANGLE_TOL:
                return
        else:
            turns = turns.to_expression()
        self._emit_native2("zz", [turns], wa, wb)

    def _emit_ms(self, wa: _Wire, wb: _Wire, phase0, phase1, turns) -> None:
        """Emit the logical ``MS(phase0, phase1, turns)`` through both frames."""
        turns = affine_or_float(turns)
        phase0, phase1 = affine_or_float(phase0), affine_or_float(phase1)
        post_x = False
        if isinstance(turns, float):
            turns = math.remainder(turns, 1.0)  # MS(t + 1) = -MS(t)
            if abs(turns) < ANGLE_TOL / TWO_PI:
                return
            if abs(turns) > 0.25:
                # RXX(2 pi t) = (X (x) X) RXX(2 pi (t -+ 1/2)) up to phase, in MS's frame.
                turns = turns - math.copysign(0.5, turns)
                post_x = True
            if turns < 0:  # MS(p0, p1, -t) = MS(p0 + 1/2, p1, t)
                phase0 = phase0 + 0.5
                turns = -turns
        self._flush(wa)
        self._flush(wb)
        if self._pricing:
            p0 = p1 = 0.0
        else:
            p0 = _norm_turns(phase0 - wa.frame / TWO_PI)
            p1 = _norm_turns(phase1 - wb.frame / TWO_PI)
        if isinstance(turns, Affine):
            turns = turns.to_expression()
        self._emit_native2("ms", [p0, p1, turns], wa, wb)
        if post_x:
            for wire, phase in ((wa, phase0), (wb, phase1)):
                self._push_logical_gpi(wire, phase)

    def _push_logical_gpi(self, wire: _Wire, phase) -> None:
        if isinstance(phase, float):
            wire.push_matrix(gpi_matrix(phase))
        else:
            wire.push_rz(-TWO_PI * phase)
            wire.push_matrix(_X)
            wire.push_rz(TWO_PI * phase)

    def _synthesize_2q(self, matrix: np.ndarray, wa: _Wire, wb: _Wire) -> None:
        """Resynthesise a bound 2q unitary from its Weyl coordinates."""
        if self.qubits_initially_zero and wa.fresh and wb.fresh and self._prepare_state(matrix, wa, wb):
            return
        plan = self._plan(matrix)
        if plan[0] == "single":
            _, kind, axis, turns, pre_a, post_a, pre_b, post_b = plan
            wa.push_matrix(pre_a)
            wb.push_matrix(pre_b)
            if kind == "zz":
                self._flush(wa)
                self._flush(wb)
                self._emit_zz(wa, wb, turns)
            else:
                phase = 0.25 if axis == "yy" else 0.0
                self._emit_ms(wa, wb, phase, phase, turns)
            wa.push_matrix(post_a)
            wb.push_matrix(post_b)
            return
        _, k2r, k2l, terms, k1r, k1l = plan
        wa.push_matrix(k2r)
        wb.push_matrix(k2l)
        for axis, coef in terms:
            turns = -coef / math.pi  # exp(i k PP) = RPP(-2k) = MS(..., -k/pi)
            if axis == "xx":
                self._emit_ms(wa, wb, 0.0, 0.0, turns)
            elif axis == "yy":
                self._emit_ms(wa, wb, 0.25, 0.25, turns)
            else:
                self._emit_zz_interaction(wa, wb, turns)
        wa.push_matrix(k1r)
        wb.push_matrix(k1l)

    def _prepare_state(self, matrix: np.ndarray, wa: _Wire, wb: _Wire) -> bool:
        """Replace a block acting on two untouched qubits by the preparation of its state.

        ``psi = U (Pb (x) Pa) |00>`` (``P`` = pending 1q work) has a Schmidt form
        ``(B (x) A) (s0 |00> + s1 |11>)``; ``RXX(t)|00> = cos(t/2)|00> - i sin(t/2)|11>``,
        so one MS of ``t / 2 pi`` turns, an ``S`` on ``a`` and the locals ``A``, ``B``
        prepare it. Returns False (nothing done) when pending work is symbolic.
        """
        for x in wa.pending:
            if not isinstance(x, np.ndarray):
                return False
        for x in wb.pending:
            if not isinstance(x, np.ndarray):
                return False
        if wa.pending or wb.pending:
            local = kron2(wb.pending[0] if wb.pending else _I2, wa.pending[0] if wa.pending else _I2)
        else:  # kron2(I, I), entry for entry (the usual case: 1q gates were consolidated)
            local = _I4
        psi = (matrix @ local)[:, 0]
        u_b, sv, vh_a = _svd(psi.reshape(2, 2))  # rows: qubit b, columns: qubit a
        theta = 2.0 * math.atan2(sv.item(1), sv.item(0))
        wa.pending.clear()
        wb.pending.clear()
        wa.frame = wb.frame = 0.0  # a Z frame on |0> is a global phase
        self._emit_ms(wa, wb, 0.0, 0.0, theta / TWO_PI)
        wa.push_matrix(vh_a.T @ _DIAG_1_I)
        wb.push_matrix(u_b)
        return True

    # ------------------------------------------------------------------ output
    def _emit(self, op, qargs, cargs) -> None:
        for q in qargs:
            wire = self._wires[q]
            wire.last_is_measure = False
            wire.fresh = False
        self._ops.append([op.name, None, op, tuple(qargs), tuple(cargs)])

    def _emit_native1(self, name: str, params: list, wire: _Wire) -> None:
        """Emit a single-qubit native gate as an entry (the gate object is built only if
        kept)."""
        wire.last_is_measure = False
        wire.fresh = False
        self._ops.append([name, params, None, wire.qargs, ()])

    def _emit_native2(self, name: str, params: list, wa: _Wire, wb: _Wire) -> None:
        """Emit a two-qubit native gate as an entry."""
        wa.last_is_measure = wb.last_is_measure = False
        wa.fresh = wb.fresh = False
        self._ops.append([name, params, None, (wa.qubit, wb.qubit), ()])

