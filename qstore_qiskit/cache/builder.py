"""From a native circuit to the slot tables a :class:`~qstore_qiskit.cache.CompiledTemplate` binds with.

Building a template is three named steps:

1. :func:`trace_native` walks the native circuit once and writes every emitted phase /
   angle ("slot") as an affine form of the template's parameter columns, pushing the
   virtual ``rz`` frames forward through the wires (see :mod:`qstore_qiskit.payload`).
2. :func:`order_slots` lays the slots out so that bind-time normalisation works on
   contiguous slices, and records where a large ZZ angle flips later phases.
3. :func:`bind_tables` turns the laid-out forms into the numpy tables the bind kernel
   (:mod:`qstore_qiskit.cache.emitter`) evaluates.

The result of step 2, a :class:`TemplateSpec`, holds everything that depends on the
compiler's output and nothing derived from it; it is what the persistent cache stores
(:mod:`qstore_qiskit.cache.serialize`), so a loaded template goes through exactly the
same step 3 as a freshly compiled one and binds bit-identically.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from qiskit.circuit import Parameter, ParameterExpression, QuantumCircuit

from .analysis import _affine_terms
from .errors import QStoreCacheError

_TWO_PI = 2.0 * math.pi

#: One emitted gate: (kind, qubits, slot indices).
PlanEntry = tuple[str, tuple[int, ...], tuple[int, ...]]


class _Affine:
    """Sparse affine form ``sum(coef[c] * x[c]) + const`` over template columns."""

    __slots__ = ("coef", "const")

    def __init__(self, coef: dict[int, float] | None = None, const: float = 0.0):
        self.coef = coef or {}
        self.const = const

    def add(self, other: _Affine, scale: float = 1.0) -> _Affine:
        if not other.coef:  # a constant (every form of a bound circuit): no merge
            return _Affine(dict(self.coef), self.const + scale * other.const)
        coef = dict(self.coef)
        for c, v in other.coef.items():
            coef[c] = coef.get(c, 0.0) + scale * v
        return _Affine(coef, self.const + scale * other.const)


#: Sparse slot forms in coordinate format: ``(slot, column, weight)`` arrays sorted by slot,
#: then column, each (slot, column) pair at most once.
Terms = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass
class TemplateSpec:
    """A laid-out template: everything :func:`bind_tables` needs, nothing derived.

    Slot layout (contiguous blocks):
    ``[ms phi0 | ms phi1 | gpi/gpi2 phases | ms angles | zz angles | final frames]``.
    Slot ``s`` is ``const[s] + sum(weight * x[column])`` over the ``terms`` of slot ``s``.
    Everything numeric is a numpy array, so the persistent cache stores and loads it as
    raw arrays (:mod:`qstore_qiskit.cache.serialize`), with no per-slot Python objects.
    """

    num_qubits: int
    num_clbits: int
    body_qubits: int
    meas_map: list[int | None]
    #: number of parameter columns (the source circuit's canonical columns)
    n_par: int
    #: non-affine sub-expressions, one extra column each (after the ``n_par`` columns)
    extra: list[ParameterExpression]
    #: (n_slots,) constant part of every slot (turns)
    const: np.ndarray
    #: the slots' linear parts (see :data:`Terms`)
    terms: Terms
    plan: list[PlanEntry]
    final_slots: list[int]
    n_ms: int
    n_zz: int
    n_phase: int
    #: ZZ ``k`` with ``|angle| > 1/4`` adds ``value`` turns to slot ``slot`` for every
    #: ``(k, slot, value)`` of these arrays (later phases on its qubits; final-frame slots
    #: listed with the phase sign: :func:`bind_tables` negates them)
    flips: Terms
    #: instructions in the native circuit (memory estimate only)
    native_size: int
    layout: Any = field(default=None)

    @property
    def n_slots(self) -> int:
        """Number of slots."""
        return int(self.const.size)


def _coo(forms: list[_Affine]) -> tuple[np.ndarray, Terms]:
    """``(const, terms)`` of affine forms (terms sorted by slot, then column)."""
    n = len(forms)
    const = np.fromiter((aff.const for aff in forms), dtype=float, count=n)
    if not any(aff.coef for aff in forms):  # constants only (a bound circuit's slots)
        return const, (np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp), np.empty(0))
    t_slot = np.fromiter((s for s, aff in enumerate(forms) for _ in aff.coef), dtype=np.intp)
    t_col = np.fromiter((c for aff in forms for c in aff.coef), dtype=np.intp, count=t_slot.size)
    t_w = np.fromiter((v for aff in forms for v in aff.coef.values()), dtype=float, count=t_slot.size)
    order = np.lexsort((t_col, t_slot))
    return const, (t_slot[order], t_col[order], t_w[order])


@dataclass
class _Trace:
    """What :func:`trace_native` found, in emission order (before :func:`order_slots`)."""

    slots: list[_Affine]
    plan: list[PlanEntry]
    zz_after: list[tuple[int, int, int]]  # (plan index, q0, q1) of each ZZ
    phase_slots_on: list[list[tuple[int, int]]]  # qubit -> (plan index, slot) phase slots
    final_slots: list[int]
    extra: list[ParameterExpression]
    #: what :func:`~qstore_qiskit.payload.dense_width`, :func:`~qstore_qiskit.payload.
    #: measurement_map` and ``QuantumCircuit.size()`` return for the native circuit,
    #: read in the same walk (each of those walks the circuit again, and ``size()``
    #: builds a Python object per gate to read its ``_directive`` flag)
    body_qubits: int = 0
    meas_map: list[int | None] = field(default_factory=list)
    native_size: int = 0


class _ParamReader:
    """Reads native gate parameters as affine forms over the template's columns."""

    def __init__(self, columns: list[Parameter]) -> None:
        self.n_par = len(columns)
        self.col_of = {p: c for c, p in enumerate(columns)}
        self.extra: list[ParameterExpression] = []  # non-affine expressions -> extra columns
        self.extra_of: dict[ParameterExpression, int] = {}
        self.unknown: set[Parameter] = set()

    def read(self, value: Any, what: str) -> _Affine:
        if type(value) is float:  # the common case, first (the same as the end below)
            if not math.isfinite(value):
                raise QStoreCacheError(f"{what} is not finite in the native circuit")
            return _Affine(const=value)
        if isinstance(value, ParameterExpression):
            if not value.parameters:
                return _Affine(const=float(value.numeric().real))
            col_of = self.col_of
            missing = [p for p in value.parameters if p not in col_of]
            if missing:
                self.unknown.update(missing)
                return _Affine()
            if isinstance(value, Parameter):
                return _Affine({col_of[value]: 1.0})
            terms = _affine_terms(value)
            if terms is not None:
                coef: dict[int, float] = {}
                for p, c in terms[0]:
                    coef[col_of[p]] = coef.get(col_of[p], 0.0) + c
                return _Affine(coef, terms[1])
            col = self.extra_of.get(value)
            if col is None:
                col = self.extra_of[value] = self.n_par + len(self.extra)
                self.extra.append(value)
            return _Affine({col: 1.0})
        out = float(value)
        if not math.isfinite(out):
            raise QStoreCacheError(f"{what} is not finite in the native circuit")
        return _Affine(const=out)


