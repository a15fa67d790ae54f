"""Job execution: queue wait, the running-jobs cap or the per-backend fair-share machine
(``queue_model``), modelled execution time, simulation.

Each job is one asyncio task on the server loop. The CPU-bound simulation runs in a
small thread pool while the task sleeps out the modelled execution time, so the
wall time of a job is ``max(model, simulation)`` after its queue wait.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import time
from typing import Callable

import numpy as np

from . import aer_simulator as aer
from . import mitigation
from . import simulator as sim
from .circuits import ParsedCircuit, iter_probabilities
from .config import ServerConfig
from .jobs import SHOTS_V2, Job
from .machine import Machines
from .noise_models import NoiseModel
from .qasm import sample_program, shots_artifact
from .sim_process import SimulationPool

LOG = logging.getLogger(__name__)


def job_rng(job: Job, server_seed: int | None) -> np.random.Generator:
    """The RNG for a job's noise/sampling: ``noise.seed`` if given, else derived from the
    server seed and the job's sequence number, else fresh entropy."""
    if job.spec.noise_seed is not None:
        return np.random.default_rng([job.spec.noise_seed, job.circuit_index])
    if server_seed is not None:
        return np.random.default_rng([server_seed, job.seq, job.circuit_index])
    return np.random.default_rng()


# Ideal circuits up to this width that :func:`simulator.batchable` takes run on the batched
# numpy kernel; everything else on Aer. Chosen from ``benchmarks/server_sim.py`` (the Aer
# vs numpy table in docs/server.rst): below this width numpy's batch beats Aer's per-circuit
# cost, at and above it Aer wins.
NUMPY_MAX_QUBITS = 12

# Physical qubits of each simulated QPU (for the debiasing variants' ``qubit_map``).
QPU_QUBITS = {"qpu.aria-1": 25, "qpu.aria-2": 25, "qpu.forte-1": 36,
              "qpu.forte-enterprise-1": 36}


def _numpy_batch(circuit: ParsedCircuit | None) -> bool:
    return (circuit is not None and circuit.num_qubits <= NUMPY_MAX_QUBITS
            and sim.batchable(circuit.num_qubits, circuit.gates))


def _simulate_program(job: Job, noise: NoiseModel, server_seed: int | None) -> None:
    spec = job.spec
    assert spec.program is not None
    rng = job_rng(job, server_seed)
    if noise.is_ideal:  # the exact branching sampler
        outcomes = sample_program(spec.program, spec.shots, rng)
    else:  # per-gate noise: Aer trajectories
        outcomes = aer.simulate_program(spec.program, spec.shots, noise, rng)
    hist: dict[int, int] = {}
    for value in outcomes:
        hist[value] = hist.get(value, 0) + 1
    job.probabilities_json = json.dumps(
        {str(k): v / spec.shots for k, v in sorted(hist.items())}
    )
    aid = f"{job.id}-shots"
    job.artifacts[SHOTS_V2] = aid
    job.artifact_payloads[aid] = shots_artifact(spec.program, outcomes)


def _frequencies_json(histogram: dict[int, int], shots: int) -> str:
    return json.dumps({str(k): v / shots for k, v in sorted(histogram.items())})


def _probabilities_json(probabilities: dict[int, float]) -> str:
    return "{" + ",".join(f'"{k}":{v!r}' for k, v in sorted(probabilities.items())) + "}"


def _simulate_debiased(child: Job, circuit: ParsedCircuit, noise: NoiseModel,
                       rng: np.random.Generator) -> None:
    """Run the symmetrized variants of one circuit (see :mod:`.mitigation`)."""
    spec = child.spec
    device = QPU_QUBITS.get(spec.backend, circuit.num_qubits)
    variants: dict[str, mitigation.Variant] = {}
    for variant_id, qubit_map, layout, shots in mitigation.plan_variants(
            circuit.num_qubits, device, spec.shots, rng):
        result = aer.simulate_circuit(circuit, shots, noise, rng, layout=layout)
        variants[variant_id] = mitigation.Variant.from_histogram(
            variant_id, qubit_map, result.histogram, int(rng.integers(2**63 - 1)))
    # Set as attributes: on this branch ``Job`` declares neither field (jobs.py is the
    # HTTP layer's); readers use ``getattr(job, "variants", None)`` (see :mod:`.mitigation`).
    setattr(child, "variants", variants)  # noqa: B010
    setattr(child, "sharpened_json", _probabilities_json(  # noqa: B010
        mitigation.aggregate_variants(variants.values(), sharpen=True)))
    child.histogram = mitigation.merge_histograms(
        [v.histogram for v in variants.values() if v.histogram])
    child.probabilities_json = _probabilities_json(
        mitigation.aggregate_variants(variants.values(), sharpen=False))


