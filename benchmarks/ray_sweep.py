"""A hyper-parameter sweep on Ray: a backend per trial vs the cluster's shared gateway.

8 Ray tasks (a local cluster, loopback only) each train the same 4-qubit QNN classifier
(``zz_feature_map`` + ``real_amplitudes``, qiskit-machine-learning ``EstimatorQNN`` with
parameter-shift gradients on qiskit's ``BackendEstimatorV2`` over a qstore backend, the
model of ``benchmarks/training.py``) for a few epochs with a different learning rate and
initial point each. Per-sample SGD, so every call is small (1 circuit forward, 16 circuits
gradient), as in real sweeps with small batches. Two setups, side by side in one run,
each against its own fresh local IonQ-API server in the ``cloud`` profile (network delay,
queue wait, at most 4 jobs running, 100 circuits per job, 200 requests/s rate limit) or the
``qpu`` profile (IonQ's fair-share QPU queue: one job at a time per backend, keys take
turns, a per-job overhead of machine time), running in its own process:

(a) every trial with its own backend (today): ``QStoreProvider(url=...)``;
(b) every trial through the gateway: ``QStoreProvider(url=..., gateway="ray")``, one
    submitter for the cluster, coalescing all trials' circuits into shared jobs (and,
    with the persistent template store, one compile per structure for the cluster).

Both setups run on the same warm Ray workers (a warm-up round imports everything first)
and use the same sampler seed, so each trial's losses must be equal in (a) and (b).
Usage::

    python benchmarks/ray_sweep.py            # 8 trials, 2 epochs, 6 samples
    python benchmarks/ray_sweep.py --quick    # 8 trials, 1 epoch, 4 samples
    python benchmarks/ray_sweep.py --max-running-jobs 1   # a service that runs one job at a time (a QPU)
    python benchmarks/ray_sweep.py --round-jobs 2,1       # (b) once per gateway round_jobs value
    python benchmarks/ray_sweep.py --profile cloud,qpu    # both service models, a table each
    python benchmarks/ray_sweep.py --round-jobs 4 --release round,nagle --job-budget 0.25
    python benchmarks/ray_sweep.py --profile cloud,qpu --release round,pipeline   # the default vs rounds

It prints the table, the targets of every (b) run against (a), lower bounds of (a) and
(b) from the profile's latency model and the counted calls and jobs (see
:func:`print_bounds`), and where a call's time goes (``run()``, held for its round, the service, Ray hops), the CPU seconds of the
trials, the gateway and the server, and the load average around each setup.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time

import numpy as np

SEED = 1234
SHOTS = 1024
NUM_QUBITS = 4
KEY = "ray-sweep-benchmark-key-5c1e0a9d7b3f"
LEARNING_RATES = (0.1, 0.2, 0.3, 0.4)


def dataset(num_samples: int):
    rng = np.random.default_rng(SEED)
    X = rng.uniform(0.0, np.pi, (num_samples, NUM_QUBITS))
    y = np.where(np.cos(X).sum(axis=1) > 0, 1.0, -1.0)
    return X, y


def backend_options(cache_dir: str | None) -> dict:
    """Backend options of a trial: ``cache_dir`` is the persistent template store shared
    by the trials of (b); ``None`` turns it off, as every backend was before (a)."""
    return {"sampler_seed": SEED, "shots": SHOTS, "template_cache_dir": cache_dir or False}


class Barrier:
    """Releases the trials together once all of them are started and have imported
    everything: the sweep's wall time is then the trials' own work, not Ray starting
    worker processes (which it does a few at a time on a small machine)."""

    def __init__(self, parties: int) -> None:
        import asyncio

        self._parties = parties
        self._event = asyncio.Event()
        self._arrived = 0

    async def wait(self) -> float:
        self._arrived += 1
        if self._arrived >= self._parties:
            self._event.set()
        await self._event.wait()
        return time.time()


def train_trial(
    url: str, gateway: bool, trial: int, epochs: int, samples: int, cache_dir: str | None, barrier=None
) -> dict:
    """One trial: per-sample SGD on the squared error; returns losses and counters."""
    import warnings

    from qiskit.circuit.library import real_amplitudes, zz_feature_map
    from qiskit.primitives import BackendEstimatorV2
    from qiskit_machine_learning.neural_networks import EstimatorQNN

    from qstore_qiskit import QStoreProvider

    if barrier is not None:
        import ray

        ray.get(barrier.wait.remote())
    started = time.time()
    start = time.perf_counter()
    cpu_start = time.process_time()
    lr = LEARNING_RATES[trial % len(LEARNING_RATES)]
    init_seed = trial // len(LEARNING_RATES)
    provider = QStoreProvider(url=url, gateway="ray" if gateway else None)
    backend = provider.get_backend("ionq_simulator", **backend_options(cache_dir))
    waits: list[float] = []  # time each backend.run() call's results took to arrive
    sizes: list[int] = []  # circuits of each backend.run() call
    preps: list[float] = []  # time each backend.run() took to return (compile, bind, hand-in)
    run_backend = backend.run

    def timed_run(*args, **kwargs):
        submitted = time.perf_counter()
        circuits = args[0] if args else kwargs.get("run_input")
        sizes.append(len(circuits) if isinstance(circuits, (list, tuple)) else 1)
        job = run_backend(*args, **kwargs)
        preps.append(time.perf_counter() - submitted)
        job_result = job.result

        def result(*a, **k):
            try:
                return job_result(*a, **k)
            finally:
                waits.append(time.perf_counter() - submitted)

        job.result = result
        return job

    backend.run = timed_run
    estimator = BackendEstimatorV2(
        backend=backend, options={"default_precision": 1 / math.sqrt(SHOTS), "seed_simulator": SEED}
    )
    feature_map = zz_feature_map(NUM_QUBITS, reps=1)
    ansatz = real_amplitudes(NUM_QUBITS, reps=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no pass manager": the backend compiles itself
        qnn = EstimatorQNN(
            circuit=feature_map.compose(ansatz),
            input_params=feature_map.parameters,
            weight_params=ansatz.parameters,
            estimator=estimator,
        )
    X, y = dataset(samples)
    w = np.random.default_rng(init_seed).uniform(-0.5, 0.5, ansatz.num_parameters)
    order = np.random.default_rng(100 + trial)

    def loss(weights) -> float:
        out = np.asarray(qnn.forward(X, weights)).reshape(-1)
        return float(np.mean((out - y) ** 2))

    losses = [loss(w)]
    for _ in range(epochs):
        for i in order.permutation(samples):
            out = float(np.asarray(qnn.forward(X[i], w)).reshape(-1)[0])
            _, grad = qnn.backward(X[i], w)
            w = w - lr * 2.0 * (out - y[i]) * np.asarray(grad).reshape(-1)
        losses.append(loss(w))
    cache = backend.performance_stats().get("circuit_cache") or {}
    client = backend._client_stats()  # pylint: disable=protected-access
    failed = 0
    round_trip = 0.0  # gateway client: seconds from hand-in to results, as the worker sees it
    for sub in list(backend._submitters.values()):  # pylint: disable=protected-access
        st = sub.stats()
        failed += st.get("submissions_failed", 0)
        round_trip += (st.get("client") or {}).get("round_trip_seconds", 0.0)
    cpu = time.process_time() - cpu_start
    provider.close()
    return {
        "structures": structure_keys(backend),
        "trial": trial,
        "lr": lr,
        "init_seed": init_seed,
        "losses": losses,
        "compiles": cache.get("compiles", 0),
        "compile_s": cache.get("compile_seconds", 0.0),
        "jobs_seen": client.get("jobs_created", 0),
        "failed": failed,
        "seconds": time.perf_counter() - start,
        "calls": len(waits),
        "wait": float(sum(waits)),
        "waits": waits,
        "sizes": sizes,
        "preps": preps,
        "round_trip": round_trip,
        "cpu": cpu,
        "started": started,
        "ended": time.time(),
    }


def cpu_seconds(pid: int | None) -> float:
    """CPU seconds (user + system) a process has used so far (Linux ``/proc``; NaN elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, TypeError):
        return math.nan


