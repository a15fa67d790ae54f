"""Performance tracking of a backend: the seed's CircuitBatchManager report, from Qiskit.

Collects what each stage did (preparation in the compiler and template cache, submission
in the batching client) and renders the performance report. Thread-safe: ``run`` may be
called from many threads at once.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable


class PerformanceTracker:
    """Counters and timers of one backend.

    Args:
        cache_stats: returns the template cache's ``stats()`` (or ``None``).
        client_stats: returns the submitters' merged ``stats()``.
        features: returns the feature flags in force (for the report).
    """

    def __init__(
        self,
        cache_stats: Callable[[], dict | None],
        client_stats: Callable[[], dict],
        features: Callable[[], dict],
    ) -> None:
        self._lock = threading.Lock()
        self._cache_stats = cache_stats
        self._client_stats = client_stats
        self._features = features
        self.reset()

    def reset(self) -> None:
        """Forget every counter (the cache and client keep their own)."""
        with self._lock:
            self.circuits = 0
            self.batches = 0
            self.prepare_seconds = 0.0
            self.input_gates = 0
            self.native_gates = 0
            self.native_2q_gates = 0
            self.results = 0
            self.batch_seconds: list[float] = []
            self.binding_hits = 0
            self.binding_saved_seconds = 0.0
            self._first_run: float | None = None
            self._last_result: float | None = None

    def record_run(self, circuits: int, prepare_seconds: float, input_gates: int, native: tuple[int, int]) -> None:
        """Record one ``run`` call: circuits prepared and what preparing cost."""
        with self._lock:
            now = time.perf_counter()
            if self._first_run is None:
                self._first_run = now - prepare_seconds
            self.circuits += circuits
            self.batches += 1
            self.prepare_seconds += prepare_seconds
            self.input_gates += input_gates
            self.native_gates += native[0]
            self.native_2q_gates += native[1]

    def record_template_bindings(self, bindings: int, compile_seconds: float) -> None:
        """Record ``bindings`` parameter bindings served from an already compiled template.

        Each is a template hit that avoided one compile of ``compile_seconds`` (the
        template's measured compile time): the cache counts only the lookup that
        returned the template, not the bindings made from it.
        """
        if bindings <= 0:
            return
        with self._lock:
            self.binding_hits += bindings
            self.binding_saved_seconds += bindings * compile_seconds

    def record_result(self, circuits: int, batch_seconds: float) -> None:
        """Record that a job's results were delivered."""
        with self._lock:
            self.results += circuits
            self.batch_seconds.append(batch_seconds)
            self._last_result = time.perf_counter()

    def snapshot(self) -> dict[str, Any]:
        """The statistics as a dict (see :meth:`QStoreBackend.performance_stats`)."""
        with self._lock:
            elapsed = (
                (self._last_result - self._first_run)
                if self._first_run is not None and self._last_result is not None
                else 0.0
            )
            out: dict[str, Any] = {
                "total_circuits": self.circuits,
                "total_batches": self.batches,
                "results_received": self.results,
                "total_time_seconds": elapsed,
                "avg_batch_time_ms": (
                    1000.0 * sum(self.batch_seconds) / len(self.batch_seconds) if self.batch_seconds else 0.0
                ),
                "throughput_circuits_per_sec": self.results / elapsed if elapsed > 0 else 0.0,
                "circuit_preparation_seconds": self.prepare_seconds,
                "native_compiler": {
                    "input_gates": self.input_gates,
                    "native_gates": self.native_gates,
                    "native_2q_gates": self.native_2q_gates,
                    "native_gates_per_circuit": self.native_gates / self.circuits if self.circuits else 0.0,
                    "native_2q_gates_per_circuit": (
                        self.native_2q_gates / self.circuits if self.circuits else 0.0
                    ),
                },
            }
            binding_hits, binding_saved = self.binding_hits, self.binding_saved_seconds
        cache = self._cache_stats()
        if cache is not None:
            cache = dict(cache)
            cache["template_hits"] = cache.get("template_hits", 0) + binding_hits
            cache["time_saved_seconds"] = cache.get("time_saved_seconds", 0.0) + binding_saved
            cache["binding_hits"] = binding_hits
            l1 = cache.get("template_hits", 0) + cache.get("template_misses", 0)
            l2 = cache.get("bound_hits", 0) + cache.get("bound_misses", 0)
            cache = dict(cache)
            cache["template_hit_rate"] = cache.get("template_hits", 0) / l1 if l1 else 0.0
            cache["bound_hit_rate"] = cache.get("bound_hits", 0) / l2 if l2 else 0.0
        out["circuit_cache"] = cache
        out["batch_client"] = self._client_stats()
        out["features"] = self._features()
        return out


def format_report(stats: dict[str, Any], title: str = "QSTORE-QISKIT PERFORMANCE REPORT") -> str:
    """Render :meth:`PerformanceTracker.snapshot` as the seed's text report."""
    bar = "=" * 72
    client = stats.get("batch_client") or {}
    cache = stats.get("circuit_cache")
    comp = stats["native_compiler"]
    lines = [
        bar,
        title,
        bar,
        "",
        "Execution Summary:",
        f"  Total Circuits: {stats['total_circuits']:,}",
        f"  Total Batches: {stats['total_batches']:,}",
        f"  Total Time: {stats['total_time_seconds']:.2f}s",
        f"  Avg Batch Time: {stats['avg_batch_time_ms']:.0f}ms",
        f"  Avg Throughput: {stats['throughput_circuits_per_sec']:.2f} circuits/sec",
        f"  Circuit Preparation: {1000 * stats['circuit_preparation_seconds']:.1f}ms",
        "",
        "Features Enabled:",
    ]
    for name, value in stats.get("features", {}).items():
        lines.append(f"  {name}: {value}")
    lines += ["", "Circuit Cache:"]
    if cache:
        lines += [
            f"  Template Hit Rate: {cache['template_hit_rate']:.1%}",
            f"  Bound Hit Rate: {cache['bound_hit_rate']:.1%}",
            f"  Templates Compiled: {cache.get('compiles', cache.get('template_misses', 0)):,}",
            f"  Time Saved: {1000 * cache.get('time_saved_seconds', 0.0):,.0f}ms",
        ]
    else:
        lines.append("  (disabled)")
    lines += [
        "",
        "Native Gate Compiler:",
        f"  Input Gates: {comp['input_gates']:,}",
        f"  Native Gates: {comp['native_gates']:,} ({comp['native_2q_gates']:,} two-qubit)",
        f"  Native Gates/Circuit: {comp['native_gates_per_circuit']:.1f} "
        f"({comp['native_2q_gates_per_circuit']:.1f} two-qubit)",
        "",
        "Batch Client:",
        f"  API Calls: {client.get('api_calls', client.get('requests', 0)):,}",
        f"  Jobs Created: {client.get('jobs_created', 0):,}",
        f"  Circuits Submitted: {client.get('circuits_submitted', 0):,}",
        f"  Avg Circuits/Job: {(client.get('circuits_per_job') or {}).get('mean', 0.0):.1f}",
        f"  Retries: {sum((client.get('retries') or {}).values())}",
        bar,
    ]
    return "\n".join(lines)
