"""The persistent level of :class:`~qstore_qiskit.cache.TemplateCache`.

On a miss of the in-memory level, :class:`PersistentLevel` loads the template from the
:class:`~qstore_qiskit.cache.PersistentTemplateStore` if an earlier or concurrent process
stored it, and otherwise compiles it once across processes (the store's single-flight
lock) and stores the result. Any failure of the store is counted and the template is
compiled as if there were no store.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import qiskit
from qiskit.circuit import Parameter, ParameterVector, QuantumCircuit

from ..version import __version__
from . import serialize
from .analysis import _LIFT_VECTOR_NAME
from .persistent import PersistentTemplateStore, StoreSetting, entry_key, open_store
from .serialize import FORMAT_VERSION
from .template import CompiledTemplate

__all__ = ["PersistentLevel"]

_MISS_KEYS = ("compile_seconds", "compile_cpu_seconds", "load_seconds", "load_cpu_seconds")
_MISS_LOCK = threading.Lock()


class PersistentLevel:
    """Mixin of :class:`~qstore_qiskit.cache.TemplateCache`: load, or compile once and store."""

    _compiler_id: str | None
    _store_setting: StoreSetting | Callable[[], StoreSetting]

    def _count(self, name: str) -> None:  # pragma: no cover - provided by TemplateCache
        raise NotImplementedError

    def miss_stats(self) -> dict[str, float]:
        """Time spent on level-1 misses, by outcome: ``{"compile", "load"}`` x ``{"seconds",
        "cpu_seconds"}`` (wall clock and the missing thread's CPU time).

        A miss's time runs from the persistent lookup to a template ready to bind: the
        compiler, analysis and bind tables (and, with a store, writing the entry) for a
        compile; reading, checking and building the bind tables for a load. The
        structural key every lookup computes, hit or miss, is not included.
        """
        with _MISS_LOCK:
            return dict(self.__dict__.get("_miss") or dict.fromkeys(_MISS_KEYS, 0.0))

    def _miss_done(self, compiled: bool, start: float, cpu: float) -> None:
        kind = "compile" if compiled else "load"
        wall, used = time.perf_counter() - start, time.thread_time() - cpu
        with _MISS_LOCK:  # the mixin has no __init__: the counters appear on first use
            miss = self.__dict__.setdefault("_miss", dict.fromkeys(_MISS_KEYS, 0.0))
            miss[f"{kind}_seconds"] += wall
            miss[f"{kind}_cpu_seconds"] += used

    def _compile(
        self,
        build: Callable[[], tuple[QuantumCircuit, list[Parameter]]],
        device: str,
        optimization_level: int,
        structural: str,
    ) -> CompiledTemplate:  # pragma: no cover - provided by TemplateCache
        raise NotImplementedError

    @property
    def persistent_store(self) -> PersistentTemplateStore | None:
        """The persistent store misses go to now, or ``None`` (resolved from ``store=``)."""
        return self._persistent()

    def _persistent(self) -> PersistentTemplateStore | None:
        if self._compiler_id is None or self._store_setting is False:
            return None
        try:
            return open_store(self._store_setting)
        except Exception:  # noqa: BLE001 - an unusable store must never fail a run
            self._count("disk_errors")
            return None

    def _entry_key(self, key: tuple) -> str:
        return entry_key((FORMAT_VERSION, __version__, qiskit.__version__, self._compiler_id, key))

    def _store_off(self) -> bool:
        """Whether misses have no persistent store (the setting resolves to none without
        an error; an unusable store is left to the callers, which count the error)."""
        if self._compiler_id is None or self._store_setting is False:
            return True
        try:
            return open_store(self._store_setting) is None
        except Exception:  # noqa: BLE001
            return False

    def _on_disk(self, key: tuple) -> bool:
        store = self._persistent()
        try:
            return store is not None and self._entry_key(key) in store
        except Exception:  # noqa: BLE001
            self._count("disk_errors")
            return False

    def _claim(self, key: tuple) -> bool:
        """``False`` if another process already met this structure (see :meth:`_template_for`)."""
        store = self._persistent()
        try:
            return store is None or store.claim(self._entry_key(key))
        except Exception:  # noqa: BLE001
            self._count("disk_errors")
            return True

    def _obtain(
        self,
        key: tuple,
        build: Callable[[], tuple[QuantumCircuit, list[Parameter]]],
        device: str,
        optimization_level: int,
        structural: str,
    ) -> tuple[CompiledTemplate, bool]:
        """Load the template from the persistent store, or compile (and store) it.

        Returns:
            ``(template, compiled)``.
        """
        start, cpu = time.perf_counter(), time.thread_time()
        template, compiled = self._obtain_timed(key, build, device, optimization_level, structural)
        self._miss_done(compiled, start, cpu)
        return template, compiled

    def _obtain_timed(
        self,
        key: tuple,
        build: Callable[[], tuple[QuantumCircuit, list[Parameter]]],
        device: str,
        optimization_level: int,
        structural: str,
    ) -> tuple[CompiledTemplate, bool]:
        store = self._persistent()
        if store is None:
            return self._compile(build, device, optimization_level, structural), True
        pkey = self._entry_key(key)
        labels = {"key": pkey, "device": device, "optimization_level": optimization_level,
                  "structural_key": structural}  # fmt: skip
        template = self._load(store, pkey, labels)
        if template is not None:
            return template, False
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(store.single_flight(pkey))
            except Exception:  # noqa: BLE001 - no lock: at worst a duplicate compile
                self._count("disk_errors")
            # Stored by another process while we waited (or just before the lock).
            template = self._load(store, pkey, labels)
            if template is not None:
                return template, False
            self._count("disk_misses")
            template = self._compile(build, device, optimization_level, structural)
            body = serialize.dumps(
                template._spec, {**labels, "compile_seconds": template.compile_seconds}
            )
            if body is None:
                self._count("disk_skipped")
            else:
                try:
                    store.put(pkey, body)
                except Exception:  # noqa: BLE001
                    self._count("disk_errors")
        return template, True

    def _load(self, store: PersistentTemplateStore, pkey: str, labels: dict[str, Any]) -> CompiledTemplate | None:
        try:
            status, body = store.fetch(pkey)
        except Exception:  # noqa: BLE001
            self._count("disk_errors")
            return None
        if body is None:
            if status == "rejected":
                self._count("disk_rejected")
            return None
        try:
            spec, stored = serialize.loads(body, labels)
            seconds = stored.get("compile_seconds")
            if type(seconds) is not float or not 0.0 <= seconds < 1e9:
                raise serialize.FormatError("stored template: bad compile_seconds")
            columns = list(ParameterVector(_LIFT_VECTOR_NAME, spec.n_par))
            template = CompiledTemplate._from_spec(
                spec, columns, labels["device"], labels["optimization_level"], labels["structural_key"], seconds
            )._relabel(columns)
        except Exception:  # noqa: BLE001 - anything odd about an entry: recompile it
            store.reject(pkey)
            self._count("disk_rejected")
            return None
        self._count("disk_hits")
        return template

