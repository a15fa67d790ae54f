"""Soak test: many circuits through ``QStoreBackend.run`` under a seeded fault schedule.

Phase 1 runs ``--circuits`` circuits (default 10,000) from ``--threads`` threads (8)
through ``QStoreProvider(token=key, url=srv.url)`` against a :class:`LocalServer`
injecting 5xx, 429 bursts (a tight rate limit answering ``Retry-After``), dropped
connections, responses slower than the client's request timeout, failed jobs, late
results and lost create responses; a chaos thread also cancels a few in-flight jobs on
the server, and some callers cancel their own ``run`` jobs. Circuits mix shots,
gatesets (``use_native_gates`` True/False) and templates (several ansatz structures,
random bindings, given as ``parameter_binds`` or as bound circuits).

Every circuit must end in exactly one of: a result, a clear ``IonQClientError`` (failed
or server-cancelled job; reported, not lost), or a cancellation its caller asked for.
Results are G-tested against exact ``Statevector`` probabilities with a Bonferroni
threshold (family-wise false-positive rate ``--alpha``). The server's job log must not
hold any submission id twice.

Phase 2 pushes ``--templates`` (default 100,000) distinct tiny circuit structures through
a :class:`~qstore_qiskit.TemplateCache` (cheap ``compile_fn``) and checks that the cache
stays within its entry and byte limits.

Usage::

    python benchmarks/soak.py               # full run
    python benchmarks/soak.py --quick       # 600 circuits, 10,000 templates
    python benchmarks/soak.py --json out.json
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gc
import json
import math
import random
import resource
import secrets
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.providers.exceptions import JobError
from qiskit.quantum_info import Statevector
from scipy.stats import chi2

from qstore_qiskit.client import IonQClientError
from qstore_qiskit.server import LocalServer

SHOTS = (100, 256, 1000, 2000)
# Fault kinds and weights of the server's schedule (429 comes from the rate limiter).
FAULT_WEIGHTS = {
    "http_500": 1.0,
    "http_502": 1.0,
    "http_503": 1.0,
    "drop_connection": 1.0,
    "slow_response": 0.5,
    "job_failed": 1.0,
    "late_result": 1.0,
    "create_response_lost": 1.0,
}


# --------------------------------------------------------------------------- workload
def _ansatz_ry_cx(n: int) -> QuantumCircuit:
    th = ParameterVector("a", 2 * n)
    qc = QuantumCircuit(n, name=f"ry_cx{n}")
    for q in range(n):
        qc.ry(th[q], q)
    for q in range(n - 1):
        qc.cx(q, q + 1)
    for q in range(n):
        qc.ry(th[n + q], q)
    qc.measure_all()
    return qc


def _ansatz_qaoa(n: int) -> QuantumCircuit:
    g, b = ParameterVector("g", 1), ParameterVector("b", 1)
    qc = QuantumCircuit(n, name=f"qaoa{n}")
    qc.h(range(n))
    for q in range(n):
        qc.rzz(g[0], q, (q + 1) % n)
    for q in range(n):
        qc.rx(b[0], q)
    qc.measure_all()
    return qc


def _ansatz_hea(n: int) -> QuantumCircuit:
    th = ParameterVector("h", 3 * n)
    qc = QuantumCircuit(n, name=f"hea{n}")
    for q in range(n):
        qc.rx(th[q], q)
        qc.rz(th[n + q], q)
    for q in range(0, n - 1, 2):
        qc.cz(q, q + 1)
    for q in range(n):
        qc.ry(th[2 * n + q], q)
    qc.measure_all()
    return qc


def _ansatz_ghz_phase(n: int) -> QuantumCircuit:
    th = ParameterVector("p", 2)
    qc = QuantumCircuit(n, name=f"ghzp{n}")
    qc.h(0)
    for q in range(n - 1):
        qc.cx(q, q + 1)
    qc.rz(th[0], n - 1)
    qc.ry(th[1], 0)
    qc.measure_all()
    return qc


def templates() -> list[QuantumCircuit]:
    """The ansatz structures of the soak (2 to 4 qubits)."""
    out = []
    for n in (2, 3, 4):
        out += [_ansatz_ry_cx(n), _ansatz_qaoa(n), _ansatz_hea(n), _ansatz_ghz_phase(n)]
    return out


def exact_probabilities(bound: QuantumCircuit) -> np.ndarray:
    """Outcome probabilities (qubit 0 least significant) of a measure_all circuit."""
    return Statevector(bound.remove_final_measurements(inplace=False)).probabilities()


def g_test_pvalue(counts: dict[int, int], probs: np.ndarray, shots: int) -> tuple[float, float]:
    """``(p-value, total variation distance)`` of observed ``counts`` against ``probs``.

    Outcomes with probability below 1e-9 must not be observed at all (p = 0 if they
    are). Bins with expected count below 5 are pooled so the chi-square approximation of
    the G statistic holds in the far tail where the Bonferroni threshold sits.
    """
    observed = np.zeros(len(probs))
    for k, v in counts.items():
        if k >= len(probs):
            return 0.0, 1.0
        observed[k] += v
    total = observed.sum()
    tvd = 0.5 * float(np.abs(observed / max(total, 1) - probs).sum())
    if total != shots:
        return 0.0, tvd
    possible = probs > 1e-9
    if observed[~possible].sum() > 0:
        return 0.0, tvd
    expected = probs[possible] * shots
    obs = observed[possible]
    small = expected < 5
    if small.any():
        e = np.append(expected[~small], expected[small].sum())
        o = np.append(obs[~small], obs[small].sum())
    else:
        e, o = expected, obs
    df = len(e) - 1
    if df <= 0:
        return (1.0 if o.sum() == shots else 0.0), tvd
    nz = o > 0
    g = 2.0 * float(np.sum(o[nz] * np.log(o[nz] / e[nz])))
    return float(chi2.sf(g, df)), tvd


# --------------------------------------------------------------------------- bookkeeping
@dataclass
class Submission:
    """One ``backend.run`` call of the soak."""

    job: Any
    expected: list[np.ndarray]
    shots: int
    gateset: str
    cancel: bool = False


@dataclass
class Tally:
    """What happened to the circuits (thread-safe via ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    submitted: int = 0
    run_calls: int = 0
    received: int = 0
    clear_errors: int = 0
    error_kinds: Counter = field(default_factory=Counter)
    cancelled_by_caller: int = 0
    lost: int = 0
    lost_examples: list = field(default_factory=list)
    tests: list = field(default_factory=list)  # (p-value, tvd, shots, gateset)
    by_gateset: Counter = field(default_factory=Counter)


def _counts_of(experiment) -> dict[int, int]:
    return {int(k, 16): int(v) for k, v in experiment.data.counts.items()}


def _settle(sub: Submission, tally: Tally, timeout: float) -> None:
    n = len(sub.expected)
    try:
        result = sub.job.result(timeout=timeout)
    except (concurrent.futures.CancelledError, JobError) as exc:
        if isinstance(exc, JobError) and not sub.cancel:  # a clear qiskit error
            with tally.lock:
                tally.clear_errors += n
                tally.error_kinds[f"JobError: {str(exc)[:40]}"] += n
            return
        with tally.lock:
            if sub.cancel:
                tally.cancelled_by_caller += n
            else:
                tally.lost += n
                tally.lost_examples.append("unexpected CancelledError")
        return
    except concurrent.futures.TimeoutError:
        with tally.lock:
            tally.lost += n
            tally.lost_examples.append(f"no result within {timeout} s")
        return
    except IonQClientError as exc:
        with tally.lock:
            tally.clear_errors += n
            tally.error_kinds[_error_kind(exc)] += n
        return
    except Exception as exc:  # anything else is not a "clear" error: count it as lost
        with tally.lock:
            tally.lost += n
            tally.lost_examples.append(f"{type(exc).__name__}: {exc}")
        return
    tests = []
    if len(result.results) != n:
        with tally.lock:
            tally.lost += abs(n - len(result.results))
            tally.lost_examples.append(f"{len(result.results)} results for {n} circuits")
    for exp, probs in zip(result.results, sub.expected):
        p, tvd = g_test_pvalue(_counts_of(exp), probs, sub.shots)
        tests.append((p, tvd, sub.shots, sub.gateset))
    with tally.lock:
        tally.received += len(tests)
        tally.tests.extend(tests)
        tally.by_gateset[sub.gateset] += len(tests)
        if sub.cancel:  # cancel came too late: the circuits completed, which is fine
            tally.error_kinds["cancel too late (completed)"] += len(tests)


def _error_kind(exc: BaseException) -> str:
    name = type(exc).__name__
    status = getattr(exc, "status", None)
    return f"{name}({status})" if status is not None else name


def _qis_works(backend) -> str | None:
    """``None`` if ``use_native_gates=False`` can prepare a circuit, else the error."""
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure_all()
    try:
        backend._prepare([qc], None, backend._merged_options({"use_native_gates": False}))  # noqa: SLF001
    except Exception as exc:  # pylint: disable=broad-except
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:100]}"
    return None


