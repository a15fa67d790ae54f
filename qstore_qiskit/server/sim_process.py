"""Simulating large jobs in a worker process, so the event loop keeps the GIL.

The simulators are partly Python (the batched numpy kernel loops over gates, Aer's
circuit building and result handling are Python): a job that simulates for a second in
a server thread delays every other request by hundreds of milliseconds. A job whose
:func:`simulation_work` is at least ``ServerConfig.process_simulation_work`` is simulated
by :class:`SimulationPool`'s worker process instead (the same pipe-and-frames worker as
:mod:`.decode`: a fresh interpreter, never ``multiprocessing``, no API key, and what
comes back is unpickled by the restricted unpickler of :mod:`.decode`). Smaller jobs
stay in the server's simulation threads: the hop costs a few milliseconds plus
pickling.

The worker runs the very :func:`~.runner.simulate_job` the threads run, on a job
rebuilt with the same ids, sequence numbers and seeds, so results are identical for a
given seed. Only circuit jobs go to the worker; OpenQASM programs (small by their
caps) stay in-thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sys
from typing import Any

from .config import ServerConfig
from .decode import PackedSpec, _dumps, _loads, _read_frame, _Worker, _write_frame
from .jobs import Job

# How much lower the simulation worker's CPU priority is than the server's.
WORKER_NICENESS = 10

# The per-gate cost of the simulators' Python loop, in amplitude updates.
GATE_OVERHEAD = 64

# The result fields :func:`~.runner.simulate_job` sets on each job.
RESULT_FIELDS = ("probabilities_json", "histogram", "sample_seed", "variants",
                 "sharpened_json", "artifacts", "artifact_payloads")


def simulation_work(job: Job) -> int:
    """A job's simulation cost estimate: per circuit, gates x (``2**qubits`` + a
    per-gate overhead), plus the shots to sample."""
    spec = job.spec
    if spec.program is not None or spec.dry_run:
        return 0
    return sum(len(c.gates) * ((1 << c.num_qubits) + GATE_OVERHEAD) + spec.shots
               for c in spec.circuits)


def _targets(job: Job) -> list[Job]:
    return [job, *job.children]


def pack_job(job: Job, server_seed: int | None) -> bytes:
    """What the worker needs to rebuild ``job`` (runs in a thread: the gates are
    pickled in chunks, so the GIL is let go between them)."""
    ids = [(t.id, t.seq, t.parent_id, t.circuit_index) for t in _targets(job)]
    return _dumps((PackedSpec.pack(job.spec), ids, server_seed))


def _simulate_packed(frame: bytes) -> list[dict[str, Any]]:
    """In the worker: rebuild the job, simulate it, return each target's results."""
    from .runner import simulate_job  # pylint: disable=import-outside-toplevel

    packed, ids, server_seed = _loads(frame)
    spec = packed.unpack()
    (jid, seq, parent, index), *children = ids
    job = Job(id=jid, spec=spec, seq=seq, parent_id=parent, circuit_index=index)
    job.children = [Job(id=c, spec=spec, seq=s, parent_id=p, circuit_index=i)
                    for c, s, p, i in children]
    simulate_job(job, server_seed)
    return [{name: getattr(t, name, None) for name in RESULT_FIELDS} for t in _targets(job)]


def warm_up() -> None:
    """Import what a simulation needs (the simulators, Qiskit and Aer), so that a worker
    started ahead of time does not spend its first job importing."""
    # pylint: disable=import-outside-toplevel,unused-import
    from qiskit import QuantumCircuit  # noqa: F401
    from qiskit_aer import AerSimulator  # noqa: F401

    from . import runner  # noqa: F401


def worker_main() -> int:
    """The worker: a config frame (unused), then job frames answered with
    ``("ok", results)`` or ``("error", message)``, until stdin closes."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but frames on the pipe
    if _read_frame(stdin) is None:
        return 0
    if hasattr(os, "nice"):
        # Below the server's priority: its event loop (and the decode worker on a
        # request's path) win the CPU over this warm-up and over long simulations.
        try:
            os.nice(WORKER_NICENESS)
        except OSError:  # pragma: no cover - not permitted: run at the same priority
            pass
    warm_up()  # while no job waits (a job frame sent meanwhile waits in the pipe)
    while True:
        frame = _read_frame(stdin)
        if frame is None:
            return 0
        try:
            result: Any = ("ok", _simulate_packed(frame))
        except Exception as exc:  # pylint: disable=broad-except  # the job fails cleanly
            result = ("error", f"{type(exc).__name__}: {exc}")
        del frame
        _write_frame(stdout, _dumps(result))


def apply_results(job: Job, results: list[dict[str, Any]]) -> None:
    """Set the worker's results on ``job`` and its children (same order)."""
    targets = _targets(job)
    if len(results) != len(targets):
        raise RuntimeError("simulation worker answered for the wrong number of circuits")
    for target, fields in zip(targets, results):
        for name, value in fields.items():
            if name in RESULT_FIELDS:
                setattr(target, name, value)