def simulate_job(job: Job, server_seed: int | None) -> None:
    """Compute the results of ``job`` (and its children) in place. CPU-bound.

    Per circuit: ideal circuits the batched numpy kernel is faster for (see
    :data:`NUMPY_MAX_QUBITS`) run there, all others on qiskit-aer
    (:mod:`.aer_simulator`: IonQ's per-gate noise models, bounded results); a QPU job with
    debiasing runs its symmetrized variants (:mod:`.mitigation`) and keeps them on
    ``job.variants``.
    """
    spec = job.spec
    if spec.dry_run:
        return
    noise = sim.NOISE_MODELS[spec.noise_model]
    if spec.program is not None:
        _simulate_program(job, noise, server_seed)
        return
    targets = job.children if job.children else [job]
    debias = mitigation.debiasing_requested(spec.settings, spec.gateset, spec.shots,
                                            spec.backend)
    # Small ideal circuits are simulated together in one numpy batch, up front.
    batched = [t for t in targets if noise.is_ideal and not debias and _numpy_batch(t.circuit)]
    batch_probs = dict(zip((id(t) for t in batched),
                           iter_probabilities([t.circuit for t in batched
                                               if t.circuit is not None])))
    for child in targets:
        circuit = child.circuit
        assert circuit is not None
        if circuit.num_qubits > noise.max_qubits:
            raise ValueError(f"noise model '{noise.name}' simulates at most "
                             f"{noise.max_qubits} qubits; the circuit has {circuit.num_qubits}")
        rng = job_rng(child, server_seed)
        probs = batch_probs.pop(id(child), None)
        if probs is not None:
            # Like IonQ's ideal simulator: exact probabilities (the sampled histogram
            # and per-shot outcomes are offered besides them).
            child.probabilities_json = sim.probability_json(probs)
            child.histogram = sim.sample_histogram(probs, spec.shots, rng)
        elif debias:
            _simulate_debiased(child, circuit, noise, rng)
        else:
            result = aer.simulate_circuit(circuit, spec.shots, noise, rng)
            child.histogram = result.histogram
            child.probabilities_json = (
                _probabilities_json(result.probabilities) if result.probabilities is not None
                else _frequencies_json(result.histogram, spec.shots))
        child.sample_seed = int(rng.integers(2**63 - 1))


def bound_results(job: Job, max_entries: int) -> None:
    """Keep each circuit's stored probability map within ``max_entries`` outcomes.

    An exact distribution of a dense state (more non-zero outcomes than
    ``max_entries``) is replaced by the frequencies of the job's sampled shots, which
    has at most ``shots`` entries, so no result holds a dense ``2**n`` map.
    """
    for target in [job, *job.children]:
        text = target.probabilities_json
        if text is None or target.histogram is None:
            continue
        # Entries are "key": value pairs; counting colons avoids decoding the map.
        if text.count(":") > max_entries and len(target.histogram) < text.count(":"):
            shots = sum(target.histogram.values()) or 1
            target.probabilities_json = json.dumps(
                {str(k): v / shots for k, v in sorted(target.histogram.items())})


# ``failure`` records (IonQ's ``Failure`` schema: ``{code, message}``).
CANCELED = {"code": "SystemCancel", "message": "the job was canceled on request"}