def trace_native(native: QuantumCircuit, columns: list[Parameter]) -> _Trace:
    """Step 1: every emitted phase / angle as an affine form, ``rz`` frames pushed forward.

    Raises:
        QStoreCacheError: a non-native instruction, a gate after a measurement, a
            non-finite angle, or a parameter that is not among ``columns``.
    """
    reader = _ParamReader(columns)
    affine = reader.read
    qidx = {q: i for i, q in enumerate(native.qubits)}
    cidx = {c: i for i, c in enumerate(native.clbits)}
    meas_map: list[int | None] = [None] * native.num_clbits
    width = 0  # dense_width: highest qubit index used + 1, barriers and delays ignored
    directives = 0  # instructions QuantumCircuit.size() leaves out
    frames = [_Affine() for _ in range(native.num_qubits)]  # pending Z frame, turns
    slots: list[_Affine] = []
    plan: list[PlanEntry] = []
    zz_after: list[tuple[int, int, int]] = []
    # qubit -> list of (plan index, slot) phase slots and final frame slot, for ZZ flips
    phase_slots_on: list[list[tuple[int, int]]] = [[] for _ in range(native.num_qubits)]
    measured: set[int] = set()

    def phase_slot(value: Any, q: int, what: str) -> int:
        slots.append(affine(value, what).add(frames[q], -1.0))
        phase_slots_on[q].append((len(plan), len(slots) - 1))
        return len(slots) - 1

    data = native.data
    for inst in data:
        name = inst.name
        qs = tuple(qidx[q] for q in inst.qubits)
        if name in ("barrier", "id", "delay"):
            # Only these names (and "measure") can be directives in a circuit the trace
            # accepts: gates are never directives.
            if inst.is_directive():
                directives += 1
            if name == "id" and qs:
                width = max(width, max(qs) + 1)
            continue
        if qs:
            width = max(width, max(qs) + 1)
        if name == "measure":
            if inst.is_directive():
                directives += 1
            measured.add(qs[0])
            meas_map[cidx[inst.clbits[0]]] = qs[0]
            continue
        if measured.intersection(qs):
            raise QStoreCacheError(
                f"'{name}' on qubit(s) {list(qs)} after a measurement: mid-circuit "
                "measurement cannot be expressed in the ionq.circuit.v1 native format"
            )
        p = inst.params
        if name == "rz":
            # rz(lam) radians -> frame += lam / 2pi turns (virtual, pushed forward)
            frames[qs[0]] = frames[qs[0]].add(affine(p[0], "rz angle"), 1.0 / _TWO_PI)
        elif name in ("gpi", "gpi2"):
            plan.append((name, qs, (phase_slot(p[0], qs[0], name),)))
        elif name in ("sx", "x"):  # the standard-gate form: GPi2(0) / GPi(0)
            kind = "gpi2" if name == "sx" else "gpi"
            plan.append((kind, qs, (phase_slot(0.0, qs[0], kind),)))
        elif name == "ms":
            s0 = phase_slot(p[0], qs[0], "ms phase")
            s1 = phase_slot(p[1], qs[1], "ms phase")
            slots.append(affine(p[2], "ms angle"))
            plan.append(("ms", qs, (s0, s1, len(slots) - 1)))
        elif name == "rxx":  # RXX(t) = MS(0, 0, t / 2pi)
            s0 = phase_slot(0.0, qs[0], "ms phase")
            s1 = phase_slot(0.0, qs[1], "ms phase")
            slots.append(_Affine().add(affine(p[0], "rxx angle"), 1.0 / _TWO_PI))
            plan.append(("ms", qs, (s0, s1, len(slots) - 1)))
        elif name in ("zz", "rzz"):  # RZZ(t) = ZZ(t / 2pi)
            angle = affine(p[0], f"{name} angle")
            slots.append(angle if name == "zz" else _Affine().add(angle, 1.0 / _TWO_PI))
            zz_after.append((len(plan), qs[0], qs[1]))
            plan.append(("zz", qs, (len(slots) - 1,)))
        else:
            raise QStoreCacheError(
                f"instruction '{name}' in the compiled circuit is not an IonQ native gate"
            )
    if reader.unknown:
        raise QStoreCacheError(
            "the compiled circuit uses parameters that are not in the source circuit: "
            f"{sorted(p.name for p in reader.unknown)}"
        )
    # Final frames (radians at the end); not emitted, used by to_circuit().
    final_slots = []
    for q in range(native.num_qubits):
        slots.append(frames[q])
        phase_slots_on[q].append((len(plan), len(slots) - 1))
        final_slots.append(len(slots) - 1)
    return _Trace(
        slots, plan, zz_after, phase_slots_on, final_slots, reader.extra, width, meas_map, len(data) - directives
    )


