"""A hyper-parameter sweep on Ray: a backend per trial vs the cluster's shared gateway.

8 Ray tasks (a local cluster, loopback only) each train the same 4-qubit QNN classifier
(``zz_feature_map`` + ``real_amplitudes``, qiskit-machine-learning ``EstimatorQNN`` with
parameter-shift gradients on qiskit's ``BackendEstimatorV2`` over a qstore backend, the
model of ``benchmarks/training.py``) for a few epochs with a different learning rate and
initial point each. Per-sample SGD, so every call is small (1 circuit forward, 16 circuits
gradient), as in real sweeps with small batches. Two setups, side by side in one run,
each against its own fresh local IonQ-API server in the ``cloud`` profile (network delay,
queue wait, at most 4 jobs running, 100 circuits per job, 200 requests/s rate limit),
running in its own process:

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
    lr = LEARNING_RATES[trial % len(LEARNING_RATES)]
    init_seed = trial // len(LEARNING_RATES)
    provider = QStoreProvider(url=url, gateway="ray" if gateway else None)
    backend = provider.get_backend("ionq_simulator", **backend_options(cache_dir))
    waits: list[float] = []  # time each backend.run() call's results took to arrive
    run_backend = backend.run

    def timed_run(*args, **kwargs):
        submitted = time.perf_counter()
        job = run_backend(*args, **kwargs)
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
    for sub in list(backend._submitters.values()):  # pylint: disable=protected-access
        st = sub.stats()
        failed += st.get("submissions_failed", 0)
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
        "started": started,
        "ended": time.time(),
    }


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


def run_setup(ray, trial_task, name: str, gateway: bool, args, cache_dir: str | None) -> dict:
    from qstore_qiskit.server import ServerProcess

    overrides = {} if args.max_running_jobs is None else {"max_running_jobs": args.max_running_jobs}
    with ServerProcess(profile="cloud", seed=SEED, api_key=KEY, **overrides) as server:
        if gateway:
            from qstore_qiskit.gateway import start_gateway

            # Started from the driver, like an operator would: the key reaches it through
            # the job's runtime environment, only its fingerprint through the arguments.
            start_gateway(
                server.url,
                KEY,
                journal_dir=os.path.join(cache_dir or tempfile.gettempdir(), "journal"),
                gather_window=args.gather_window,
                linger=args.linger,
            )
        barrier = ray.remote(num_cpus=0)(Barrier).remote(args.trials)
        trials = ray.get(
            [
                trial_task.remote(server.url, gateway, t, args.epochs, args.samples, cache_dir, barrier)
                for t in range(args.trials)
            ]
        )
        # From the release of the barrier to the last trial's end.
        wall = max(t["ended"] for t in trials) - min(t["started"] for t in trials)
        stats = server.stats()
        gateway_stats = None
        if gateway:
            from qstore_qiskit.gateway.identity import NAMESPACE, actor_name, key_fingerprint

            handle = ray.get_actor(actor_name(server.url, key_fingerprint(server.url, KEY)), namespace=NAMESPACE)
            gateway_stats = ray.get(handle.stats.remote())
            ray.kill(handle)
    return {"name": name, "wall": wall, "trials": trials, "server": stats, "gateway": gateway_stats}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 epoch on 4 samples")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--gather-window", type=float, default=0.5, help="gateway option (seconds)")
    parser.add_argument("--linger", type=float, default=1.0, help="gateway option (seconds)")
    parser.add_argument("--max-running-jobs", type=int, default=None,
                        help="server override: jobs executing at once (cloud profile: 4; 1 is QPU-like)")
    args = parser.parse_args(argv)
    args.epochs = args.epochs or (1 if args.quick else 2)
    args.samples = args.samples or (4 if args.quick else 6)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ray.init(
        num_cpus=args.num_cpus,
        _node_ip_address="127.0.0.1",
        include_dashboard=False,
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

            import qstore_qiskit.providers  # noqa: F401

            time.sleep(1.0)  # hold the worker so that the 8 warm-ups use 8 processes
            return os.getpid()

        print(f"Ray sweep: {args.trials} trials x {args.epochs} epoch(s) of per-sample SGD on {args.samples} samples, "
              f"{NUM_QUBITS}-qubit EstimatorQNN, {SHOTS} shots; Ray cluster num_cpus={args.num_cpus} "
              f"on a machine with {os.cpu_count()} cores; a fresh cloud-profile server process per setup"
          + (f" (max_running_jobs={args.max_running_jobs})" if args.max_running_jobs is not None else ""), flush=True)
        warm_up(ray, warm)
        cache_root = tempfile.mkdtemp(prefix="qstore-ray-sweep-")
        runs = [
            run_setup(ray, trial_task, "(a) a backend per trial", False, args, None),
            run_setup(ray, trial_task, "(b) gateway + shared cache", True, args, os.path.join(cache_root, "templates")),
        ]
    finally:
        ray.shutdown()
    report(runs)
    return 0


def report(runs: list[dict]) -> None:
    a, b = runs
    head = f"{'setup':28s} {'wall s':>7s} {'compiles':>8s} {'jobs':>6s} {'circuits':>8s} {'requests':>8s} {'429s':>5s} {'failed':>6s}"
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
        print(f"{run['name']:28s} {run['wall']:7.2f} {compiles:8d} {srv['jobs_created']:6d} {srv['circuits_created']:8d} "
              f"{srv['requests']:8d} {srv['rate_limited']:5d} {failed:6d}")
    print()
    print(f"{'trial':>5s} {'lr':>4s} {'init':>4s} {'losses (a)':>30s} {'losses (b)':>30s} {'equal':>5s}")
    all_equal = True
    for ta, tb in zip(a["trials"], b["trials"]):
        equal = ta["losses"] == tb["losses"]
        all_equal &= equal
        la = " ".join(f"{v:.4f}" for v in ta["losses"])
        lb = " ".join(f"{v:.4f}" for v in tb["losses"])
        print(f"{ta['trial']:5d} {ta['lr']:4.1f} {ta['init_seed']:4d} {la:>30s} {lb:>30s} {str(equal):>5s}")
    print()
    jobs_ratio = a["server"]["jobs_created"] / max(b["server"]["jobs_created"], 1)
    wall_ratio = a["wall"] / b["wall"]
    # Distinct structures: template-cache keys over all trials of (a), where every
    # trial compiles each structure it meets.
    structures = len({k for t in a["trials"] for k in t["structures"]})
    print(f"compiles: (a) {a['compiles']}, (b) {b['compiles']} (distinct structures: {structures}; "
          f"per trial in (b): {[t['compiles'] for t in b['trials']]}) "
          f"-> {'MET' if b['compiles'] == structures else 'NOT MET'}")
    print("  (a backend per trial: adaptive lifting compiles a structure's first bound circuit exactly and")
    print("   the reusable lifted template when it comes back; gateway backends lift from the first sighting)")
    print(f"IonQ jobs: (a) {a['server']['jobs_created']}, (b) {b['server']['jobs_created']}: {jobs_ratio:.1f}x fewer "
          f"-> {'MET' if jobs_ratio >= 4 else 'NOT MET'} (target >= 4x)")
    print(f"submissions failed in (b): {b['failed']} (server 429s in (b): {b['server']['rate_limited']}) "
          f"-> {'MET' if b['failed'] == 0 else 'NOT MET'}")
    print(f"wall time: (a) {a['wall']:.2f}s, (b) {b['wall']:.2f}s: {wall_ratio:.2f}x lower "
          f"-> {'MET' if wall_ratio >= 2 else 'NOT MET'} (target >= 2x)")
    print(f"per-trial losses equal between (a) and (b): {'MET' if all_equal else 'NOT MET'}")
    for run in runs:
        ts = run["trials"]
        calls = np.mean([t["calls"] for t in ts])
        wait = np.mean([t["wait"] for t in ts])
        secs = np.mean([t["seconds"] for t in ts])
        print(f"{run['name']}: per trial {calls:.0f} backend.run() calls, {secs:.2f}s = {wait:.2f}s waiting for "
              f"results ({wait / max(calls, 1):.3f}s per call) + {secs - wait:.2f}s computing")
    if b["gateway"]:
        g = b["gateway"]
        rt = g.get("round_trip") or {}
        print(f"gateway: mean submitter round trip {rt.get('mean', math.nan):.2f}s (hand-in to results, inside "
              f"the gateway); trials' mean seconds (a) {np.mean([t['seconds'] for t in a['trials']]):.2f}, "
              f"(b) {np.mean([t['seconds'] for t in b['trials']]):.2f}")
        gw = g["gateway"]
        n = max(gw["requests"], 1)
        print(f"gateway: per request {gw.get('held_seconds', 0) / n:.3f}s held for its round + "
              f"{gw.get('results_seconds', 0) / n:.3f}s from release to results (inside the actor)")
        print(f"gateway: {g['gateway']['requests']} requests in {g['gateway']['rounds']} rounds, "
              f"{g['gateway']['circuits']} circuits, "
              f"circuits per job {((g.get('circuits_per_job') or {}).get('mean') or 0):.1f}")
    print(f"note: the machine has {os.cpu_count()} cores, shared with other work while this ran; "
          "compare the ratios, not the absolute seconds.")


if __name__ == "__main__":
    sys.exit(main())
