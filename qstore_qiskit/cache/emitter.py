"""The bind kernel: slot tables -> normalised angles -> JSON-ready native gate lists.

:class:`Emitter` builds one binding's gate list from its slot values. It starts
data-driven (a fixed sequence of C-level ``map`` passes over per-kind index tables,
:func:`make_data_emitter`: no code is generated, so a template loaded from the persistent
cache is ready to bind at once) and switches to a generated straight-line function
(:func:`make_emitter`, 1.5-2x faster per binding, ~20 us per gate to generate) only once
the template has bound enough gates to repay the generation. :class:`BindKernel` (a base
of :class:`~qstore_qiskit.cache.CompiledTemplate`) evaluates the slot tables of
:mod:`qstore_qiskit.cache.builder` for a batch of bindings, folds the values into IonQ's
ranges (the rules of :mod:`qstore_qiskit.payload`, vectorised) and calls the emitter.

Guarantee: the numbers depend only on each binding's values, never on the batch size or
on how the batch is split, so ``bind`` and ``bind_many`` give bit-identical gate lists.
"""

from __future__ import annotations

import gc
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from itertools import repeat
from operator import itemgetter, setitem
from typing import Any

import numpy as np

from ..payload import ANGLE_TOL, MS_MAX_ANGLE
from ..gc_pause import cyclic_gc_paused
from .builder import PlanEntry
from .errors import QStoreCacheError

__all__ = ["BindKernel", "Emitter", "emit_plain", "make_data_emitter", "make_emitter"]


def _check_values(x: np.ndarray, what: str = "parameter values") -> None:
    # Fast path: NaN / inf propagate into the sum; only a non-finite sum needs the full check
    # (it may also just be an overflow of huge finite values, which are accepted). No
    # values at all (an exact template's binding) need no numpy call.
    if not x.size or math.isfinite(x.sum()):
        return
    if not np.isfinite(x).all():
        raise QStoreCacheError(f"{what} must be finite (got NaN or inf)")


#: Bindings evaluated per numpy pass in bind_many (see CompiledTemplate._gate_lists).
_BIND_BLOCK = 128


_SLOT_REF = re.compile(r"v\[(\d+)\]")


def _local_name(match: re.Match[str]) -> str:
    return "v" + match[1]  # v[12] -> v12 (a function: cheaper than a template per match)


#: Emitters generated in this process, by plan (see make_emitter); at most _MEMO_SIZE.
_MEMO: OrderedDict[tuple[PlanEntry, ...], Callable[[list[float]], list[dict[str, Any]]]] = OrderedDict()
_MEMO_SIZE = 256
_MEMO_LOCK = threading.Lock()


def _plan_key(plan: list[PlanEntry]) -> tuple[PlanEntry, ...]:
    return tuple((kind, tuple(qs), tuple(ss)) for kind, qs, ss in plan)


def make_emitter(plan: list[PlanEntry]) -> Callable[[list[float]], list[dict[str, Any]]]:
    """``_emit(v) -> gate list`` for ``plan`` (``v``: the emitted slot values).

    Generating one costs a ``compile`` of a few lines per gate (~20 us per gate), the
    reason templates start with :func:`make_data_emitter` (see :class:`Emitter`); so
    generated emitters are kept in a small
    in-process memo keyed by the whole plan (gate kinds, qubits, slot indices, compared
    by value): templates with equal plans (the same structure for other devices,
    options or compiler versions, or loaded again after eviction) share one function.
    An emitter keeps no state between calls and returns new objects every call, so
    sharing it is safe. Nothing is ever written to disk.
    """
    key = _plan_key(plan)
    with _MEMO_LOCK:
        emit = _MEMO.get(key)
        if emit is not None:
            _MEMO.move_to_end(key)
            return emit
    emit = _generate(key)
    with _MEMO_LOCK:
        _MEMO[key] = emit
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    return emit


