"""Serializer from IonQ-native Qiskit circuits to the ``ionq.circuit.v1`` native body.

The input is a circuit that already contains only IonQ native gates (the output contract
of :mod:`qstore_qiskit.transpiler`):

* ``gpi(phi)`` / ``gpi2(phi)`` -- single-qubit, phase in turns;
* ``ms(phi0, phi1, theta)`` -- Mølmer–Sørensen, phases and angle in turns (Aria);
* ``zz(theta)`` -- ``RZZ(2*pi*theta)`` (Forte);
* ``rz(lam)`` -- a *virtual* Z frame (radians);
* the standard-gate form of the same gates (``ionq_target(..., isa="standard")``, a
  backend's target): ``sx`` = ``gpi2(0)``, ``x`` = ``gpi(0)``, ``rxx(t)`` =
  ``ms(0, 0, t / 2pi)``, ``rzz(t)`` = ``zz(t / 2pi)`` (exact up to a global phase; the
  ``rz`` frames around them become their phases, below);
* ``measure`` and ``barrier``.

The emitted gate dictionaries are byte-for-byte what
:func:`qiskit_ionq.helpers.qiskit_circ_to_ionq_circ` produces with ``gateset="native"`` for
an already-normalised circuit (same keys in the same order: ``gate``, ``target`` /
``targets``, ``phase`` / ``phases``, ``angle``; measurements and barriers are not emitted),
with these additions, all exact up to a global phase:

* **Z frames are virtual.** An ``rz`` is never emitted. It is pushed forward through the rest
  of its wire (``GPI(phi) . RZ(lam) = RZ(lam) . GPI(phi - lam / 2pi)``, likewise for GPI2
  and for each half of MS; ZZ commutes with it) and whatever frame is left at the end of
  the wire is dropped: IonQ measures every qubit in the Z basis at the end of the circuit,
  and a Z rotation immediately before a Z measurement cannot change any outcome
  probability. The compiler only leaves ``rz`` at the end of wires; supporting it anywhere
  costs nothing and makes the serializer robust.
* **Phases** are reduced modulo 1 into ``[0, 1)`` (``GPI(phi + 1) == GPI(phi)`` exactly).
* **MS angle** ``theta`` is brought into IonQ's accepted range ``[0, 0.25]``:

  1. ``theta`` is reduced modulo 1 into ``(-1/2, 1/2]``:
     ``RXX(2pi(theta + 1)) = -RXX(2pi theta)``, a global phase.
  2. If ``|theta| > 1/4``: ``RXX(2pi theta) = RXX(2pi(theta -+ 1/2)) . RXX(+-pi)`` and
     ``RXX(+-pi) = -+i X(x)X``. Conjugated by the MS frames ``RZ(2pi phi0) (x) RZ(2pi phi1)``,
     ``X`` becomes ``GPI(phi0)`` / ``GPI(phi1)``, so
     ``MS(phi0, phi1, theta) ~ MS(phi0, phi1, theta -+ 1/2) . (GPI(phi0) (x) GPI(phi1))``:
     two GPI gates are emitted *before* the MS and the new angle lies in ``[-1/4, 1/4]``.
  3. If ``theta < 0``: ``MS(phi0, phi1, theta) = MS(phi0 + 1/2, phi1, -theta)`` (shifting a
     frame by half a turn maps the axis ``n`` to ``-n``, flipping the sign of ``n0 n1``).

* **ZZ angle** is reduced modulo 1 into ``(-1/2, 1/2]`` (``ZZ(theta + 1) = -ZZ(theta)``) and
  if ``|theta| > 1/4``, ``ZZ(theta) ~ ZZ(theta -+ 1/2) . (Z (x) Z)``; the ``Z (x) Z`` is a
  half-turn frame on both qubits, pushed forward like any ``rz``. Negative ZZ angles are
  kept: IonQ's ZZ gate takes a signed angle (qiskit-ionq's own rewrite rules emit
  ``ZZGate(-theta)``), so the emitted angle lies in ``[-1/4, 1/4]``.

The inverse, :func:`ionq_native_to_circuit`, rebuilds a Qiskit circuit from a body so that
tests can compare unitaries with :class:`~qiskit.quantum_info.Operator`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from qiskit.circuit import ParameterExpression, QuantumCircuit
from qiskit.circuit.library import RZGate

from .transpiler.gates import GPI2Gate, GPIGate, MSGate, ZZGate

__all__ = [
    "QStorePayloadError",
    "NATIVE_GATES",
    "MS_MAX_ANGLE",
    "normalize_phase",
    "circuit_to_native_gates",
    "native_body",
    "measurement_map",
    "dense_width",
    "ionq_native_to_circuit",
    "body_operator",
]

#: Gates that are emitted into a native body.
NATIVE_GATES = frozenset({"gpi", "gpi2", "ms", "zz"})
#: Instructions accepted on input but never emitted.
_SILENT = frozenset({"measure", "barrier", "rz", "id", "delay"})
#: Largest MS / |ZZ| angle (turns) that is emitted.
MS_MAX_ANGLE = 0.25
#: Angles this close above 1/4 are clamped instead of rewritten (float noise from ``x/(2pi)``).
ANGLE_TOL = 1e-12
_MS_LIMIT = MS_MAX_ANGLE + ANGLE_TOL
_TWO_PI = 2.0 * math.pi


class QStorePayloadError(ValueError):
    """Raised when a circuit cannot be serialized to an IonQ native body."""


def normalize_phase(phase: float) -> float:
    """Reduce a phase in turns into ``[0, 1)``.

    Args:
        phase: phase in turns.

    Returns:
        The equivalent phase in ``[0, 1)``.
    """
    out = phase % 1.0
    # ``-1e-17 % 1.0 == 1.0`` in floating point: fold it back to 0.
    return 0.0 if out >= 1.0 else out + 0.0


def _reduce_half(theta: float) -> float:
    """Reduce an angle in turns modulo 1 into ``(-1/2, 1/2]``."""
    out = theta - round(theta)
    return 0.5 if out <= -0.5 else out + 0.0


def _float(value: Any, what: str) -> float:
    if type(value) is float and math.isfinite(value):  # the usual case, first
        return value
    if isinstance(value, ParameterExpression):
        if value.parameters:
            raise QStorePayloadError(
                f"{what} has unbound parameters {sorted(p.name for p in value.parameters)}; "
                "bind them (or use a CompiledTemplate) before serializing"
            )
        value = value.numeric()
    try:
        out = float(value)
    except TypeError as exc:  # complex from a numeric expression
        raise QStorePayloadError(f"{what} is not a real number: {value!r}") from exc
    if not math.isfinite(out):
        raise QStorePayloadError(f"{what} is not finite: {out!r}")
    return out


def dense_width(circuit: QuantumCircuit) -> int:
    """Number of qubits as qiskit-ionq counts it: highest used index + 1, barriers ignored."""
    qidx = {q: i for i, q in enumerate(circuit.qubits)}
    width = 0
    for inst in circuit.data:
        if inst.name in ("barrier", "delay"):
            continue
        for q in inst.qubits:
            width = max(width, qidx[q] + 1)
    return width


def measurement_map(circuit: QuantumCircuit) -> list[int | None]:
    """Clbit index -> measured qubit index (``None`` if unmeasured), as qiskit-ionq builds it."""
    qidx = {q: i for i, q in enumerate(circuit.qubits)}
    cidx = {c: i for i, c in enumerate(circuit.clbits)}
    out: list[int | None] = [None] * circuit.num_clbits
    for inst in circuit.data:
        if inst.name == "measure":
            out[cidx[inst.clbits[0]]] = qidx[inst.qubits[0]]
    return out


def circuit_to_native_gates(
    circuit: QuantumCircuit, *, return_frames: bool = False
) -> list[dict[str, Any]] | tuple[list[dict[str, Any]], list[float]]:
    """Serialize a bound native circuit into a list of IonQ native gate dictionaries.

    Args:
        circuit: a circuit of ``gpi``, ``gpi2``, ``ms``, ``zz``, ``rz``, ``measure`` and
            ``barrier`` with all parameters bound.
        return_frames: also return the Z frame (radians) left on each qubit at the end of
            the circuit, i.e. the dropped trailing ``RZ`` angles. Appending ``RZ(frame[q])``
            to the circuit rebuilt from the gates reproduces the input unitary exactly
            (up to global phase).

    Returns:
        The gate list, or ``(gates, frames)`` if ``return_frames``.

    Raises:
        QStorePayloadError: on a non-native instruction, an unbound or non-finite parameter,
            or a gate after a measurement on the same qubit (not expressible in v1).
    """
    gates, frame, _, _, _ = _walk_native(circuit)
    if return_frames:
        return gates, [f * _TWO_PI for f in frame]
    return gates


def _walk_native(
    circuit: QuantumCircuit,
) -> tuple[list[dict[str, Any]], list[float], int, int, list[int | None]]:
    """One pass over a bound native circuit: ``(gates, Z frames in turns, dense width,
    gate width, measurement map)``. The dense width is :func:`dense_width`'s; the gate
    width is the highest index of a qubit a gate (not a measurement, barrier or delay)
    acts on, plus one (:func:`~qstore_qiskit.providers.inspection.gate_width`'s); the
    measurement map is :func:`measurement_map`'s. One pass instead of four: iterating
    ``circuit.data`` builds a Python object per instruction, and the backend serializes
    every bound ISA circuit it receives (``BackendEstimatorV2`` sends one per parameter
    set)."""
    qidx = {q: i for i, q in enumerate(circuit.qubits)}
    cidx: dict | None = None
    meas_map: list[int | None] = [None] * circuit.num_clbits
    frame = [0.0] * circuit.num_qubits  # pending Z frame per qubit, in turns
    measured: set[int] = set()
    gates: list[dict[str, Any]] = []
    append = gates.append
    isfinite = math.isfinite
    dense = gated = 0  # highest qubit index + 1: of any instruction, of gates only
    # The two fast paths below (one-qubit instructions, then rxx: the whole of a bound
    # standard-form ISA circuit) inline normalize_phase and _reduce_half and test names
    # with ``==``: the backend walks every bound ISA circuit it receives, and these
    # calls were a quarter of the walk. They emit exactly what the general path does.
    for inst in circuit.data:
        name = inst.name
        if name == "rz" or name == "sx" or name == "x" or name == "gpi2" or name == "gpi":
            # Every one-qubit instruction that is emitted or tracked as a frame: the bulk
            # of an ISA circuit, handled without building a qubit list.
            q = qidx[inst.qubits[0]]
            if q >= gated:
                gated = q + 1
                if gated > dense:
                    dense = gated
            if measured and q in measured:
                raise QStorePayloadError(
                    f"'{name}' on qubit(s) {[q]} after a measurement: mid-circuit measurement "
                    "cannot be expressed in the ionq.circuit.v1 native format"
                )
            if name == "rz":
                value = inst.params[0]
                if type(value) is not float or not isfinite(value):
                    value = _float(value, "rz angle")
                frame[q] += value / _TWO_PI
                continue
            if name == "sx" or name == "x":  # GPi2(0) / GPi(0)
                phase = -frame[q] % 1.0  # normalize_phase, inline
                append({"gate": "gpi2" if name == "sx" else "gpi", "target": q,
                        "phase": 0.0 if phase >= 1.0 else phase + 0.0})
                continue
            value = inst.params[0]
            if type(value) is not float or not isfinite(value):
                value = _float(value, f"{name} phase")
            append({"gate": name, "target": q, "phase": normalize_phase(value - frame[q])})
            continue
        if name == "rxx":  # RXX(t) = MS(0, 0, t / 2pi); the general "ms" branch, inline
            q0, q1 = inst.qubits
            q0, q1 = qidx[q0], qidx[q1]
            top = (q0 if q0 > q1 else q1) + 1
            if top > dense:
                dense = top
            if top > gated:
                gated = top
            if measured and (q0 in measured or q1 in measured):
                raise QStorePayloadError(
                    f"'{name}' on qubit(s) {[q0, q1]} after a measurement: mid-circuit measurement "
                    "cannot be expressed in the ionq.circuit.v1 native format"
                )
            value = inst.params[0]
            if type(value) is not float or not isfinite(value):
                value = _float(value, "rxx angle")
            phi0 = -frame[q0] % 1.0
            phi0 = 0.0 if phi0 >= 1.0 else phi0 + 0.0
            phi1 = -frame[q1] % 1.0
            phi1 = 0.0 if phi1 >= 1.0 else phi1 + 0.0
            theta = value / _TWO_PI
            theta = theta - round(theta)
            theta = 0.5 if theta <= -0.5 else theta + 0.0
            if theta > _MS_LIMIT or theta < -_MS_LIMIT:
                # RXX(pi) ~ X(x)X; in the MS frame that is GPI(phi0) (x) GPI(phi1), applied first.
                append({"gate": "gpi", "target": q0, "phase": phi0})
                append({"gate": "gpi", "target": q1, "phase": phi1})
                theta = theta - 0.5 if theta > 0 else theta + 0.5
            if theta < 0:
                phi0 = normalize_phase(phi0 + 0.5)
                theta = -theta
            append({"gate": "ms", "targets": [q0, q1], "phases": [phi0, phi1],
                    "angle": (theta if theta < MS_MAX_ANGLE else MS_MAX_ANGLE) + 0.0})
            continue
        qubits = [qidx[q] for q in inst.qubits]
        if name in ("barrier", "delay"):
            continue
        top = max(qubits) + 1 if qubits else 0
        if top > dense:
            dense = top
        if name == "measure":
            measured.add(qubits[0])
            if cidx is None:
                cidx = {c: i for i, c in enumerate(circuit.clbits)}
            meas_map[cidx[inst.clbits[0]]] = qubits[0]
            continue
        if top > gated:
            gated = top
        if name == "id":
            continue
        if measured.intersection(qubits):
            raise QStorePayloadError(
                f"'{name}' on qubit(s) {qubits} after a measurement: mid-circuit measurement "
                "cannot be expressed in the ionq.circuit.v1 native format"
            )
        params = inst.params
        if name == "ms":  # (rxx took the fast path above)
            q0, q1 = qubits
            phi0 = normalize_phase(_float(params[0], "ms phase 0") - frame[q0])
            phi1 = normalize_phase(_float(params[1], "ms phase 1") - frame[q1])
            theta = _reduce_half(_float(params[2], "ms angle"))
            if abs(theta) > MS_MAX_ANGLE + ANGLE_TOL:
                # RXX(pi) ~ X(x)X; in the MS frame that is GPI(phi0) (x) GPI(phi1), applied first.
                gates.append({"gate": "gpi", "target": q0, "phase": phi0})
                gates.append({"gate": "gpi", "target": q1, "phase": phi1})
                theta = theta - 0.5 if theta > 0 else theta + 0.5
            if theta < 0:
                phi0 = normalize_phase(phi0 + 0.5)
                theta = -theta
            theta = min(theta, MS_MAX_ANGLE) + 0.0
            gates.append({"gate": "ms", "targets": [q0, q1], "phases": [phi0, phi1], "angle": theta})
        elif name in ("zz", "rzz"):
            q0, q1 = qubits
            theta = _float(params[0], f"{name} angle")
            theta = _reduce_half(theta if name == "zz" else theta / _TWO_PI)
            if abs(theta) > MS_MAX_ANGLE + ANGLE_TOL:
                # ZZ(+-1/2) ~ Z(x)Z: a half-turn frame on both qubits, pushed forward.
                theta = theta - 0.5 if theta > 0 else theta + 0.5
                frame[q0] += 0.5
                frame[q1] += 0.5
            theta = max(-MS_MAX_ANGLE, min(theta, MS_MAX_ANGLE)) + 0.0
            gates.append({"gate": "zz", "targets": [q0, q1], "angle": theta})
        else:
            raise QStorePayloadError(
                f"instruction '{name}' is not an IonQ native gate; compile the circuit with "
                "qstore_qiskit.transpiler.generate_ionq_pass_manager first"
            )
    return gates, frame, dense, gated, meas_map


def native_body(circuit: QuantumCircuit) -> dict[str, Any]:
    """The ``input`` block of an ``ionq.circuit.v1`` job for a bound native circuit.

    Args:
        circuit: a bound native circuit (see :func:`circuit_to_native_gates`).

    Returns:
        ``{"gateset": "native", "qubits": n, "circuit": [...]}`` with the same ``qubits``
        count qiskit-ionq computes (highest used qubit index + 1, barriers ignored).
    """
    return native_body_and_gate_width(circuit)[0]


def native_body_and_gate_width(circuit: QuantumCircuit) -> tuple[dict[str, Any], int]:
    """:func:`native_body` and the circuit's gate width (see :func:`_walk_native`), from
    one pass over the circuit."""
    body, gated, _ = native_body_scan(circuit)
    return body, gated


def native_body_scan(circuit: QuantumCircuit) -> tuple[dict[str, Any], int, list[int | None]]:
    """:func:`native_body`, the circuit's gate width and its :func:`measurement_map`,
    from one pass over the circuit (see :func:`_walk_native`).

    Raises:
        QStorePayloadError: as :func:`circuit_to_native_gates`.
    """
    gates, _, dense, gated, meas_map = _walk_native(circuit)
    return {"gateset": "native", "qubits": dense, "circuit": gates}, gated, meas_map


def ionq_native_to_circuit(
    body: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    num_qubits: int | None = None,
    frames: Sequence[float] | None = None,
) -> QuantumCircuit:
    """Rebuild a Qiskit circuit of IonQ native gates from a native body or gate list.

    Args:
        body: a body ``{"circuit": [...], "qubits": n, ...}`` or just its gate list.
        num_qubits: width of the circuit; default: the body's ``qubits`` or the highest
            target index + 1.
        frames: optional Z frames (radians) to append as trailing ``RZ`` gates, e.g. the
            frames returned by :func:`circuit_to_native_gates` with ``return_frames=True``.

    Returns:
        The circuit (no measurements). Its unitary equals the serialized circuit's up to
        global phase (and up to the dropped trailing Z frames unless ``frames`` is given).

    Raises:
        QStorePayloadError: on an unknown gate or malformed entry.
    """
    if isinstance(body, Mapping):
        gates = body.get("circuit")
        if gates is None:
            raise QStorePayloadError("body has no 'circuit' entry")
        if num_qubits is None:
            num_qubits = body.get("qubits")
    else:
        gates = body
    if num_qubits is None:
        num_qubits = 0
        for g in gates:
            targets = g.get("targets", [g.get("target", -1)])
            num_qubits = max(num_qubits, *(t + 1 for t in targets))
    if frames is not None:
        num_qubits = max(num_qubits, len(frames))
    circ = QuantumCircuit(num_qubits)
    for g in gates:
        name = g.get("gate")
        try:
            if name == "gpi":
                circ.append(GPIGate(g["phase"]), [g["target"]])
            elif name == "gpi2":
                circ.append(GPI2Gate(g["phase"]), [g["target"]])
            elif name == "ms":
                circ.append(MSGate(g["phases"][0], g["phases"][1], g.get("angle", 0.25)), g["targets"])
            elif name == "zz":
                circ.append(ZZGate(g["angle"]), g["targets"])
            else:
                raise QStorePayloadError(f"unknown native gate {name!r}")
        except KeyError as exc:
            raise QStorePayloadError(f"malformed {name!r} entry {g!r}: missing {exc}") from exc
    if frames is not None:
        for q, lam in enumerate(frames):
            if lam:
                circ.append(RZGate(lam), [q])
    return circ


def body_operator(
    body: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    num_qubits: int | None = None,
    frames: Sequence[float] | None = None,
):
    """The unitary of a native body, as a :class:`~qiskit.quantum_info.Operator`.

    Compare it with ``Operator(bound_source).equiv(...)`` (equal up to global phase); pass
    the dropped trailing ``frames`` (see :func:`circuit_to_native_gates`) to compare with
    circuits whose final Z rotations matter.

    Args:
        body: a body or gate list.
        num_qubits: width (default: from the body).
        frames: optional trailing Z frames in radians.

    Returns:
        The operator.
    """
    from qiskit.quantum_info import Operator

    return Operator(ionq_native_to_circuit(body, num_qubits, frames))
