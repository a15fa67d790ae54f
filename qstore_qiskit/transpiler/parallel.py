"""Compile many distinct circuits in parallel processes.

Qiskit compiles a list of circuits in one process unless parallelism is switched on
globally (``QISKIT_PARALLEL=TRUE``), and then ships the pickled pass manager with every
circuit. :func:`run_parallel` instead forks one worker per core, each inheriting the
pass manager and the input circuits from the parent (nothing is pickled on the way in;
only the compiled circuits come back), and balances the work by circuit size, largest
first. It falls back to a plain loop whenever parallelism cannot pay off: one circuit,
one usable core, little total work, a platform without ``fork``, or when already
inside a worker.

:class:`ParallelPassManager` is a :class:`~qiskit.transpiler.PassManager` whose
``run`` on a list goes through :func:`run_parallel`;
:func:`~qstore_qiskit.transpiler.generate_ionq_pass_manager` returns one.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from qiskit import QuantumCircuit
from qiskit.transpiler import PassManager

__all__ = ["ParallelPassManager", "run_parallel", "usable_cores", "MIN_PARALLEL_OPS"]

#: Below this many instructions in total, a batch is compiled in-process: forking and
#: returning results (~20-50 ms) would cost more than it saves.
MIN_PARALLEL_OPS = 500

#: Set in workers (also read by Qiskit's Rust code: no nested thread pools there).
_IN_WORKER_ENV = "QISKIT_IN_PARALLEL"

# What a forked worker inherits from the parent; set only around the pool's lifetime.
_SHARED: dict[str, Any] = {}


def usable_cores() -> int:
    """Cores this process may run on (CPU affinity, else the CPU count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _worker_init() -> None:
    os.environ[_IN_WORKER_ENV] = "TRUE"


def _compile_chunk(indices: list[int]) -> list[tuple[int, QuantumCircuit]]:
    run = _SHARED["run"]
    circuits = _SHARED["circuits"]
    return [(i, run(circuits[i])) for i in indices]


def _chunks(sizes: Sequence[int], workers: int) -> list[list[int]]:
    """Split circuit indices into ``workers`` groups of similar total size (greedy,
    largest first), so that one big circuit does not leave the other cores idle."""
    loads = [0] * workers
    groups: list[list[int]] = [[] for _ in range(workers)]
    for index in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        target = loads.index(min(loads))
        groups[target].append(index)
        loads[target] += max(1, sizes[index])
    return [g for g in groups if g]


def run_parallel(
    run: Callable[[QuantumCircuit], QuantumCircuit],
    circuits: Sequence[QuantumCircuit],
    num_processes: int | None = None,
    min_ops: int | None = None,
) -> list[QuantumCircuit]:
    """Apply ``run`` to every circuit, in forked worker processes when that pays off.

    Args:
        run: The per-circuit compile function, e.g. ``pass_manager.run``. It is
            inherited by the workers through ``fork``, so it need not be picklable.
        circuits: The circuits to compile.
        num_processes: Worker count (default: the usable cores, at most one per
            circuit).
        min_ops: Compile in-process when the circuits hold fewer instructions in total
            (default :data:`MIN_PARALLEL_OPS`).

    Returns:
        The compiled circuits, in input order. Exceptions raised by ``run`` propagate
        (the first in input order).
    """
    circuits = list(circuits)
    workers = min(num_processes or usable_cores(), len(circuits))
    sizes = [len(c.data) for c in circuits]
    if min_ops is None:
        min_ops = MIN_PARALLEL_OPS
    if (
        workers < 2
        or sum(sizes) < min_ops
        or os.environ.get(_IN_WORKER_ENV) == "TRUE"
        or "fork" not in multiprocessing.get_all_start_methods()
        or _SHARED
    ):
        return [run(c) for c in circuits]
    groups = _chunks(sizes, workers)
    results: list[QuantumCircuit | None] = [None] * len(circuits)
    _SHARED.update(run=run, circuits=circuits)
    try:
        with ProcessPoolExecutor(
            max_workers=len(groups),
            mp_context=multiprocessing.get_context("fork"),
            initializer=_worker_init,
        ) as pool:
            for chunk in pool.map(_compile_chunk, groups):
                for index, compiled in chunk:
                    results[index] = compiled
    finally:
        _SHARED.clear()
    return results  # type: ignore[return-value]


class ParallelPassManager(PassManager):
    """A :class:`~qiskit.transpiler.PassManager` that compiles lists in parallel.

    ``run(circuit)`` is unchanged. ``run([...])`` of several circuits uses
    :func:`run_parallel` (forked workers, one per usable core) unless a ``callback`` is
    given, which must run in this process; the result is the same list, in order, as
    the serial run would give.
    """

    def run(  # pylint: disable=arguments-differ
        self,
        circuits,
        output_name: str | None = None,
        callback: Callable | None = None,
        num_processes: int | None = None,
    ):
        if (
            isinstance(circuits, (list, tuple))
            and len(circuits) > 1
            and callback is None
            and output_name is None
            and all(isinstance(c, QuantumCircuit) for c in circuits)
        ):
            return run_parallel(super().run, circuits, num_processes=num_processes)
        return super().run(circuits, output_name, callback, num_processes=num_processes)