def _generate(plan: tuple[PlanEntry, ...]) -> Callable[[list[float]], list[dict[str, Any]]]:
    """Generate ``_emit(v) -> gate list`` for ``plan`` (no memo)."""
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
        body = _SLOT_REF.sub(_local_name, body)
        src = f"def _emit(v):\n    {', '.join(names)}, = v\n    {body}\n"
    else:
        src = f"def _emit(v):\n    {body}\n"
    exec(compile(src, "<qstore-template>", "exec"), namespace)  # noqa: S102 - our own code
    return namespace["_emit"]


def _getter(indices: list[int]) -> Callable[[Any], tuple]:
    """``v -> tuple(v[i] for i in indices)`` as one C call (also for 0 or 1 index)."""
    if not indices:
        return lambda v: ()
    if len(indices) == 1:
        (j,) = indices
        return lambda v: (v[j],)
    return itemgetter(*indices)


def make_data_emitter(plan: list[PlanEntry]) -> Callable[[list[float]], list[dict[str, Any]]]:
    """``_emit(v) -> gate list`` for ``plan``, driven by index tables (no generated code).

    Returns exactly what :func:`make_emitter`'s function returns (equal values, the same
    dict key order, new objects every call). Each gate kind is one pass of C-level
    ``map`` calls (copy a per-gate prototype dict, store the slot values picked by an
    ``itemgetter``), and one ``itemgetter`` puts the gates in plan order: a constant number
    of interpreted steps per binding, whatever the gate count. Building it costs a few
    microseconds per gate.
    """
    phase_at: list[int] = []
    phase_protos: list[dict[str, Any]] = []
    phase_slots: list[int] = []
    ms_at: list[int] = []
    ms_targets: list[tuple[int, ...]] = []
    ms_slots: tuple[list[int], list[int], list[int]] = ([], [], [])
    zz_at: list[int] = []
    zz_targets: list[tuple[int, ...]] = []
    zz_slots: list[int] = []
    for i, (kind, qs, ss) in enumerate(plan):
        if kind in ("gpi", "gpi2"):
            phase_at.append(i)
            phase_protos.append({"gate": kind, "target": qs[0], "phase": 0.0})
            phase_slots.append(ss[0])
        elif kind == "ms":
            ms_at.append(i)
            ms_targets.append(tuple(qs))
            for column, slot in zip(ms_slots, ss):
                column.append(slot)
        else:
            zz_at.append(i)
            zz_targets.append(tuple(qs))
            zz_slots.append(ss[0])
    # Gates are built kind by kind (phases, MS, ZZ), then put back in plan order.
    position = [0] * len(plan)
    for k, i in enumerate(phase_at + ms_at + zz_at):
        position[i] = k
    in_order = _getter(position)
    phases, ms0, ms1, ms_angle, zz_angle = map(_getter, (phase_slots, *ms_slots, zz_slots))
    ms_proto: list[dict[str, Any]] = [{"gate": "ms", "targets": None, "phases": None, "angle": 0.0}] * len(ms_at)
    zz_proto: list[dict[str, Any]] = [{"gate": "zz", "targets": None, "angle": 0.0}] * len(zz_at)
    copy, PHASE, TARGETS, PHASES, ANGLE = dict.copy, repeat("phase"), repeat("targets"), repeat("phases"), repeat("angle")
    drain = any  # setitem returns None: any() runs a map to its end in C

    def _emit(v: list[float]) -> list[dict[str, Any]]:
        gates = list(map(copy, phase_protos))
        drain(map(setitem, gates, PHASE, phases(v)))
        if ms_proto:
            ms = list(map(copy, ms_proto))
            drain(map(setitem, ms, TARGETS, map(list, ms_targets)))
            drain(map(setitem, ms, PHASES, map(list, zip(ms0(v), ms1(v)))))
            drain(map(setitem, ms, ANGLE, ms_angle(v)))
            gates += ms
        if zz_proto:
            zz = list(map(copy, zz_proto))
            drain(map(setitem, zz, TARGETS, map(list, zz_targets)))
            drain(map(setitem, zz, ANGLE, zz_angle(v)))
            gates += zz
        return list(in_order(gates))

    return _emit


#: Bindings of a template after which its emitter is generated as straight-line code:
#: the data-driven emitter's extra cost per binding (~0.1 us per gate) then adds up to
#: about the generation's (~20 us per gate), so a template bound N times never pays more
#: than about twice the cheaper of the two for N (the ski-rental rule).
GENERATE_AFTER = 200


