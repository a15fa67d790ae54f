"""What the backend reads off a circuit before preparing it, and the ``qis`` target.

One scan per circuit (:func:`scan`: width, structure, measurement map; for a bound
circuit already in native form :func:`scan_native`, which also serializes it in the same
pass), gate counts and estimated fidelity of a native payload, and :func:`qis_target`
for ``gateset="qis"`` backends. Pure functions of their inputs; :mod:`.backend` uses them on its hot path.
"""

from __future__ import annotations

import math

import numpy as np
from qiskit.circuit import QuantumCircuit
from qiskit.transpiler import Target

from ..cache.analysis import INSTRUCTION_ROW
from ..payload import QStorePayloadError, native_body_scan
from ..transpiler import DeviceSpec
from ..transpiler.target import instruction_error

NATIVE_NAMES = frozenset({"gpi", "gpi2", "ms", "zz"})
NOT_GATES = frozenset({"measure", "barrier", "reset"})


def payload_fidelity(gates: list[dict], spec: DeviceSpec) -> float:
    """Estimated success of a native gate list (same model as ``estimated_fidelity``)."""
    if not (spec.oneq_error or spec.ms_error or spec.zz_error):
        return 1.0  # the ideal simulator: every error is zero
    log_1q = np.log1p(-min(spec.oneq_error, 1 - 1e-15))
    n_1q = 0
    log_f = 0.0
    for gate in gates:
        name = gate["gate"]
        if name in ("gpi", "gpi2"):
            n_1q += 1
            continue
        params = [0.0, 0.0, gate.get("angle", 0.25)] if name == "ms" else [gate.get("angle", 0.25)]
        log_f += np.log1p(-min(instruction_error(name, params, spec), 1 - 1e-15))
    return float(np.exp(log_f + n_1q * log_1q))


_NATIVE_LIFTED = frozenset({"gpi", "gpi2", "ms", "zz"})
_NATIVE_OK = _NATIVE_LIFTED | {"rz", "measure", "barrier", "reset", "global_phase", "delay"}
#: The standard-gate form of the native gates (a backend's target): GPi2(0), GPi(0),
#: MS(0, 0, t / 2pi); ``rzz`` (ZZ) only where the device has ZZ.
STANDARD_NATIVE = frozenset({"sx", "x", "rxx"})
STANDARD_NATIVE_ZZ = STANDARD_NATIVE | {"rzz"}
#: One-qubit gates that scan() checks on a fast path (rz: its angle; sx, x: none).
_PLAIN_GATES = frozenset({"rz", "sx", "x"})


def scan(
    circuit: QuantumCircuit, standard: frozenset[str] = STANDARD_NATIVE
) -> tuple[int, str, list[int | None]]:
    """One pass over ``circuit``: ``(gate count, kind, measurement map)`` (see
    :func:`scan_gated`, which also returns the qubits that gates act on)."""
    gates, kind, meas_map, _ = scan_gated(circuit, standard)
    return gates, kind, meas_map