def _worker(
    wid: int,
    n_circuits: int,
    backend,
    tmpls: list[QuantumCircuit],
    gatesets: list[str],
    tally: Tally,
    seed: int,
    cancel_rate: float,
    result_timeout: float,
    window: int,
    run_options: dict | None = None,
) -> None:
    rng = np.random.default_rng(seed + 1000 * wid)
    pending: list[Submission] = []
    done = 0
    while done < n_circuits:
        tmpl = tmpls[int(rng.integers(len(tmpls)))]
        k = int(min(rng.integers(1, 21), n_circuits - done))
        shots = int(SHOTS[int(rng.integers(len(SHOTS)))])
        gateset = gatesets[int(rng.integers(len(gatesets)))]
        values = rng.uniform(-math.pi, math.pi, size=(k, tmpl.num_parameters))
        expected = [exact_probabilities(tmpl.assign_parameters(row)) for row in values]
        opts = {**(run_options or {}), "shots": shots, "use_native_gates": gateset == "native"}
        if rng.random() < 0.5:
            binds = {p: values[:, j].tolist() for j, p in enumerate(tmpl.parameters)}
            job = backend.run(tmpl, parameter_binds=[binds], **opts)
        else:
            job = backend.run([tmpl.assign_parameters(row) for row in values], **opts)
        sub = Submission(job, expected, shots, gateset)
        if rng.random() < cancel_rate:
            sub.cancel = True
            job.cancel()
        with tally.lock:
            tally.submitted += k
            tally.run_calls += 1
        pending.append(sub)
        done += k
        # Bound the memory held by unfinished results: settle the oldest.
        while len(pending) > window:
            _settle(pending.pop(0), tally, result_timeout)
    for sub in pending:
        _settle(sub, tally, result_timeout)