class JobRunner:
    """Runs jobs on the server's event loop.

    Args:
        config: The server configuration.
        on_settled: Called with a top-level job when it reaches a final status (the
            job store re-charges its byte budget).
    """

    def __init__(self, config: ServerConfig, on_settled: Callable[[Job], None] | None = None):
        self.config = config
        self.on_settled = on_settled
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="qstore-sim"
        )
        self._semaphore: asyncio.Semaphore | None = None
        # queue_model="fair_share": one machine per backend (see :mod:`.machine`).
        self.machines = Machines()
        # Request validation runs here too, off the event loop.
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="qstore-parse"
        )
        self._tasks: dict[str, asyncio.Task] = {}
        # Large jobs simulate in a worker process (see :mod:`.sim_process`).
        self.processes = SimulationPool(config, self.executor)

    def _sem(self) -> asyncio.Semaphore | None:
        if self.config.max_running_jobs is None:
            return None
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.config.max_running_jobs)
        return self._semaphore

    def predicted_exec_seconds(self, job: Job) -> float:
        """Modelled execution time of ``job`` (without an injected late result)."""
        return self.config.job_execution_seconds(job.spec.native_gate_counts, job.spec.shots)

    def submit(self, job: Job) -> asyncio.Task:
        """Start ``job``'s task; returns it."""
        job.predicted_wait = self.config.queue_wait
        job.predicted_exec = self.predicted_exec_seconds(job)
        task = asyncio.get_running_loop().create_task(self._run(job), name=f"job-{job.id}")
        self._tasks[job.id] = task
        task.add_done_callback(lambda _t, jid=job.id: self._tasks.pop(jid, None))
        return task

    def cancel(self, job: Job) -> bool:
        """Cancel ``job``: an active one stops, a completed one (as IonQ v0.4 allows)
        becomes ``canceled`` and drops its results. Failed and canceled jobs stay as they
        are. Returns whether the status changed."""
        if job.status in ("failed", "canceled"):
            return False
        was_completed = job.status == "completed"
        self._set_status(job, "canceled")
        for j in [job, *job.children]:
            j.failure = dict(CANCELED)
            if was_completed:
                j.probabilities_json = None
                j.histogram = None
                j.artifact_payloads = {}
                j.artifacts = {}
                j.variants = {}
                j.sharpened_json = None
        task = self._tasks.get(job.id)
        if task is not None:
            task.cancel()
        return True

    @staticmethod
    def _set_status(job: Job, status: str, now: float | None = None) -> None:
        for j in [job, *job.children]:
            j.status = status
            if status == "started":
                j.started = now
            elif status in ("completed", "failed"):
                j.completed = now

    async def _run(self, job: Job) -> None:
        cfg = self.config
        try:
            if cfg.queue_wait > 0:
                await asyncio.sleep(cfg.queue_wait)
            if job.status == "canceled":
                return
            self._set_status(job, "ready")
            machine = (self.machines.get(job.spec.backend)
                       if cfg.queue_model == "fair_share" else None)
            if machine is not None:
                await machine.acquire(job.org)
            sem = self._sem()
            if sem is not None:
                try:
                    await sem.acquire()
                except BaseException:
                    if machine is not None:
                        machine.release()
                    raise
            try:
                if job.status == "canceled":
                    return
                start = time.time()
                self._set_status(job, "started", start)
                exec_time = job.predicted_exec
                if job.fault == "late_result":
                    exec_time += cfg.late_result_delay
                loop = asyncio.get_running_loop()
                if self.processes.wants(job):
                    future = loop.create_task(self.processes.simulate(job, cfg.seed))
                else:
                    future = loop.run_in_executor(self._executor, simulate_job, job, cfg.seed)
                try:
                    if exec_time > 0:
                        await asyncio.sleep(exec_time)
                    await future
                except asyncio.CancelledError:
                    future.cancel()  # a worker process is killed; a thread runs out
                    raise
                except Exception as exc:  # pylint: disable=broad-except
                    LOG.exception("simulation of job %s failed", job.id)
                    self._fail(job, "SimulationError", f"simulation failed: {exc}")
                    return
                if job.status == "canceled":
                    return
                if job.fault == "job_failed":
                    self._fail(job, "InternalError",
                               "Job failed during execution (injected fault)")
                    return
                bound_results(job, cfg.max_result_entries)
                self._set_status(job, "completed", time.time())
            finally:
                if sem is not None:
                    sem.release()
                if machine is not None:
                    machine.release()
        except asyncio.CancelledError:
            if job.status in ("submitted", "ready", "started"):
                self._set_status(job, "canceled")
            raise
        finally:
            if self.on_settled is not None and job.status in ("completed", "failed",
                                                              "canceled"):
                self.on_settled(job)

    def _fail(self, job: Job, code: str, message: str) -> None:
        now = time.time()
        for j in [job, *job.children]:
            j.failure = {"code": code, "message": message}
            j.probabilities_json = None
            j.histogram = None
        self._set_status(job, "failed", now)

    async def shutdown(self) -> None:
        """Cancel running jobs and stop the thread pools and simulation workers."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(None, self.processes.shutdown)
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.executor.shutdown(wait=True, cancel_futures=True)


__all__ = ["JobRunner", "simulate_job", "job_rng", "NUMPY_MAX_QUBITS", "QPU_QUBITS"]
