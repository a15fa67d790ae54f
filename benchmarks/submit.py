"""Submission benchmark: qiskit-ionq vs. qstore's BatchSubmitter.

Runs against the embedded local IonQ-API server with the ``cloud`` profile (network
delay, queue wait, per-circuit/per-shot execution time, a 100-circuit job cap, four jobs
running at once, a request rate limit).  For 20 and 200 random 4-qubit native circuits
it measures, side by side in one run:

* ``qiskit-ionq per-circuit``: ``backend.run(qc).result()`` for each circuit in turn;
* ``qiskit-ionq one run``: one ``backend.run(list)`` (split at the server's circuit cap
  when the list is larger, all parts submitted before waiting);
* ``qstore per-circuit``: one ``BatchSubmitter.submit([body])`` per circuit (coalesced);
* ``qstore one submit``: one ``BatchSubmitter.submit(bodies)``.

Wall time includes payload conversion (qiskit-ionq converts inside ``run``; ours runs
:func:`qstore_qiskit.payload.native_body` inside the timed region).  qiskit-ionq's
``result()`` polls every 5 s by default; we pass ``wait=0.05`` so the baseline is not
dominated by its poll interval.  Times are medians of ``--repeat`` runs (the sequential
baseline runs once).  "x LB" is the ratio to ``srv.lower_bound_seconds``: one
round trip + queue wait + execution of all circuits as one job.

``--runs N`` (default 20; 0 skips it) adds the separate-``run()`` table: N distinct
*logical* 4-qubit circuits (rx/ry/rz layers and CX, all structures distinct), each
submitted by its own ``QStoreBackend.run(qc)`` call in a loop, then ``result()`` of every
job, on the same ``cloud`` server:

* ``cold``: a fresh backend with an empty template cache (no persistent store): every
  circuit is compiled inside its ``run()`` call, as for a user's new circuits;
* ``warm``: the same circuits again on that backend (templates cached): no compile;

each with the backend's default options and with ``adaptive_batch_sizing=True`` (the
simulator's batches spread over concurrent jobs, sized from measured execution times;
the ``qstore per-circuit`` mode above uses the same setting of the BatchSubmitter).

Its lower bound is the server's own ``lower_bound_seconds`` for ONE batch job of all N
circuits, with the native gate counts that qstore actually sent (from the prepared
payloads): one round trip + queue wait + execution, result retrieval excluded. The
breakdown columns are medians, in seconds from the first ``run()`` call: the last
``run()`` returned (compile + bind + submit of every circuit), the last job was created
on the server and completed there, and every result was in hand.

``--server-process`` runs that table a second time against
:class:`~qstore_qiskit.server.ServerProcess` (the same ``cloud`` profile in a child
process): :class:`~qstore_qiskit.server.LocalServer` is a thread of the benchmark's own
process, so its request handling and simulation take the client's GIL and CPU while the
client compiles, which IonQ's service never does. The job records then come over the
API (``GET /jobs``) and the bound from the profile's
:class:`~qstore_qiskit.server.ServerConfig`, computed as
``LocalServer.lower_bound_seconds`` does. Both tables are printed.

Usage::

    python benchmarks/submit.py [--sizes 20 200] [--shots 1024] [--seed 7] [--runs 20]
        [--only-runs] [--server-process] [--timeline]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import urllib.request
import warnings

import numpy as np
from qiskit import QuantumCircuit
from qiskit_ionq import IonQProvider
from qiskit_ionq.ionq_gates import GPI2Gate, GPIGate, MSGate

from qstore_qiskit.client import BatchSubmitter
from qstore_qiskit.payload import native_body
from qstore_qiskit.server import PROFILES, LocalServer, ServerProcess


def random_native_circuit(num_qubits: int, layers: int, rng: np.random.Generator, name: str) -> QuantumCircuit:
    """A random circuit of IonQ native gates (GPI, GPI2, MS), measured at the end."""
    qc = QuantumCircuit(num_qubits, name=name)
    for _ in range(layers):
        for q in range(num_qubits):
            gate = GPI2Gate(float(rng.random())) if rng.random() < 0.6 else GPIGate(float(rng.random()))
            qc.append(gate, [q])
        a, b = rng.choice(num_qubits, 2, replace=False)
        qc.append(MSGate(float(rng.random()), float(rng.random()), 0.25), [int(a), int(b)])
    qc.measure_all()
    return qc


def _time(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def run(
    sizes: list[int], shots: int, seed: int, qiskit_ionq_per_circuit_max: int, repeat: int = 5
) -> list[dict]:
    """Run every mode for every size; returns table rows."""
    rng = np.random.default_rng(seed)
    rows = []
    with LocalServer(profile="cloud", seed=seed) as srv:
        cap = srv.config.max_circuits_per_job
        # qiskit-ionq looks up a backend's qubit count at IONQ_API_URL (IonQ's cloud when
        # unset), whatever url= says: keep that lookup on this machine too.
        os.environ["IONQ_API_URL"] = srv.url
        provider = IonQProvider(token="benchmark", url=srv.url)
        backend = provider.get_backend("simulator", gateset="native")
        for n in sizes:
            circuits = [random_native_circuit(4, 3, rng, f"c{i}") for i in range(n)]
            gate_counts = [len(native_body(qc)["circuit"]) for qc in circuits]
            lower = srv.lower_bound_seconds(gate_counts, shots)

            def qi_per_circuit() -> int:
                done = 0
                for qc in circuits[:qiskit_ionq_per_circuit_max]:
                    backend.run(qc, shots=shots).result(wait=0.05)
                    done += 1
                return done

            def qi_one_run() -> int:
                jobs = [backend.run(circuits[i : i + cap], shots=shots) for i in range(0, n, cap)]
                for job in jobs:
                    job.result(wait=0.05)
                return n

            # IonQ documents its per-job circuit cap; the local server's is in its config.
            with BatchSubmitter(
                "benchmark", srv.url, adaptive_batch_sizing=True, max_circuits_per_job=cap
            ) as sub:
                sub.submit([native_body(circuits[0])], shots=shots).result()  # warm the pool

                def ours_per_circuit() -> int:
                    futs = [sub.submit([native_body(qc)], shots=shots) for qc in circuits]
                    return sum(len(f.result()) for f in futs)

                def ours_one_submit() -> int:
                    return len(sub.submit([native_body(qc) for qc in circuits], shots=shots).result())

                modes = [
                    ("qiskit-ionq per-circuit", qi_per_circuit),
                    ("qiskit-ionq one run", qi_one_run),
                    ("qstore per-circuit", ours_per_circuit),
                    ("qstore one submit", ours_one_submit),
                ]
                timings = {}
                for label, fn in modes:
                    # The sequential baseline is slow and steady: one run. The others are
                    # sub-second and share two cores with the in-process server: median
                    # of `repeat` runs.
                    runs = 1 if label == "qiskit-ionq per-circuit" else repeat
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        samples = [_time(fn) for _ in range(runs)]
                    wall = statistics.median(w for w, _ in samples)
                    done = samples[0][1]
                    if done != n:  # extrapolate a truncated sequential baseline
                        wall = wall / done * n
                        label += f" (x{n}/{done} extrapolated)"
                    timings[label] = wall
                    rows.append({"n": n, "mode": label, "wall": wall, "cps": n / wall, "lb": lower})
                stats = sub.stats()
            base = next(v for k, v in timings.items() if k.startswith("qiskit-ionq per-circuit"))
            for row in rows:
                if row["n"] == n:
                    row["speedup"] = base / row["wall"]
            print(f"# n={n}: qstore jobs={stats.get('jobs_created')}, api_calls={stats['api_calls']}, "
                  f"retries={stats['retries']}")
    return rows


def random_logical_circuit(num_qubits: int, layers: int, rng: np.random.Generator, name: str) -> QuantumCircuit:
    """Random rx/ry/rz on every qubit plus one CX per layer, measured: a logical circuit
    that qstore's compiler lowers to native gates."""
    qc = QuantumCircuit(num_qubits, name=name)
    for _ in range(layers):
        for q in range(num_qubits):
            angle = float(rng.uniform(0.1, 6.0))
            [qc.rx, qc.ry, qc.rz][int(rng.integers(3))](angle, q)
        a, b = rng.choice(num_qubits, 2, replace=False)
        qc.cx(int(a), int(b))
    qc.measure_all()
    return qc