def _server_canceller(srv: LocalServer, key: str, stop: threading.Event, max_cancels: int,
                      period: float, seed: int, done: list) -> None:
    """Cancel a few in-flight jobs on the server (as an operator would)."""
    rng = random.Random(seed)
    while not stop.wait(period) and len(done) < max_cancels:
        live = [j for j in srv.jobs() if j["status"] in ("submitted", "ready", "running")]
        if not live:
            continue
        job = rng.choice(live)
        req = urllib.request.Request(
            f"{srv.url}/jobs/{job['id']}/status/cancel", method="PUT",
            headers={"Authorization": f"apiKey {key}"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:  # loopback only
                resp.read()
            done.append(job["id"])
        except Exception:  # pylint: disable=broad-except  # a fault may hit it: fine
            pass


# --------------------------------------------------------------------------- phase 1
def run_soak(
    circuits: int = 10_000,
    threads: int = 8,
    seed: int = 2026,
    fault_rate: float = 0.04,
    profile: str = "cloud",
    rate_limit: float = 40.0,
    rate_limit_burst: int = 10,
    client_timeout: float = 1.0,
    slow_response_delay: float = 1.5,
    cancel_rate: float = 0.03,
    server_cancels: int = 3,
    alpha: float = 0.01,
    result_timeout: float = 300.0,
    window: int = 40,
    run_options: dict | None = None,
) -> dict[str, Any]:
    """Phase 1; returns the report dict (see :func:`format_table`)."""
    from qstore_qiskit.providers import QStoreProvider

    key = secrets.token_hex(16)
    tmpls = templates()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    srv = LocalServer(
        profile, api_key=key, seed=seed, fault_rate=fault_rate, fault_weights=FAULT_WEIGHTS,
        rate_limit=rate_limit, rate_limit_burst=rate_limit_burst,
        slow_response_delay=slow_response_delay, late_result_delay=1.0,
    )
    srv.start()
    provider = QStoreProvider(token=key, url=srv.url)
    tally = Tally()
    stop = threading.Event()
    cancelled_on_server: list = []
    try:
        backend = provider.get_backend("ionq_simulator")
        # The backend has no option for the HTTP request timeout: set it on the (one)
        # submitter before its session exists, so slow responses outlast it.
        sub = backend._submitter(backend._merged_options(dict(run_options or {})))  # noqa: SLF001
        sub._http.request_timeout = client_timeout  # noqa: SLF001
        qis_error = _qis_works(backend)
        gatesets = ["native"] if qis_error else ["native", "qis"]
        chaos = threading.Thread(
            target=_server_canceller,
            args=(srv, key, stop, server_cancels, 0.5, seed, cancelled_on_server), daemon=True,
        )
        chaos.start()
        share = [circuits // threads + (1 if i < circuits % threads else 0) for i in range(threads)]
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            futs = [
                pool.submit(_worker, i, share[i], backend, tmpls, gatesets, tally, seed,
                            cancel_rate, result_timeout, window, run_options)
                for i in range(threads)
            ]
            for f in futs:
                f.result()
        wall = time.perf_counter() - t0
        stop.set()
        chaos.join(5)
        client = sub.stats()
        cache = backend._cache.stats()  # noqa: SLF001
        cache_limits = (backend._cache.max_templates, backend._cache.max_bound, backend._cache.max_bytes)  # noqa: SLF001
        jobs = srv.jobs()
        faults = srv.fault_counts()
        server_stats = srv.stats()
    finally:
        stop.set()
        provider.close()
        srv.stop()
    sids = Counter(j["metadata"].get("submission_id") for j in jobs)
    duplicates = {s: n for s, n in sids.items() if n > 1}
    n_tests = len(tally.tests)
    threshold = alpha / max(n_tests, 1)
    mismatched = sum(1 for p, *_ in tally.tests if p < threshold)
    tvds = [t for _, t, *_ in tally.tests]
    accounted = tally.received + tally.clear_errors + tally.cancelled_by_caller + tally.lost
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "circuits": circuits,
        "threads": threads,
        "profile": profile,
        "seed": seed,
        "fault_rate": fault_rate,
        "run_options": dict(run_options or {}),
        "run_calls": tally.run_calls,
        "submitted": tally.submitted,
        "received": tally.received,
        "received_by_gateset": dict(tally.by_gateset),
        "clear_errors": tally.clear_errors,
        "error_kinds": dict(tally.error_kinds),
        "cancelled_by_caller": tally.cancelled_by_caller,
        "lost": tally.lost + (tally.submitted - accounted),
        "lost_examples": tally.lost_examples[:5],
        "server_jobs": len(jobs),
        "duplicate_submission_ids": len(duplicates),
        "g_tests": n_tests,
        "bonferroni_threshold": threshold,
        "alpha": alpha,
        "mismatched": mismatched,
        "max_tvd": max(tvds) if tvds else None,
        "median_tvd": float(np.median(tvds)) if tvds else None,
        "retries": dict(client.get("retries") or {}),
        "client_counters": {k: client.get(k, 0) for k in (
            "jobs_created", "jobs_adopted", "submission_lookups", "create_retries",
            "jobs_failed", "jobs_resplit", "cancelled_submissions", "jobs_cancelled",
            "queue_timeouts")},
        "api_calls": client.get("api_calls"),
        "faults": {**faults, "rate_limited_429": server_stats.get("rate_limited", 0),
                   "job_cancelled_by_operator": len(cancelled_on_server)},
        "qis_gateset": "ok" if qis_error is None else f"EXCLUDED, defect: {qis_error}",
        "backend_cache": {**{k: cache[k] for k in ("templates", "bound", "bytes", "compiles",
                                                   "template_evictions", "bound_evictions")},
                          "limits": cache_limits},
        "wall_seconds": wall,
        "throughput_circuits_per_s": tally.received / wall if wall else None,
        "peak_rss_mb": rss / 1024.0,
        "rss_growth_mb": (rss - rss0) / 1024.0,
    }


# --------------------------------------------------------------------------- phase 2
def _current_rss_mb() -> float:
    """Resident set size now (Linux ``/proc``; peak RSS elsewhere), MB."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
        return pages * resource.getpagesize() / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _structure(i: int, digits: int) -> QuantumCircuit:
    """The ``i``-th distinct tiny structure: ``digits`` base-10 digits pick gates."""
    qc = QuantumCircuit(2)
    ops = ("h0", "h1", "x0", "x1", "s0", "s1", "t0", "t1", "cx01", "cx10")
    for _ in range(digits):
        i, d = divmod(i, 10)
        op = ops[d]
        if op.startswith("cx"):
            qc.cx(int(op[2]), int(op[3]))
        else:
            getattr(qc, op[0])(int(op[1]))
    qc.rz(0.1 + (i % 7), 0)  # an angle too, so binding has something to do
    return qc


def _cheap_compile(circuit: QuantumCircuit, device: str, optimization_level: int) -> QuantumCircuit:
    """A stand-in compiler: one native gate per input gate (cost ~ microseconds)."""
    from qiskit_ionq.ionq_gates import GPI2Gate, GPIGate, MSGate

    native = QuantumCircuit(circuit.num_qubits)
    for inst in circuit.data:
        qubits = [circuit.find_bit(q).index for q in inst.qubits]
        if len(qubits) == 2:
            native.append(MSGate(0.0, 0.0, 0.25), qubits)
        elif inst.operation.name == "rz":
            native.append(GPI2Gate(0.25), qubits)
            native.append(GPIGate(inst.operation.params[0]), qubits)  # parameter passes through
        else:
            native.append(GPI2Gate(0.125 * (len(native.data) % 8)), qubits)
    return native


def run_cache_phase(
    n_templates: int = 100_000,
    max_templates: int = 1_000,
    max_bound: int = 2_000,
    max_bytes: int = 4 * 1024 * 1024,
) -> dict[str, Any]:
    """Phase 2: ``n_templates`` distinct structures through one bounded TemplateCache."""
    from qstore_qiskit.cache import TemplateCache

    cache = TemplateCache(max_templates, max_bound, max_bytes, compile_fn=_cheap_compile)
    digits = max(1, math.ceil(math.log10(max(n_templates, 2))))
    worst = {"templates": 0, "bound": 0, "bytes": 0}
    rss_at: dict[str, float] = {}
    t0 = time.perf_counter()
    for i in range(n_templates):
        cache.payload(_structure(i, digits), device="aria-1", optimization_level=1)
        if i % 500 == 499 or i == n_templates - 1:
            st = cache.stats()
            for k in worst:
                worst[k] = max(worst[k], st[k])
        if i + 1 in (n_templates // 10, n_templates):
            gc.collect()
            rss_at[f"{i + 1}"] = _current_rss_mb()
    wall = time.perf_counter() - t0
    st = cache.stats()
    marks = sorted(rss_at, key=int)
    return {
        "templates_pushed": n_templates,
        "compiles": st["compiles"],
        "limits": {"templates": max_templates, "bound": max_bound, "bytes": max_bytes},
        "final": {k: st[k] for k in ("templates", "bound", "bytes")},
        "worst": worst,
        "evictions": {"templates": st["template_evictions"], "bound": st["bound_evictions"]},
        "within_limits": (worst["templates"] <= max_templates and worst["bound"] <= max_bound
                          and worst["bytes"] <= max_bytes),
        # Current RSS after 10% and after 100% of the pushes: a bounded cache keeps
        # the process from growing with the number of distinct templates.
        "rss_mb_at": {k: rss_at[k] for k in marks},
        "rss_growth_mb_after_10pct": rss_at[marks[-1]] - rss_at[marks[0]] if marks else 0.0,
        "seconds": wall,
        "templates_per_s": n_templates / wall if wall else None,
    }


# --------------------------------------------------------------------------- report
def format_table(soak: dict[str, Any], cache: dict[str, Any] | None) -> str:
    """The report as a two-column text table."""
    rows: list[tuple[str, str]] = [
        ("circuits submitted", f"{soak['submitted']:,} ({soak['run_calls']:,} run calls, "
                               f"{soak['threads']} threads, profile {soak['profile']})"),
        ("results received", f"{soak['received']:,} "
                             + ", ".join(f"{k} {v:,}" for k, v in sorted(soak["received_by_gateset"].items()))),
        ("clear errors (not lost)", f"{soak['clear_errors']:,} "
                                    + ", ".join(f"{k}: {v}" for k, v in sorted(soak["error_kinds"].items()))),
        ("cancelled by caller", f"{soak['cancelled_by_caller']:,}"),
        ("LOST", f"{soak['lost']:,}"),
        ("duplicate jobs (same submission id)", f"{soak['duplicate_submission_ids']} of {soak['server_jobs']:,} server jobs"),
        ("mismatched results (G-test)", f"{soak['mismatched']} of {soak['g_tests']:,} "
                                        f"(Bonferroni p < {soak['bonferroni_threshold']:.2g}, "
                                        f"family alpha {soak['alpha']})"),
        ("TVD vs exact (median / max)", f"{soak['median_tvd'] or 0:.4f} / {soak['max_tvd'] or 0:.4f}"),
        ("retries by cause (client)", ", ".join(f"{k} {v}" for k, v in sorted(soak["retries"].items())) or "none"),
        ("client recovery", ", ".join(f"{k} {v}" for k, v in soak["client_counters"].items() if v) or "none"),
        ("faults injected (server)", ", ".join(f"{k} {v}" for k, v in soak["faults"].items() if v) or "none"),
        ("use_native_gates=False", soak["qis_gateset"]),
        ("backend cache (templates/bound/bytes)",
         f"{soak['backend_cache']['templates']}/{soak['backend_cache']['bound']}/"
         f"{soak['backend_cache']['bytes']:,} (limits {soak['backend_cache']['limits'][0]}/"
         f"{soak['backend_cache']['limits'][1]}/{soak['backend_cache']['limits'][2]:,})"),
        ("wall time", f"{soak['wall_seconds']:.1f} s"),
        ("throughput", f"{soak['throughput_circuits_per_s']:.0f} circuits/s"),
        ("peak RSS (process, incl. server)", f"{soak['peak_rss_mb']:.0f} MB"),
    ]
    if cache is not None:
        lim, worst = cache["limits"], cache["worst"]
        rows += [
            ("cache phase: distinct templates", f"{cache['templates_pushed']:,} in {cache['seconds']:.1f} s "
                                                f"({cache['templates_per_s']:.0f}/s), {cache['compiles']:,} compiles"),
            ("cache phase: worst templates/bound/bytes",
             f"{worst['templates']:,}/{worst['bound']:,}/{worst['bytes']:,} "
             f"(limits {lim['templates']:,}/{lim['bound']:,}/{lim['bytes']:,})"),
            ("cache phase: evictions (templates/bound)",
             f"{cache['evictions']['templates']:,}/{cache['evictions']['bound']:,}"),
            ("cache phase: within limits", "yes" if cache["within_limits"] else "NO"),
            ("cache phase: RSS after 10% / 100% of pushes",
             " / ".join(f"{v:.0f} MB" for v in cache["rss_mb_at"].values())
             + f" (growth {cache['rss_growth_mb_after_10pct']:+.1f} MB)"),
        ]
    width = max(len(k) for k, _ in rows)
    line = "+" + "-" * (width + 2) + "+" + "-" * 72 + "+"
    out = [line]
    for k, v in rows:
        out.append(f"| {k:<{width}} | {v:<70} |")
    out.append(line)
    return "\n".join(out)


def failures(soak: dict[str, Any], cache: dict[str, Any] | None) -> list[str]:
    """What makes the soak fail (empty list: pass)."""
    bad = []
    if soak["lost"]:
        bad.append(f"{soak['lost']} circuits lost: {soak['lost_examples']}")
    if soak["duplicate_submission_ids"]:
        bad.append(f"{soak['duplicate_submission_ids']} submission ids created twice")
    # Expected false positives under H0: alpha (family-wise); tolerate one.
    if soak["mismatched"] > 1:
        bad.append(f"{soak['mismatched']} results failed the G-test")
    if soak["submitted"] != soak["circuits"]:
        bad.append(f"submitted {soak['submitted']} of {soak['circuits']}")
    if cache is not None and not cache["within_limits"]:
        bad.append(f"template cache exceeded its limits: {cache['worst']} vs {cache['limits']}")
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--circuits", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--templates", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--fault-rate", type=float, default=0.04)
    ap.add_argument("--profile", default="cloud", choices=("cloud", "instant"))
    ap.add_argument("--quick", action="store_true", help="600 circuits, 10,000 templates")
    ap.add_argument("--skip-cache-phase", action="store_true")
    ap.add_argument("--json", help="also write the report as JSON to this path")
    ap.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                    help="backend run option for every run call (Python literal), repeatable, "
                         "e.g. --option use_batch_api=False --option memory=True")
    args = ap.parse_args(argv)
    if args.quick:
        args.circuits = min(args.circuits, 600)
        args.templates = min(args.templates, 10_000)
    import ast

    run_options = {}
    for item in args.option:
        name, _, value = item.partition("=")
        run_options[name.strip()] = ast.literal_eval(value.strip())
    soak = run_soak(args.circuits, args.threads, args.seed, args.fault_rate, args.profile,
                    run_options=run_options)
    cache = None if args.skip_cache_phase else run_cache_phase(args.templates)
    print(format_table(soak, cache))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"soak": soak, "cache": cache}, fh, indent=2, default=str)
    bad = failures(soak, cache)
    for b in bad:
        print("FAIL:", b, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