def structure_keys(backend) -> list[str]:
    """Digests of the circuit structures (the template cache's structural keys, without
    the angle values an exact template also keys on) this trial's backend met."""
    import hashlib

    templates = getattr(getattr(backend, "_cache", None), "_templates", None) or {}
    structural = {key[1] if key and key[0] == "exact" else key[0] for key in list(templates)}
    return sorted(hashlib.sha256(repr(key).encode()).hexdigest()[:16] for key in structural)


def warm_up(ray, task) -> None:
    """Start and warm the worker processes both setups run on (imports, numpy, qiskit)."""
    ray.get([task.remote(i) for i in range(8)])


def run_setup(
    ray, trial_task, name: str, gateway: bool, args, cache_dir: str | None, round_jobs: int | None = None,
    profile: str = "cloud", gateway_options: dict | None = None,
) -> dict:
    from qstore_qiskit.server import ServerProcess

    overrides = {} if args.max_running_jobs is None else {"max_running_jobs": args.max_running_jobs}
    gateway_pid = None
    with ServerProcess(profile=profile, seed=SEED, api_key=KEY, **overrides) as server:
        if gateway:
            from qstore_qiskit.gateway import start_gateway

            # Started from the driver, like an operator would: the key reaches it through
            # the job's runtime environment, only its fingerprint through the arguments.
            handle = start_gateway(
                server.url,
                KEY,
                journal_dir=os.path.join(cache_dir or tempfile.gettempdir(), "journal"),
                gather_window=args.gather_window,
                linger=args.linger,
                round_jobs=round_jobs,
                **(gateway_options or {}),
            )
            gateway_pid = ray.get(handle.ping.remote())["pid"]
        server_cpu0, gateway_cpu0, load0 = cpu_seconds(server.pid), cpu_seconds(gateway_pid), os.getloadavg()[0]
        barrier = ray.remote(num_cpus=0)(Barrier).remote(args.trials)
        trials = ray.get(
            [
                trial_task.remote(server.url, gateway, t, args.epochs, args.samples, cache_dir, barrier)
                for t in range(args.trials)
            ]
        )
        # From the release of the barrier to the last trial's end.
        wall = max(t["ended"] for t in trials) - min(t["started"] for t in trials)
        cpu = {
            "server": cpu_seconds(server.pid) - server_cpu0,
            "gateway": cpu_seconds(gateway_pid) - gateway_cpu0 if gateway else 0.0,
            "trials": sum(t["cpu"] for t in trials),
        }
        load = (load0, os.getloadavg()[0])
        stats = server.stats()
        gateway_stats = None
        if gateway:
            from qstore_qiskit.gateway.identity import NAMESPACE, actor_name, key_fingerprint

            handle = ray.get_actor(actor_name(server.url, key_fingerprint(server.url, KEY)), namespace=NAMESPACE)
            gateway_stats = ray.get(handle.stats.remote())
            ray.kill(handle)
    return {"name": name, "wall": wall, "trials": trials, "server": stats, "gateway": gateway_stats, "cpu": cpu,
            "load": load, "profile": profile, "max_running_jobs": args.max_running_jobs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 epoch on 4 samples")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--gather-window", type=float, default=0.5, help="gateway option (seconds)")
    parser.add_argument("--linger", type=float, default=1.0, help="gateway option (seconds)")
    parser.add_argument("--round-jobs", default="",
                        help="gateway option round_jobs (most concurrent jobs per round); a comma-separated "
                             "list runs (b) once per value, side by side (default: the gateway's default)")
    parser.add_argument("--profile", default="cloud",
                        help="server profile: cloud (jobs run side by side, 4 at once), qpu (IonQ's fair-share "
                             "QPU queue: one job at a time per backend), or a comma-separated list (each profile's "
                             "setups side by side, one table per profile)")
    parser.add_argument("--release", default="",
                        help="gateway option release (pipeline: the default, round, nagle); a comma-separated "
                             "list runs (b) once per value")
    parser.add_argument("--job-budget", type=float, default=None,
                        help="gateway option job_budget (most jobs per call on average, e.g. 0.25)")
    parser.add_argument("--max-running-jobs", type=int, default=None,
                        help="server override: jobs executing at once (cloud profile: 4; 1 is QPU-like)")
    parser.add_argument("--dump", default=None, help="write every run's raw numbers (JSON) to this file")
    args = parser.parse_args(argv)
    args.epochs = args.epochs or (1 if args.quick else 2)
    args.samples = args.samples or (4 if args.quick else 6)
    import ray

    from qstore_qiskit.gateway.local_ray import init_local_ray

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    init_local_ray(
        num_cpus=args.num_cpus,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        runtime_env={"env_vars": {"IONQ_API_KEY": KEY, "PYTHONPATH": os.environ.get("PYTHONPATH", here)}},
    )
    try:
        # Fractional CPUs: the trials wait on the service most of the time, so all of
        # them run at once on the 2-CPU cluster, as a sweep's trials would on a cluster.
        trial_task = ray.remote(num_cpus=args.num_cpus / args.trials, max_retries=0)(train_trial)

        @ray.remote(num_cpus=args.num_cpus / 8)
        def warm(_i):
            import qiskit_machine_learning.neural_networks  # noqa: F401
            from qiskit.primitives import BackendEstimatorV2  # noqa: F401

            import qstore_qiskit.cache.persistent  # noqa: F401  # the template store of (b)
            import qstore_qiskit.gateway.client  # noqa: F401  # the gateway client of (b)
            import qstore_qiskit.providers  # noqa: F401

            time.sleep(1.0)  # hold the worker so that the 8 warm-ups use 8 processes
            return os.getpid()

        profiles = [p.strip() for p in args.profile.split(",") if p.strip()]
        print(f"Ray sweep: {args.trials} trials x {args.epochs} epoch(s) of per-sample SGD on {args.samples} samples, "
              f"{NUM_QUBITS}-qubit EstimatorQNN, {SHOTS} shots; Ray cluster num_cpus={args.num_cpus} "
              f"on a machine with {os.cpu_count()} cores; a fresh server process per setup, profile(s) "
              f"{', '.join(profiles)}"
          + (f" (max_running_jobs={args.max_running_jobs})" if args.max_running_jobs is not None else ""), flush=True)
        warm_up(ray, warm)
        cache_root = tempfile.mkdtemp(prefix="qstore-ray-sweep-")
        variants = [int(v) for v in args.round_jobs.split(",") if v.strip()] or [None]
        releases = [v.strip() for v in args.release.split(",") if v.strip()] or [None]
        groups: list[list[dict]] = []
        for profile in profiles:
            runs = [run_setup(ray, trial_task, "(a) a backend per trial", False, args, None, profile=profile)]
            for i, k in enumerate(variants):
                for release in releases:
                    # A fresh template store per (b) run: each compiles its structures once.
                    name = ("(b) gateway + shared cache" + ("" if k is None else f", K={k}")
                            + ("" if release is None else f", {release}"))
                    cache_dir = os.path.join(cache_root, f"templates-{profile}-{i}-{release}")
                    options = {} if release is None else {"release": release}
                    if args.job_budget is not None:
                        options["job_budget"] = args.job_budget
                    runs.append(run_setup(ray, trial_task, name, True, args, cache_dir, round_jobs=k,
                                          profile=profile, gateway_options=options))
            groups.append(runs)
    finally:
        ray.shutdown()
    for runs in groups:
        print()
        print(f"=== profile {runs[0]['profile']} ===")
        report(runs)
    runs = [run for group in groups for run in group]
    if args.dump:
        import json

        with open(args.dump, "w", encoding="utf-8") as fh:
            json.dump(runs, fh, default=str)
    return 0


