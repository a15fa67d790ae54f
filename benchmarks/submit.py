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

Usage::

    python benchmarks/submit.py [--sizes 20 200] [--shots 1024] [--seed 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import numpy as np
from qiskit import QuantumCircuit
from qiskit_ionq import IonQProvider
from qiskit_ionq.ionq_gates import GPI2Gate, GPIGate, MSGate

from qstore_qiskit.client import BatchSubmitter
from qstore_qiskit.payload import native_body
from qstore_qiskit.server import LocalServer


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
    args = parser.parse_args()
    print(f"# load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print_table(run(args.sizes, args.shots, args.seed, args.qiskit_ionq_per_circuit_max, args.repeat))


if __name__ == "__main__":
    main()