def _distinct_logical(n: int, rng: np.random.Generator, tag: str) -> list[QuantumCircuit]:
    from qstore_qiskit.cache import structural_key

    out, keys = [], set()
    while len(out) < n:
        qc = random_logical_circuit(4, 4, rng, f"{tag}{len(out)}")
        key = structural_key(qc)
        if key not in keys:  # distinct structures: no circuit binds another's template
            keys.add(key)
            out.append(qc)
    return out


class _ProcessServerView:
    """What :func:`_separate_round` reads from a server, for a
    :class:`~qstore_qiskit.server.ServerProcess`: job records over the API, the lower
    bound from the profile's :class:`~qstore_qiskit.server.ServerConfig` (the same
    formula as :meth:`LocalServer.lower_bound_seconds`)."""

    def __init__(self, proc: ServerProcess, token: str) -> None:
        self.proc = proc
        self.config = PROFILES[proc.profile]
        self._token = token
        self._records: dict[str, dict] = {}

    @property
    def url(self) -> str:
        return self.proc.url

    def lower_bound_seconds(self, gate_counts: list[int], shots: int) -> float:
        return self.config.lower_bound_seconds(gate_counts, shots)

    def _get(self, path: str) -> dict:
        req = urllib.request.Request(self.proc.url + path, headers={"Authorization": f"apiKey {self._token}"})
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - our loopback child
            return json.loads(resp.read().decode())

    def jobs(self) -> list[dict]:
        """The latest top-level jobs (at most 1,000) with ``id`` and ``created`` (epoch s)."""
        records = self._get("/jobs?limit=1000")["jobs"]
        self._records = {r["id"]: r for r in records}
        return [{"id": r["id"], "created": _epoch(r["submitted_at"])} for r in records]

    def job_record(self, job_id: str) -> dict:
        record = self._records.get(job_id)
        return record if record is not None and record.get("completed_at") else self._get(f"/jobs/{job_id}")


