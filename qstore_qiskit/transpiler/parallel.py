"""Compile many distinct circuits in parallel processes.

Qiskit compiles a list of circuits in one process unless parallelism is switched on
(``QISKIT_PARALLEL=TRUE`` and ``QISKIT_NUM_PROCS`` of at least 2, or ``num_processes``),
and then ships the pickled pass manager with every circuit to a process pool.
:func:`run_parallel` instead forks one worker per *extra* usable core, each inheriting the
compile function and the input circuits from the parent (nothing is pickled on the way
in; only the results come back through a pipe), while the calling process compiles its
own share; the work is balanced by circuit size, largest first. Forking two workers
through a process pool costs 50-300 ms on a loaded 2-core machine; one ``os.fork`` costs
10-30 ms. It falls back to a plain loop whenever parallelism cannot pay off: one
circuit, one usable core, little total work, a machine with no idle core (load
average), a platform without ``fork``, inside a worker, or while another thread of the
process runs a parallel batch.

:class:`ParallelPassManager` is a :class:`~qiskit.transpiler.PassManager` whose
``run`` on a list goes through :func:`run_parallel` (and on one circuit calls the passes
directly);
:func:`~qstore_qiskit.transpiler.generate_ionq_pass_manager` returns one.
"""

from __future__ import annotations

import logging
import operator
import os
import pickle
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from qiskit import QuantumCircuit
from qiskit.circuit import AncillaQubit
from qiskit.dagcircuit import DAGCircuit
from qiskit.passmanager import PropertySet
from qiskit.passmanager.flow_controllers import ConditionalController
from qiskit.transpiler import PassManager
from qiskit.transpiler.basepasses import BasePass, TransformationPass
from qiskit.transpiler.exceptions import TranspilerError

try:  # Qiskit's Rust conversion, as qiskit.converters.dag_to_circuit calls it
    from qiskit._accelerate.converters import dag_to_circuit as _dag_to_circuit_data
except ImportError:  # pragma: no cover - another Qiskit layout: Qiskit's own backend
    _dag_to_circuit_data = None

__all__ = ["ParallelPassManager", "run_parallel", "parallel_workers", "usable_cores", "MIN_PARALLEL_OPS", "STATS"]

_T = TypeVar("_T")

#: Below this many instructions in total, a batch is compiled in-process: forking and
#: returning results (10-30 ms, more on a loaded machine) would cost more than it saves
#: (the qstore compiler takes about 0.1-0.2 ms per input instruction at 8-12 qubits).
MIN_PARALLEL_OPS = 600

#: Set in workers (also read by Qiskit's Rust code: no nested thread pools there).
_IN_WORKER_ENV = "QISKIT_IN_PARALLEL"

# One parallel batch at a time per process: another thread compiling at the same time
# runs its batch in-process instead of waiting (and a worker never forks again).
_POOL_LOCK = threading.Lock()

#: Qiskit's per-pass timing log (``INFO``), written by its task runner.
_PASS_LOG = logging.getLogger("qiskit.passmanager.base_tasks")

#: How many batches :func:`parallel_workers` sent to workers and kept in-process
#: (process-wide counters, for benchmarks and diagnosis).
STATS = {"parallel_batches": 0, "serial_batches": 0}


