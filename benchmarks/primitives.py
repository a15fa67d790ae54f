"""V2 primitives: qstore's SamplerV2/EstimatorV2 vs Qiskit's BackendSamplerV2, side by side.

One local IonQ-API server in the ``instant`` profile runs in its own process
(:class:`~qstore_qiskit.server.ServerProcess`, so the server's simulation never counts as
client time). In one run, on the same server:

Sampler, one PUB of an 8-qubit ansatz (``efficient_su2(8, reps=2)``, 48 parameters,
measured) with ``--sets`` (default 1,000) parameter sets, ``--shots`` each:

(a) ``qstore_qiskit.primitives.SamplerV2`` over a ``QStoreBackend``, the circuit
    transpiled with ``generate_preset_pass_manager(1, backend=backend)``;
(b) Qiskit's ``BackendSamplerV2`` over the same kind of backend, same ISA circuit;
(c) Qiskit's ``BackendSamplerV2`` over qiskit-ionq's ``IonQProvider`` backend
    (``IONQ_API_URL`` and ``url`` pointing at the local server), the circuit transpiled
    with qiskit-ionq's own preset pass manager.

Client-side time is the CPU time of this process (``time.process_time``, all its
threads) from ``run()`` to the finished result, divided by the number of parameter
sets, the least of ``--repeat`` (3) runs of each setup: what the
client spends per parameter set, excluding waits on the service (qiskit-ionq polls
every few seconds) and the server's work. Wall times are printed too.

Estimator: ``EstimatorV2`` with 20 random Pauli observables on 6 qubits and ``--est-sets``
parameter sets; the server's count of circuits created, per parameter set, is compared
with the number of qubit-wise commuting groups (Qiskit's ``group_commuting``).

Usage::

    python benchmarks/primitives.py              # 1,000 parameter sets
    python benchmarks/primitives.py --sets 200   # quicker
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

SEED = 1234
TOKEN = "benchmark-key"


def ansatz(num_qubits: int = 8):
    from qiskit.circuit.library import efficient_su2

    qc = efficient_su2(num_qubits, reps=2)
    qc.measure_all()
    return qc


REPEAT = 3


def timed(fn):
    """``(result, client CPU seconds, wall seconds)`` of ``fn()``: the run with the least
    CPU time of ``REPEAT`` runs (steady state; every setup is treated alike)."""
    best = None
    for _ in range(REPEAT):
        cpu, wall = time.process_time(), time.perf_counter()
        out = fn()
        sample = (out, time.process_time() - cpu, time.perf_counter() - wall)
        if best is None or sample[1] < best[1]:
            best = sample
    return best


def circuits_created(server) -> int:
    return int(server.stats()["circuits_created"])


def sampler_rows(server, sets: int, shots: int) -> list[dict]:
    from qiskit.primitives import BackendSamplerV2
    from qiskit.transpiler import generate_preset_pass_manager

    from qstore_qiskit import QStoreProvider
    from qstore_qiskit.primitives import SamplerV2

    circuit = ansatz()
    values = np.random.default_rng(SEED).uniform(-np.pi, np.pi, (sets, circuit.num_parameters))
    rows = []

    provider = QStoreProvider(token=TOKEN, url=server.url)
    try:
        backend = provider.get_backend("ionq_simulator")
        isa = generate_preset_pass_manager(1, backend=backend).run(circuit)
        assert isa.num_parameters == circuit.num_parameters, "the ISA circuit lost parameters"
        # Warm-up (template analysis, HTTP pool) outside the timed region, for both.
        SamplerV2(backend, seed=SEED).run([(isa, values[:2])], shots=shots).result()
        BackendSamplerV2(backend=backend, options={"seed_simulator": SEED}).run([(isa, values[:2])], shots=shots).result()
        for name, make in (
            ("(a) qstore SamplerV2", lambda: SamplerV2(backend, seed=SEED)),
            ("(b) BackendSamplerV2(QStoreBackend)", lambda: BackendSamplerV2(backend=backend, options={"seed_simulator": SEED})),
        ):
            before = circuits_created(server)
            sampler = make()
            result, cpu, wall = timed(lambda: sampler.run([(isa, values)], shots=shots).result())
            assert result[0].data.meas.shape == (sets,)
            rows.append(dict(name=name, cpu=cpu, wall=wall, sets=sets,
                             circuits=(circuits_created(server) - before) // REPEAT))
    finally:
        provider.close()

    try:
        from qiskit_ionq import IonQProvider

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            backend = IonQProvider(TOKEN, url=server.url).get_backend("simulator")
            backend.set_options(sampler_seed=SEED)
            isa = generate_preset_pass_manager(1, backend=backend, seed_transpiler=SEED).run(circuit)
            sampler = BackendSamplerV2(backend=backend, options={"seed_simulator": SEED})
            before = circuits_created(server)
            result, cpu, wall = timed(lambda: sampler.run([(isa, values)], shots=shots).result())
        assert result[0].data.meas.shape == (sets,)
        rows.append(dict(name="(c) BackendSamplerV2(qiskit-ionq)", cpu=cpu, wall=wall, sets=sets,
                         circuits=(circuits_created(server) - before) // REPEAT))
    except Exception as exc:  # keep the other rows
        rows.append(dict(name="(c) BackendSamplerV2(qiskit-ionq)", error=f"{type(exc).__name__}: {exc}"[:200]))
    return rows


def estimator_rows(server, sets: int) -> tuple[list[dict], int]:
    from qiskit import QuantumCircuit
    from qiskit.circuit.library import real_amplitudes
    from qiskit.primitives import BackendEstimatorV2
    from qiskit.quantum_info import PauliList, SparsePauliOp

    from qstore_qiskit import QStoreProvider
    from qstore_qiskit.primitives import EstimatorV2

    rng = np.random.default_rng(SEED)
    labels: list[str] = []
    while len(labels) < 20:
        label = "".join(rng.choice(list("IXYZ"), 6))
        if label not in labels and set(label) != {"I"}:
            labels.append(label)
    observable = SparsePauliOp(labels, rng.uniform(-1, 1, 20))
    groups = len(PauliList(labels).group_commuting(qubit_wise=True))
    circuit: QuantumCircuit = real_amplitudes(6, reps=2)
    values = rng.uniform(-np.pi, np.pi, (sets, circuit.num_parameters))
    rows = []
    provider = QStoreProvider(token=TOKEN, url=server.url)
    try:
        backend = provider.get_backend("ionq_simulator")
        for name, make in (
            ("(a) qstore EstimatorV2", lambda: EstimatorV2(backend, seed=SEED)),
            ("(b) BackendEstimatorV2(QStoreBackend)",
             lambda: BackendEstimatorV2(backend=backend, options={"seed_simulator": SEED})),
        ):
            estimator = make()
            estimator.run([(circuit, observable, values[:2])], precision=1 / 32).result()  # warm-up
            before = circuits_created(server)
            result, cpu, wall = timed(lambda: estimator.run([(circuit, observable, values)], precision=1 / 32).result())
            assert result[0].data.evs.shape == (sets,)
            rows.append(dict(name=name, cpu=cpu, wall=wall, sets=sets,
                             circuits=(circuits_created(server) - before) // REPEAT))
    finally:
        provider.close()
    return rows, groups


def qnn_rows(server, repeat: int = 3) -> dict:
    """EstimatorQNN (forward + parameter-shift backward) through Qiskit's preset pass
    manager vs the package's own ``generate_ionq_pass_manager``, both with
    ``BackendEstimatorV2`` on a qstore backend (the setup of issue #13, defect 2)."""
    from qiskit.circuit.library import real_amplitudes, zz_feature_map
    from qiskit.primitives import BackendEstimatorV2, StatevectorEstimator
    from qiskit.transpiler import generate_preset_pass_manager
    from qiskit_machine_learning.neural_networks import EstimatorQNN

    import qstore_qiskit
    from qstore_qiskit import QStoreProvider

    feature_map, ansatz_ = zz_feature_map(4, reps=1), real_amplitudes(4, reps=1)
    circuit = feature_map.compose(ansatz_)
    rng = np.random.default_rng(SEED)
    X, w = rng.uniform(0, np.pi, (6, 4)), rng.uniform(-1, 1, ansatz_.num_parameters)
    exact = EstimatorQNN(circuit=circuit, input_params=feature_map.parameters,
                         weight_params=ansatz_.parameters, estimator=StatevectorEstimator()).backward(X, w)[1]
    out = {}
    provider = QStoreProvider(token=TOKEN, url=server.url)
    try:
        backend = provider.get_backend("ionq_simulator")
        for name, pm in (("own", qstore_qiskit.generate_ionq_pass_manager(backend)),
                         ("preset", generate_preset_pass_manager(optimization_level=1, backend=backend))):
            qnn = EstimatorQNN(
                circuit=circuit, input_params=feature_map.parameters, weight_params=ansatz_.parameters,
                estimator=BackendEstimatorV2(backend=backend, options={"default_precision": 0.01, "seed_simulator": SEED}),
                pass_manager=pm,
            )
            qnn.forward(X, w), qnn.backward(X, w)  # warm-up: compiles, caches
            best = None
            for _ in range(repeat):
                start = time.perf_counter()
                qnn.forward(X, w)
                grad = qnn.backward(X, w)[1]
                elapsed = time.perf_counter() - start
                best = elapsed if best is None else min(best, elapsed)
            out[name] = (best, float(np.abs(grad - exact).max()))
    finally:
        provider.close()
    return out


def print_table(title: str, rows: list[dict], reference: str | None) -> None:
    print(f"\n{title}")
    print(f"  {'setup':40s} {'client ms/set':>14s} {'wall s':>8s} {'circuits':>9s} {'circ/set':>9s} {'vs (a)':>8s}")
    base = next((r for r in rows if "error" not in r), None)
    for r in rows:
        if "error" in r:
            print(f"  {r['name']:40s} failed: {r['error']}")
            continue
        per_set = 1000 * r["cpu"] / r["sets"]
        ratio = (r["cpu"] / base["cpu"]) if base and base["cpu"] > 0 else float("nan")
        print(f"  {r['name']:40s} {per_set:14.3f} {r['wall']:8.2f} {r['circuits']:9d} "
              f"{r['circuits'] / r['sets']:9.2f} {ratio:7.1f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=1000, help="parameter sets of the sampler PUB")
    parser.add_argument("--shots", type=int, default=1024)
    parser.add_argument("--est-sets", type=int, default=100, help="parameter sets of the estimator PUB")
    parser.add_argument("--repeat", type=int, default=3, help="runs per setup (the least CPU time is kept)")
    args = parser.parse_args(argv)
    global REPEAT
    REPEAT = max(1, args.repeat)

    from qstore_qiskit.server import ServerProcess

    with ServerProcess(profile="instant", seed=SEED) as server:
        # qiskit-ionq reads IONQ_API_URL: never let it reach IonQ's cloud from here.
        os.environ["IONQ_API_URL"] = server.url
        rows = sampler_rows(server, args.sets, args.shots)
        print_table(
            f"Sampler: efficient_su2(8, reps=2), 48 parameters, {args.sets} parameter sets x {args.shots} shots "
            "(client CPU time per parameter set; 'vs (a)' = how many times more client CPU than (a))",
            rows, None,
        )
        est_rows, groups = estimator_rows(server, args.est_sets)
        print_table(
            f"Estimator: real_amplitudes(6, reps=2), 20 Pauli observables, {args.est_sets} parameter sets, "
            f"precision 1/32 ({groups} qubit-wise commuting groups)",
            est_rows, None,
        )
        qnn = qnn_rows(server)
        print("\nEstimatorQNN (zz_feature_map(4) + real_amplitudes(4), 6 samples, forward + backward, "
              "BackendEstimatorV2 on a qstore backend, precision 0.01; wall time, least of 3)")
        print(f"  {'pass manager':40s} {'seconds':>8s} {'max |grad - exact|':>19s}")
        for name, label in (("own", "generate_ionq_pass_manager(backend)"),
                            ("preset", "generate_preset_pass_manager(1, backend)")):
            seconds, error = qnn[name]
            print(f"  {label:40s} {seconds:8.3f} {error:19.4f}")
        print(f"  preset / own time ratio: {qnn['preset'][0] / qnn['own'][0]:.2f}")
    ok = all("error" not in r for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