def emit_plain(plan: list[PlanEntry], v: list[float]) -> list[dict[str, Any]]:
    """One gate list for ``plan`` by a plain loop: what :func:`make_data_emitter`'s
    function returns (equal values, the same dict key order, new objects), with nothing
    to build first. For a template's first binding: most new circuits' exact templates
    are bound exactly once, and building the index tables costs more than this loop."""
    out: list[dict[str, Any]] = []
    append = out.append
    for kind, qs, ss in plan:
        if kind == "ms":
            append({"gate": "ms", "targets": [qs[0], qs[1]], "phases": [v[ss[0]], v[ss[1]]], "angle": v[ss[2]]})
        elif kind == "zz":
            append({"gate": "zz", "targets": [qs[0], qs[1]], "angle": v[ss[0]]})
        else:
            append({"gate": kind, "target": qs[0], "phase": v[ss[0]]})
    return out


class Emitter:
    """A template's emitter: a plain loop for its first binding, data-driven from the
    second, generated once bound often enough.

    Shared by a template and all its relabelled views (the count is per template). The
    switches change speed, never output: all three return equal gate lists.
    """

    __slots__ = ("_plan", "_emit", "_bound", "_generated", "_lock")

    def __init__(self, plan: list[PlanEntry]) -> None:
        self._plan = plan
        self._generated = False
        self._emit: Callable[[list[float]], list[dict[str, Any]]] | None = None  # built on first need
        self._bound = 0
        self._lock = threading.Lock()

    @property
    def generated(self) -> bool:
        """Whether the straight-line function is in use."""
        return self._generated

    def _data_emitter(self) -> Callable[[list[float]], list[dict[str, Any]]]:
        emit = self._emit
        if emit is None:
            # Two threads may both build one: equal functions, either one is kept.
            emit = self._emit = make_data_emitter(self._plan)
        return emit

    def _first(self, v: list[float]) -> list[dict[str, Any]]:
        return emit_plain(self._plan, v)

    def __call__(self, v: list[float]) -> list[dict[str, Any]]:
        return self._data_emitter()(v)

    def for_bindings(self, count: int) -> Callable[[list[float]], list[dict[str, Any]]]:
        """The function to emit ``count`` bindings with (counts them; may build or
        generate code)."""
        if not self._generated:
            self._bound += count
            if self._bound >= GENERATE_AFTER:
                with self._lock:
                    if not self._generated:
                        self._emit = make_emitter(self._plan)
                        self._generated = True
            elif self._emit is None:
                if self._bound == count == 1:
                    return self._first  # the template's first binding, alone
                return self._data_emitter()
        return self._emit  # type: ignore[return-value]