def service_bound(config, sizes: list[int], calls_per_job: float) -> float:
    """Least seconds the service needs for one trial's calls, one after another (each
    depends on the previous one's results), from the profile's latency model.

    Per call: two requests (the job's creation, then its results: a status poll can ride
    along with the results fetch, as the client's speculative fetch does), the queue
    wait, the job overhead and the execution of the job's circuits: this call's
    ``n`` circuits times ``calls_per_job`` (a job carries that many calls of the same
    step, as the calls of a sweep's trials at one step are alike). A circuit is counted
    at ``per_circuit_time + shots * per_shot_time``, without the per-gate time: a lower
    bound. Network jitter and polling delays are taken as zero.
    """
    circuit = config.per_circuit_time + SHOTS * config.per_shot_time
    return math.fsum(2 * config.network_delay + config.queue_wait + config.job_overhead
                     + calls_per_job * n * circuit for n in sizes)


def machine_bound(config, jobs: int, circuits: int) -> float:
    """Least seconds for the service to execute ``jobs`` jobs of ``circuits`` circuits in
    all: one after another with ``queue_model="fair_share"`` (one job at a time per
    backend), else ``max_running_jobs`` side by side (0 without a cap)."""
    work = jobs * config.job_overhead + circuits * (config.per_circuit_time + SHOTS * config.per_shot_time)
    if config.queue_model == "fair_share":
        return work
    return work / config.max_running_jobs if config.max_running_jobs else 0.0


