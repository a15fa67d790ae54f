"""Configuration of the local IonQ-API server: limits, latency model and fault knobs.

A :class:`ServerConfig` is a frozen dataclass; the named :data:`PROFILES` are
starting points that :func:`dataclasses.replace` specialises (``LocalServer``
passes its keyword overrides through that).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Mapping

# Every fault kind the server can inject. ``http_*``, ``drop_connection`` and
# ``slow_response`` are request-level faults; ``job_failed``, ``late_result`` and
# ``create_response_lost`` only apply to job creation.
FAULT_KINDS: tuple[str, ...] = (
    "http_500",
    "http_502",
    "http_503",
    "drop_connection",
    "slow_response",
    "job_failed",
    "late_result",
    "create_response_lost",
)

# Faults that can be drawn for any request under ``/jobs``.
REQUEST_FAULT_KINDS: tuple[str, ...] = (
    "http_500",
    "http_502",
    "http_503",
    "drop_connection",
    "slow_response",
)

# Faults that only make sense for a job creation.
CREATE_ONLY_FAULT_KINDS: tuple[str, ...] = ("job_failed", "late_result", "create_response_lost")


# Memory the job store's history may take per entry (a compact summary: id, status,
# counts and metadata values of at most 128 characters; see jobs.Job.summary), and per
# remembered evicted id (a 36-character str in a dict). ServerConfig.memory_budget()
# reserves these.
HISTORY_ENTRY_BYTES = 4096
GONE_ID_BYTES = 160

# Environment variable that decides :attr:`ServerConfig.prestart_workers` when the field
# is left at ``None``: "0", "false", "no" or "off" starts the workers on demand.
PRESTART_ENV = "QSTORE_PRESTART_WORKERS"


#: The values of :attr:`ServerConfig.queue_model`.
QUEUE_MODELS: tuple[str, ...] = ("concurrent", "fair_share")


def _default_fault_weights() -> dict[str, float]:
    return {kind: 1.0 for kind in FAULT_KINDS}


@dataclass(frozen=True)
class ServerConfig:
    """Everything that shapes the server's behaviour.

    Times are in seconds. ``None`` for a limit means "unlimited".

    Attributes:
        api_key: Key accepted in ``Authorization: apiKey <KEY>``; ``None`` accepts any
            (or no) key. Never shown by ``repr``.
        max_qubits: Widest circuit the ideal simulator accepts (29, as IonQ's); also
            the qubit count advertised for the ``simulator`` backend. Noisy simulation
            is allowed up to the width of the QPU whose model it uses (and never wider
            than this). The simulated QPUs have their documented widths.
        max_shots: Largest ``shots`` value accepted.
        default_shots: Shots used when a job does not give any.
        max_circuits_per_job: Cap on circuits in a multicircuit job (413 beyond it).
        max_body_bytes: Largest request body accepted (413 beyond it, before decoding).
            Decoding holds the GIL, so this also bounds how long one request can pause
            the others.
        max_gates_per_circuit: Cap on instructions in one circuit (413 beyond it).
        max_job_work: Cap on the sampling work one job may ask for, in qubit-shots
            (qubits x shots summed over its circuits); 413 beyond it, before any work.
        max_job_amplitudes: Cap on the simulation size of one job, in state amplitudes
            (``2**qubits`` summed over its circuits); 413 beyond it. The default, 2**25,
            is 512 MiB of complex128 state (one 25-qubit circuit, or 32 of 20 qubits);
            IonQ's 29-qubit width needs 2**29 (8 GiB).
        max_result_entries: Most outcomes kept in one circuit's probability map. An
            exact distribution with more non-zero outcomes (a dense state) is stored as
            the frequencies of its sampled shots instead, so a result never holds a
            dense ``2**n`` map.
        job_store_bytes: Byte budget of the job store (requests and results). Beyond
            it the oldest finished jobs are evicted; their ids answer 410. Part of the
            server's memory budget (:meth:`memory_budget`).
        history_entries: How many of the latest jobs keep a compact summary after they
            leave the store (``LocalServer.jobs()``, at most 4 KiB each); older ones
            are only counted. Part of the memory budget.
        evicted_ids: How many evicted job ids answer 410 (older ones 404). Part of the
            memory budget.
        max_stored_jobs: Most top-level jobs kept (older finished ones are evicted).
        job_store_min_age: Seconds a finished job is kept whatever the budget, so that
            its client can fetch the results (the budget may be exceeded by the jobs of
            that window).
        max_sessions: Most sessions kept (ended ones are forgotten first).
        enforce_native_2q: Refuse ``ms`` on Forte-class and ``zz`` on Aria-class QPU
            backends with a 400, as IonQ's cloud does. Off by default for now: this
            project's compiler still emits MS for Forte-class targets.
        header_timeout: Seconds a connection may take to send a request's headers (or
            stay idle between requests) before it is closed.
        max_connections: Most open client connections. A connection beyond it closes
            the oldest one that is not serving a request (an idle keep-alive or a
            half-open connection that never finished its headers); if all are busy,
            the new connection is closed at once.
        listen_backlog: The kernel's accept queue of the listening socket (a full
            queue makes a client's connect wait for a SYN retransmit, a second or more).
            The server's accept front (:mod:`~.accept`) drains it in batches of 64.
        max_pending_connections: Most accepted connections that have not sent a byte
            yet, held as raw sockets by the accept front (no aiohttp handler); beyond
            it the oldest is closed. Also the most connections whose first bytes are
            an incomplete request head that the front holds (reading the head, at most
            8 KiB, until it is complete; closed :attr:`header_timeout` after their first
            byte); beyond it the oldest of them is closed. Only connections that have
            sent a complete request head (or 8 KiB of one) count against
            :attr:`max_connections`. (Without the front, on an event loop lacking
            ``add_reader``, every accepted connection counts there.)
        first_byte_timeout: Seconds an accepted connection may stay silent before it
            is closed (capped at :attr:`header_timeout`).
        max_body_bytes_in_flight: Most request-body bytes being received and decoded
            at once, over all connections (503 with ``Retry-After`` beyond it). With
            :attr:`max_body_bytes` it bounds the memory that requests in flight take.
        decode_processes: Worker processes that decode and validate large job bodies
            (those over :attr:`process_decode_bytes`), so that decoding never holds
            the event loop's GIL; 0 decodes them in a thread instead.
        process_decode_bytes: Bodies larger than this are decoded and validated in a
            worker process (smaller ones on the loop or in a thread).
        simulation_processes: Worker processes that simulate large jobs (those whose
            estimated work is at least :attr:`process_simulation_work`), so that a long
            simulation never holds the event loop's GIL; 0 simulates every job in the
            server's threads. A cancelled job's worker is killed and restarted on demand.
        process_simulation_work: Jobs whose estimated simulation work (per circuit,
            gates x (``2**qubits`` + 64), plus shots) reaches this are simulated in a
            worker process; smaller ones in a thread (the process hop costs a few ms).
        prestart_workers: Start one decode worker and one simulation worker with the
            server (``True``), so that the first large body or job finds a worker that
            has already imported its modules; or start them only when the first large
            body or job needs one (``False``: a server that never sees one never pays
            their start, about 2 s of CPU, and the first such request waits for it).
            ``None`` (the default): ``False`` if the environment variable
            ``QSTORE_PRESTART_WORKERS`` is ``0``, ``false``, ``no`` or ``off`` when the
            server starts, else ``True`` (see :meth:`prestarts_workers`).
        body_timeout: Seconds a request may take to send its body (408 beyond).
        network_delay: Base delay added to every request (models one round trip).
        network_jitter: Extra uniform ``[0, network_jitter)`` delay per request.
        queue_wait: Time a job waits in the queue before it may start.
        job_overhead: Fixed execution time per job.
        per_circuit_time: Execution time per circuit.
        per_shot_time: Execution time per shot, per circuit.
        per_gate_shot_time: Execution time per native gate, per shot.
        max_running_jobs: Cap on jobs executing at the same time (others wait).
        queue_model: How jobs share the service once their ``queue_wait`` is over.
            ``"concurrent"``: up to :attr:`max_running_jobs` jobs execute side by side
            (a cloud simulator). ``"fair_share"``: each backend is one machine that
            executes one job at a time; waiting jobs are queued per organization (per
            API key) and the machine serves the organizations round-robin, one job per
            turn, as IonQ documents its QPU queue manager (see
            :mod:`~qstore_qiskit.server.machine`). :attr:`max_running_jobs` still caps
            the jobs executing over all backends.
        inline_execution: Finish a job before answering its creation request, so a
            client's first status poll already sees it completed (``instant``). Only
            jobs whose estimated simulation work is at most :attr:`inline_max_work`.
        inline_max_work: With :attr:`inline_execution`, a job whose estimated
            simulation work (as for :attr:`process_simulation_work`) exceeds this is
            answered at once (status ``submitted``) and completes in the background,
            so that its creation request does not wait seconds for the simulation;
            ``None``: every job is finished before its creation is answered.
        rate_limit: Sustained requests per second per server (token bucket), ``None``
            for no limit; requests beyond it get 429 with ``Retry-After``.
        rate_limit_burst: Bucket size of the rate limiter.
        seed: Seed for fault schedule, noise and sampling (``None``: from entropy).
        fault_rate: Probability that a request under ``/jobs`` gets a fault.
        fault_weights: Relative weight of each fault kind in :data:`FAULT_KINDS`.
        slow_response_delay: How long a ``slow_response`` fault stalls.
        late_result_delay: Extra running time of a ``late_result`` job.
        access_log: Whether to write an aiohttp access log (never includes headers).
    """

    api_key: str | None = field(default=None, repr=False)
    max_qubits: int = 29
    max_shots: int = 1_000_000
    default_shots: int = 100
    max_circuits_per_job: int = 1000
    max_body_bytes: int = 8 * 1024 * 1024
    max_gates_per_circuit: int = 100_000
    max_job_work: int | None = 200_000_000
    max_job_amplitudes: int | None = 1 << 25
    max_result_entries: int = 1 << 16
    job_store_bytes: int | None = 256 * 1024 * 1024
    history_entries: int = 10_000
    evicted_ids: int = 100_000
    max_stored_jobs: int | None = 100_000
    job_store_min_age: float = 5.0
    max_sessions: int = 1000
    enforce_native_2q: bool = False
    header_timeout: float = 20.0
    body_timeout: float = 60.0
    max_connections: int = 256
    listen_backlog: int = 1024
    max_pending_connections: int = 1024
    first_byte_timeout: float = 5.0
    max_body_bytes_in_flight: int = 32 * 1024 * 1024
    decode_processes: int = 1
    process_decode_bytes: int = 1024 * 1024
    simulation_processes: int = 1
    process_simulation_work: int = 1 << 22
    prestart_workers: bool | None = None
    network_delay: float = 0.0
    network_jitter: float = 0.0
    queue_wait: float = 0.0
    job_overhead: float = 0.0
    per_circuit_time: float = 0.0
    per_shot_time: float = 0.0
    per_gate_shot_time: float = 0.0
    max_running_jobs: int | None = None
    queue_model: str = "concurrent"
    inline_execution: bool = True
    inline_max_work: int | None = 1 << 22
    rate_limit: float | None = None
    rate_limit_burst: int = 100
    seed: int | None = None
    fault_rate: float = 0.0
    fault_weights: Mapping[str, float] = field(default_factory=_default_fault_weights)
    slow_response_delay: float = 5.0
    late_result_delay: float = 2.0
    access_log: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be within [0, 1], got {self.fault_rate}")
        unknown = set(self.fault_weights) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
        if any(w < 0 for w in self.fault_weights.values()):
            raise ValueError("fault weights must be non-negative")
        if self.max_qubits < 1 or self.max_shots < 1 or self.max_circuits_per_job < 1:
            raise ValueError("max_qubits, max_shots and max_circuits_per_job must be >= 1")
        for name in ("max_job_work", "max_job_amplitudes", "job_store_bytes",
                     "max_stored_jobs", "inline_max_work"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None")
        for name in ("history_entries", "evicted_ids", "decode_processes",
                     "simulation_processes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in ("max_connections", "listen_backlog", "process_decode_bytes",
                     "max_pending_connections", "process_simulation_work"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.max_body_bytes_in_flight < self.max_body_bytes:
            raise ValueError("max_body_bytes_in_flight must be at least max_body_bytes "
                             "(else a body at the size cap could never be received)")
        if self.max_result_entries < 1 or self.max_sessions < 1:
            raise ValueError("max_result_entries and max_sessions must be >= 1")
        if min(self.header_timeout, self.body_timeout, self.first_byte_timeout) <= 0:
            raise ValueError("header_timeout, body_timeout and first_byte_timeout must be "
                             "positive")
        if self.queue_model not in QUEUE_MODELS:
            raise ValueError(f"queue_model must be one of {QUEUE_MODELS}, got {self.queue_model!r}")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise ValueError("rate_limit must be positive or None")
        # A partial mapping (e.g. ``{"http_503": 1}``) selects only those kinds: every
        # kind it leaves out gets weight 0.
        weights = {kind: float(self.fault_weights.get(kind, 0.0)) for kind in FAULT_KINDS}
        object.__setattr__(self, "fault_weights", weights)

    def with_overrides(self, **overrides) -> "ServerConfig":
        """Return a copy with ``overrides`` applied (unknown names raise ``TypeError``)."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(overrides) - names
        if unknown:
            raise TypeError(f"unknown ServerConfig field(s): {sorted(unknown)}")
        return dataclasses.replace(self, **overrides)

    def prestarts_workers(self) -> bool:
        """Whether the server starts its decode and simulation workers with itself:
        :attr:`prestart_workers`, or when that is ``None`` the environment variable
        ``QSTORE_PRESTART_WORKERS`` (read now; unset means ``True``)."""
        if self.prestart_workers is not None:
            return bool(self.prestart_workers)
        value = os.environ.get(PRESTART_ENV, "").strip().lower()
        return value not in ("0", "false", "no", "off")

    # -- memory ----------------------------------------------------------------------

    def memory_budget(self) -> int | None:
        """Bytes the server's stored state may hold above its baseline (``None``:
        unbounded because :attr:`job_store_bytes` is ``None``).

        The sum of the job store's budget, :attr:`history_entries` compact summaries
        (at most 4 KiB each) and :attr:`evicted_ids` remembered ids (160 bytes each).
        Not included: the baseline of the process (Python, NumPy, Qiskit and Aer
        imported: about 110 MB RSS), and requests in flight, which
        :attr:`max_body_bytes_in_flight` bounds separately. ``benchmarks/long_run.py``
        checks the server's RSS against ``baseline + memory_budget()``.
        """
        if self.job_store_bytes is None:
            return None
        return (self.job_store_bytes + self.history_entries * HISTORY_ENTRY_BYTES
                + self.evicted_ids * GONE_ID_BYTES)

    # -- latency model -------------------------------------------------------------

    def circuit_execution_seconds(self, native_gates: int, shots: int) -> float:
        """Modelled execution time of one circuit.

        Args:
            native_gates: (Estimated) native gate count of the circuit.
            shots: Shots it is run for.

        Returns:
            Seconds the circuit occupies the machine.
        """
        return self.per_circuit_time + shots * (
            self.per_shot_time + self.per_gate_shot_time * max(0, native_gates)
        )

    def job_execution_seconds(self, gate_counts: list[int], shots: int) -> float:
        """Modelled execution time of a job holding circuits with ``gate_counts``."""
        return self.job_overhead + math.fsum(
            self.circuit_execution_seconds(g, shots) for g in gate_counts
        )

    def lower_bound_seconds(self, gate_counts: list[int], shots: int) -> float:
        """Minimum wall time to run ``gate_counts`` circuits as one batch job.

        One request round trip (the creation; jitter at its minimum of zero), the
        queue wait and the execution time. Result retrieval is not included.
        """
        return self.network_delay + self.queue_wait + self.job_execution_seconds(
            list(gate_counts), shots
        )