def order_slots(trace: _Trace, native: QuantumCircuit, n_par: int) -> TemplateSpec:
    """Step 2: lay the slots out in contiguous blocks and record the ZZ phase flips."""
    plan = trace.plan
    ms_entries = [e for e in plan if e[0] == "ms"]
    order = [e[2][0] for e in ms_entries] + [e[2][1] for e in ms_entries]
    order += [e[2][0] for e in plan if e[0] in ("gpi", "gpi2")]
    order += [e[2][2] for e in ms_entries]
    order += [e[2][0] for e in plan if e[0] == "zz"]
    order += trace.final_slots
    assert sorted(order) == list(range(len(trace.slots)))
    new_of = {old: new for new, old in enumerate(order)}
    slots = [trace.slots[old] for old in order]
    plan = [(k, qs, tuple(new_of[x] for x in ss)) for k, qs, ss in plan]
    final_slots = [new_of[x] for x in trace.final_slots]
    phase_slots_on = [[(pos, new_of[x]) for pos, x in lst] for lst in trace.phase_slots_on]
    n_ms = len(ms_entries)
    n_phase = 2 * n_ms + sum(1 for e in plan if e[0] in ("gpi", "gpi2"))

    # ZZ k with |angle| > 1/4 adds half a turn to every later phase slot on its qubits:
    # frame += 1/2 => phase -= 1/2 (final frame slots store +frame: bind_tables negates).
    flips: list[_Affine] = []
    for pos, q0, q1 in trace.zz_after:
        row: dict[int, float] = {}
        for q in (q0, q1):
            for plan_pos, s_i in phase_slots_on[q]:
                if plan_pos > pos:
                    row[s_i] = row.get(s_i, 0.0) - 0.5
        flips.append(_Affine(row))
    const, terms = _coo(slots)
    return TemplateSpec(
        num_qubits=native.num_qubits,
        num_clbits=native.num_clbits,
        body_qubits=trace.body_qubits,
        meas_map=trace.meas_map,
        n_par=n_par,
        extra=trace.extra,
        const=const,
        terms=terms,
        plan=plan,
        final_slots=final_slots,
        n_ms=n_ms,
        n_zz=len(trace.zz_after),
        n_phase=n_phase,
        flips=_coo(flips)[1],
        native_size=trace.native_size,
        # The compiler keeps virtual == physical qubits (IonQ is all-to-all); a layout, if
        # one is ever set, is kept for callers that need to map results.
        layout=native.layout,
    )