def print_bounds(a: dict, bs: list[dict]) -> None:
    """The lower bounds of (a) and each (b) from the profile's latency model and the
    counted calls and jobs, and the best (b)/(a) wall-time ratio they allow."""
    import dataclasses

    from qstore_qiskit.server.config import PROFILES

    config = PROFILES[a["profile"]]
    if a.get("max_running_jobs") is not None:
        config = dataclasses.replace(config, max_running_jobs=a["max_running_jobs"])
    calls = sum(t["calls"] for t in a["trials"])
    circuits = a["server"]["circuits_created"]
    # The trials' own work between calls (binding, gradients, SGD): as (a) measured it.
    compute = float(np.mean([t["seconds"] - t["wait"] for t in a["trials"]]))

    def bound(run: dict) -> tuple[float, float, float]:
        per_job = calls / max(run["server"]["jobs_created"], 1)
        path = float(np.mean([service_bound(config, t["sizes"], per_job) for t in a["trials"]])) + compute
        machine = machine_bound(config, run["server"]["jobs_created"], circuits)
        return per_job, path, max(path, machine) if config.queue_model == "fair_share" else path

    per_a, path_a, best_a = bound(a)
    print()
    print(f"Lower bounds from the {a['profile']} profile's model (network {config.network_delay:.3f} s per request, "
          f"queue wait {config.queue_wait:.2f} s, job overhead {config.job_overhead:.2f} s, "
          f"{config.per_circuit_time + SHOTS * config.per_shot_time:.4f} s per circuit without gate time, "
          f"queue {config.queue_model}"
          + (f", {config.max_running_jobs} jobs at once" if config.max_running_jobs else "") + "); "
          f"a trial's {len(a['trials'][0]['sizes'])} calls run one after another, plus its own work between them "
          f"({compute:.2f} s per trial, as measured in (a)):")
    print(f"  (a): {per_a:.1f} calls per job: critical path {path_a:.2f} s"
          + (f", machine busy {machine_bound(config, a['server']['jobs_created'], circuits):.2f} s"
             if config.queue_model == "fair_share" else "")
          + f" -> bound {best_a:.2f} s (measured {a['wall']:.2f} s)")
    for b in bs:
        per_b, path_b, best_b = bound(b)
        print(f"  {b['name']}: {per_b:.2f} calls per job: critical path {path_b:.2f} s"
              + (f", machine busy {machine_bound(config, b['server']['jobs_created'], circuits):.2f} s"
                 if config.queue_model == "fair_share" else "")
              + f" -> bound {best_b:.2f} s (measured {b['wall']:.2f} s)")
        print(f"    best (b)/(a) any client reaches with these jobs: {best_b / best_a:.2f} (bound (b) / bound (a)), "
              f"{best_b / a['wall']:.2f} (bound (b) / measured (a)); measured {b['wall'] / a['wall']:.2f}")
    per4 = 4.0
    path4 = float(np.mean([service_bound(config, t["sizes"], per4) for t in a["trials"]])) + compute
    if config.queue_model != "fair_share":
        print(f"  any client with 4x fewer jobs than calls (4 calls of a step per job): critical path {path4:.2f} s, "
              f"{path4 / best_a:.2f}x bound (a), {path4 / a['wall']:.2f}x measured (a)")