# ``instant``: no artificial delays, jobs complete before the create call returns
# (those with more simulation work than ``inline_max_work`` complete just after).
# ``cloud``: tens of milliseconds per request, a queue wait per job and an execution
# time that grows with shots and native gates; 200 circuits in 2 batch jobs take
# about a second, one job per circuit takes ~0.25 s each plus polling.
# ``qpu``: the cloud profile's network, rate limit and per-circuit times, but the queue
# IonQ documents for its QPUs (``queue_model="fair_share"``): per backend one job
# executes at a time, organizations (API keys) take turns, and each job occupies the
# machine for a per-job overhead. The overhead is a modelled value, not a measured
# one: IonQ publishes no per-job setup time, so it is the cloud profile's per-job
# latency (0.15 s queue wait + 0.02 s execution overhead) turned into machine time,
# small enough that benchmarks finish in minutes. Real QPU jobs take seconds or more.
PROFILES: dict[str, ServerConfig] = {
    "instant": ServerConfig(),
    "cloud": ServerConfig(
        network_delay=0.03,
        network_jitter=0.02,
        queue_wait=0.15,
        job_overhead=0.02,
        per_circuit_time=0.002,
        per_shot_time=1e-6,
        per_gate_shot_time=2e-8,
        max_running_jobs=4,
        max_circuits_per_job=100,
        inline_execution=False,
        rate_limit=200.0,
        rate_limit_burst=100,
        slow_response_delay=5.0,
        late_result_delay=2.0,
    ),
}
PROFILES["qpu"] = dataclasses.replace(
    PROFILES["cloud"],
    queue_wait=0.0,
    job_overhead=0.17,
    max_running_jobs=None,
    queue_model="fair_share",
)


__all__ = [
    "ServerConfig",
    "PROFILES",
    "QUEUE_MODELS",
    "FAULT_KINDS",
    "REQUEST_FAULT_KINDS",
    "CREATE_ONLY_FAULT_KINDS",
    "PRESTART_ENV",
]