def _separate_round(srv, backend, circuits: list[QuantumCircuit], shots: int) -> dict:
    """One timed loop of separate ``run()`` calls, then every ``result()``."""
    before = {j["id"] for j in srv.jobs()}
    t0 = time.time()
    start = time.perf_counter()
    jobs, returned = [], []
    for qc in circuits:
        jobs.append(backend.run(qc, shots=shots))
        returned.append(time.perf_counter() - start)
    submitted = returned[-1]
    for job in jobs:
        job.result()
    wall = time.perf_counter() - start
    new = [j for j in srv.jobs() if j["id"] not in before]
    records = [srv.job_record(j["id"]) for j in new]
    gates = [len(p.body["circuit"]) for job in jobs for p in job._prepared]
    # Per server job: created, started, completed (s from the first run() call; the
    # server's timestamps have millisecond resolution) and its number of circuits.
    timeline = sorted(
        (_epoch(rec["submitted_at"]) - t0, _epoch(rec["started_at"]) - t0, _epoch(rec["completed_at"]) - t0,
         len(rec.get("child_job_ids") or []) or 1)
        for rec in records
    )
    return {
        "wall": wall,
        "lb": srv.lower_bound_seconds(gates, shots),
        "submitted": submitted,
        "created": max(j["created"] for j in new) - t0,
        "completed": max(_epoch(rec.get("completed_at")) for rec in records) - t0,
        "jobs": len(new),
        "compiles": backend._cache.stats()["compiles"],
        "returned": returned,
        "timeline": timeline,
    }