class SimulationWorkerError(RuntimeError):
    """The simulation worker died or answered garbage (the job fails)."""


class SimulationPool:
    """Worker processes that simulate large jobs.

    One worker is started with the server (:meth:`prestart`: it imports the simulators
    while the server already serves), so that the first large job does not wait a
    second or so for it (unless ``config.prestarts_workers()`` is false: then the first
    large job starts it); more start on demand, and each serves later jobs. At most
    ``config.simulation_processes`` run at once, and a job waits for a free one. A
    cancelled job's worker is killed (its result would be discarded anyway, and the CPU
    is freed at once); the next large job starts a new one. An idle worker found dead
    (killed, out of memory) is reaped and replaced when a job needs it. A worker that
    dies mid-job fails that job with a message.

    Args:
        config: The server configuration (the worker gets a copy without the API key).
        threads: Threads that pack jobs and unpack results.
    """

    def __init__(self, config: ServerConfig,
                 threads: concurrent.futures.ThreadPoolExecutor) -> None:
        self.config = config
        self.threads = threads
        n = max(1, config.simulation_processes)
        self._io = concurrent.futures.ThreadPoolExecutor(
            max_workers=n, thread_name_prefix="qstore-simproc")
        self._slots: asyncio.Semaphore | None = None
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []
        self._closed = False
        self.jobs_in_process = 0  # jobs simulated by a worker
        self.in_worker = 0  # jobs at a worker right now (loop-confined counter)
        self.restarted = 0  # idle workers found dead and replaced

    def wants(self, job: Job) -> bool:
        """Whether ``job`` is simulated in a worker process."""
        return (self.config.simulation_processes > 0 and not self._closed
                and simulation_work(job) >= self.config.process_simulation_work)

    def _start(self) -> _Worker:
        worker = _Worker(self.config, module="qstore_qiskit.server.sim_worker")
        self._all.append(worker)
        return worker

    def prestart(self) -> None:
        """Start one idle worker now (none with ``simulation_processes=0``, or if one
        runs already). ``Popen`` returns at once; the worker imports while the server
        serves."""
        if self.config.simulation_processes == 0 or self._closed or self._all:
            return
        self._idle.append(self._start())

    @property
    def workers(self) -> int:
        """Worker processes started and not known to have exited."""
        return len(self._all)

    def _take_idle(self) -> _Worker | None:
        """An idle worker that is still alive (dead ones are reaped), else ``None``."""
        while self._idle:
            worker = self._idle.pop()
            if worker.proc.poll() is None:
                return worker
            self.restarted += 1
            if worker in self._all:
                self._all.remove(worker)
            worker.close()  # already exited: closes its pipes without waiting
        return None

    def _exchange(self, worker: _Worker, request: bytes) -> bytes:
        try:
            return worker.call_raw(request)
        except (OSError, ValueError):
            worker.close()  # reap it (it died or was killed)
            raise

    async def simulate(self, job: Job, server_seed: int | None) -> None:
        """Simulate ``job`` in a worker and set its results.

        Raises:
            SimulationWorkerError: The worker died (or was killed) mid-job.
            RuntimeError: The simulation raised (its message).
        """
        loop = asyncio.get_running_loop()
        request = await loop.run_in_executor(self.threads, pack_job, job, server_seed)
        if self._slots is None:
            self._slots = asyncio.Semaphore(max(1, self.config.simulation_processes))
        async with self._slots:
            if self._closed:
                raise SimulationWorkerError("the server is shutting down")
            worker = self._take_idle() or await loop.run_in_executor(self._io, self._start)
            self.in_worker += 1
            try:
                frame = await loop.run_in_executor(self._io, self._exchange, worker, request)
            except asyncio.CancelledError:
                worker.kill()  # the thread reading its pipe sees the end and reaps it
                if worker in self._all:
                    self._all.remove(worker)
                raise
            except (OSError, ValueError):
                if worker in self._all:
                    self._all.remove(worker)
                raise SimulationWorkerError("the simulation worker exited") from None
            finally:
                self.in_worker -= 1
            self._idle.append(worker)
        status, payload = await loop.run_in_executor(self.threads, _loads, frame)
        if status != "ok":
            raise RuntimeError(payload)
        apply_results(job, payload)
        self.jobs_in_process += 1

    def shutdown(self) -> None:
        """Stop the worker processes (blocking: call in a thread or at exit)."""
        self._closed = True
        workers, self._all, self._idle = self._all, [], []
        for worker in workers:
            worker.kill()
        self._io.shutdown(wait=True, cancel_futures=True)
        for worker in workers:
            worker.close()


__all__ = ["SimulationPool", "SimulationWorkerError", "simulation_work", "worker_main"]