def build_spec(native: QuantumCircuit, columns: list[Parameter]) -> TemplateSpec:
    """Steps 1 and 2 for a native circuit whose parameters are ``columns``."""
    if not columns:
        spec = constant_spec(native)
        if spec is not None:
            return spec
    return order_slots(trace_native(native, columns), native, len(columns))


_INV_TWO_PI = 1.0 / _TWO_PI
_ONE_QUBIT = {"gpi": "gpi", "gpi2": "gpi2", "sx": "gpi2", "x": "gpi"}
_NOT_TRACED = ("barrier", "id", "delay")
_NAME_QUBITS_PARAMS = operator.attrgetter("name", "qubits", "params")


def constant_spec(native: QuantumCircuit) -> TemplateSpec | None:
    """Steps 1 and 2 at once for a native circuit without parameters (the exact template
    of a bound circuit, what a new circuit's first ``run()`` builds); ``None`` for any
    other circuit (a parameter, a non-``float`` angle, an instruction the trace rejects,
    a gate after a measurement): :func:`trace_native` then handles it, errors included.

    Returns exactly the :class:`TemplateSpec` of ``order_slots(trace_native(native, []),
    native, 0)`` (the same floats from the same operations in the same order:
    ``value + -1.0 * frame`` for a phase, ``frame + (1 / 2pi) * angle`` for an ``rz``,
    ``0.0 + (1 / 2pi) * angle`` for ``rxx``/``rzz``), with plain floats instead of one
    affine form per slot, and each slot written straight into its block of the layout
    instead of being traced first and reordered (tested against the general path).
    """
    qidx = {q: i for i, q in enumerate(native.qubits)}
    cidx: dict | None = None
    n_q = native.num_qubits
    meas_map: list[int | None] = [None] * native.num_clbits
    width = 0
    directives = 0
    frames = [0.0] * n_q  # pending Z frame per qubit, turns
    inv = _INV_TWO_PI
    one_q = _ONE_QUBIT
    # The layout's blocks: [ms phi0 | ms phi1 | gpi/gpi2 phases | ms angles | zz angles | finals]
    phi0: list[float] = []
    phi1: list[float] = []
    phases: list[float] = []
    ms_angles: list[float] = []
    zz_angles: list[float] = []
    # Plan entries with block-relative slot numbers (fixed up once the blocks' sizes are known).
    entries: list[tuple[str, tuple[int, ...], int]] = []
    # For the ZZ flips: qubit -> (plan index, block, index in block) of its phase slots.
    on_qubit: list[list[tuple[int, int, int]]] | None = None
    zz_after: list[tuple[int, int, int]] = []
    measured: set[int] | None = None
    data = native.data
    qget = qidx.__getitem__
    isfinite = math.isfinite
    for inst in data:
        name, qubits, p = _NAME_QUBITS_PARAMS(inst)
        if len(qubits) == 1:  # most native gates: no tuple(map()) for one qubit
            q = qget(qubits[0])
            qs: tuple[int, ...] = (q,)
            top = q + 1
        else:
            qs = tuple(map(qget, qubits))
            top = max(qs) + 1 if qs else 0
        if name in _NOT_TRACED:
            if inst.is_directive():  # (Qiskit's flag, without a Python object per gate)
                directives += 1
            if name == "id" and top > width:
                width = top
            continue
        if top > width:
            width = top
        if name == "measure":
            if inst.is_directive():
                directives += 1
            if measured is None:
                measured = set()
                cidx = {c: i for i, c in enumerate(native.clbits)}
            measured.add(qs[0])
            meas_map[cidx[inst.clbits[0]]] = qs[0]  # type: ignore[index]
            continue
        if measured is not None and measured.intersection(qs):
            return None  # the general trace raises its error
        if name == "rz":
            value = p[0]
            if type(value) is not float or not isfinite(value):  # noqa: E721
                return None
            frames[q] = frames[q] + inv * value
            continue
        kind = one_q.get(name)
        if kind is not None:
            if name in ("gpi", "gpi2"):
                value = p[0]
                if type(value) is not float or not isfinite(value):  # noqa: E721
                    return None
            else:
                value = 0.0  # sx, x: GPi2(0), GPi(0)
            if on_qubit is not None:
                on_qubit[q].append((len(entries), 2, len(phases)))
            entries.append((kind, qs, len(phases)))
            phases.append(value + -1.0 * frames[q])
            continue
        if name in ("ms", "rxx"):
            if name == "ms":
                v0, v1, angle = p
                if not (
                    type(v0) is float and type(v1) is float and type(angle) is float  # noqa: E721
                    and isfinite(v0) and isfinite(v1) and isfinite(angle)
                ):
                    return None
            else:
                v0 = v1 = 0.0
                angle = p[0]
                if type(angle) is not float or not isfinite(angle):  # noqa: E721
                    return None
                angle = 0.0 + inv * angle
            q0, q1 = qs
            if on_qubit is not None:
                on_qubit[q0].append((len(entries), 0, len(phi0)))
                on_qubit[q1].append((len(entries), 1, len(phi1)))
            phi0.append(v0 + -1.0 * frames[q0])
            phi1.append(v1 + -1.0 * frames[q1])
            entries.append(("ms", qs, len(ms_angles)))
            ms_angles.append(angle)
            continue
        if name in ("zz", "rzz"):
            angle = p[0]
            if type(angle) is not float or not isfinite(angle):  # noqa: E721
                return None
            if name == "rzz":
                angle = 0.0 + inv * angle
            if on_qubit is None:
                # Phase slots before the first ZZ never flip: only later ones are listed.
                on_qubit = [[] for _ in range(n_q)]
            zz_after.append((len(entries), qs[0], qs[1]))
            entries.append(("zz", qs, len(zz_angles)))
            zz_angles.append(angle)
            continue
        return None  # not a native gate: the general trace raises its error
    n_ms = len(ms_angles)
    n_phase = 2 * n_ms + len(phases)
    start = (0, n_ms, 2 * n_ms)  # first slot of the phi0, phi1 and phase blocks
    plan: list[PlanEntry] = []
    for kind, qs, k in entries:
        if kind == "ms":
            plan.append((kind, qs, (k, n_ms + k, n_phase + k)))
        elif kind == "zz":
            plan.append((kind, qs, (n_phase + n_ms + k,)))
        else:
            plan.append((kind, qs, (2 * n_ms + k,)))
    first_final = n_phase + n_ms + len(zz_angles)
    final_slots = list(range(first_final, first_final + n_q))
    const = np.array(phi0 + phi1 + phases + ms_angles + zz_angles + frames, dtype=float)
    empty = (np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp), np.empty(0))
    flips: Terms = empty
    if zz_after:
        assert on_qubit is not None
        # As order_slots: ZZ k flips the later phase slots on its qubits and their final
        # frames, -0.5 each; (zz, slot) pairs sorted by zz, then slot.
        n_plan = len(entries)
        f_zz: list[int] = []
        f_slot: list[int] = []
        for k, (pos, q0, q1) in enumerate(zz_after):
            row = set()
            for q in (q0, q1):
                row.update(start[block] + i for plan_pos, block, i in on_qubit[q] if plan_pos > pos)
                if n_plan > pos:
                    row.add(first_final + q)
            f_zz += [k] * len(row)
            f_slot += sorted(row)
        flips = (np.array(f_zz, dtype=np.intp), np.array(f_slot, dtype=np.intp), np.full(len(f_zz), -0.5))
    return TemplateSpec(
        num_qubits=n_q,
        num_clbits=native.num_clbits,
        body_qubits=width,
        meas_map=meas_map,
        n_par=0,
        extra=[],
        const=const,
        terms=empty,
        plan=plan,
        final_slots=final_slots,
        n_ms=n_ms,
        n_zz=len(zz_after),
        n_phase=n_phase,
        flips=flips,
        native_size=len(data) - directives,
        layout=native.layout,
    )