def usable_cores() -> int:
    """Cores this process may run on (CPU affinity, else the CPU count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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


def parallel_workers(
    sizes: Sequence[int], num_processes: int | None = None, min_ops: int | None = None
) -> int:
    """How many worker processes :func:`run_parallel` would use for jobs of ``sizes``.

    Returns 1 (compile in-process) for fewer than two jobs, one usable core (CPU
    affinity, see :func:`usable_cores`; ``QISKIT_NUM_PROCS``, when set, caps the default
    ``num_processes``), less than ``min_ops`` instructions in total
    (default :data:`MIN_PARALLEL_OPS`), inside a worker, without ``fork``, or when the
    1-minute load average shows no idle core for the workers.
    """
    if num_processes is None:
        num_processes = usable_cores()
        # Qiskit's own setting of the process count caps ours (1 switches it off).
        env = os.environ.get("QISKIT_NUM_PROCS", "").strip()
        if env.isdigit():
            num_processes = min(num_processes, max(int(env), 1))
    workers = min(num_processes, len(sizes))
    if min_ops is None:
        min_ops = MIN_PARALLEL_OPS
    if (
        workers < 2
        or sum(sizes) < min_ops
        or os.environ.get(_IN_WORKER_ENV) == "TRUE"
        or not hasattr(os, "fork")
        or _cores_busy(workers)
    ):
        STATS["serial_batches"] += 1
        return 1
    STATS["parallel_batches"] += 1
    return workers


def _cores_busy(workers: int) -> bool:
    """Whether the machine is too busy for ``workers`` processes to help: a 1-minute
    load average of ``workers + 0.5`` or more (this process counts for one). Measured
    on a shared 2-core machine at load 9-11, forked workers made ``backend.run`` of 24
    circuits 2x *slower* (copy-on-write faults and pickling, no idle core to gain)."""
    try:
        return os.getloadavg()[0] >= workers + 0.5
    except (AttributeError, OSError):  # no load average on this platform
        return False


def run_parallel(
    run: Callable[[QuantumCircuit], _T],
    circuits: Sequence[QuantumCircuit],
    num_processes: int | None = None,
    min_ops: int | None = None,
) -> list[_T]:
    """Apply ``run`` to every circuit, in forked worker processes when that pays off.

    Args:
        run: The per-circuit compile function, e.g. ``pass_manager.run``. It is
            inherited by the workers through ``fork``, so it need not be picklable; its
            return values travel back pickled.
        circuits: The circuits to compile.
        num_processes: Processes, this one included (default: the usable cores, at
            most one per circuit).
        min_ops: Compile in-process when the circuits hold fewer instructions in total
            (default :data:`MIN_PARALLEL_OPS`).

    Returns:
        The results, in input order. An exception raised by ``run`` propagates (the
        earliest in input order of those raised; each process stops at its first). A
        worker that dies raises :class:`RuntimeError`. In-process (see
        :func:`parallel_workers`, and while another thread of this process runs a
        parallel batch) it is exactly ``[run(c) for c in circuits]``.
    """
    circuits = list(circuits)
    sizes = [len(c.data) for c in circuits]
    workers = parallel_workers(sizes, num_processes, min_ops)
    if workers < 2 or not _POOL_LOCK.acquire(blocking=False):
        return [run(c) for c in circuits]
    try:
        groups = _chunks(sizes, workers)
        results: list[Any] = [None] * len(circuits)
        children: list[tuple[int, int]] = []
        try:
            for group in groups[1:]:
                children.append(_fork_worker(run, circuits, group))
            failures: list[tuple[int, BaseException]] = []
            for index in groups[0]:  # this process's share
                try:
                    results[index] = run(circuits[index])
                except Exception as exc:  # noqa: BLE001 - raised below, after the workers
                    failures.append((index, exc))
                    break
            for pid, fd in children:
                status, payload = _collect(pid, fd)
                if status == "ok":
                    for index, value in payload:
                        results[index] = value
                else:
                    failures.append(payload)
            children = []
        finally:
            for pid, fd in children:  # an error here: stop and reap the workers
                _reap(pid, fd)
        if failures:
            raise min(failures, key=lambda f: f[0])[1]
    finally:
        _POOL_LOCK.release()
    return results


def _fork_worker(run: Callable, circuits: list[QuantumCircuit], group: list[int]) -> tuple[int, int]:
    """Fork a worker that runs ``group`` and pickles its results into a pipe."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: never returns
        status = 1
        try:
            os.close(read_fd)
            os.environ[_IN_WORKER_ENV] = "TRUE"
            out: list[tuple[int, Any]] = []
            try:
                for index in group:
                    out.append((index, run(circuits[index])))
                data = pickle.dumps(("ok", out), protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                try:
                    data = pickle.dumps(("error", (index, exc)), protocol=pickle.HIGHEST_PROTOCOL)
                except Exception:  # noqa: BLE001 - an exception that does not pickle
                    err = RuntimeError(f"compile failed in a worker: {exc!r}")
                    data = pickle.dumps(("error", (index, err)))
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(data)
            status = 0
        finally:
            os._exit(status)  # no atexit handlers or buffered output of the parent
    os.close(write_fd)
    return pid, read_fd


def _collect(pid: int, fd: int) -> tuple[str, Any]:
    """Read a worker's pickled results (until it closes the pipe) and reap it."""
    with os.fdopen(fd, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        return "error", (-1, RuntimeError(f"compile worker {pid} died (wait status {status})"))
    # Our own forked child's output, not outside input.
    return pickle.loads(data)  # noqa: S301


def _reap(pid: int, fd: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        os.close(fd)
    except OSError:
        pass
    try:
        os.waitpid(pid, 0)
    except OSError:
        pass


#: Markers of where a nested list or tuple of a pass list starts and ends, in a snapshot.
_OPEN, _CLOSE = object(), object()


def _snapshot(tasks: Any, out: list | None = None) -> list:
    """A pass list flattened with markers around its nested lists and tuples: the
    objects it holds, in order (compared by identity: passes with equal arguments
    compare equal)."""
    if out is None:
        out = []
    for task in tasks:
        if type(task) is list or type(task) is tuple:
            out.append(_OPEN)
            _snapshot(task, out)
            out.append(_CLOSE)
        else:
            out.append(task)
    return out


def _same_shape(old: list, new: list) -> bool:
    """Whether two snapshots hold the same objects in the same places."""
    return len(old) == len(new) and all(map(operator.is_, old, new))


def _plain_backend(property_set: PropertySet) -> bool:
    """Whether Qiskit's ``PassManager._passmanager_backend`` would only convert the DAG
    and copy the two latencies: no layout to attach, no schedule to convert."""
    return (
        property_set["layout"] is None
        and property_set["final_layout"] is None
        and property_set["virtual_permutation_layout"] is None
        and not property_set["node_start_time"]
    )


def _dag_to_circuit(dag: DAGCircuit) -> QuantumCircuit:
    """``qiskit.converters.dag_to_circuit(dag, copy_operations=False)``, the same circuit.

    Written out here because Qiskit's version builds its circuit with every register
    and bit of the DAG (``QuantumCircuit(dag.qubits, dag.clbits, *registers)``, 30-40 us)
    and then replaces the circuit's data by the converted data, which holds all of them
    already; here the circuit is constructed empty, as ``QuantumCircuit.from_circuit_data``
    does, and given that data. Name, global phase, metadata (not copied), duration and
    unit are set as Qiskit's conversion sets them.
    """
    # pylint: disable=protected-access
    data = _dag_to_circuit_data(dag, False)
    circuit = QuantumCircuit(name=dag.name or None)
    circuit._data = data
    circuit._ancillas = [bit for bit in data.qubits if isinstance(bit, AncillaQubit)]
    circuit.metadata = dag.metadata or {}
    circuit._duration = dag._duration
    circuit._unit = dag._unit
    return circuit


class ParallelPassManager(PassManager):
    """A :class:`~qiskit.transpiler.PassManager` that compiles lists in parallel.

    ``run([...])`` of several circuits uses :func:`run_parallel` (the calling process
    plus one forked worker per further usable core) unless a ``callback`` is given,
    which must run in this process; the result is the same list, in order, as the
    serial run would give. ``run(circuit)`` of one circuit calls the passes directly
    (:meth:`_run_direct`) when Qiskit's task runner would decide nothing (no callback,
    no ``requires``, no pass listed twice, Qiskit's pass log off): the same output and
    property set, without the runner's per-pass bookkeeping (several percent of a
    small circuit's compile).
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
            return run_parallel(self.run, circuits, num_processes=num_processes)
        if isinstance(circuits, QuantumCircuit) and callback is None and output_name is None:
            steps = self._direct_steps()
            if steps is not None:
                return self._run_direct(circuits, steps)
        return super().run(circuits, output_name, callback, num_processes=num_processes)

    def _direct_steps(self) -> list | None:
        """The pass list as plain steps for :meth:`_run_direct`, or ``None`` when it holds
        anything that needs Qiskit's flow machinery.

        A step is a pass, or ``(condition, passes)`` for a
        :class:`~qiskit.passmanager.ConditionalController` of passes. Direct running
        needs every pass to appear once and to have no ``requires`` (then Qiskit's
        runner never skips a pass as already done), and Qiskit's per-pass ``INFO`` log
        to be off (it is what the direct runner leaves out).
        """
        if _PASS_LOG.isEnabledFor(logging.INFO):
            return None
        # The steps depend only on the pass list: remembered with the objects it held
        # (a snapshot; controllers keep their tasks in tuples), so that a small circuit's
        # compile does not flatten and check the list again (30 us of its ~1 ms). Any
        # change of the list (append, replace, remove, or in place) gives a new snapshot.
        shape = _snapshot(self._tasks)
        cached = self.__dict__.get("_direct_cache")
        if cached is not None and _same_shape(cached[0], shape):
            return cached[1]
        steps = self._plain_steps()
        self._direct_cache = (shape, steps)
        return steps

    def _plain_steps(self) -> list | None:
        """:meth:`_direct_steps` without the cache."""
        steps: list = []
        seen: set[int] = set()

        def plain(task) -> bool:
            if not isinstance(task, BasePass) or task.requires or id(task) in seen:
                return False
            seen.add(id(task))
            return True

        for task in self._flatten_tasks(self._tasks):
            if isinstance(task, ConditionalController) and task.condition is not None:
                if not all(plain(t) for t in task.tasks):
                    return None
                steps.append((task.condition, task.tasks))
            elif plain(task):
                steps.append(task)
            else:
                return None
        return steps

    def _run_direct(self, circuit: QuantumCircuit, steps: list) -> QuantumCircuit:
        """Run ``steps`` on one circuit as Qiskit's ``PassManager.run`` would, calling the
        passes directly.

        Same frontend and backend conversions (``_passmanager_frontend`` /
        ``_passmanager_backend``), one property set shared by the passes and left on
        ``self.property_set``, each pass run once in order, a condition read when its
        controller is reached, the same check of a transformation pass's return value.
        What Qiskit's task machinery adds per pass (the workflow status, two clock reads,
        a log call, a callback check; measured at 0.1-0.2 ms of CPU and 6% of the
        instructions for the seven passes of a 4-qubit circuit's 1-2 ms compile) is left
        out: with one instance of each pass and no ``requires``, it decides nothing.
        """
        self.property_set = PropertySet()
        dag = self._passmanager_frontend(circuit)
        for step in steps:
            if isinstance(step, tuple):
                condition, passes = step
                if not condition(self.property_set):
                    continue
            else:
                passes = (step,)
            for task in passes:
                task.property_set = self.property_set
                out = task.run(dag)
                if not isinstance(out, DAGCircuit) and isinstance(task, TransformationPass):
                    raise TranspilerError(
                        "Transformation passes should return a transformed dag."
                        f"The pass {type(task).__name__} is returning a {type(out)}"
                    )
                if out is not None:
                    dag = out
        if (
            _dag_to_circuit_data is None
            or type(self)._passmanager_backend is not PassManager._passmanager_backend
            or not _plain_backend(self.property_set)
        ):
            return self._passmanager_backend(dag, circuit)
        # What _passmanager_backend does when the passes left no layout and no schedule.
        out_program = _dag_to_circuit(dag)
        out_program._clbit_write_latency = self.property_set["clbit_write_latency"]
        out_program._conditional_latency = self.property_set["conditional_latency"]
        return out_program