class BindKernel:
    """Batch evaluation of a template's slot tables (attributes set by the template)."""

    # Set by CompiledTemplate._install (see qstore_qiskit.cache.builder.bind_tables).
    _identity: bool
    _order: np.ndarray
    _extra: list[Any]
    _extra_cols: list[list[int]]
    _canon: list[Any]
    _b: np.ndarray
    _n_cols: int
    _ranks: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]
    _gather: np.ndarray
    _weight: np.ndarray
    _F: np.ndarray
    _n_ms: int
    _n_zz: int
    _n_phase: int
    _n_emit_slots: int
    _ms_plan: list[int]
    _emit: Emitter
    #: number of leading columns of a binding the kernel reads (the rest are parameters of
    #: the global phase only), or ``None`` for all of them
    _keep: int | None = None

    def _slots(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """All normalised slot values for bindings ``X`` (user order), in turns.

        Returns:
            ``(S, ms_big, ms_pre)`` where ``ms_big[r, k]`` says binding ``r`` needs the
            ``GPI (x) GPI`` rewrite before MS gate ``k`` and ``ms_pre`` holds the phases
            (before the sign flip) those GPIs take.
        """
        B = X.shape[0]
        if self._keep is not None:
            X = X[:, : self._keep]
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

    def _constant_row(self) -> tuple[list[float], list[bool] | None, list[list[float]] | None]:
        """:meth:`_normalise` of the one binding of a constant template without ZZ, in
        plain floats: ``(emitted slot values, ms_big row, ms_pre row)``.

        A new circuit's exact template is bound once, right after it is built: on a
        single row, the ~20 numpy calls of :meth:`_normalise` cost more than the
        arithmetic (30-50 us). This is the same IEEE operations on the same values in the
        same order (``round`` and ``math.floor`` are exact, like ``np.rint`` and
        ``np.floor``; ``%`` is numpy's ``remainder``), so the numbers are bit-identical
        (tested against the numpy path). Templates with ZZ gates (whose flips are a
        matrix product) take the numpy path.
        """
        tol = MS_MAX_ANGLE + ANGLE_TOL
        n_ms, n_phase = self._n_ms, self._n_phase
        v = self._b.tolist()
        big_row = pre_row = None
        if n_ms:
            angles = v[n_phase : n_phase + n_ms]
            for k, t in enumerate(angles):
                t = t - round(t)
                if t <= -0.5:
                    t = 0.5
                if abs(t) > tol:
                    if big_row is None:
                        big_row = [False] * n_ms
                    big_row[k] = True
                    t = t - math.copysign(0.5, t)
                angles[k] = t
            if big_row is not None:
                pre_row = []
                for k in range(n_ms):
                    pair = [v[k] % 1.0, v[n_ms + k] % 1.0]
                    pre_row.append([0.0 if x >= 1.0 else x for x in pair])
            for k, t in enumerate(angles):
                v[k] = v[k] + (0.5 if t < 0 else 0.0)
                t = abs(t)
                v[n_phase + k] = t if t <= MS_MAX_ANGLE else MS_MAX_ANGLE
        for s in range(n_phase):
            x = v[s]
            x = x - math.floor(x)
            if x >= 1.0:
                x = 0.0
            v[s] = x + 0.0
        return v[: self._n_emit_slots], big_row, pre_row

    def _emit_slow(self, v: list[float], big: np.ndarray, pre: np.ndarray) -> list[dict[str, Any]]:
        """Emission for a binding where some MS needs the ``GPI (x) GPI`` rewrite."""
        gates = self._emit(v)
        out: list[dict[str, Any]] = []
        ms_k = {pos: k for k, pos in enumerate(self._ms_plan)}
        for pos, gate in enumerate(gates):
            k = ms_k.get(pos)
            if k is not None and big[k]:
                q0, q1 = gate["targets"]
                out.append({"gate": "gpi", "target": q0, "phase": float(pre[k][0])})
                out.append({"gate": "gpi", "target": q1, "phase": float(pre[k][1])})
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
        if X.shape[0] == 1:  # one binding (a new circuit's): no pause, one block
            return self._gate_lists_block(X)
        with cyclic_gc_paused(X.shape[0] > 8) as paused:
            out: list[list[dict[str, Any]]] = []
            # Blocks also keep numpy's temporaries small; the arithmetic is elementwise,
            # so blocking does not change a single bit.
            for lo in range(0, X.shape[0], _BIND_BLOCK):
                out += self._gate_lists_block(X[lo : lo + _BIND_BLOCK])
                if paused:
                    gc.collect(0)
            return out

    def _gate_lists_block(self, X: np.ndarray) -> list[list[dict[str, Any]]]:
        if X.shape[0] == 1 and not self._ranks and not self._extra and not self._n_zz:
            # One binding of a constant template (see _constant_row).
            v, big, pre = self._constant_row()
            emit = self._emit.for_bindings(1)
            return [emit(v) if big is None else self._emit_slow(v, big, pre)]  # type: ignore[arg-type]
        S, ms_big, ms_pre = self._slots(X)
        emit = self._emit.for_bindings(X.shape[0])
        rows = S[:, : self._n_emit_slots].tolist()
        if ms_big is None:
            return [emit(v) for v in rows]
        needs = ms_big.any(axis=1)
        return [
            self._emit_slow(v, ms_big[r], ms_pre[r]) if needs[r] else emit(v)
            for r, v in enumerate(rows)
        ]