@dataclass
class BindTables:
    """Step 3's output: the numpy tables the bind kernel evaluates."""

    b: np.ndarray
    ranks: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]
    gather: np.ndarray
    weight: np.ndarray
    F: np.ndarray
    n_cols: int


def bind_tables(spec: TemplateSpec) -> BindTables:
    """Step 3: the slots' rank-by-rank gathers and the ZZ flip matrix.

    The dense affine matrix ``A`` (``slots = A @ x + b``) is not built: binding never
    uses it (see :func:`affine_matrix`).
    """
    n_cols = spec.n_par + len(spec.extra)
    n_slots = spec.n_slots
    # All terms as (slot, column, weight) triples, sorted by slot then column.
    t_slot, t_col, t_w = spec.terms
    b = np.array(spec.const, dtype=float)
    # A is very sparse (a slot depends on the few parameters feeding its wire). Instead
    # of a BLAS matmul, whose rounding depends on the batch shape, the terms of every
    # slot are added one rank at a time (rank r = each slot's r-th term), in a fixed
    # order: ``b + w0 x[c0] + w1 x[c1] + ...``. Elementwise numpy arithmetic does not
    # depend on the batch size, so bind() and bind_many() produce bit-identical
    # numbers (and identical cached bodies); each rank is one gather of contiguous
    # rows of the transposed batch, O(nnz) work per binding.
    if t_w.size:  # (no terms: a constant template; nothing to filter)
        nonzero = t_w != 0.0
        t_slot, t_col, t_w = t_slot[nonzero], t_col[nonzero], t_w[nonzero]
    F = np.zeros((spec.n_zz, n_slots))
    if spec.n_zz:
        f_zz, f_slot, f_val = spec.flips
        F[f_zz, f_slot] = f_val  # (zz, slot) pairs are unique
        for s_i in spec.final_slots:
            F[:, s_i] = -F[:, s_i]  # final frame slots store +frame, not -frame
    if not t_slot.size:
        # Constant slots (a template of a bound circuit): no ranks, and the padded
        # gather below is its column 0 alone; built directly, the same arrays.
        gather = np.full((n_slots, 1), n_cols + 1, dtype=np.intp)
        weight = np.empty((n_slots, 1))
        weight[:, 0] = b
        return BindTables(b, [], gather, weight, F, n_cols)
    per_slot = np.bincount(t_slot, minlength=n_slots)
    first = np.concatenate([[0], np.cumsum(per_slot)[:-1]]) if n_slots else per_slot
    t_rank = np.arange(t_slot.size) - first[t_slot]
    R = int(per_slot.max()) if n_slots else 0
    # Terms grouped by rank (a stable sort keeps each rank's slots in increasing order).
    by_rank = np.argsort(t_rank, kind="stable")
    r_slot, r_col, r_w = t_slot[by_rank], t_col[by_rank], t_w[by_rank][:, None]
    per_rank = np.bincount(t_rank, minlength=R)
    unit = np.bincount(t_rank, weights=t_w == 1.0, minlength=R) == per_rank  # all weights 1
    ends = np.cumsum(per_rank).tolist()
    ranks = []
    for r, (lo, hi) in enumerate(zip([0, *ends[:-1]], ends)):
        ranks.append((r_slot[lo:hi], r_col[lo:hi], None if unit[r] else r_w[lo:hi]))
    # The same sums for a handful of bindings, where the per-rank numpy calls would
    # dominate: one padded gather ``[b | w0 x[c0] | ... ]`` per slot (column 0 is b,
    # gathered as 1.0 * b; padding is weight 0 on a zero column) and a cumulative sum
    # along it, which numpy evaluates strictly left to right - the rank loop's order.
    # Adding a padding zero never changes a value (only, possibly, the sign of a zero,
    # which normalisation erases), so both paths give bit-identical bodies.
    gather = np.full((n_slots, R + 1), n_cols, dtype=np.intp)
    weight = np.zeros((n_slots, R + 1))
    gather[:, 0] = n_cols + 1
    weight[:, 0] = b
    gather[t_slot, t_rank + 1] = t_col
    weight[t_slot, t_rank + 1] = t_w
    return BindTables(b, ranks, gather, weight, F, n_cols)


def affine_matrix(spec: TemplateSpec) -> np.ndarray:
    """The dense ``(n_slots, n_cols)`` matrix ``A`` of ``slots = A @ x + b`` (introspection)."""
    A = np.zeros((spec.n_slots, spec.n_par + len(spec.extra)))
    t_slot, t_col, t_w = spec.terms
    A[t_slot, t_col] = t_w  # (slot, column) pairs are unique
    return A
