"""CPU cost of the local server's simulation thread per job (``simulate_job``).

Builds multicircuit jobs of random IonQ circuits (native GPI/GPI2/MS, and qis) exactly
as the server does (``parse_job_request`` + child ``Job`` records), then measures with
``time.process_time`` (best of several runs):

* ``parse``: validating the request into circuits (runs in the server's parse pool);
* ``simulate``: :func:`qstore_qiskit.server.runner.simulate_job` (probabilities,
  seeded histograms, JSON text), i.e. what the server's simulation thread spends;
* ``old``: the previous ``simulate_job`` loop, kept here: every circuit on its own
  through the general kernel (``simulate_unitary_circuit(parsed.unitaries())``: peephole
  fusion + einsum/tensordot), then the numpy-path JSON text and histogram. It shares
  this checkout's general kernel, so it runs a little faster than the code before the
  batched kernel did (its 2-qubit ``np.kron`` was replaced too).

The ``--aer`` table (``python benchmarks/server_sim.py --aer``) puts the two simulators
side by side on the same ideal jobs, in one run: ``numpy`` is the numpy path
(:func:`~qstore_qiskit.server.circuits.iter_probabilities`: the batched kernel up to 12
qubits, the general kernel above, then the same histogram/JSON work) and ``aer`` is
:func:`~qstore_qiskit.server.runner.simulate_job` with every circuit on qiskit-aer
(``NUMPY_MAX_QUBITS = 0``). ``aer/numpy`` > 1 means numpy is faster; the server's dispatch
(:data:`~qstore_qiskit.server.runner.NUMPY_MAX_QUBITS`) keeps numpy only there.

Run: ``python benchmarks/server_sim.py`` (``--quick`` for fewer repetitions).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from qstore_qiskit.server import simulator as sim
from qstore_qiskit.server.config import ServerConfig
from qstore_qiskit.server.jobs import Job, parse_job_request
from qstore_qiskit.server import runner
from qstore_qiskit.server.circuits import iter_probabilities
from qstore_qiskit.server.runner import job_rng, simulate_job


def native_circuit(n: int, num_gates: int, rng: np.random.Generator) -> list[dict]:
    """Random native gates, about two single-qubit pulses per MS (like compiled ansatzes)."""
    gates: list[dict] = []
    for _ in range(num_gates):
        kind = rng.random()
        if kind < 0.33:
            a, b = (int(x) for x in rng.choice(n, 2, replace=False))
            gates.append({"gate": "ms", "targets": [a, b],
                          "phases": [float(rng.random()), float(rng.random())],
                          "angle": 0.25})
        elif kind < 0.5:
            gates.append({"gate": "gpi", "target": int(rng.integers(n)),
                          "phase": float(rng.random())})
        else:
            gates.append({"gate": "gpi2", "target": int(rng.integers(n)),
                          "phase": float(rng.random())})
    return gates


def qis_circuit(n: int, num_gates: int, rng: np.random.Generator) -> list[dict]:
    """Random qis gates: rotations, fixed 1q gates, cnot and rzz."""
    gates: list[dict] = []
    for _ in range(num_gates):
        kind = rng.random()
        if kind < 0.3:
            a, b = (int(x) for x in rng.choice(n, 2, replace=False))
            gates.append({"gate": "x", "targets": [a], "controls": [b]})
        elif kind < 0.4:
            a, b = (int(x) for x in rng.choice(n, 2, replace=False))
            gates.append({"gate": "zz", "targets": [a, b], "rotation": float(rng.random())})
        elif kind < 0.7:
            gates.append({"gate": str(rng.choice(["rx", "ry", "rz"])),
                          "targets": [int(rng.integers(n))], "rotation": float(rng.random())})
        else:
            gates.append({"gate": str(rng.choice(["h", "s", "t", "v"])),
                          "targets": [int(rng.integers(n))]})
    return gates


def make_job(gateset: str, circuits: int, n: int, num_gates: int, seed: int):
    """A multicircuit job body of random circuits and the server config to parse it."""
    rng = np.random.default_rng(seed)
    make = native_circuit if gateset == "native" else qis_circuit
    body = {
        "type": "ionq.multi-circuit.v1", "backend": "simulator", "shots": 1024,
        "input": {"gateset": gateset, "qubits": n,
                  "circuits": [{"circuit": make(n, num_gates, rng)} for _ in range(circuits)]},
    }
    config = ServerConfig()
    return body, config


def build(body, config) -> Job:
    """Parse ``body`` and make the job with its child records, as the server does."""
    spec = parse_job_request(body, config)
    job = Job(id="j", spec=spec, seq=1)
    for i in range(len(spec.circuits)):
        job.children.append(Job(id=f"j-{i}", spec=spec, seq=2 + i, parent_id="j",
                                circuit_index=i))
    return job


def cpu(fn, repeat: int) -> float:
    """Best-of-``repeat`` CPU seconds of ``fn()`` (fewer repeats once 2 s are spent)."""
    best = float("inf")
    spent = 0.0
    for _ in range(repeat):
        if spent > 2.0:
            break
        t0 = time.process_time()
        fn()
        elapsed = time.process_time() - t0
        best = min(best, elapsed)
        spent += elapsed
    return best


def old_simulate_job(job: Job, server_seed: int) -> None:
    """``simulate_job`` before the batched kernel (ideal noise, circuit jobs)."""
    for child in job.children or [job]:
        c = child.circuit
        probs = sim.probabilities(sim.simulate_unitary_circuit(c.num_qubits, c.unitaries()))
        rng = job_rng(child, server_seed)
        nonzero = np.flatnonzero(probs > 1e-14)
        child.probabilities_json = "{" + ",".join(
            [f'"{k}":{v!r}' for k, v in zip(nonzero.tolist(), probs[nonzero].tolist())]
        ) + "}"
        counts = rng.multinomial(job.spec.shots, probs / probs.sum())
        nonzero = np.flatnonzero(counts)
        child.histogram = dict(zip(nonzero.tolist(), counts[nonzero].tolist()))
        child.sample_seed = int(rng.integers(2**63 - 1))


def numpy_simulate_job(job: Job, server_seed: int) -> None:
    """The numpy path for every circuit of an ideal job (batched kernel up to 12 qubits)."""
    targets = job.children or [job]
    for child, probs in zip(targets, iter_probabilities([t.circuit for t in targets])):
        rng = job_rng(child, server_seed)
        child.probabilities_json = sim.probability_json(probs)
        child.histogram = sim.sample_histogram(probs, job.spec.shots, rng)
        child.sample_seed = int(rng.integers(2**63 - 1))


def aer_simulate_job(job: Job, server_seed: int) -> None:
    """:func:`simulate_job` with every circuit on qiskit-aer."""
    saved = runner.NUMPY_MAX_QUBITS
    runner.NUMPY_MAX_QUBITS = 0
    try:
        simulate_job(job, server_seed)
    finally:
        runner.NUMPY_MAX_QUBITS = saved


def aer_table(repeat: int) -> None:
    """Aer vs numpy on the same ideal jobs, side by side."""
    cases = [("native", 96, 2, 20), ("native", 96, 4, 30), ("qis", 96, 4, 30),
             ("native", 96, 8, 60), ("native", 32, 10, 60), ("native", 32, 12, 100),
             ("native", 1, 12, 100), ("native", 4, 14, 100), ("native", 1, 16, 200),
             ("native", 1, 18, 200), ("native", 1, 20, 200)]
    print(f"Ideal jobs: CPU ms per job (best of {repeat}), shots=1024; "
          f"dispatch: numpy up to {runner.NUMPY_MAX_QUBITS} qubits")
    print(f"{'gateset':8} {'circ':>4} {'qubits':>6} {'gates':>5} | {'numpy':>9} {'aer':>9} "
          f"{'aer/numpy':>9}  server uses")
    for gateset, circuits, n, num_gates in cases:
        body, config = make_job(gateset, circuits, n, num_gates, seed=n * 1000 + num_gates)
        job = build(body, config)
        t_np = cpu(lambda: numpy_simulate_job(job, 42), repeat)
        t_aer = cpu(lambda: aer_simulate_job(job, 42), repeat)
        used = "numpy" if n <= runner.NUMPY_MAX_QUBITS else "aer"
        print(f"{gateset:8} {circuits:4} {n:6} {num_gates:5} | {t_np * 1e3:9.2f} "
              f"{t_aer * 1e3:9.2f} {t_aer / t_np:9.2f}  {used}")


def noisy_table(repeat: int) -> None:
    """Noisy trajectories: the server's sampler (error-free shots share one run, shots with
    the same error pattern share one) against Aer's own per-shot noise sampling (the same
    labelled circuit with the model as an Aer ``NoiseModel``), side by side."""
    # pylint: disable=import-outside-toplevel
    from qstore_qiskit.server import aer_simulator as aer
    from qstore_qiskit.server.noise_models import NOISE_MODELS

    model = NOISE_MODELS["aria-1"]
    cases = [(11, 60, 1024), (12, 100, 1024), (14, 100, 1024), (16, 100, 512),
             (20, 40, 100)]
    print(f"Noisy aria-1 circuits (native, random): CPU ms per circuit (best of {repeat})")
    print(f"{'qubits':>6} {'gates':>5} {'shots':>5} | {'server':>9} {'aer-noise':>9} "
          f"{'aer/server':>10}")
    for n, num_gates, shots in cases:
        body, config = make_job("native", 1, n, num_gates, seed=n)
        circuit = build(body, config).spec.circuits[0]
        ops = aer.circuit_ops(circuit, decompose_wide=True)

        def ours() -> None:
            aer.simulate_noisy(n, ops, shots, model, np.random.default_rng(1))

        def builtin() -> None:
            qc = aer.aer_circuit(n, ops, labels=True, measure=True)
            backend = aer._simulator("statevector", n,  # pylint: disable=protected-access
                                     model.aer_noise_model())
            backend.run(qc, shots=shots, seed_simulator=1).result()

        t_ours = cpu(ours, repeat)
        t_builtin = cpu(builtin, repeat)
        print(f"{n:6} {num_gates:5} {shots:5} | {t_ours * 1e3:9.1f} {t_builtin * 1e3:9.1f} "
              f"{t_builtin / t_ours:10.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--aer", action="store_true",
                        help="only the Aer vs numpy table")
    parser.add_argument("--noisy", action="store_true",
                        help="only the noisy trajectory table")
    args = parser.parse_args(argv)
    repeat = 3 if args.quick else 15
    if args.aer:
        aer_table(repeat)
        return 0
    if args.noisy:
        noisy_table(1 if args.quick else 3)
        return 0
    cases = [("native", 96, 4, 20), ("native", 96, 4, 30), ("native", 96, 4, 60),
             ("native", 96, 6, 45), ("native", 96, 8, 20), ("native", 96, 8, 60),
             ("native", 96, 8, 100), ("qis", 96, 4, 30), ("qis", 96, 8, 60),
             ("native", 1, 4, 30), ("native", 4, 12, 100)]
    print(f"CPU ms per job (best of {repeat}), shots=1024")
    print(f"{'gateset':8} {'circ':>4} {'qubits':>6} {'gates':>5} | {'parse':>8} "
          f"{'simulate':>9} {'old':>9} {'old/sim':>7}")
    for gateset, circuits, n, num_gates in cases:
        body, config = make_job(gateset, circuits, n, num_gates, seed=n * 1000 + num_gates)
        job = build(body, config)
        t_parse = cpu(lambda: build(body, config), repeat)
        t_sim = cpu(lambda: simulate_job(job, 42), repeat)
        t_old = cpu(lambda: old_simulate_job(job, 42), repeat)
        print(f"{gateset:8} {circuits:4} {n:6} {num_gates:5} | {t_parse * 1e3:8.2f} "
              f"{t_sim * 1e3:9.2f} {t_old * 1e3:9.2f} {t_old / t_sim:7.2f}")
    print()
    aer_table(repeat)
    print()
    noisy_table(1 if args.quick else 3)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
