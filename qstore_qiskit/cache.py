"""Compiled circuit templates and a two-level template cache.

Parameter sweeps and training loops submit one circuit *structure* thousands of times
with new angles. Re-transpiling each bound circuit costs milliseconds; binding a
:class:`CompiledTemplate` costs microseconds, because everything that does not depend on
the parameter values is resolved once, at compile time:

* the native circuit (GPI / GPI2 / MS / ZZ) is produced once by
  :func:`qstore_qiskit.transpiler.generate_ionq_pass_manager`;
* every emitted phase / angle ("slot") is written as an affine function of the circuit's
  parameters, ``slots = A @ x + b``, including the virtual Z frames pushed through the
  wires (see :mod:`qstore_qiskit.payload`);
* the JSON gate list is produced by a generated function holding one dict literal per
  gate, so binding only has to drop numbers into place.

What is left for bind time: one matmul for all bindings, the angle normalisation rules
of :mod:`qstore_qiskit.payload` (vectorised), and building the dictionaries.

:class:`TemplateCache` keys templates by :func:`structural_key` of the *lifted* circuit:
numeric angles of parameterizable standard gates are lifted into fresh parameters, so a
bound circuit that differs from a cached one only in its angles binds instead of
compiling.
"""

from __future__ import annotations

import gc
import hashlib
import math
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np
from qiskit.circuit import (
    Parameter,
    ParameterExpression,
    ParameterVector,
    QuantumCircuit,
)

from .payload import (
    ANGLE_TOL,
    MS_MAX_ANGLE,
    dense_width,
    ionq_native_to_circuit,
    measurement_map,
)

__all__ = [
    "QStoreCacheError",
    "CompiledTemplate",
    "TemplateCache",
    "structural_key",
    "lift_parameters",
    "LIFTABLE_GATES",
]

_TWO_PI = 2.0 * math.pi

#: Standard gates whose numeric parameters are angles that the compiler accepts as
#: parameters; their numeric values are lifted into fresh parameters before keying.
LIFTABLE_GATES = frozenset(
    {
        "rx", "ry", "rz", "p", "u", "u1", "u2", "u3", "r", "rv",
        "rxx", "ryy", "rzz", "rzx", "cp", "crx", "cry", "crz", "cu", "cu1", "cu3",
        "mcphase", "xx_plus_yy", "xx_minus_yy",
        "gpi", "gpi2", "ms", "zz",
    }
)  # fmt: skip

_INF = math.inf
_PYTHON_GATES = frozenset({"gpi", "gpi2", "ms", "zz", "rv"})
_CONTROL_FLOW = frozenset({"if_else", "while_loop", "for_loop", "switch_case", "box"})
_LIFT_VECTOR_NAME = "_qstore_lift"


class QStoreCacheError(ValueError):
    """Bad input to a :class:`CompiledTemplate` or :class:`TemplateCache`."""


# ---------------------------------------------------------------------------------------
# Structural analysis
# ---------------------------------------------------------------------------------------


def _affine_terms(
    expr: ParameterExpression,
) -> tuple[list[tuple[Parameter, float]], float] | None:
    """``expr`` as ``sum(c_i p_i) + k`` with params sorted by name, or ``None`` if not affine."""
    params = sorted(expr.parameters, key=lambda p: p.name)
    terms = []
    for p in params:
        grad = expr.gradient(p)
        if isinstance(grad, ParameterExpression):
            if grad.parameters:
                return None
            grad = grad.numeric()
        if isinstance(grad, complex):
            if grad.imag:
                return None
            grad = grad.real
        terms.append((p, float(grad)))
    const = expr.bind({p: 0 for p in params}, allow_unknown_parameters=True).numeric()
    if isinstance(const, complex):
        if const.imag:
            return None
        const = const.real
    return terms, float(const)