def scan_gated(
    circuit: QuantumCircuit, standard: frozenset[str] = STANDARD_NATIVE, rows: list | None = None
) -> tuple[int, str, list[int | None], set]:
    """One pass over ``circuit``: ``(gate count, kind, measurement map, gated qubits)``.

    ``gated qubits`` are the qubits an instruction other than a measurement, barrier or
    delay acts on, so that ``width_of(circuit, gated)`` is :func:`gate_width` without a
    second walk over the circuit.

    ``kind`` is ``"logical"`` (no native gates), ``"native"`` (only GPi/GPi2/MS/ZZ/RZ and
    their standard-gate forms ``standard``: ``sx``, ``x``, ``rxx``, and ``rzz`` where the
    device has ZZ; see :func:`~qstore_qiskit.transpiler.ionq_target`) or ``"mixed"``;
    the measurement map is :func:`~qstore_qiskit.payload.measurement_map`'s
    (clbit -> measured qubit). The pass reads instruction names, qubits and parameters
    only, never ``inst.operation`` (which makes Qiskit build a Python gate object per
    instruction): it runs for every circuit a backend receives.

    Raises a clear error for what a gate-list job cannot carry: classical control flow
    (``TranspilerError``), mid-circuit measurement or reset (``ValueError``).

    Circuits holding native gates do not go through the template cache: lifted
    templates of native angles currently bind wrong values for other angles (reported
    upstream). Already-native circuits (e.g. the output of ``transpile(qc, backend)``)
    need no compiler anyway and are serialized directly; "mixed" ones (native gates next
    to others, e.g. a preset-transpiled circuit plus the ``h``/``sdg`` basis changes
    ``BackendEstimatorV2`` appends) are compiled exactly, per circuit.
    """
    from qiskit.transpiler.exceptions import TranspilerError

    measured: set = set()
    gated: set = set()
    gated_add, gated_update = gated.add, gated.update
    meas_map: list[int | None] = [None] * circuit.num_clbits
    qidx = cidx = None
    gates = 0
    native = standard_native = logical = False
    # The instructions' fields, read by Qiskit's C-level iteration; control flow looked
    # for once (a Rust pass) rather than asked of every gate. The instruction objects
    # themselves are kept only to ask which one is control flow, if any is.
    control_flow = circuit.has_control_flow_op()
    insts = list(circuit.data) if control_flow else None
    read = list(map(INSTRUCTION_ROW, circuit.data if insts is None else insts))
    if rows is not None:
        rows.extend(read)
    for i, (name, qubits, params, clbits) in enumerate(read):
        if name in ("barrier", "delay"):
            continue
        if name in _PLAIN_GATES:
            # The bulk of an ISA circuit: no control flow, no reset, one qubit.
            qubit = qubits[0]
            gated_add(qubit)
            if measured and qubit in measured:
                raise ValueError(
                    f"circuit '{circuit.name}' measures or resets a qubit mid-circuit; qstore backends "
                    "batch gate-list jobs only. Run it with qiskit-ionq's backend (OpenQASM 3 jobs)."
                )
            gates += 1
            if name == "rz":
                value = params[0]
                if type(value) is float and not math.isfinite(value):  # noqa: E721 (hot path)
                    raise ValueError(
                        f"circuit '{circuit.name}': instruction '{name}' has angle {value}; angles must be finite"
                    )
            elif name in standard:
                standard_native = True
            else:
                logical = True
            continue
        if insts is not None and insts[i].is_control_flow():
            raise TranspilerError(
                f"circuit '{circuit.name}' contains '{name}' (classical control flow), which IonQ "
                "devices do not support; unroll it or run the branches as separate circuits."
            )
        if name == "measure":
            if qidx is None or cidx is None:
                qidx = {q: i for i, q in enumerate(circuit.qubits)}
                cidx = {c: i for i, c in enumerate(circuit.clbits)}
            qubit = qubits[0]
            measured.add(qubit)
            meas_map[cidx[clbits[0]]] = qidx[qubit]
            continue
        if name in ("reset", "initialize"):
            raise ValueError(
                f"circuit '{circuit.name}' contains '{name}', which resets qubits (at the start or "
                "mid-circuit): IonQ's circuit jobs have no reset (qubits start in |0>). "
                + ("Use StatePreparation (qc.prepare_state) instead." if name == "initialize" else "Remove it.")
            )
        if measured and not measured.isdisjoint(qubits):
            raise ValueError(
                f"circuit '{circuit.name}' measures or resets a qubit mid-circuit; qstore backends "
                "batch gate-list jobs only. Run it with qiskit-ionq's backend (OpenQASM 3 jobs)."
            )
        gated_update(qubits)
        gates += 1
        for value in params:
            if type(value) is float and not math.isfinite(value):  # noqa: E721 (hot path)
                raise ValueError(
                    f"circuit '{circuit.name}': instruction '{name}' has angle {value}; angles must be finite"
                )
        if name in _NATIVE_LIFTED:
            native = True
        elif name in standard:
            standard_native = True
        elif name not in _NATIVE_OK:
            logical = True
    # Standard gates that are native (sx, x, rxx) next to other standard gates are a
    # logical circuit (compiled through the template cache); next to IonQ's own only,
    # a native one.
    if logical:
        kind = "mixed" if native else "logical"
    else:
        kind = "native" if native or standard_native else "logical"
    return gates, kind, meas_map, gated


def width_of(circuit: QuantumCircuit, gated: set) -> int:
    """Highest index of the qubits ``gated`` (of ``circuit``) plus one; 0 if none."""
    if not gated:
        return 0
    index = {q: i for i, q in enumerate(circuit.qubits)}
    return max(index[q] for q in gated) + 1


