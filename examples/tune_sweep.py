"""A Ray Tune hyper-parameter sweep whose trials share one qstore gateway.

Each Tune trial trains the 4-qubit QNN classifier of ``benchmarks/ray_sweep.py``
(``EstimatorQNN`` on qiskit's ``BackendEstimatorV2``, per-sample SGD with
parameter-shift gradients) with its own learning rate. The only qstore-specific line in
the trainable is ``QStoreProvider(url=..., gateway="ray")``: the trials' circuits go to
the cluster's gateway actor, which gathers them into shared multicircuit jobs, and the
trials compile each circuit structure once between them (the persistent template store).

The driver starts a local IonQ-API server (loopback only, ``cloud`` profile unless
``--instant``), a local Ray cluster, and the gateway (the API key reaches the gateway
through its runtime environment, never through a trial's arguments), runs the Tuner, and
prints each trial's losses and what the service saw.

Run: ``python examples/tune_sweep.py`` (``--trials 4 --samples 4 --epochs 1`` by
default; about 30 s on an idle 2-core machine). Needs ``pip install 'qstore-qiskit[ray]'``
(Ray with Tune). Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile

import numpy as np

SEED = 1234
SHOTS = 1024
NUM_QUBITS = 4
KEY = "tune-sweep-example-key-7d2c4e9a1b6f"


def train(config: dict) -> None:
    """The Tune trainable: ordinary qiskit-machine-learning code plus ``gateway="ray"``."""
    import warnings

    from qiskit.circuit.library import real_amplitudes, zz_feature_map
    from qiskit.primitives import BackendEstimatorV2
    from qiskit_machine_learning.neural_networks import EstimatorQNN
    from ray import tune

    from qstore_qiskit import QStoreProvider

    # token=None: the gateway started by the driver serves the key of its environment.
    provider = QStoreProvider(url=config["url"], gateway="ray")
    backend = provider.get_backend(
        "ionq_simulator", shots=SHOTS, sampler_seed=SEED, template_cache_dir=config["cache_dir"]
    )
    estimator = BackendEstimatorV2(backend=backend, options={"default_precision": 1 / math.sqrt(SHOTS)})
    feature_map, ansatz = zz_feature_map(NUM_QUBITS, reps=1), real_amplitudes(NUM_QUBITS, reps=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no pass manager": the backend compiles itself
        qnn = EstimatorQNN(
            circuit=feature_map.compose(ansatz),
            input_params=feature_map.parameters,
            weight_params=ansatz.parameters,
            estimator=estimator,
        )
    rng = np.random.default_rng(SEED)
    X = rng.uniform(0.0, np.pi, (config["samples"], NUM_QUBITS))
    y = np.where(np.cos(X).sum(axis=1) > 0, 1.0, -1.0)
    w = np.random.default_rng(config["init_seed"]).uniform(-0.5, 0.5, ansatz.num_parameters)

    def loss(weights) -> float:
        return float(np.mean((np.asarray(qnn.forward(X, weights)).reshape(-1) - y) ** 2))

    for epoch in range(config["epochs"]):
        for i in np.random.default_rng(100 + epoch).permutation(len(X)):
            out = float(np.asarray(qnn.forward(X[i], w)).reshape(-1)[0])
            _, grad = qnn.backward(X[i], w)
            w = w - config["lr"] * 2.0 * (out - y[i]) * np.asarray(grad).reshape(-1)
        cache = backend.performance_stats().get("circuit_cache") or {}
        tune.report({"loss": loss(w), "epoch": epoch + 1, "compiles": cache.get("compiles", 0)})
    provider.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4, help="learning rates 0.1, 0.2, ...")
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--instant", action="store_true", help="local server without latency (faster)")
    args = parser.parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray
    from ray import tune

    from qstore_qiskit.gateway import init_local_ray, start_gateway
    from qstore_qiskit.server import ServerProcess

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory(prefix="qstore-tune-") as tmp, ServerProcess(
        profile="instant" if args.instant else "cloud", seed=SEED, api_key=KEY
    ) as server:
        init_local_ray(
            num_cpus=args.num_cpus,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", here)}},
        )
        try:
            # The key goes to the gateway actor only (its runtime environment).
            gateway = start_gateway(
                server.url,
                key_from_env=True,
                journal_dir=os.path.join(tmp, "journal"),
                runtime_env={"env_vars": {"IONQ_API_KEY": KEY}},
            )
            space = {
                "lr": tune.grid_search([round(0.1 * (k + 1), 1) for k in range(args.trials)]),
                "init_seed": 0,
                "samples": args.samples,
                "epochs": args.epochs,
                "url": server.url,
                "cache_dir": os.path.join(tmp, "templates"),
            }
            tuner = tune.Tuner(
                # Fractional CPUs: trials wait on the service most of the time, so all run at once.
                tune.with_resources(train, {"cpu": args.num_cpus / args.trials}),
                param_space=space,
                tune_config=tune.TuneConfig(metric="loss", mode="min"),
                run_config=tune.RunConfig(storage_path=os.path.join(tmp, "tune"), name="qnn", verbose=0),
            )
            results = tuner.fit()
            stats = ray.get(gateway.stats.remote())
            ray.kill(gateway)
        finally:
            ray.shutdown()
        served = server.stats()
    print(f"\nTune sweep: {args.trials} trials, {args.epochs} epoch(s) x {args.samples} samples, "
          f"{NUM_QUBITS}-qubit EstimatorQNN, {SHOTS} shots, one gateway")
    print(f"{'lr':>5} {'final loss':>10} {'compiles':>8} {'status':>10}")
    errors = 0
    for result in sorted(results, key=lambda r: r.config["lr"]):
        if result.error is not None:
            errors += 1
            print(f"{result.config['lr']:5.1f} {'-':>10} {'-':>8} {'ERROR':>10}  {result.error!r}")
            continue
        m = result.metrics
        print(f"{result.config['lr']:5.1f} {m['loss']:10.4f} {m['compiles']:8d} {'done':>10}")
    best = results.get_best_result()
    gw = stats["gateway"]
    print(f"best: lr={best.config['lr']} loss={best.metrics['loss']:.4f}")
    print(f"service: {served['jobs_created']} jobs, {served['circuits_created']} circuits, "
          f"{served['requests']} API requests, {served['rate_limited']} answered 429")
    print(f"gateway: {gw['requests']} calls from the trials in {gw['rounds']} rounds; "
          f"compiles over all trials: {sum(r.metrics.get('compiles', 0) for r in results if r.error is None)}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