def _encode_numeric(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return "M" + hashlib.blake2b(
            repr((value.shape, str(value.dtype))).encode() + np.ascontiguousarray(value).tobytes(),
            digest_size=16,
        ).hexdigest()
    if isinstance(value, (bool, int, float, complex, str, np.number)):
        return repr(value.item() if isinstance(value, np.number) else value)
    return type(value).__name__ + ":" + repr(value)


@dataclass
class _Analysis:
    key: str
    #: canonical column -> the circuit's Parameter there, or ``None`` for a lifted angle.
    columns: list[Parameter | None]
    #: canonical column -> lifted value (NaN for the circuit's own free parameters).
    values: np.ndarray
    #: instruction index -> list of (param position, column) lifted there.
    lift_sites: dict[int, list[tuple[int, int]]]


def _analyse(circuit: QuantumCircuit, lift: bool, sites: bool = False) -> _Analysis:
    """Compute the structural key, canonical parameter columns and lifted values.

    Parameters are numbered by first appearance (column ``0``, ``1``, ...), so names never
    matter but positions do. Affine expressions are encoded by their coefficients;
    anything else by its string form with parameters renamed to their column.

    This runs for every bound circuit the backend sees, so the loop is kept tight: the
    canonical form is a list of plain tuples (column references as ``int``, everything
    else as ``str``, so the two can never be confused) hashed once via ``repr``.
    """
    qget = {q: i for i, q in enumerate(circuit.qubits)}.__getitem__
    cget = {c: i for i, c in enumerate(circuit.clbits)}.__getitem__
    col_of: dict[Parameter, int] = {}
    columns: list[Parameter | None] = []
    vals: list[float] = []  # per column: lifted value, NaN for a circuit parameter
    lift_sites: dict[int, list[tuple[int, int]]] = {}  # only filled if ``sites``
    nan = math.nan
    parts: list[Any] = [circuit.num_qubits, circuit.num_clbits]
    append = parts.append

    def col(p: Parameter) -> int:
        c = col_of.get(p)
        if c is None:
            c = col_of[p] = len(columns)
            columns.append(p)
            vals.append(nan)
        return c

    for i, inst in enumerate(circuit.data):
        name = inst.name
        params = inst.params
        if params:
            if name in _CONTROL_FLOW:
                raise QStoreCacheError(f"control flow ('{name}') cannot be sent as a native body")
            if name == "global_phase":
                # Only a global phase: irrelevant to the payload, so not part of the key.
                append((name, (), (), ()))
                continue
            liftable = lift and name in LIFTABLE_GATES
            enc: list[Any] = []
            for j, p in enumerate(params):
                if type(p) is float and liftable:  # the hot path for bound circuits
                    if not -_INF < p < _INF:  # NaN fails every comparison
                        raise QStoreCacheError(f"instruction '{name}' (#{i}) has a non-finite angle {p}")
                    c = len(columns)
                    columns.append(None)
                    vals.append(p)
                    if sites:
                        lift_sites.setdefault(i, []).append((j, c))
                    enc.append(c)
                    continue
                if isinstance(p, ParameterExpression):
                    if isinstance(p, Parameter):
                        enc.append(col(p))
                        continue
                    if p.parameters:
                        enc.append(_encode_expression(p, col, col_of))
                        continue
                    p = p.numeric()
                if (
                    liftable
                    and isinstance(p, (int, float, np.floating, np.integer))
                    and not isinstance(p, bool)
                ):
                    if not math.isfinite(p):
                        raise QStoreCacheError(f"instruction '{name}' (#{i}) has a non-finite angle {p}")
                    c = len(columns)
                    columns.append(None)
                    vals.append(float(p))
                    if sites:
                        lift_sites.setdefault(i, []).append((j, c))
                    enc.append(c)
                else:
                    enc.append(_encode_numeric(p))
            append((name, tuple(map(qget, inst.qubits)), tuple(map(cget, inst.clbits)), tuple(enc)))
        else:
            if name in _CONTROL_FLOW:
                raise QStoreCacheError(f"control flow ('{name}') cannot be sent as a native body")
            append((name, tuple(map(qget, inst.qubits)), tuple(map(cget, inst.clbits))))
    key = hashlib.blake2b(repr(parts).encode(), digest_size=20).hexdigest()
    return _Analysis(key, columns, np.array(vals, dtype=float), lift_sites)


def _encode_expression(p: ParameterExpression, col: Callable, col_of: dict) -> str:
    """Canonical text of a parameter expression, parameters renamed by column."""
    affine = _affine_terms(p)
    if affine is not None:
        terms, const = affine
        return "A(" + "+".join(f"{c!r}*${col(q)}" for q, c in terms) + f"+{const!r})"
    for q in sorted(p.parameters, key=lambda q: q.name):
        col(q)
    renamed = p.subs(
        {q: Parameter(f"__c{col_of[q]}") for q in p.parameters}, allow_unknown_parameters=True
    )
    return f"E({renamed})"


def structural_key(circuit: QuantumCircuit, *, lift: bool = False) -> str:
    """A hash of the circuit's structure that ignores parameter names and values.

    Two circuits get the same key iff they have the same width, the same instructions on
    the same qubits / clbits, the same numeric parameters on non-parameterized gates, and
    the same parameter *positions* (which parameter slot appears where, with the same
    affine coefficients). Names are irrelevant: ``rx(a)`` and ``rx(b)`` share a key, but
    ``rx(a); rx(a)`` and ``rx(a); rx(b)`` do not.

    Args:
        circuit: the circuit.
        lift: also treat numeric angles of :data:`LIFTABLE_GATES` as parameters, so bound
            circuits that differ only in those angles share a key.

    Returns:
        A 40-hex-digit (160-bit BLAKE2b) digest.
    """
    return _analyse(circuit, lift).key


def lift_parameters(circuit: QuantumCircuit) -> tuple[QuantumCircuit, dict[Parameter, float]]:
    """Replace numeric angles of :data:`LIFTABLE_GATES` by fresh parameters.

    Args:
        circuit: any circuit.

    Returns:
        ``(lifted, values)``: the lifted circuit (parameters ``_qstore_lift[i]``) and the
        value of each lifted parameter. ``lifted.assign_parameters(values)`` is the input.
    """
    analysis = _analyse(circuit, lift=True, sites=True)
    lifted, _, mapping = _build_lifted(circuit, analysis)
    return lifted, {mapping[c]: float(analysis.values[c]) for c in mapping}


def _build_lifted(
    circuit: QuantumCircuit, analysis: _Analysis
) -> tuple[QuantumCircuit, list[Parameter], dict[int, Parameter]]:
    """Materialise the lifted circuit; returns it, its canonical columns and lifted params."""
    n_lift = sum(len(s) for s in analysis.lift_sites.values())
    if not n_lift:
        return circuit, list(analysis.columns), {}
    vec = ParameterVector(_LIFT_VECTOR_NAME, n_lift)
    out = circuit.copy_empty_like()
    mapping: dict[int, Parameter] = {}
    k = 0
    for i, inst in enumerate(circuit.data):
        sites = analysis.lift_sites.get(i)
        if sites:
            params = list(inst.params)
            for j, c in sites:
                params[j] = mapping[c] = vec[k]
                k += 1
            if inst.operation.name in _PYTHON_GATES:
                # Gates defined in Python (qiskit-ionq's GPI, GPI2, MS, ZZ) keep their
                # parameters on the operation object: ``replace(params=...)`` alone
                # would leave the old numbers in the gate.
                op = inst.operation.copy()
                op.params = params
                inst = inst.replace(operation=op)
            else:
                inst = inst.replace(params=params)
        out._append(inst)
    columns = [p if p is not None else mapping[c] for c, p in enumerate(analysis.columns)]
    return out, columns, mapping


# ---------------------------------------------------------------------------------------
# Compiled templates
# ---------------------------------------------------------------------------------------

CompileFn = Callable[[QuantumCircuit, str, int], QuantumCircuit]

# Pass managers are memoised per thread: passes keep per-run state (``property_set``) on
# the pass objects, so one instance must not run in two threads at once.
_PM_LOCAL = threading.local()


def default_compile(circuit: QuantumCircuit, device: str, optimization_level: int) -> QuantumCircuit:
    """Compile with :func:`qstore_qiskit.transpiler.generate_ionq_pass_manager` (memoised)."""
    cache = getattr(_PM_LOCAL, "pms", None)
    if cache is None:
        cache = _PM_LOCAL.pms = {}
    key = (device, optimization_level)
    pm = cache.get(key)
    if pm is None:
        try:
            from .transpiler import generate_ionq_pass_manager
        except ImportError as exc:  # pragma: no cover - depends on the compiler being present
            raise QStoreCacheError(
                "qstore_qiskit.transpiler.generate_ionq_pass_manager is not available; "
                "pass compile_fn= to use another native compiler"
            ) from exc
        pm = cache[key] = generate_ionq_pass_manager(
            device=device, optimization_level=optimization_level
        )
    return pm.run(circuit)


class _Affine:
    """Sparse affine form ``sum(coef[c] * x[c]) + const`` over template columns."""

    __slots__ = ("coef", "const")

    def __init__(self, coef: dict[int, float] | None = None, const: float = 0.0):
        self.coef = coef or {}
        self.const = const

    def add(self, other: _Affine, scale: float = 1.0) -> _Affine:
        coef = dict(self.coef)
        for c, v in other.coef.items():
            coef[c] = coef.get(c, 0.0) + scale * v
        return _Affine(coef, self.const + scale * other.const)


def _check_values(x: np.ndarray, what: str = "parameter values") -> None:
    # Fast path: NaN / inf propagate into the sum; only a non-finite sum needs the full check
    # (it may also just be an overflow of huge finite values, which are accepted).
    if math.isfinite(x.sum()):
        return
    if not np.isfinite(x).all():
        raise QStoreCacheError(f"{what} must be finite (got NaN or inf)")


#: Bindings evaluated per numpy pass in bind_many (see CompiledTemplate._gate_lists).
_BIND_BLOCK = 128


class CompiledTemplate:
    """A native circuit with parameterized phases, pre-analysed for fast binding.

    Every emitted phase / angle ``slot`` is ``A[slot] @ x + b[slot]`` (turns) where ``x``
    holds the parameter values in canonical column order (first appearance in the source
    circuit) followed by the values of non-affine sub-expressions, which are evaluated per
    binding with :meth:`ParameterExpression.bind` (slow path, documented in
    ``docs/templates.rst``). Binding is then one matmul plus vectorised normalisation; the
    JSON dictionaries come from a generated list-of-dict-literals function.

    Build one with :meth:`compile` or get one from :class:`TemplateCache`.

    Attributes:
        parameters: the parameters in the order :meth:`bind` expects a sequence.
        num_qubits: width of the native circuit.
        device: the device the template was compiled for.
        optimization_level: the compiler optimization level.
        native_gate_counts: emitted gate name -> count (before any MS-angle rewrite that a
            particular binding may need; see :mod:`qstore_qiskit.payload`).
        structural_key: :func:`structural_key` of the source circuit.
        meas_map: clbit -> measured qubit (as qiskit-ionq's ``meas_mapped``).
        body_qubits: the ``qubits`` count of the emitted body.
        compile_seconds: wall time the compiler took.
    """

    def __init__(self) -> None:  # built by _build / _relabel only
        self.parameters: tuple[Parameter, ...] = ()

    # -- construction -------------------------------------------------------------------

    @classmethod
    def compile(
        cls,
        circuit: QuantumCircuit,
        device: str = "aria-1",
        optimization_level: int = 2,
        *,
        compile_fn: CompileFn | None = None,
    ) -> CompiledTemplate:
        """Compile ``circuit`` to native gates and analyse it.

        Args:
            circuit: a (possibly parameterized) circuit.
            device: IonQ device name passed to the compiler.
            optimization_level: compiler optimization level.
            compile_fn: ``f(circuit, device, optimization_level) -> native circuit``;
                default :func:`default_compile` (the qstore pass manager).

        Returns:
            The template; its :attr:`parameters` follow ``circuit.parameters`` order.
        """
        analysis = _analyse(circuit, lift=False)
        columns = list(analysis.columns)
        # Parameters that only occur in the global phase get (all-zero) columns too, so
        # that ``circuit.parameters``-ordered values are accepted as they are.
        seen = set(columns)
        columns += [p for p in circuit.parameters if p not in seen]
        compile_fn = compile_fn or default_compile
        start = time.perf_counter()
        native = compile_fn(circuit, device, optimization_level)
        elapsed = time.perf_counter() - start
        template = cls._build(native, columns, device, optimization_level, analysis.key, elapsed)
        return template._relabel(list(circuit.parameters), ordered=True)

    @classmethod
    def from_native(
        cls,
        native: QuantumCircuit,
        parameters: Sequence[Parameter] | None = None,
        device: str = "aria-1",
        optimization_level: int = 2,
    ) -> CompiledTemplate:
        """Analyse an already-compiled native circuit.

        Args:
            native: a circuit following the compiler's output contract.
            parameters: parameter order for :meth:`bind`; default ``native.parameters``.
            device: device label stored on the template.
            optimization_level: label stored on the template.

        Returns:
            The template.
        """
        params = list(parameters) if parameters is not None else list(native.parameters)
        key = _analyse(native, lift=False).key
        template = cls._build(native, params, device, optimization_level, key, 0.0)
        return template._relabel(params, ordered=True)

    @classmethod
    def _build(
        cls,
        native: QuantumCircuit,
        columns: list[Parameter],
        device: str,
        optimization_level: int,
        key: str,
        compile_seconds: float,
    ) -> CompiledTemplate:
        self = cls()
        self.device = device
        self.optimization_level = optimization_level
        self.structural_key = key
        self.compile_seconds = compile_seconds
        self.num_qubits = native.num_qubits
        self.num_clbits = native.num_clbits
        self.meas_map = measurement_map(native)
        # The compiler keeps virtual == physical qubits (IonQ is all-to-all); a layout, if
        # one is ever set, is kept for callers that need to map results.
        self.layout = native.layout
        self.body_qubits = dense_width(native)
        self._canon = list(columns)
        n_par = len(columns)
        col_of = {p: c for c, p in enumerate(columns)}
        extra: list[ParameterExpression] = []  # non-affine expressions -> extra columns
        extra_of: dict[ParameterExpression, int] = {}
        unknown = set()

        def affine(value: Any, what: str) -> _Affine:
            if isinstance(value, ParameterExpression):
                if not value.parameters:
                    return _Affine(const=float(value.numeric().real))
                missing = [p for p in value.parameters if p not in col_of]
                if missing:
                    unknown.update(missing)
                    return _Affine()
                if isinstance(value, Parameter):
                    return _Affine({col_of[value]: 1.0})
                terms = _affine_terms(value)
                if terms is not None:
                    coef: dict[int, float] = {}
                    for p, c in terms[0]:
                        coef[col_of[p]] = coef.get(col_of[p], 0.0) + c
                    return _Affine(coef, terms[1])
                c = extra_of.get(value)
                if c is None:
                    c = extra_of[value] = n_par + len(extra)
                    extra.append(value)
                return _Affine({c: 1.0})
            out = float(value)
            if not math.isfinite(out):
                raise QStoreCacheError(f"{what} is not finite in the native circuit")
            return _Affine(const=out)

        qidx = {q: i for i, q in enumerate(native.qubits)}
        frames = [_Affine() for _ in range(native.num_qubits)]  # pending Z frame, turns
        slots: list[_Affine] = []
        # Emission plan: (kind, qubits, slot indices)
        plan: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = []
        zz_after: list[tuple[int, int, int]] = []  # (plan index, q0, q1) of each ZZ
        # qubit -> list of (plan index, slot) phase slots and final frame slot, for ZZ flips
        phase_slots_on: list[list[tuple[int, int]]] = [[] for _ in range(native.num_qubits)]
        measured: set[int] = set()

        def phase_slot(value: Any, q: int, what: str) -> int:
            slots.append(affine(value, what).add(frames[q], -1.0))
            phase_slots_on[q].append((len(plan), len(slots) - 1))
            return len(slots) - 1

        for inst in native.data:
            name = inst.name
            qs = tuple(qidx[q] for q in inst.qubits)
            if name in ("barrier", "id", "delay"):
                continue
            if name == "measure":
                measured.add(qs[0])
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
            elif name == "ms":
                s0 = phase_slot(p[0], qs[0], "ms phase")
                s1 = phase_slot(p[1], qs[1], "ms phase")
                slots.append(affine(p[2], "ms angle"))
                plan.append(("ms", qs, (s0, s1, len(slots) - 1)))
            elif name == "zz":
                slots.append(affine(p[0], "zz angle"))
                zz_after.append((len(plan), qs[0], qs[1]))
                plan.append(("zz", qs, (len(slots) - 1,)))
            else:
                raise QStoreCacheError(
                    f"instruction '{name}' in the compiled circuit is not an IonQ native gate"
                )
        if unknown:
            raise QStoreCacheError(
                "the compiled circuit uses parameters that are not in the source circuit: "
                f"{sorted(p.name for p in unknown)}"
            )
        # Final frames (radians at the end); not emitted, used by to_circuit().
        final_slots = []
        for q in range(native.num_qubits):
            slots.append(frames[q])
            phase_slots_on[q].append((len(plan), len(slots) - 1))
            final_slots.append(len(slots) - 1)

        # Slot layout, chosen so bind-time normalisation works on contiguous slices:
        #   [ms phi0 | ms phi1 | gpi/gpi2 phases | ms angles | zz angles | final frames]
        ms_entries = [e for e in plan if e[0] == "ms"]
        order = [e[2][0] for e in ms_entries] + [e[2][1] for e in ms_entries]
        order += [e[2][0] for e in plan if e[0] in ("gpi", "gpi2")]
        order += [e[2][2] for e in ms_entries]
        order += [e[2][0] for e in plan if e[0] == "zz"]
        order += final_slots
        assert sorted(order) == list(range(len(slots)))
        new_of = {old: new for new, old in enumerate(order)}
        slots = [slots[old] for old in order]
        plan = [(k, qs, tuple(new_of[x] for x in ss)) for k, qs, ss in plan]
        final_slots = [new_of[x] for x in final_slots]
        phase_slots_on = [[(pos, new_of[x]) for pos, x in lst] for lst in phase_slots_on]
        n_ms = len(ms_entries)
        n_zz = len(zz_after)
        n_phase = 2 * n_ms + sum(1 for e in plan if e[0] in ("gpi", "gpi2"))
        self._n_ms, self._n_zz, self._n_phase = n_ms, n_zz, n_phase

        n_cols = n_par + len(extra)
        n_slots = len(slots)
        A = np.zeros((n_slots, n_cols))
        b = np.zeros(n_slots)
        for s, aff in enumerate(slots):
            for c, v in aff.coef.items():
                A[s, c] += v
            b[s] = aff.const
        self._A = A  # (n_slots, n_cols), for introspection; binding uses the gather below
        self._b = b
        # A is very sparse (a slot depends on the few parameters feeding its wire). Instead
        # of a BLAS matmul, whose rounding depends on the batch shape, the terms of every
        # slot are added one rank at a time (rank r = each slot's r-th term), in a fixed
        # order: ``b + w0 x[c0] + w1 x[c1] + ...``. Elementwise numpy arithmetic does not
        # depend on the batch size, so bind() and bind_many() produce bit-identical
        # numbers (and identical cached bodies); each rank is one gather of contiguous
        # rows of the transposed batch, O(nnz) work per binding.
        per_slot = [sorted((c, v) for c, v in aff.coef.items() if v != 0.0) for aff in slots]
        R = max((len(t) for t in per_slot), default=0)
        ranks = []
        for r in range(R):
            rows = [s_i for s_i, terms in enumerate(per_slot) if len(terms) > r]
            cols = np.array([per_slot[s_i][r][0] for s_i in rows], dtype=np.intp)
            w = np.array([per_slot[s_i][r][1] for s_i in rows])[:, None]
            ranks.append((np.array(rows, dtype=np.intp), cols, None if np.all(w == 1.0) else w))
        self._ranks = ranks
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
        for s_i, terms in enumerate(per_slot):
            for r, (c, v) in enumerate(terms):
                gather[s_i, r + 1] = c
                weight[s_i, r + 1] = v
        self._gather, self._weight = gather, weight
        self._n_par = n_par
        self._n_cols = n_cols
        self._extra = extra
        self._extra_cols = [
            [col_of[p] for p in sorted(e.parameters, key=lambda p: p.name)] for e in extra
        ]
        self._plan = plan
        self._final_slots = np.array(final_slots, dtype=np.intp)
        self._n_emit = len(plan)
        self._ms_plan = [i for i, e in enumerate(plan) if e[0] == "ms"]
        # ZZ k with |angle| > 1/4 adds half a turn to every later phase slot on its qubits.
        F = np.zeros((n_zz, n_slots))
        for k, (pos, q0, q1) in enumerate(zz_after):
            for q in (q0, q1):
                for plan_pos, s_i in phase_slots_on[q]:
                    if plan_pos > pos:
                        F[k, s_i] -= 0.5  # frame += 1/2 => phase -= 1/2 (final frame: below)
        for s_i in final_slots:
            F[:, s_i] = -F[:, s_i]  # final frame slots store +frame, not -frame
        self._F = F

        counts: dict[str, int] = {}
        for kind, _, _ in plan:
            counts[kind] = counts.get(kind, 0) + 1
        self.native_gate_counts = counts
        self._n_emit_slots = n_slots - len(final_slots)
        self._emit = self._make_emitter(plan)
        self._nbytes = int(
            A.nbytes + b.nbytes + F.nbytes + sum(r.nbytes + c.nbytes for r, c, _ in ranks) * 2 + gather.nbytes + weight.nbytes + 400 * len(plan) + 200 * native.size()
        )
        return self

    @staticmethod
    def _make_emitter(plan: list[tuple[str, tuple[int, ...], tuple[int, ...]]]) -> Callable:
        # Hand-generated straight-line code, measured fastest on CPython 3.11 for
        # building thousands of small dicts: a GPi/GPi2 is a ``dict.copy()`` of a
        # per-(kind, qubit) prototype plus one store of its phase (cheaper than a dict
        # display, which re-hashes its keys into a fresh table); an MS/ZZ, whose lists
        # must be fresh, is a dict display. Key order is qiskit-ionq's. Every call returns
        # new, independent objects. Only gate kinds from a fixed set and integers are
        # interpolated into the source.
        namespace: dict[str, Any] = {}
        lines = []
        for i, (kind, qs, ss) in enumerate(plan):
            if kind in ("gpi", "gpi2"):
                proto = f"{kind}_{qs[0]}"
                if proto not in namespace:
                    namespace[proto] = {"gate": kind, "target": qs[0], "phase": 0.0}.copy
                lines.append(f"g{i} = {proto}(); g{i}['phase'] = v[{ss[0]}]")
            elif kind == "ms":
                lines.append(
                    f'g{i} = {{"gate": "ms", "targets": [{qs[0]}, {qs[1]}], '
                    f'"phases": [v[{ss[0]}], v[{ss[1]}]], "angle": v[{ss[2]}]}}'
                )
            else:
                lines.append(f'g{i} = {{"gate": "zz", "targets": [{qs[0]}, {qs[1]}], "angle": v[{ss[0]}]}}')
        n_slots = 1 + max((x for _, _, ss in plan for x in ss), default=-1)
        body = "\n    ".join(lines + ["return [" + ", ".join(f"g{i}" for i in range(len(plan))) + "]"])
        if 0 < n_slots <= 20000:
            # Unpack all slot values into locals once: LOAD_FAST per number instead of a
            # list subscript per number (~15% faster for gate-heavy templates). Emitted slots
            # come first in the layout; callers pass exactly those (``_n_emit_slots``).
            names = [f"v{i}" for i in range(n_slots)]
            body = re.sub(r"v\[(\d+)\]", r"v\1", body)
            src = f"def _emit(v):\n    {', '.join(names)}, = v\n    {body}\n"
        else:
            src = f"def _emit(v):\n    {body}\n"
        exec(compile(src, "<qstore-template>", "exec"), namespace)  # noqa: S102 - our own code
        return namespace["_emit"]

    def _relabel(self, parameters: Sequence[Parameter], ordered: bool = False) -> CompiledTemplate:
        """A view sharing all arrays whose :attr:`parameters` are ``parameters``.

        If ``ordered``, ``parameters`` is an arbitrary ordering of the canonical columns'
        parameters (matched by identity); otherwise it lists one parameter per canonical
        column, in column order.
        """
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        params = tuple(parameters)
        if ordered:
            col_of = {p: c for c, p in enumerate(self._canon)}
            try:
                order = [col_of[p] for p in params]
            except KeyError as exc:
                raise QStoreCacheError(f"parameter {exc.args[0]!r} is not in the template") from exc
            if len(set(order)) != len(order) or len(order) != len(self._canon):
                raise QStoreCacheError("parameter list does not match the template's columns")
        else:
            if len(params) != len(self._canon):
                raise QStoreCacheError("parameter list does not match the template's columns")
            order = list(range(len(params)))
        new.parameters = params
        new._order = np.array(order, dtype=np.intp)
        new._identity = order == list(range(len(order)))
        new._index_of = {p: i for i, p in enumerate(params)}
        new._name_of = {p.name: i for i, p in enumerate(params)}
        return new

    # -- properties ---------------------------------------------------------------------

    @property
    def num_parameters(self) -> int:
        """Number of parameters."""
        return len(self.parameters)

    @property
    def nbytes(self) -> int:
        """Approximate memory held by the template."""
        return self._nbytes

    def __repr__(self) -> str:
        return (
            f"<CompiledTemplate device={self.device!r} qubits={self.num_qubits} "
            f"parameters={self.num_parameters} gates={self.native_gate_counts}>"
        )

    # -- binding ------------------------------------------------------------------------

    def _values_1d(self, values: Sequence[float] | Mapping[Any, float] | np.ndarray) -> np.ndarray:
        n = len(self.parameters)
        if isinstance(values, Mapping):
            x = np.full(n, np.nan)
            for k, v in values.items():
                i = self._index_of.get(k) if not isinstance(k, str) else self._name_of.get(k)
                if i is None:
                    raise QStoreCacheError(f"value given for unknown parameter {k!r}")
                x[i] = float(v)
            if np.isnan(x).any():
                missing = [self.parameters[i].name for i in np.flatnonzero(np.isnan(x))]
                raise QStoreCacheError(f"no value (or NaN) for parameter(s) {missing}")
        else:
            try:
                x = np.asarray(values, dtype=float)
            except (TypeError, ValueError) as exc:
                raise QStoreCacheError(f"parameter values are not numbers: {exc}") from exc
            if x.ndim != 1 or x.shape[0] != n:
                raise QStoreCacheError(
                    f"expected {n} parameter values (ordered like .parameters), got shape {x.shape}"
                )
        _check_values(x)
        return x

    def _values_2d(self, values: Any) -> np.ndarray:
        if isinstance(values, Mapping):
            return self._values_1d(values)[None, :]
        if not isinstance(values, np.ndarray) and len(values) and isinstance(values[0], Mapping):
            return np.stack([self._values_1d(v) for v in values])
        try:
            X = np.asarray(values, dtype=float)
        except (TypeError, ValueError) as exc:
            raise QStoreCacheError(f"parameter values are not numbers: {exc}") from exc
        n = len(self.parameters)
        if X.ndim == 1 and n == 0 and X.size == 0:
            X = X.reshape(0, 0)
        if X.ndim != 2 or X.shape[1] != n:
            raise QStoreCacheError(
                f"expected an array of shape (num_bindings, {n}), got shape {X.shape}"
            )
        _check_values(X)
        return X

    def check_device(self, device: str | None) -> None:
        """Raise :class:`QStoreCacheError` if ``device`` is given and is not the template's."""
        if device is not None and device != self.device:
            raise QStoreCacheError(
                f"template was compiled for device {self.device!r}, not {device!r}"
            )

    def _slots(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """All normalised slot values for bindings ``X`` (user order), in turns.

        Returns:
            ``(S, ms_big, ms_pre)`` where ``ms_big[r, k]`` says binding ``r`` needs the
            ``GPI (x) GPI`` rewrite before MS gate ``k`` and ``ms_pre`` holds the phases
            (before the sign flip) those GPIs take.
        """
        B = X.shape[0]
        if self._identity:
            Xc = X
        else:
            Xc = np.empty_like(X)
            Xc[:, self._order] = X
        if self._extra:
            # Non-affine expressions: evaluated one binding at a time (slow path).
            ext = np.empty((B, len(self._extra)))
            for k, (expr, cols) in enumerate(zip(self._extra, self._extra_cols)):
                params = [self._canon[c] for c in cols]
                for r in range(B):
                    val = expr.bind(
                        {p: Xc[r, c] for p, c in zip(params, cols)}, allow_unknown_parameters=True
                    ).numeric()
                    if isinstance(val, complex):
                        val = val.real
                    ext[r, k] = val
            _check_values(ext, "non-affine expression values")
            Xc = np.concatenate([Xc, ext], axis=1)
        n_slots = self._b.size
        if 0 < B <= 4 and self._ranks:
            S = np.empty((B, n_slots))
            padded = np.zeros(self._n_cols + 2)
            padded[-1] = 1.0
            for r in range(B):
                padded[: self._n_cols] = Xc[r]
                table = padded.take(self._gather)
                table *= self._weight
                S[r] = table.cumsum(axis=1)[:, -1]
            return self._normalise(S)
        ST = np.empty((n_slots, B))  # transposed: one contiguous row per slot
        ST[:] = self._b[:, None]
        if self._ranks:
            XT = np.ascontiguousarray(Xc.T)
            for rows, cols, w in self._ranks:
                terms = XT[cols]
                if w is not None:
                    terms *= w
                ST[rows] += terms
        return self._normalise(np.ascontiguousarray(ST.T))

    def _normalise(self, S: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Fold raw slot values ``S`` (bindings x slots, in place) into IonQ's ranges."""
        tol = MS_MAX_ANGLE + ANGLE_TOL
        n_ms, n_phase = self._n_ms, self._n_phase
        a0, a1 = n_phase + n_ms, n_phase + n_ms + self._n_zz  # angle blocks
        if self._n_zz:
            th = S[:, a0:a1]  # view
            th -= np.rint(th)
            th[th <= -0.5] = 0.5
            big = np.abs(th) > tol
            if big.any():
                th -= np.where(big, np.copysign(0.5, th), 0.0)
                S += big.astype(float) @ self._F  # sums of halves: exact
            np.clip(th, -MS_MAX_ANGLE, MS_MAX_ANGLE, out=th)
            th += 0.0  # no "-0.0" in the JSON
        ms_big = ms_pre = None
        if n_ms:
            th = S[:, n_phase:a0]  # view
            th -= np.rint(th)
            th[th <= -0.5] = 0.5
            big = np.abs(th) > tol
            if big.any():
                th -= np.where(big, np.copysign(0.5, th), 0.0)
                ms_big = big
                ms_pre = np.stack([S[:, :n_ms], S[:, n_ms : 2 * n_ms]], axis=-1) % 1.0
                ms_pre[ms_pre >= 1.0] = 0.0
            S[:, :n_ms] += 0.5 * (th < 0)
            np.abs(th, out=th)
            np.minimum(th, MS_MAX_ANGLE, out=th)
        if n_phase:
            ph = S[:, :n_phase]  # view
            ph -= np.floor(ph)  # exact, like np.mod(ph, 1.0), and cheaper
            ph[ph >= 1.0] = 0.0
            ph += 0.0
        return S, ms_big, ms_pre

    def _emit_slow(self, v: list[float], big: np.ndarray, pre: np.ndarray) -> list[dict[str, Any]]:
        """Emission for a binding where some MS needs the ``GPI (x) GPI`` rewrite."""
        gates = self._emit(v)
        out: list[dict[str, Any]] = []
        ms_k = {pos: k for k, pos in enumerate(self._ms_plan)}
        for pos, gate in enumerate(gates):
            k = ms_k.get(pos)
            if k is not None and big[k]:
                q0, q1 = gate["targets"]
                out.append({"gate": "gpi", "target": q0, "phase": float(pre[k, 0])})
                out.append({"gate": "gpi", "target": q1, "phase": float(pre[k, 1])})
            out.append(gate)
        return out

    def _gate_lists(self, X: np.ndarray) -> list[list[dict[str, Any]]]:
        # CPython's cyclic GC and thousands of new containers (each binding's gate list,
        # and each MS gate's dict and two lists): left alone, the GC runs a young
        # collection every 700 of them and now and then escalates to a full collection of
        # the interpreter's whole heap, which re-walks everything built so far (3x slower
        # for 1000 bindings). So while GC is enabled, automatic collection is paused and we
        # run the young-generation collection ourselves after each block of bindings:
        # it is the pass the interpreter would make anyway (these objects cannot form
        # cycles, so it frees nothing of ours), but made while the block is still in the
        # CPU cache, which halves its cost (measured: 49 vs 100 us per binding, 8-qubit
        # ansatz, 1000 bindings, GC included), and it never escalates mid-build. The flag
        # is process-wide: only a caller that found it enabled turns it back on, and a
        # process that disabled the GC gets no collection from us.
        pause = X.shape[0] > 8 and gc.isenabled()
        if pause:
            gc.disable()
        try:
            out: list[list[dict[str, Any]]] = []
            # Blocks also keep numpy's temporaries small; the arithmetic is elementwise,
            # so blocking does not change a single bit.
            for lo in range(0, X.shape[0], _BIND_BLOCK):
                out += self._gate_lists_block(X[lo : lo + _BIND_BLOCK])
                if pause:
                    gc.collect(0)
            return out
        finally:
            if pause:
                gc.enable()

    def _gate_lists_block(self, X: np.ndarray) -> list[list[dict[str, Any]]]:
        S, ms_big, ms_pre = self._slots(X)
        emit = self._emit
        rows = S[:, : self._n_emit_slots].tolist()
        if ms_big is None:
            return [emit(v) for v in rows]
        needs = ms_big.any(axis=1)
        return [
            self._emit_slow(v, ms_big[r], ms_pre[r]) if needs[r] else emit(v)
            for r, v in enumerate(rows)
        ]

    def bind(
        self,
        values: Sequence[float] | Mapping[Any, float] | np.ndarray = (),
        *,
        device: str | None = None,
    ) -> list[dict[str, Any]]:
        """Bind one set of values and return the JSON-ready native gate list.

        Args:
            values: a sequence ordered like :attr:`parameters`, or a mapping from
                :class:`~qiskit.circuit.Parameter` (or parameter name) to value.
            device: if given, must equal :attr:`device`.

        Returns:
            The native gate list (fresh objects), as in :func:`qstore_qiskit.payload.
            circuit_to_native_gates` of the bound native circuit.

        Raises:
            QStoreCacheError: wrong number of values, NaN / inf, unknown parameters, or a
                device mismatch.
        """
        self.check_device(device)
        return self._gate_lists(self._values_1d(values)[None, :])[0]

    def bind_many(self, values: Any, *, device: str | None = None) -> list[list[dict[str, Any]]]:
        """Bind many value sets at once (one matmul for all of them).

        Args:
            values: array-like of shape ``(num_bindings, num_parameters)`` ordered like
                :attr:`parameters`, or a sequence of mappings.
            device: if given, must equal :attr:`device`.

        Returns:
            One gate list per binding.
        """
        self.check_device(device)
        return self._gate_lists(self._values_2d(values))

    def body(self, values: Any = (), *, device: str | None = None) -> dict[str, Any]:
        """Bind one set of values and return the ``input`` block of an ionq.circuit.v1 job."""
        return {"gateset": "native", "qubits": self.body_qubits, "circuit": self.bind(values, device=device)}

    def bodies(self, values: Any, *, device: str | None = None) -> list[dict[str, Any]]:
        """:meth:`bind_many` wrapped into ``input`` blocks."""
        n = self.body_qubits
        return [
            {"gateset": "native", "qubits": n, "circuit": g}
            for g in self.bind_many(values, device=device)
        ]

    def final_frames(self, values: Any = ()) -> list[float]:
        """Z frames (radians) left at the end of each wire, dropped from the payload."""
        S, _, _ = self._slots(self._values_1d(values)[None, :])
        return (S[0, self._final_slots] * _TWO_PI).tolist()

    def to_circuit(self, values: Any = ()) -> QuantumCircuit:
        """The bound native circuit: the emitted gates, the trailing ``rz`` frames, measures.

        Its unitary (measurements removed) equals the bound source circuit's up to global
        phase; its non-``rz`` gates are exactly :meth:`bind`'s output.
        """
        x = self._values_1d(values)[None, :]
        gates = self._gate_lists(x)[0]
        frames = self.final_frames(values)
        native = ionq_native_to_circuit(gates, self.num_qubits, frames)
        if self.num_clbits:
            out = QuantumCircuit(self.num_qubits, self.num_clbits)
            out.compose(native, inplace=True)
            for c, q in enumerate(self.meas_map):
                if q is not None:
                    out.measure(q, c)
            return out
        return native


# ---------------------------------------------------------------------------------------
# Two-level cache
# ---------------------------------------------------------------------------------------


def _body_nbytes(body: dict[str, Any]) -> int:
    # Approximate: a gate dict with its keys' references and float/int/list values.
    return 240 + sys.getsizeof(body["circuit"]) + 330 * len(body["circuit"])


@dataclass
class _Entry:
    template: CompiledTemplate
    nbytes: int


class TemplateCache:
    """Thread-safe two-level LRU cache: structure -> template, template + values -> body.

    Level 1 maps ``(structural key of the lifted circuit, device, optimization level,
    compiler options)`` to a :class:`CompiledTemplate`; level 2 maps ``(template key,
    values rounded to 12 decimals)`` to a finished body, for exactly repeated evaluations
    (parameter-shift pairs, restarts). Both levels are LRU, bounded by entry counts; the
    byte budget covers both (level-2 entries are evicted first).

    One lock guards the bookkeeping; it is never held while compiling. Concurrent requests
    for the same uncompiled key wait for the single compile in flight.

    Args:
        max_templates: level-1 entry limit.
        max_bound: level-2 entry limit (0 disables level 2).
        max_bytes: approximate total byte budget, or ``None`` for unlimited.
        compile_fn: ``f(circuit, device, optimization_level) -> native circuit``; default:
            the qstore pass manager.
        round_decimals: decimals of the level-2 value rounding.
        adaptive_lifting: compile a bound circuit exactly the first time its structure is
            seen (best native gates for one-off circuits) and lift its angles into a
            bind-many template only when the structure returns with other values.
            ``False`` lifts from the first sight.
    """

    def __init__(
        self,
        max_templates: int = 256,
        max_bound: int = 4096,
        max_bytes: int | None = 256 * 1024 * 1024,
        *,
        compile_fn: CompileFn | None = None,
        compile_options: Mapping[str, Any] | None = None,
        round_decimals: int = 12,
        adaptive_lifting: bool = True,
    ) -> None:
        if max_templates < 1 or max_bound < 0 or (max_bytes is not None and max_bytes < 0):
            raise QStoreCacheError("cache limits must be non-negative (max_templates >= 1)")
        self.max_templates = max_templates
        self.max_bound = max_bound
        self.max_bytes = max_bytes
        self._compile_fn = compile_fn or default_compile
        self._compile_options = tuple(sorted((compile_options or {}).items()))
        self._round = round_decimals
        self.adaptive_lifting = adaptive_lifting
        self._sightings: OrderedDict[tuple, None] = OrderedDict()
        self._lock = threading.Lock()
        self._templates: OrderedDict[tuple, _Entry] = OrderedDict()
        self._bound: OrderedDict[tuple, tuple[dict[str, Any], int]] = OrderedDict()
        self._inflight: dict[tuple, Future] = {}
        self._bytes = 0
        self._stats = dict.fromkeys(
            (
                "template_hits",
                "template_misses",
                "template_evictions",
                "bound_hits",
                "bound_misses",
                "bound_evictions",
                "compiles",
                "compile_errors",
            ),
            0,
        )
        self._compile_seconds = 0.0
        self._saved_seconds = 0.0
        self._bind_seconds_est = 0.0

    # -- internals ----------------------------------------------------------------------

    def _evict(self) -> None:
        """Enforce limits; caller holds the lock."""
        while len(self._bound) > self.max_bound:
            _, (_, nb) = self._bound.popitem(last=False)
            self._bytes -= nb
            self._stats["bound_evictions"] += 1
        while len(self._templates) > self.max_templates:
            _, entry = self._templates.popitem(last=False)
            self._bytes -= entry.nbytes
            self._stats["template_evictions"] += 1
        if self.max_bytes is None:
            return
        while self._bytes > self.max_bytes and self._bound:
            _, (_, nb) = self._bound.popitem(last=False)
            self._bytes -= nb
            self._stats["bound_evictions"] += 1
        # Keep the most recent template even if it alone exceeds the budget.
        while self._bytes > self.max_bytes and len(self._templates) > 1:
            _, entry = self._templates.popitem(last=False)
            self._bytes -= entry.nbytes
            self._stats["template_evictions"] += 1

    def _template_for(
        self, circuit: QuantumCircuit, device: str, optimization_level: int
    ) -> tuple[CompiledTemplate, _Analysis, tuple]:
        analysis = _analyse(circuit, lift=True)
        key = (analysis.key, device, optimization_level, self._compile_options)
        if self.adaptive_lifting and analysis.columns and all(p is None for p in analysis.columns):
            # A bound circuit. The first time its lifted structure is seen, compile it
            # exactly: numeric angles let the compiler fuse single-qubit runs and merge
            # blocks, which a template with symbolic angles cannot. Only when the
            # structure comes back with other values is the lifted (bind-many) template
            # compiled. Exact repeats keep hitting their exact entry while it is cached.
            exact_key = ("exact", analysis.key, analysis.values.tobytes(), device, optimization_level,
                         self._compile_options)
            with self._lock:
                exact_known = exact_key in self._templates or exact_key in self._inflight
                lifted_known = key in self._templates or key in self._inflight
                first = key not in self._sightings
                if first:
                    self._sightings[key] = None
                    while len(self._sightings) > 4 * self.max_templates:
                        self._sightings.popitem(last=False)
            if exact_known or (first and not lifted_known):
                exact = _Analysis(key=analysis.key, columns=[], values=np.empty(0), lift_sites={})
                template = self._lookup_or_compile(
                    exact_key, lambda: (circuit, []), device, optimization_level, analysis.key
                )
                return template, exact, exact_key

        def lifted():
            # The hot path skips recording where angles were lifted; redo it on a miss.
            circ, columns, _ = _build_lifted(circuit, _analyse(circuit, lift=True, sites=True))
            return circ, columns

        template = self._lookup_or_compile(key, lifted, device, optimization_level, analysis.key)
        return template, analysis, key

    def _lookup_or_compile(
        self,
        key: tuple,
        build: Callable[[], tuple[QuantumCircuit, list[Parameter]]],
        device: str,
        optimization_level: int,
        structural: str,
    ) -> CompiledTemplate:
        """Level-1 lookup; on a miss compile once (concurrent requests wait for it)."""
        with self._lock:
            entry = self._templates.get(key)
            if entry is not None:
                self._templates.move_to_end(key)
                self._stats["template_hits"] += 1
                self._saved_seconds += entry.template.compile_seconds
                return entry.template
            future = self._inflight.get(key)
            owner = future is None
            if owner:
                future = self._inflight[key] = Future()
                self._stats["template_misses"] += 1
            else:
                self._stats["template_hits"] += 1
        if not owner:
            template = future.result()  # re-raises the owner's compile error
            with self._lock:
                self._saved_seconds += template.compile_seconds
            return template
        try:
            source, columns = build()
            start = time.perf_counter()
            native = self._compile_fn(source, device, optimization_level)
            elapsed = time.perf_counter() - start
            template = CompiledTemplate._build(
                native, columns, device, optimization_level, structural, elapsed
            )._relabel(columns)
        except BaseException as exc:
            with self._lock:
                self._inflight.pop(key, None)
                self._stats["compile_errors"] += 1
            future.set_exception(exc)
            raise
        with self._lock:
            self._inflight.pop(key, None)
            self._stats["compiles"] += 1
            self._compile_seconds += elapsed
            self._templates[key] = _Entry(template, template.nbytes)
            self._bytes += template.nbytes
            self._evict()
        future.set_result(template)
        return template

    @staticmethod
    def _served(template: CompiledTemplate, analysis: _Analysis) -> CompiledTemplate:
        """Relabel a cached template with the requesting circuit's own free parameters."""
        if not any(p is not None for p in analysis.columns):
            return template
        cols = [
            p if p is not None else template.parameters[c] for c, p in enumerate(analysis.columns)
        ]
        if all(a is b for a, b in zip(cols, template.parameters)):
            return template
        return template._relabel(cols)

    @staticmethod
    def _fill_free(
        circuit: QuantumCircuit,
        analysis: _Analysis,
        parameter_values: Sequence[float] | Mapping[Parameter, float] | None,
    ) -> np.ndarray:
        values = analysis.values.copy()
        free = [(c, p) for c, p in enumerate(analysis.columns) if p is not None]
        if not free:
            if parameter_values is not None and len(parameter_values) and not circuit.parameters:
                raise QStoreCacheError("the circuit has no free parameters but values were given")
            return values
        if parameter_values is None:
            raise QStoreCacheError(
                f"the circuit has {len(free)} free parameter(s); pass parameter_values "
                "(ordered like circuit.parameters, or a dict)"
            )
        if isinstance(parameter_values, Mapping):
            given = dict(parameter_values)
        else:
            order = list(circuit.parameters)
            if len(parameter_values) != len(order):
                raise QStoreCacheError(
                    f"expected {len(order)} parameter values, got {len(parameter_values)}"
                )
            given = dict(zip(order, parameter_values))
        known = {p for _, p in free}
        # Parameters of the circuit that no instruction uses (global phase only) are
        # accepted and ignored: they cannot change the payload.
        in_circuit = set(circuit.parameters)
        unknown = [k for k in given if k not in known and k not in in_circuit]
        if unknown:
            raise QStoreCacheError(f"values given for unknown parameter(s) {unknown}")
        for c, p in free:
            if p not in given:
                raise QStoreCacheError(f"no value for parameter {p.name!r}")
            values[c] = float(given[p])
        _check_values(values)
        return values

    # -- public API ---------------------------------------------------------------------

    def get_template(
        self, circuit: QuantumCircuit, device: str = "aria-1", optimization_level: int = 2
    ) -> tuple[CompiledTemplate, np.ndarray]:
        """Template for ``circuit``'s structure, compiling on a miss.

        Numeric angles of :data:`LIFTABLE_GATES` are lifted into parameters first, so
        every bound circuit with the same structure maps to one template.

        Args:
            circuit: any circuit, bound or not.
            device: IonQ device name.
            optimization_level: compiler optimization level.

        Returns:
            ``(template, values)``. ``template.parameters`` is in canonical order (first
            appearance in the circuit): the circuit's own free parameters where it has them,
            the lifted ``_qstore_lift[i]`` parameters elsewhere. ``values`` is the matching
            array of the circuit's lifted angles, with NaN at the circuit's free parameters.
            For a bound circuit ``template.bind(values)`` is its payload.
        """
        template, analysis, _ = self._template_for(circuit, device, optimization_level)
        return self._served(template, analysis), analysis.values.copy()

    def payload(
        self,
        circuit: QuantumCircuit,
        parameter_values: Sequence[float] | Mapping[Parameter, float] | None = None,
        *,
        device: str = "aria-1",
        optimization_level: int = 2,
    ) -> dict[str, Any]:
        """JSON-ready native body (``{"gateset", "qubits", "circuit"}``) for ``circuit``.

        Uses level 1 (template) and level 2 (bound body) caches. The returned body may be
        shared with other callers of the same values: treat it as read-only.

        Args:
            circuit: a circuit; free parameters need ``parameter_values``.
            parameter_values: values for the circuit's free parameters, ordered like
                ``circuit.parameters`` or as a mapping.
            device: IonQ device name.
            optimization_level: compiler optimization level.

        Returns:
            The body.
        """
        template, analysis, key = self._template_for(circuit, device, optimization_level)
        values = self._fill_free(circuit, analysis, parameter_values)
        return self._bound_body(template, key, values)

    def _bound_lookup(self, bkey: tuple) -> dict[str, Any] | None:
        """Level-2 lookup (counts the hit or miss)."""
        with self._lock:
            hit = self._bound.get(bkey)
            if hit is None:
                self._stats["bound_misses"] += 1
                return None
            self._bound.move_to_end(bkey)
            self._stats["bound_hits"] += 1
            self._saved_seconds += self._bind_seconds_est
            return hit[0]

    def _bound_body(self, template: CompiledTemplate, key: tuple, values: np.ndarray) -> dict[str, Any]:
        if self.max_bound == 0:
            return template.body(values)
        bkey = (key, np.round(values, self._round).tobytes())
        hit = self._bound_lookup(bkey)
        if hit is not None:
            return hit
        start = time.perf_counter()
        body = template.body(values)
        elapsed = time.perf_counter() - start
        nb = _body_nbytes(body)
        with self._lock:
            self._bind_seconds_est = 0.9 * self._bind_seconds_est + 0.1 * elapsed
            if bkey not in self._bound:
                self._bound[bkey] = (body, nb)
                self._bytes += nb
                self._evict()
        return body

    def payload_many(
        self,
        circuits: Iterable[QuantumCircuit],
        *,
        device: str = "aria-1",
        optimization_level: int = 2,
    ) -> list[dict[str, Any]]:
        """Bodies for many bound circuits; circuits sharing a template bind in one batch.

        Args:
            circuits: bound circuits (no free parameters).
            device: IonQ device name.
            optimization_level: compiler optimization level.

        Returns:
            One body per circuit, in order.
        """
        circuits = list(circuits)
        out: list[dict[str, Any] | None] = [None] * len(circuits)
        groups: dict[tuple, tuple[CompiledTemplate, list[int], list[np.ndarray]]] = {}
        for i, circ in enumerate(circuits):
            template, analysis, key = self._template_for(circ, device, optimization_level)
            values = self._fill_free(circ, analysis, None)
            if self.max_bound:
                hit = self._bound_lookup((key, np.round(values, self._round).tobytes()))
                if hit is not None:
                    out[i] = hit
                    continue
            group = groups.setdefault(key, (template, [], []))
            group[1].append(i)
            group[2].append(values)
        for key, (template, idx, vals) in groups.items():
            bodies = template.bodies(np.stack(vals))
            with self._lock:
                for i, v, body in zip(idx, vals, bodies):
                    out[i] = body
                    if self.max_bound:
                        bkey = (key, np.round(v, self._round).tobytes())
                        if bkey not in self._bound:
                            nb = _body_nbytes(body)
                            self._bound[bkey] = (body, nb)
                            self._bytes += nb
                self._evict()
        return out  # type: ignore[return-value]

    def stats(self) -> dict[str, Any]:
        """Counters: hits / misses / evictions per level, compiles, bytes, time saved.

        ``time_saved_seconds`` estimates compile time avoided by level-1 hits (each hit
        counts its template's measured compile time) plus bind time avoided by level-2 hits
        (a running average of measured bind times).
        """
        with self._lock:
            out: dict[str, Any] = dict(self._stats)
            out.update(
                templates=len(self._templates),
                bound=len(self._bound),
                bytes=self._bytes,
                inflight=len(self._inflight),
                compile_seconds=self._compile_seconds,
                time_saved_seconds=self._saved_seconds,
            )
        return out

    def clear(self) -> None:
        """Drop all entries (counters are kept)."""
        with self._lock:
            self._templates.clear()
            self._bound.clear()
            self._bytes = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._templates)