#: Instructions that :func:`scan_native` leaves to :func:`scan` never hold (no control
#: flow, reset, initialize, id or delay).
_WALKED = _NATIVE_LIFTED | {"rz", "measure", "barrier"}
#: ``standard`` -> (the names :func:`scan_native` walks, the native ones among them).
_ALLOWED: dict[frozenset[str], tuple[frozenset[str], frozenset[str]]] = {}
#: Instructions that are not gates (:func:`scan`'s gate count leaves them out).
_NOT_COUNTED = ("measure", "barrier", "delay")


def scan_native(
    circuit: QuantumCircuit, standard: frozenset[str] = STANDARD_NATIVE
) -> tuple[tuple[int, str, list[int | None]], dict, int] | None:
    """:func:`scan` and the native body of a bound circuit already in native form, from
    one pass; ``None`` for any other circuit (then use :func:`scan`).

    A circuit qualifies when it has no parameters and its instructions (counted by
    Qiskit without a pass in Python) are native gates (``gpi``, ``gpi2``, ``ms``,
    ``zz``, or their standard forms ``standard``), ``rz``, ``measure`` and ``barrier``,
    with at least one native gate: :func:`scan` would call it ``"native"`` and the
    backend would then serialize it (a bound ISA circuit; ``BackendEstimatorV2`` sends
    one per parameter set). Where serializing fails (a gate after a measurement, a
    non-finite angle...) it returns ``None`` too, so that :func:`scan` raises its own
    clear error.

    Returns:
        ``(scan result, native body, gate width)`` (see
        :func:`~qstore_qiskit.payload.native_body_scan`), or ``None``.
    """
    counts = circuit.count_ops()
    names = counts.keys()
    allowed = _ALLOWED.get(standard)
    if allowed is None:
        allowed = _ALLOWED[standard] = (_WALKED | standard, _NATIVE_LIFTED | standard)
    if circuit.num_parameters or not names <= allowed[0] or names.isdisjoint(allowed[1]):
        return None
    try:
        body, gated, meas_map = native_body_scan(circuit)
    except QStorePayloadError:
        return None
    gates = len(circuit.data) - sum(counts.get(name, 0) for name in _NOT_COUNTED)
    return (gates, "native", meas_map), body, gated


def gate_width(circuit: QuantumCircuit) -> int:
    """Highest index of a qubit that a gate (not a measurement or barrier) acts on, plus one."""
    qidx = {q: i for i, q in enumerate(circuit.qubits)}
    width = 0
    for inst in circuit.data:
        if inst.name not in ("measure", "barrier", "delay"):
            for q in inst.qubits:
                width = max(width, qidx[q] + 1)
    return width


def gate_counts(gates: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for gate in gates:
        counts[gate["gate"]] = counts.get(gate["gate"], 0) + 1
    return counts


_QIS_BASIS: list[str] | None = None


def qis_basis() -> list[str]:
    """IonQ's QIS gate names that Qiskit's ``transpile(basis_gates=...)`` accepts."""
    global _QIS_BASIS
    if _QIS_BASIS is None:
        from qiskit.circuit.library import get_standard_gate_name_mapping
        from qiskit_ionq.helpers import GATESET_MAP

        standard = get_standard_gate_name_mapping()
        _QIS_BASIS = sorted(g for g in GATESET_MAP["qis"] if g in standard)
    return _QIS_BASIS


def registers(circuit: QuantumCircuit) -> tuple[list, list]:
    sizes = [[reg.name, reg.size] for reg in circuit.cregs]
    labels = [[reg.name, i] for reg in circuit.cregs for i in range(reg.size)]
    return sizes, labels


def qis_target(num_qubits: int) -> Target:
    """IonQ's QIS gate set (the standard gates qiskit-ionq's ``gateset="qis"`` accepts) on
    ``num_qubits`` fully connected qubits, plus measurement (no ``reset``: gate-list jobs
    cannot carry it)."""
    from qiskit.circuit import Parameter
    from qiskit.circuit.library import get_standard_gate_name_mapping
    from qiskit.circuit.library import Measure

    standard = get_standard_gate_name_mapping()
    target = Target(num_qubits=num_qubits, description="IonQ QIS gates")
    theta = Parameter("theta")
    for name in qis_basis():
        if name in target.operation_names or name not in standard:
            continue
        gate = standard[name]
        if gate.params:
            gate = type(gate)(*[theta] * len(gate.params))
        if gate.num_qubits > 2:
            continue
        target.add_instruction(gate, name=name)
    if "measure" not in target.operation_names:
        target.add_instruction(Measure())
    return target
