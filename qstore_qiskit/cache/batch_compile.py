"""Compiling a batch's distinct level-1 misses in parallel processes.

:class:`BatchCompileLevel` is a mixin of :class:`~qstore_qiskit.cache.TemplateCache`.
When one call (``payload_many``, ``get_templates``; the backend's ``run`` and the
primitives go through them) misses several distinct structures, they are claimed at
once (concurrent callers wait for them as for any compile in flight), loaded from the
persistent store where an earlier process stored them, and the rest are compiled by
:func:`~qstore_qiskit.transpiler.parallel.run_parallel`: forked workers, one per usable
core, each of which also lays out its templates (:func:`~.builder.build_spec`, about a
third of the work). Only the laid-out :class:`~.builder.TemplateSpec` (plain data, no
code) comes back; the parent installs it into a :class:`CompiledTemplate`, stores it
on disk and in the in-memory cache, so the templates are shared exactly like serially
compiled ones. Below the work threshold, on one usable core, or in a worker, the batch
is compiled in-process, one after the other, with the same results.

A structure whose compile fails in a worker is left to the serial path, which raises
the error in the caller's order (with its traceback from this process).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from qiskit.circuit import Parameter, QuantumCircuit

from . import serialize
from .builder import TemplateSpec, build_spec
from .template import CompiledTemplate

if TYPE_CHECKING:  # pragma: no cover
    from .persistent import PersistentTemplateStore
    from .store import _Entry, _Plan

__all__ = ["BatchCompileLevel"]


class BatchCompileLevel:
    """Mixin of :class:`~qstore_qiskit.cache.TemplateCache`: compile distinct misses together."""

    # Provided by TemplateCache / PersistentLevel.
    _lock: threading.Lock
    _templates: Any
    _inflight: dict[tuple, Future]
    _stats: dict[str, int]
    _compile_seconds: float
    _saved_seconds: float
    _bytes: int
    _compile_fn: Callable[[QuantumCircuit, str, int], QuantumCircuit]

    def _compile_missing(
        self, plans: list["_Plan"], device: str, optimization_level: int
    ) -> dict[tuple, CompiledTemplate]:
        """Obtain every distinct entry of ``plans`` that is neither cached nor in flight.

        Does nothing (returns ``{}``) unless at least two such entries would be compiled
        by at least two workers; the caller then serves the plans one by one as before.

        Returns:
            ``{key: template}`` of the entries obtained here (each counted as one
            template miss, as the serial path counts the first request of a key).
        """
        from ..transpiler.parallel import parallel_workers

        distinct: dict[tuple, "_Plan"] = {}
        for plan in plans:
            distinct.setdefault(plan.key, plan)
        if len(distinct) < 2:
            return {}
        with self._lock:
            missing = [p for k, p in distinct.items() if k not in self._templates and k not in self._inflight]
        if len(missing) < 2 or parallel_workers([plan.size for plan in missing]) < 2:
            return {}
        sources = [plan.build() for plan in missing]  # the compiler inputs (lifted circuits)
        claimed: list[tuple["_Plan", tuple[QuantumCircuit, list[Parameter]], Future]] = []
        with self._lock:
            for plan, source in zip(missing, sources):
                if plan.key in self._templates or plan.key in self._inflight:
                    continue  # another thread got there meanwhile
                future: Future = Future()
                self._inflight[plan.key] = future
                self._stats["template_misses"] += 1
                claimed.append((plan, source, future))
        obtained: dict[tuple, tuple[CompiledTemplate, bool]] = {}
        failed: dict[tuple, BaseException] = {}
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            self._obtain_batch(claimed, device, optimization_level, obtained, failed)
            # miss_stats(): the batch's wall time and this thread's CPU time, shared
            # equally by the templates obtained (the workers' CPU is not counted).
            wall, used = time.perf_counter() - start, time.thread_time() - cpu
            for _, compiled in obtained.values():
                self._miss_done(  # type: ignore[attr-defined]
                    compiled, time.perf_counter() - wall / len(obtained), time.thread_time() - used / len(obtained)
                )
        except BaseException as exc:  # noqa: BLE001 - waiters must never hang
            for plan, _, _ in claimed:
                if plan.key not in obtained:
                    failed.setdefault(plan.key, exc)
            raise
        finally:
            self._settle(claimed, obtained, failed)
        return {key: template for key, (template, _) in obtained.items()}

    def _obtain_batch(
        self,
        claimed: list[tuple["_Plan", tuple[QuantumCircuit, list[Parameter]], Future]],
        device: str,
        optimization_level: int,
        obtained: dict[tuple, tuple[CompiledTemplate, bool]],
        failed: dict[tuple, BaseException],
    ) -> None:
        """Load what the persistent store has, compile the rest in parallel, store it."""
        store = self._persistent()  # type: ignore[attr-defined]
        todo = list(claimed)
        with contextlib.ExitStack() as stack:
            if store is not None:
                todo = self._load_or_lock(store, claimed, device, optimization_level, obtained, stack)
            if not todo:
                return
            compile_fn = self._compile_fn

            def work(index: int) -> tuple[TemplateSpec, float] | BaseException:
                # Runs in a worker (or in-process below the threshold): compile and lay
                # out; exceptions come back as values so one bad circuit spoils nothing.
                source, columns = todo[index][1]
                try:
                    start = time.perf_counter()
                    native = compile_fn(source, device, optimization_level)
                    elapsed = time.perf_counter() - start
                    return build_spec(native, list(columns)), elapsed
                except Exception as exc:  # noqa: BLE001
                    return exc

            from ..transpiler.parallel import run_parallel

            # run_parallel hands circuits to the workers; ours index into `todo`, which
            # the forked workers inherit.
            indices = [_Indexed(i, todo[i][1][0]) for i in range(len(todo))]
            try:
                results: list[Any] = run_parallel(lambda item: work(item.index), indices)  # type: ignore[arg-type,return-value]
            except Exception as exc:  # noqa: BLE001 - a broken pool: leave all to the serial path
                results = [exc] * len(todo)
            for (plan, (_, columns), _), result in zip(todo, results):
                if isinstance(result, BaseException):
                    failed[plan.key] = result
                    continue
                spec, elapsed = result
                template = CompiledTemplate._from_spec(
                    spec, columns, device, optimization_level, plan.structural, elapsed
                )._relabel(columns)
                if store is not None:
                    self._store_template(store, plan.key, template, device, optimization_level, plan.structural)
                obtained[plan.key] = (template, True)

    def _load_or_lock(
        self,
        store: "PersistentTemplateStore",
        claimed: list[tuple["_Plan", tuple[QuantumCircuit, list[Parameter]], Future]],
        device: str,
        optimization_level: int,
        obtained: dict[tuple, tuple[CompiledTemplate, bool]],
        stack: contextlib.ExitStack,
    ) -> list:
        """Load stored entries; take the cross-process compile lock of the others (in key
        order, so that two processes never wait for each other's locks in a cycle)."""
        labels_of = {}
        todo = []
        for item in claimed:
            plan = item[0]
            pkey = self._entry_key(plan.key)  # type: ignore[attr-defined]
            labels = {"key": pkey, "device": device, "optimization_level": optimization_level,
                      "structural_key": plan.structural}  # fmt: skip
            labels_of[plan.key] = (pkey, labels)
            template = self._load(store, pkey, labels)  # type: ignore[attr-defined]
            if template is not None:
                obtained[plan.key] = (template, False)
            else:
                todo.append(item)
        rest = []
        for item in sorted(todo, key=lambda it: labels_of[it[0].key][0]):
            pkey, labels = labels_of[item[0].key]
            try:
                stack.enter_context(store.single_flight(pkey))
            except Exception:  # noqa: BLE001 - no lock: at worst a duplicate compile
                self._count("disk_errors")  # type: ignore[attr-defined]
            template = self._load(store, pkey, labels)  # type: ignore[attr-defined]
            if template is not None:  # stored by another process while we waited
                obtained[item[0].key] = (template, False)
                continue
            self._count("disk_misses")  # type: ignore[attr-defined]
            rest.append(item)
        order = {id(item): i for i, item in enumerate(claimed)}
        return sorted(rest, key=lambda it: order[id(it)])

    def _store_template(
        self,
        store: "PersistentTemplateStore",
        key: tuple,
        template: CompiledTemplate,
        device: str,
        optimization_level: int,
        structural: str,
    ) -> None:
        pkey = self._entry_key(key)  # type: ignore[attr-defined]
        labels = {"key": pkey, "device": device, "optimization_level": optimization_level,
                  "structural_key": structural, "compile_seconds": template.compile_seconds}  # fmt: skip
        body = serialize.dumps(template._spec, labels)
        if body is None:
            self._count("disk_skipped")  # type: ignore[attr-defined]
            return
        try:
            store.put(pkey, body)
        except Exception:  # noqa: BLE001
            self._count("disk_errors")  # type: ignore[attr-defined]

    def _settle(
        self,
        claimed: list[tuple["_Plan", tuple[QuantumCircuit, list[Parameter]], Future]],
        obtained: dict[tuple, tuple[CompiledTemplate, bool]],
        failed: dict[tuple, BaseException],
    ) -> None:
        """Publish the obtained templates; release the claims of the others.

        A failed key's waiters get its error; the caller itself compiles it again on the
        serial path, which raises it in order (and counts the error once).
        """
        from .store import _Entry

        with self._lock:
            for plan, _, _ in claimed:
                self._inflight.pop(plan.key, None)
                if plan.key not in obtained:
                    self._stats["template_misses"] -= 1  # the serial retry counts it
                    continue
                template, compiled = obtained[plan.key]
                if compiled:
                    self._stats["compiles"] += 1
                    self._compile_seconds += template.compile_seconds
                else:  # loaded from disk: the compile it avoided is saved time
                    self._saved_seconds += template.compile_seconds
                self._templates[plan.key] = _Entry(template, template.nbytes)
                self._bytes += template.nbytes
            self._evict()  # type: ignore[attr-defined]
        for plan, _, future in claimed:
            if plan.key in obtained:
                future.set_result(obtained[plan.key][0])
            else:
                future.set_exception(failed.get(plan.key) or RuntimeError("compile abandoned"))


class _Indexed:
    """A compile job for :func:`run_parallel`: its index, and its circuit's ``data``
    (the size that balances the workers' loads)."""

    __slots__ = ("index", "data")

    def __init__(self, index: int, circuit: QuantumCircuit) -> None:
        self.index = index
        self.data = circuit.data
