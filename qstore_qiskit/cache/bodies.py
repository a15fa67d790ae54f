"""The template cache's level 2: bound bodies, and binding the circuits of one call.

:class:`BoundLevel` is a mixin of :class:`~qstore_qiskit.cache.TemplateCache` (split out
of ``store.py`` by responsibility): the level-2 lookups and entries (one body per
template and rounded values), and :meth:`~qstore_qiskit.cache.TemplateCache.payload_many`'s
two paths: a batch (plan all, compile the distinct misses together, bind each template's
circuits in one batch) and a single circuit (a separate ``run(qc)``: the same plan,
lookups, counters and entry, without the batch's bookkeeping).
"""

from __future__ import annotations

import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from qiskit.circuit import QuantumCircuit

from .template import CompiledTemplate

if TYPE_CHECKING:  # pragma: no cover
    from .analysis import _Analysis
    from .store import _Plan

__all__ = ["BoundLevel"]


def _body_nbytes(body: dict[str, Any]) -> int:
    # Approximate: a gate dict with its keys' references and float/int/list values.
    return 240 + sys.getsizeof(body["circuit"]) + 330 * len(body["circuit"])


class BoundLevel:
    """Mixin of :class:`~qstore_qiskit.cache.TemplateCache`: level-2 bodies and binding."""

    # Provided by TemplateCache.
    _lock: threading.Lock
    _bound: OrderedDict
    _bytes: int
    _stats: dict[str, int]
    _saved_seconds: float
    _bind_seconds_est: float
    _round: int
    max_bound: int

    if TYPE_CHECKING:  # provided by TemplateCache

        def _evict(self) -> None: ...
        def _plan(self, circuit: QuantumCircuit, device: str, optimization_level: int,
                  planned: Any = ..., rows: Sequence[tuple] | None = None) -> _Plan: ...
        def _plan_batch(self, circuits: list[QuantumCircuit], device: str, optimization_level: int,
                        rows: Any = None) -> list[_Plan]: ...
        def _serve_batch(self, plans: list[_Plan], device: str, optimization_level: int) -> list[CompiledTemplate]: ...
        def _lookup_or_compile(self, key: tuple, build: Any, device: str, optimization_level: int,
                               structural: str) -> CompiledTemplate: ...
        @staticmethod
        def _fill_free(circuit: QuantumCircuit, analysis: _Analysis, parameter_values: Any) -> np.ndarray: ...

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
        bkey = (key, self._rounded(values))
        hit = self._bound_lookup(bkey)
        if hit is not None:
            return hit
        start = time.perf_counter()
        body = template.body(values)
        elapsed = time.perf_counter() - start
        with self._lock:
            self._bind_seconds_est = 0.9 * self._bind_seconds_est + 0.1 * elapsed
            self._enter_bound(bkey, body)
            self._evict()
        return body

    def _enter_bound(self, bkey: tuple, body: dict[str, Any]) -> None:
        """Keep ``body`` as the level-2 entry ``bkey`` unless one is there (the caller
        holds the lock, and evicts)."""
        if bkey not in self._bound:
            nb = _body_nbytes(body)
            self._bound[bkey] = (body, nb)
            self._bytes += nb

    def _payload_batch(
        self,
        circuits: list[QuantumCircuit],
        device: str,
        optimization_level: int,
        rows: Sequence[Sequence[tuple] | None] | None,
    ) -> list[dict[str, Any]]:
        """:meth:`payload_many`: plan all, compile the distinct misses together, bind
        each template's circuits in one batch."""
        out: list[dict[str, Any] | None] = [None] * len(circuits)
        groups: dict[tuple, tuple[CompiledTemplate, list[int], list[np.ndarray], list[tuple]]] = {}
        plans = self._plan_batch(circuits, device, optimization_level, rows)
        templates = self._serve_batch(plans, device, optimization_level)
        keep = self.max_bound
        for i, (circ, plan, template) in enumerate(zip(circuits, plans, templates)):
            analysis, key = plan.analysis, plan.key
            values = self._fill_free(circ, analysis, None)
            bkey = (key, self._rounded(values)) if keep else None
            if bkey is not None:
                hit = self._bound_lookup(bkey)
                if hit is not None:
                    out[i] = hit
                    continue
            group = groups.setdefault(key, (template, [], [], []))
            group[1].append(i)
            group[2].append(values)
            group[3].append(bkey)
        for template, idx, vals, bkeys in groups.values():
            # (one binding, the usual case of a new circuit: a view, not np.stack's copy)
            bodies = template.bodies(vals[0][None, :] if len(vals) == 1 else np.stack(vals))
            with self._lock:
                for i, bkey, body in zip(idx, bkeys, bodies):
                    out[i] = body
                    if bkey is not None:
                        self._enter_bound(bkey, body)
                self._evict()
        return out  # type: ignore[return-value]

    def _payload_one(
        self, circuit: QuantumCircuit, device: str, optimization_level: int, rows: Sequence[tuple] | None
    ) -> dict[str, Any]:
        """:meth:`payload_many` of one circuit (a separate ``run(qc)``): the same plan,
        lookups, counters, binding and level-2 entry, without the batch's bookkeeping
        (a batch of one compiles nothing in parallel)."""
        plan = self._plan(circuit, device, optimization_level, rows=rows)
        template = self._lookup_or_compile(plan.key, plan.build, device, optimization_level, plan.structural)
        values = self._fill_free(circuit, plan.analysis, None)
        bkey = (plan.key, self._rounded(values)) if self.max_bound else None
        if bkey is not None:
            hit = self._bound_lookup(bkey)
            if hit is not None:
                return hit
        body = template.bodies(values[None, :])[0]
        with self._lock:
            if bkey is not None:
                self._enter_bound(bkey, body)
            self._evict()
        return body

    def _rounded(self, values: np.ndarray) -> bytes:
        """The level-2 key part of ``values`` (rounded to ``round_decimals``); the empty
        values of an exact template need no numpy call."""
        return np.round(values, self._round).tobytes() if values.size else b""