def report(runs: list[dict]) -> None:
    """The table, the targets for every (b) run against (a), and where the time goes."""
    a, bs = runs[0], runs[1:]
    width = max(28, max(len(run["name"]) for run in runs))
    head = (f"{'setup':{width}s} {'wall s':>7s} {'compiles':>8s} {'jobs':>6s} {'circuits':>8s} {'requests':>8s} "
            f"{'429s':>5s} {'failed':>6s} {'load':>9s}")
    print()
    print(head)
    print("-" * len(head))
    for run in runs:
        compiles = sum(t["compiles"] for t in run["trials"])
        failed = sum(t["failed"] for t in run["trials"])
        if run["gateway"] is not None:
            failed = run["gateway"].get("submissions_failed", 0)
        srv = run["server"]
        run["compiles"], run["failed"] = compiles, failed
        load = f"{run['load'][0]:.1f}-{run['load'][1]:.1f}"
        print(f"{run['name']:{width}s} {run['wall']:7.2f} {compiles:8d} {srv['jobs_created']:6d} "
              f"{srv['circuits_created']:8d} {srv['requests']:8d} {srv['rate_limited']:5d} {failed:6d} {load:>9s}")
    print()
    print(f"{'trial':>5s} {'lr':>4s} {'init':>4s} {'losses (a)':>30s} {'losses (b)':>30s} {'equal':>5s}")
    for b in bs:
        b["losses_equal"] = all(ta["losses"] == tb["losses"] for ta, tb in zip(a["trials"], b["trials"]))
    b = bs[0]
    for i, (ta, tb) in enumerate(zip(a["trials"], b["trials"])):
        la = " ".join(f"{v:.4f}" for v in ta["losses"])
        lb = " ".join(f"{v:.4f}" for v in tb["losses"])
        equal = all(ta["losses"] == other["trials"][i]["losses"] for other in bs)
        print(f"{ta['trial']:5d} {ta['lr']:4.1f} {ta['init_seed']:4d} {la:>30s} {lb:>30s} {str(equal):>5s}")
    # Distinct structures: template-cache keys over all trials of (a), where every
    # trial compiles each structure it meets.
    structures = len({k for t in a["trials"] for k in t["structures"]})
    print("  (a backend per trial: adaptive lifting compiles a structure's first bound circuit exactly and")
    print("   the reusable lifted template when it comes back; gateway backends lift from the first sighting)")
    for b in bs:
        jobs_ratio = a["server"]["jobs_created"] / max(b["server"]["jobs_created"], 1)
        wall_ratio = a["wall"] / b["wall"]
        print()
        print(f"{b['name']} against (a):")
        print(f"  compiles: (a) {a['compiles']}, (b) {b['compiles']} (distinct structures: {structures}; "
              f"per trial in (b): {[t['compiles'] for t in b['trials']]}) "
              f"-> {'MET' if b['compiles'] == structures else 'NOT MET'}")
        print(f"  IonQ jobs: (a) {a['server']['jobs_created']}, (b) {b['server']['jobs_created']}: {jobs_ratio:.1f}x "
              f"fewer -> {'MET' if jobs_ratio >= 4 else 'NOT MET'} (target >= 4x)")
        print(f"  submissions failed in (b): {b['failed']} (server 429s in (b): {b['server']['rate_limited']}) "
              f"-> {'MET' if b['failed'] == 0 else 'NOT MET'}")
        print(f"  wall time: (a) {a['wall']:.2f}s, (b) {b['wall']:.2f}s: (b)/(a) = {b['wall'] / a['wall']:.2f} "
              f"-> {'MET' if wall_ratio >= 2 else 'NOT MET'} (target <= 0.5)")
        print(f"  per-trial losses equal between (a) and (b): {'MET' if b['losses_equal'] else 'NOT MET'}")
    print_bounds(a, bs)
    print()
    print("Where the time goes (per backend.run() call, from run() to its results):")
    a_calls = sum(t["calls"] for t in a["trials"])
    print(f"  (a): {sum(t['wait'] for t in a['trials']) / a_calls:.3f}s = "
          f"{sum(sum(t['preps']) for t in a['trials']) / a_calls:.3f} run() (compile, bind) + the rest (service, "
          "results)")
    for b in bs:
        gw = b["gateway"]["gateway"]
        n = max(gw["requests"], 1)
        ts = b["trials"]
        calls = sum(t["calls"] for t in ts)
        prep = sum(sum(t["preps"]) for t in ts) / calls
        rt = sum(t["round_trip"] for t in ts) / calls
        wait = sum(t["wait"] for t in ts) / calls
        held, res = gw.get("held_seconds", 0) / n, gw.get("results_seconds", 0) / n
        print(f"  {b['name']}: {wait:.3f}s = {prep:.3f} run() (compile, bind) + {rt:.3f} hand-in to results "
              f"[{held:.3f} held for the round + {res:.3f} release to results (the service) + "
              f"{rt - held - res:.3f} Ray hops] + {wait - prep - rt:.3f} results to the caller")
        print(f"    gateway: {gw['requests']} requests in {gw['rounds']} rounds, {gw['circuits']} circuits, "
              f"{((b['gateway'].get('circuits_per_job') or {}).get('mean') or 0):.1f} circuits per job")
    for run in runs:
        ts = run["trials"]
        calls = np.mean([t["calls"] for t in ts])
        wait = np.mean([t["wait"] for t in ts])
        secs = np.mean([t["seconds"] for t in ts])
        by_size: dict[int, list[float]] = {}
        for t in ts:
            for size, w in zip(t["sizes"], t["waits"]):
                by_size.setdefault(size, []).append(w)
        parts = ", ".join(f"{n} circ. {np.mean(w):.3f}s" for n, w in sorted(by_size.items()))
        cpu = run["cpu"]
        print(f"  {run['name']}: per trial {calls:.0f} calls, {secs:.2f}s = {wait:.2f}s waiting for results + "
              f"{secs - wait:.2f}s computing; per call by its circuits: {parts}; CPU s: trials {cpu['trials']:.2f}, "
              f"gateway {cpu['gateway']:.2f}, server {cpu['server']:.2f}")
    print(f"note: the machine has {os.cpu_count()} cores, shared with other work while this ran (load column: "
          "load average before -> after); compare the ratios, not the absolute seconds.")

if __name__ == "__main__":
    sys.exit(main())
