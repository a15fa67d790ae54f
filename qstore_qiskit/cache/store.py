"""The in-memory two-level LRU template cache.

:class:`TemplateCache` keys templates by :func:`~qstore_qiskit.cache.structural_key` of
the *lifted* circuit: numeric angles of parameterizable standard gates are lifted into
fresh parameters, so a bound circuit that differs from a cached one only in its angles
binds instead of compiling.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np
from qiskit.circuit import Parameter, QuantumCircuit

from .analysis import _analyse, _Analysis, _build_lifted
from .batch_compile import BatchCompileLevel
from .bodies import BoundLevel
from .compiler import CompileFn, default_compile
from .emitter import _check_values
from .errors import QStoreCacheError
from .loader import PersistentLevel
from .persistent import StoreSetting
from .template import CompiledTemplate, _real

__all__ = ["TemplateCache"]


@dataclass
class _Entry:
    template: CompiledTemplate
    nbytes: int


@dataclass
class _Plan:
    """Which level-1 entry serves a circuit: its key, how to build the compiler's input
    on a miss (``() -> (source circuit, columns)``), the analysis its values come from,
    and the structural key."""

    key: tuple
    build: Callable[[], tuple[QuantumCircuit, list[Parameter]]]
    analysis: _Analysis
    structural: str
    #: instructions of the circuit (lifting keeps the count): the work estimate
    size: int = 0


class TemplateCache(PersistentLevel, BatchCompileLevel, BoundLevel):
    """Thread-safe two-level LRU cache: structure -> template, template + values -> body.

    Level 1 maps ``(structural key of the lifted circuit, device, optimization level,
    compiler options)`` to a :class:`CompiledTemplate`; level 2 maps ``(template key,
    values rounded to 12 decimals)`` to a finished body, for exactly repeated evaluations
    (parameter-shift pairs, restarts). Both levels are LRU, bounded by entry counts; the
    byte budget covers both (level-2 entries are evicted first).

    One lock guards the bookkeeping; it is never held while compiling. Concurrent requests
    for the same uncompiled key wait for the single compile in flight.

    Calls that take many circuits (:meth:`payload_many`, :meth:`get_templates`) compile
    the distinct structures they miss together: in forked worker processes, one per
    usable core, when there are at least two and enough work
    (:func:`~qstore_qiskit.transpiler.parallel.run_parallel`), else one after the other.
    The templates land in the cache either way and results are identical. A custom
    ``compile_fn`` then runs in the forked workers: it must not rely on threads or open
    connections of this process (``QISKIT_NUM_PROCS=1`` keeps everything in-process).

    With a persistent ``store`` (:class:`~qstore_qiskit.cache.PersistentTemplateStore`), a
    level-1 miss first loads the template from disk, and compiles only if no process has
    stored it; processes that miss the same key at once compile it once (the store's
    cross-process lock), and the others load the result.

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
        store: the persistent level: a :class:`~qstore_qiskit.cache.PersistentTemplateStore`,
            a directory, ``None``/``True`` (the default directory, see
            :func:`~qstore_qiskit.cache.default_cache_dir`), ``False`` (none, the default), or
            a callable returning one of these, asked at each level-1 miss (a backend passes
            its option this way). See :func:`~qstore_qiskit.cache.open_store`.
        compiler_id: a stable name of ``compile_fn`` (with everything that changes its output
            and is not in ``compile_options``), part of the persistent key. Templates of a
            custom ``compile_fn`` are persisted only if it is given; the default compiler
            has one.
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
        store: StoreSetting | Callable[[], StoreSetting] = False,
        compiler_id: str | None = None,
    ) -> None:
        if max_templates < 1 or max_bound < 0 or (max_bytes is not None and max_bytes < 0):
            raise QStoreCacheError("cache limits must be non-negative (max_templates >= 1)")
        self.max_templates = max_templates
        self.max_bound = max_bound
        self.max_bytes = max_bytes
        self._compile_fn = compile_fn or default_compile
        self._compile_options = tuple(sorted((compile_options or {}).items()))
        if compiler_id is None and compile_fn is None:
            compiler_id = f"{default_compile.__module__}.{default_compile.__qualname__}"
        # Persistent keys must read the same in every process: plain option values only.
        plain = all(isinstance(v, (str, int, float, bool, type(None))) for _, v in self._compile_options)
        self._compiler_id = compiler_id if plain else None
        self._store_setting = store
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
                "disk_hits",
                "disk_misses",
                "disk_rejected",
                "disk_skipped",
                "disk_errors",
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
        plan = self._plan(circuit, device, optimization_level)
        template = self._lookup_or_compile(plan.key, plan.build, device, optimization_level, plan.structural)
        return template, plan.analysis, plan.key

    def _plan(
        self,
        circuit: QuantumCircuit,
        device: str,
        optimization_level: int,
        planned: set[tuple] | frozenset[tuple] = frozenset(),
        rows: Sequence[tuple] | None = None,
    ) -> _Plan:
        """Which level-1 entry serves ``circuit`` (and how to build its source on a miss).

        ``planned``: keys that earlier circuits of the same batch will have compiled by
        the time this one is served (they count as cached), so that planning a whole
        batch first decides exactly as serving it circuit by circuit would. ``rows``:
        the circuit's instructions as the caller already read them (see
        :func:`~.analysis._analyse`).
        """
        analysis = _analyse(circuit, lift=True, rows=rows)
        key = (analysis.key, device, optimization_level, self._compile_options)
        columns = analysis.columns
        if self.adaptive_lifting and columns and columns.count(None) == len(columns):
            # A bound circuit. The first time its lifted structure is seen, compile it
            # exactly: numeric angles let the compiler fuse single-qubit runs and merge
            # blocks, which a template with symbolic angles cannot. Only when the
            # structure comes back with other values is the lifted (bind-many) template
            # compiled. Exact repeats keep hitting their exact entry while it is cached.
            exact_key = ("exact", analysis.key, analysis.values.tobytes(), device, optimization_level,
                         self._compile_options)
            with self._lock:
                exact_known = exact_key in self._templates or exact_key in self._inflight or exact_key in planned
                lifted_known = key in self._templates or key in self._inflight or key in planned
                first = key not in self._sightings
                if first:
                    self._sightings[key] = None
                    while len(self._sightings) > 4 * self.max_templates:
                        self._sightings.popitem(last=False)
            if first and not exact_known and not lifted_known and not self._store_off():
                # What an earlier process did with this structure: the exact template of
                # these very values, else the lifted template, is loaded (not compiled).
                if self._on_disk(exact_key):
                    exact_known = True
                elif self._on_disk(key):
                    lifted_known = True
                elif not self._claim(key):
                    # Another process saw the structure first (and compiles it exactly):
                    # this sighting is the structure's second, so lift it now; N processes
                    # then compile 1 exact + 1 lifted template, not N + 1.
                    first = False
            if exact_known or (first and not lifted_known):
                exact = _Analysis(key=analysis.key, columns=[], values=np.empty(0), lift_sites={})
                return _Plan(exact_key, lambda: (circuit, []), exact, analysis.key, len(circuit.data))

        def lifted():
            # The hot path skips recording where angles were lifted; redo it on a miss.
            circ, columns, _ = _build_lifted(circuit, _analyse(circuit, lift=True, sites=True, rows=rows))
            return circ, columns

        return _Plan(key, lifted, analysis, analysis.key, len(circuit.data))

    def _plan_batch(
        self,
        circuits: list[QuantumCircuit],
        device: str,
        optimization_level: int,
        rows: Sequence[Sequence[tuple] | None] | None = None,
    ) -> list[_Plan]:
        """Plan every circuit (in order), then compile the distinct missing entries in
        parallel where that pays (:meth:`_compile_missing`)."""
        planned: set[tuple] = set()
        plans = []
        for i, circ in enumerate(circuits):
            plan = self._plan(circ, device, optimization_level, planned, None if rows is None else rows[i])
            planned.add(plan.key)
            plans.append(plan)
        return plans

    def _serve_batch(
        self, plans: list[_Plan], device: str, optimization_level: int
    ) -> list[CompiledTemplate]:
        """The template of every plan; distinct misses are compiled together (in
        parallel processes when that pays off), then each plan is served in order as
        :meth:`_template_for` would (same counters, same errors)."""
        fresh = self._compile_missing(plans, device, optimization_level)
        out = []
        for plan in plans:
            template = fresh.pop(plan.key, None)
            if template is None:
                template = self._lookup_or_compile(plan.key, plan.build, device, optimization_level, plan.structural)
            out.append(template)
        return out

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
            pending = self._inflight.get(key)
            owner = pending is None
            if pending is None:
                future: Future = Future()
                self._inflight[key] = future
                self._stats["template_misses"] += 1
            else:
                future = pending
                self._stats["template_hits"] += 1
        if not owner:
            template = future.result()  # re-raises the owner's compile error
            with self._lock:
                self._saved_seconds += template.compile_seconds
            return template
        try:
            template, compiled = self._obtain(key, build, device, optimization_level, structural)
        except BaseException as exc:
            with self._lock:
                self._inflight.pop(key, None)
                self._stats["compile_errors"] += 1
            future.set_exception(exc)
            raise
        with self._lock:
            self._inflight.pop(key, None)
            if compiled:
                self._stats["compiles"] += 1
                self._compile_seconds += template.compile_seconds
            else:  # loaded from disk: the compile it avoided is saved time
                self._saved_seconds += template.compile_seconds
            self._templates[key] = _Entry(template, template.nbytes)
            self._bytes += template.nbytes
            self._evict()
        future.set_result(template)
        return template

    def _count(self, name: str) -> None:
        with self._lock:
            self._stats[name] += 1

    def _compile(
        self,
        build: Callable[[], tuple[QuantumCircuit, list[Parameter]]],
        device: str,
        optimization_level: int,
        structural: str,
    ) -> CompiledTemplate:
        source, columns = build()
        start = time.perf_counter()
        native = self._compile_fn(source, device, optimization_level)
        elapsed = time.perf_counter() - start
        return CompiledTemplate._build(
            native, columns, device, optimization_level, structural, elapsed
        )._relabel(columns)

    @staticmethod
    def _served(
        template: CompiledTemplate, analysis: _Analysis, ignored: list[Parameter]
    ) -> CompiledTemplate:
        """Relabel a cached template with the requesting circuit's own free parameters.

        ``ignored`` (the circuit's global-phase-only parameters) are appended: they take
        values like the others, so a table ordered like ``circuit.parameters`` fits, but
        the payload does not depend on them.
        """
        if not ignored and not any(p is not None for p in analysis.columns):
            return template
        cols = [
            p if p is not None else template.parameters[c] for c, p in enumerate(analysis.columns)
        ]
        if not ignored and all(a is b for a, b in zip(cols, template.parameters)):
            return template
        return template._relabel(cols, ignored=ignored)

    @staticmethod
    def _phase_only_parameters(circuit: QuantumCircuit, analysis: _Analysis) -> list[Parameter]:
        """The circuit's parameters that no instruction uses (its global phase's)."""
        used = [p for p in analysis.columns if p is not None]
        if circuit.num_parameters == len(used):
            return []
        seen = set(used)
        return [p for p in circuit.parameters if p not in seen]

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
            values[c] = _real(given[p], p)
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
            the lifted ``_qstore_lift[i]`` parameters elsewhere, then the parameters that
            occur only in the circuit's global phase (they take values but do not change
            the payload). ``values`` is the matching array of the circuit's lifted angles,
            with NaN at the circuit's free parameters. For a bound circuit
            ``template.bind(values)`` is its payload.
        """
        template, analysis, _ = self._template_for(circuit, device, optimization_level)
        ignored = self._phase_only_parameters(circuit, analysis)
        values = analysis.values.copy()
        if ignored:
            values = np.concatenate([values, np.full(len(ignored), np.nan)])
        return self._served(template, analysis, ignored), values

    def get_templates(
        self,
        circuits: Iterable[QuantumCircuit],
        device: str = "aria-1",
        optimization_level: int = 2,
    ) -> list[tuple[CompiledTemplate, np.ndarray]]:
        """:meth:`get_template` of many circuits, compiling the distinct misses together
        (in parallel processes when that pays off).

        Returns:
            One ``(template, values)`` per circuit, in order, as :meth:`get_template`
            returns them.
        """
        circuits = list(circuits)
        plans = self._plan_batch(circuits, device, optimization_level)
        templates = self._serve_batch(plans, device, optimization_level)
        out = []
        for circuit, plan, template in zip(circuits, plans, templates):
            ignored = self._phase_only_parameters(circuit, plan.analysis)
            values = plan.analysis.values.copy()
            if ignored:
                values = np.concatenate([values, np.full(len(ignored), np.nan)])
            out.append((self._served(template, plan.analysis, ignored), values))
        return out

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

    def payload_many(
        self,
        circuits: Iterable[QuantumCircuit],
        *,
        device: str = "aria-1",
        optimization_level: int = 2,
        rows: Sequence[Sequence[tuple] | None] | None = None,
    ) -> list[dict[str, Any]]:
        """Bodies for many bound circuits; circuits sharing a template bind in one batch.

        The distinct structures missing from the cache are compiled together (in
        parallel processes when that pays off, see the class documentation).

        Args:
            circuits: bound circuits (no free parameters).
            device: IonQ device name.
            optimization_level: compiler optimization level.
            rows: optional, one entry per circuit: its instructions as
                :data:`~.analysis.INSTRUCTION_ROW` tuples, in order, when the caller has
                already read them (the backend's scan does), so the structural analysis
                does not walk the circuit a second time; ``None`` entries are read here.

        Returns:
            One body per circuit, in order.
        """
        circuits = list(circuits)
        if len(circuits) == 1:
            return [self._payload_one(circuits[0], device, optimization_level, None if rows is None else rows[0])]
        return self._payload_batch(circuits, device, optimization_level, rows)

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
        """Drop all in-memory entries (counters and the persistent store are kept)."""
        with self._lock:
            self._templates.clear()
            self._bound.clear()
            self._bytes = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._templates)