def run_separate(n: int, shots: int, seed: int, repeat: int, server_process: bool = False) -> list[dict]:
    """``n`` separate ``backend.run(qc)`` calls of distinct logical circuits (see the
    module doc), with the backend's default options and with ``adaptive_batch_sizing``;
    returns one row per mode with medians over ``repeat`` alternating rounds.

    ``server_process``: against a :class:`ServerProcess` (a child process) instead of
    the in-process :class:`LocalServer`.
    """
    import contextlib

    from qstore_qiskit.providers import QStoreProvider

    rng = np.random.default_rng(seed + 1)
    samples: dict[str, list[dict]] = {}
    with contextlib.ExitStack() as stack:
        if server_process:
            srv = _ProcessServerView(stack.enter_context(ServerProcess(profile="cloud", seed=seed)), "benchmark")
        else:
            srv = stack.enter_context(LocalServer(profile="cloud", seed=seed))
        for r in range(repeat + 1):  # round 0 warms imports, connections, the compiler
            for adaptive in (False, True):
                provider = QStoreProvider(token="benchmark", url=srv.url)
                backend = provider.get_backend("ionq_simulator")
                backend.set_options(template_cache_dir=False, adaptive_batch_sizing=adaptive)
                circuits = _distinct_logical(n, rng, f"r{r}{int(adaptive)}c")
                for temp in ("cold", "warm"):  # warm: the same circuits, templates cached
                    sample = _separate_round(srv, backend, circuits, shots)
                    if r:
                        samples.setdefault(f"{temp}{' adaptive' if adaptive else ''}", []).append(sample)
                provider.close()
    rows = []
    for mode, runs in samples.items():
        row = {k: statistics.median(s[k] for s in runs) for k in runs[0] if k not in ("returned", "timeline")}
        row["ratios"] = sorted(s["wall"] / s["lb"] for s in runs)
        row["mode"] = mode
        # The round whose wall time is the median: its per-job timeline (--timeline).
        ranked = sorted(runs, key=lambda s: s["wall"])
        row["median_round"] = ranked[(len(ranked) - 1) // 2]
        rows.append(row)
    return rows


def _epoch(text) -> float:
    import datetime

    return datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()


def print_separate(rows: list[dict], n: int, where: str = "LocalServer (in-process thread)") -> None:
    """Print the separate-run() table."""
    print(f"\n# {n} separate backend.run(qc) calls of distinct logical 4-qubit circuits, cloud profile, {where}")
    head = (f"{'mode':<13} {'wall s':>7} {'LB s':>6} {'x LB':>5} {'best..worst x LB':>17} {'last run()':>10} "
            f"{'last create':>11} {'last done':>9} {'jobs':>4} {'compiles':>8}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['mode']:<13} {r['wall']:>7.3f} {r['lb']:>6.3f} {r['wall'] / r['lb']:>5.2f} "
            f"{r['ratios'][0]:>8.2f}..{r['ratios'][-1]:<7.2f} {r['submitted']:>10.3f} {r['created']:>11.3f} "
            f"{r['completed']:>9.3f} {r['jobs']:>4.0f} {r['compiles']:>8.0f}"
        )


def print_timelines(rows: list[dict]) -> None:
    """Print the per-job timeline of each mode's median round (``--timeline``): when the
    ``run()`` calls returned, then per server job its creation, start and completion (s
    from the first ``run()`` call) and its circuits."""
    for r in rows:
        rnd = r["median_round"]
        marks = " ".join(f"{t:.3f}" for t in rnd["returned"])
        print(f"\n## {r['mode']}: median round, wall {rnd['wall']:.3f} s = {rnd['wall'] / rnd['lb']:.2f}x LB")
        print(f"run() returned at: {marks}")
        print(f"{'job':>4} {'created':>8} {'started':>8} {'done':>8} {'queue':>6} {'exec':>6} {'circuits':>8}")
        for k, (created, started, done, n) in enumerate(rnd["timeline"]):
            print(f"{k:>4} {created:>8.3f} {started:>8.3f} {done:>8.3f} {started - created:>6.3f} "
                  f"{done - started:>6.3f} {n:>8}")


def print_table(rows: list[dict]) -> None:
    """Print the result table."""
    head = f"{'n':>5}  {'mode':<44} {'wall s':>8} {'circ/s':>9} {'vs qi per-circ':>14} {'LB s':>7} {'x LB':>6}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['n']:>5}  {r['mode']:<44} {r['wall']:>8.3f} {r['cps']:>9.1f} "
            f"{r['speedup']:>13.1f}x {r['lb']:>7.3f} {r['wall'] / r['lb']:>6.2f}"
        )


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 200])
    parser.add_argument("--shots", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--qiskit-ionq-per-circuit-max", type=int, default=1000,
        help="cap the sequential qiskit-ionq baseline and extrapolate (it is slow)",
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs per fast mode (median)")
    parser.add_argument("--runs", type=int, default=20, help="separate run() calls (0: skip that table)")
    parser.add_argument("--only-runs", action="store_true", help="only the separate-run() table")
    parser.add_argument(
        "--timeline", action="store_true",
        help="print the per-job timeline of each separate-run() mode's median round",
    )
    parser.add_argument(
        "--server-process", action="store_true",
        help="also run the separate-run() table against ServerProcess (the server in a child process)",
    )
    args = parser.parse_args()
    print(f"# load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    if not args.only_runs:
        print_table(run(args.sizes, args.shots, args.seed, args.qiskit_ionq_per_circuit_max, args.repeat))
    if args.runs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows = run_separate(args.runs, args.shots, args.seed, args.repeat)
            print_separate(rows, args.runs)
            if args.timeline:
                print_timelines(rows)
            if args.server_process:
                print(f"# load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
                rows = run_separate(args.runs, args.shots, args.seed, args.repeat, server_process=True)
                print_separate(rows, args.runs, "ServerProcess (child process)")
                if args.timeline:
                    print_timelines(rows)
    print(f"# load average after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
