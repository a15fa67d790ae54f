"""Structural analysis: the structural key, canonical parameter columns and lifting.

Everything here looks at the *source* circuit only (no compiler involved): which
instructions sit where, which parameter occupies which position, and which numeric
angles of :data:`LIFTABLE_GATES` can be lifted into fresh parameters so that bound
circuits differing only in their angles share one compiled template.
"""

from __future__ import annotations

import hashlib
import io
import math
import operator
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from qiskit.circuit import Parameter, ParameterExpression, ParameterVector, QuantumCircuit

from .errors import QStoreCacheError

__all__ = ["LIFTABLE_GATES", "INSTRUCTION_ROW", "structural_key", "lift_parameters"]

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

#: What the analysis reads of each instruction: ``(name, qubits, params, clbits)``. A
#: caller that already walked the circuit (the backend's scan,
#: :func:`~qstore_qiskit.providers.inspection.scan_gated`) hands these rows in, so that
#: each ``CircuitInstruction`` is built and read once per ``run()``, not twice (Qiskit
#: builds a new Python object per instruction and per attribute read: about 1.5 us per
#: instruction for the four of them).
INSTRUCTION_ROW = operator.attrgetter("name", "qubits", "params", "clbits")


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


def _analyse(
    circuit: QuantumCircuit, lift: bool, sites: bool = False, rows: Sequence[tuple] | None = None
) -> _Analysis:
    """Compute the structural key, canonical parameter columns and lifted values.

    Parameters are numbered by first appearance (column ``0``, ``1``, ...), so names never
    matter but positions do. Affine expressions are encoded by their coefficients;
    anything else by its string form with parameters renamed to their column.

    This runs for every bound circuit the backend sees, so the loop is kept tight: the
    canonical form is a list of plain tuples (column references as ``int``, everything
    else as ``str``, so the two can never be confused) hashed once
    (:func:`_canonical_bytes`).

    ``rows``: the :data:`INSTRUCTION_ROW` of every instruction of ``circuit``, in order,
    if the caller already read them (otherwise they are read here).
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

    for i, (name, qubits, params, clbits) in enumerate(
        rows if rows is not None else map(INSTRUCTION_ROW, circuit.data)
    ):
        if params:
            if name in _CONTROL_FLOW:
                raise QStoreCacheError(f"control flow ('{name}') cannot be sent as a native body")
            if name == "global_phase":
                # Only a global phase: irrelevant to the payload, so not part of the key.
                append((name, (), (), ()))
                continue
            liftable = lift and name in LIFTABLE_GATES
            if liftable and not clbits and len(params) == 1 and type(params[0]) is float:
                # The hot path for bound circuits: one lifted angle (what the loop below
                # does for it, without its list and tuple).
                p = params[0]
                if not -_INF < p < _INF:  # NaN fails every comparison
                    raise QStoreCacheError(f"instruction '{name}' (#{i}) has a non-finite angle {p}")
                c = len(columns)
                columns.append(None)
                vals.append(p)
                if sites:
                    lift_sites.setdefault(i, []).append((0, c))
                append((name, (qget(qubits[0]),) if len(qubits) == 1 else tuple(map(qget, qubits)), (), (c,)))
                continue
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
            # (no map over the empty clbits tuple of nearly every gate)
            append((name, tuple(map(qget, qubits)), tuple(map(cget, clbits)) if clbits else (), tuple(enc)))
        else:
            if name in _CONTROL_FLOW:
                raise QStoreCacheError(f"control flow ('{name}') cannot be sent as a native body")
            append((name, tuple(map(qget, qubits)), tuple(map(cget, clbits)) if clbits else ()))
    key = hashlib.blake2b(_canonical_bytes(parts), digest_size=20).hexdigest()
    return _Analysis(key, columns, np.array(vals, dtype=float), lift_sites)


def _canonical_bytes(parts: list) -> bytes:
    """The bytes of a canonical form (``int``, ``str`` and tuples of those) that
    :func:`_analyse` hashes: its pickle (protocol 4) without the memo.

    The memo would write a second occurrence of the *same object* as a back-reference,
    so equal forms built from different string or tuple objects would differ; without it
    (``fast`` mode, for objects without cycles) the bytes depend on the values only,
    in every process. It replaces ``repr(parts)``, which took about a quarter of the
    analysis every ``run()`` makes (about 40 us of 150 for a 25-instruction circuit,
    against 6 us).
    """
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=4)
    pickler.fast = True
    pickler.dump(parts)
    return buffer.getvalue()


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

