"""``qstore-qiskit demo``: the same workload the plain way and with every qstore feature on.

The workload is a parameter sweep of a 6-qubit hardware-efficient ansatz
(``efficient_su2`` with RY/RZ layers and a linear CX chain, two repetitions, 36
parameters) measuring the energy of a 6-spin Ising chain
``H = sum_i Z_i Z_{i+1} + 0.5 sum_i Z_i``. The parameter sets come in rounds, as an
optimizer or a landscape scan would send them.

* **plain**: qiskit-ionq's ``IonQProvider(key, url=...)`` simulator backend; every bound
  circuit is transpiled with ``transpile(bound, backend)`` and each round is sent with
  one ``backend.run(list)`` (split at the server's per-job circuit cap), results fetched
  with ``job.result(wait=0.05)`` (qiskit-ionq's default poll interval is 5 s; 0.05 s
  keeps the baseline honest).
* **qstore**: ``QStoreProvider(token=key, url=...)``'s ``ionq_simulator`` backend with its
  defaults (native gates, template cache, batch API); each round is one
  ``backend.run(ansatz, parameter_binds=[...])``.

Each side gets its own fresh embedded :class:`~qstore_qiskit.server.LocalServer` with the
same profile and seed, so the server's request counters belong to one side only. No API
key or network access is needed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import secrets
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

DEFAULT_CIRCUITS = 150
DEFAULT_ROUNDS = 5
QUICK_CIRCUITS = 30
QUICK_ROUNDS = 2
NUM_QUBITS = 6

NEXT_STEPS = """\
Where next:
  * docs/getting_started.rst   install, first transpile, first run
  * docs/benchmarks.rst        what every number means, and how to reproduce it
  * qstore-qiskit bench        the performance table (Markdown, JSON, PNG) on this machine
  * qstore-qiskit serve        the local IonQ-API server for your own code and tests
  * qstore-qiskit run FILE.qasm --shots 1024   run OpenQASM 2/3 files
"""


# ----------------------------------------------------------------------------- workload
def build_ansatz(num_qubits: int = NUM_QUBITS, reps: int = 2):
    """The hardware-efficient ansatz of the demo (measured on every qubit)."""
    from qiskit.circuit.library import efficient_su2

    ansatz = efficient_su2(num_qubits, su2_gates=["ry", "rz"], entanglement="linear", reps=reps)
    ansatz.name = f"hea{num_qubits}"
    ansatz.measure_all()
    return ansatz


def parameter_sets(num_sets: int, num_parameters: int, seed: int) -> np.ndarray:
    """Seeded parameter sets, one row per circuit."""
    return np.random.default_rng(seed).uniform(-np.pi, np.pi, (num_sets, num_parameters))


def ising_diagonal(num_qubits: int = NUM_QUBITS, field_strength: float = 0.5) -> np.ndarray:
    """Diagonal of ``sum Z_i Z_{i+1} + h sum Z_i`` over outcomes (qubit 0 = least significant bit)."""
    k = np.arange(2**num_qubits)
    z = 1 - 2 * ((k[:, None] >> np.arange(num_qubits)) & 1)
    return (z[:, :-1] * z[:, 1:]).sum(axis=1) + field_strength * z.sum(axis=1)


def counts_matrix(counts: list[dict[str, int]], num_qubits: int = NUM_QUBITS) -> np.ndarray:
    """Counts dicts (bitstrings, clbit 0 rightmost) -> array ``(circuits, 2**n)`` of counts."""
    out = np.zeros((len(counts), 2**num_qubits))
    for i, c in enumerate(counts):
        for key, n in c.items():
            out[i, int(key.replace(" ", ""), 2)] += n
    return out


def exact_probabilities(ansatz, values: np.ndarray) -> np.ndarray:
    """Ideal outcome probabilities per parameter set (state vector of the logical circuit)."""
    from qiskit.quantum_info import Statevector

    bare = ansatz.remove_final_measurements(inplace=False)
    return np.array([Statevector(bare.assign_parameters(row)).probabilities() for row in values])


def expected_tvd(probs: np.ndarray, shots: int, seed: int, draws: int = 20) -> np.ndarray:
    """Mean total-variation distance between two independent ``shots``-shot samples of each
    row of ``probs``: what sampling noise alone gives."""
    rng = np.random.default_rng(seed)
    out = np.zeros(len(probs))
    for i, p in enumerate(probs):
        p = np.clip(p, 0, None) / p.sum()
        a = rng.multinomial(shots, p, size=draws)
        b = rng.multinomial(shots, p, size=draws)
        out[i] = 0.5 * np.abs(a - b).sum(axis=1).mean() / shots
    return out


# ----------------------------------------------------------------------------- sides
@dataclass
class SideResult:
    """What one side measured."""

    label: str
    wall_seconds: float
    prep_seconds: float
    counts: list[dict[str, int]]
    server: dict[str, Any]
    gates_2q: float
    gates_1q: float
    gate_note: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def circuits_per_second(self) -> float:
        return len(self.counts) / self.wall_seconds if self.wall_seconds > 0 else float("inf")


@contextlib.contextmanager
def ionq_url_env(url: str):
    """qiskit-ionq asks ``IONQ_API_URL`` (not the provider's url) for a backend's qubit
    count when the backend is made; point it at our server for that moment."""
    old = os.environ.get("IONQ_API_URL")
    os.environ["IONQ_API_URL"] = url
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("IONQ_API_URL", None)
        else:
            os.environ["IONQ_API_URL"] = old


def server_summary(srv, round_sizes: list[int] | None = None, shots: int = 0) -> dict[str, Any]:
    """Requests, jobs, circuits and modelled execution time from the server's own records.

    With ``round_sizes``, also ``lower_bound_seconds``: the latency model's minimum for
    sending each round as one batch job (round trip + queue wait + execution), at the
    native gate count per circuit the server saw.
    """
    stats = srv.stats()
    exec_ms = 0
    n1 = n2 = 0
    for job in srv.jobs():
        record = srv.job_record(job["id"])
        # The latency model's execution time (what a QPU would bill), not this machine's
        # simulation CPU time.
        exec_ms += record.get("predicted_execution_duration_ms") or 0
        st = record.get("stats") or {}
        n1 += (st.get("gate_counts") or {}).get("1q", 0)
        n2 += (st.get("gate_counts") or {}).get("2q", 0)
    circuits = stats.get("circuits_created", 0)
    native = stats.get("native_gates_created", 0)
    per_circuit = round(native / circuits) if circuits else 0
    lower = sum(srv.lower_bound_seconds([per_circuit] * n, shots) for n in (round_sizes or []))
    return {
        "lower_bound_seconds": lower,
        "api_calls": stats.get("requests", 0),
        "jobs_created": stats.get("jobs_created", 0),
        "circuits": circuits,
        "rate_limited": stats.get("rate_limited", 0),
        "execution_seconds": exec_ms / 1000.0,
        "native_gates_per_circuit": native / circuits if circuits else 0.0,
        "gates_1q_per_circuit": n1 / circuits if circuits else 0.0,
        "gates_2q_per_circuit": n2 / circuits if circuits else 0.0,
    }


def plain_backend(key: str, url: str, gateset: str = "qis"):
    """qiskit-ionq's simulator backend on ``url``."""
    from qiskit_ionq import IonQProvider

    with ionq_url_env(url):
        return IonQProvider(key, url=url).get_backend("simulator", gateset=gateset)


def run_plain_round(backend, ansatz, values: np.ndarray, shots: int, cap: int) -> tuple[list, float]:
    """Transpile each bound circuit, ``backend.run`` the list (split at ``cap``), wait.

    Returns (counts per circuit, seconds spent binding and transpiling).
    """
    from qiskit import transpile

    start = time.perf_counter()
    circuits = [transpile(ansatz.assign_parameters(row), backend) for row in values]
    prep = time.perf_counter() - start
    jobs = [backend.run(circuits[i : i + cap], shots=shots) for i in range(0, len(circuits), cap)]
    counts: list[dict[str, int]] = []
    for job, offset in zip(jobs, range(0, len(circuits), cap)):
        result = job.result(wait=0.05)
        size = min(cap, len(circuits) - offset)
        got = result.get_counts()
        counts.extend([got] if size == 1 and isinstance(got, dict) else got)
    return counts, prep


def run_qstore_round(backend, ansatz, values: np.ndarray, shots: int) -> list[dict[str, int]]:
    """One ``backend.run(ansatz, parameter_binds=...)``; counts per parameter set."""
    params = list(ansatz.parameters)
    binds = [{p: values[:, j] for j, p in enumerate(params)}]
    result = backend.run(ansatz, parameter_binds=binds, shots=shots).result()
    return [result.get_counts(i) for i in range(len(values))]


def run_plain_side(profile: str, seed: int, ansatz, rounds: list[np.ndarray], shots: int,
                   log: Callable[[str], None]) -> SideResult:
    from qiskit import transpile
    from qstore_qiskit.server import LocalServer

    key = secrets.token_hex(16)
    with LocalServer(profile=profile, api_key=key, seed=seed) as srv:
        backend = plain_backend(key, srv.url)
        cap = srv.config.max_circuits_per_job
        counts: list[dict[str, int]] = []
        prep = 0.0
        start = time.perf_counter()
        for i, values in enumerate(rounds):
            got, p = run_plain_round(backend, ansatz, values, shots, cap)
            counts.extend(got)
            prep += p
            log(f"  plain  round {i + 1}/{len(rounds)}: {len(values)} circuits, "
                f"{time.perf_counter() - start:6.2f} s so far")
        wall = time.perf_counter() - start
        server = server_summary(srv, [len(r) for r in rounds], shots)
        # For reference: qiskit-ionq's own native gate set on one bound circuit.
        native_ref = plain_backend(key, srv.url, gateset="native")
        ops = transpile(ansatz.assign_parameters(rounds[0][0]), native_ref).count_ops()
    ref_2q = ops.get("ms", 0) + ops.get("zz", 0)
    ref_1q = ops.get("gpi", 0) + ops.get("gpi2", 0)
    return SideResult(
        "plain qiskit-ionq", wall, prep, counts, server,
        gates_2q=server["gates_2q_per_circuit"], gates_1q=server["gates_1q_per_circuit"],
        gate_note=(f"qis gates sent (server's native estimate {server['native_gates_per_circuit']:.0f}); "
                   f"qiskit-ionq gateset='native' would send {ref_2q} MS + {ref_1q} GPi/GPi2"),
    )


def run_qstore_side(profile: str, seed: int, ansatz, rounds: list[np.ndarray], shots: int,
                      log: Callable[[str], None]) -> SideResult:
    from qstore_qiskit.providers import QStoreProvider
    from qstore_qiskit.server import LocalServer

    key = secrets.token_hex(16)
    with LocalServer(profile=profile, api_key=key, seed=seed) as srv:
        provider = QStoreProvider(token=key, url=srv.url)
        try:
            backend = provider.get_backend("ionq_simulator")
            counts: list[dict[str, int]] = []
            start = time.perf_counter()
            for i, values in enumerate(rounds):
                counts.extend(run_qstore_round(backend, ansatz, values, shots))
                log(f"  qstore round {i + 1}/{len(rounds)}: {len(values)} circuits, "
                    f"{time.perf_counter() - start:6.2f} s so far")
            wall = time.perf_counter() - start
            stats = backend.performance_stats()
            server = server_summary(srv, [len(r) for r in rounds], shots)
            comp = stats["native_compiler"]
            side = SideResult(
                "qstore-qiskit", wall, stats["circuit_preparation_seconds"], counts, server,
                gates_2q=comp["native_2q_gates_per_circuit"],
                gates_1q=comp["native_gates_per_circuit"] - comp["native_2q_gates_per_circuit"],
                gate_note="native GPi/GPi2/MS sent (exact)",
                extra={"performance_stats": stats},
            )
            buf = io.StringIO()
            backend.print_performance_report(file=buf)
            side.extra["report"] = buf.getvalue()
        finally:
            provider.close()
    return side


# ----------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``qstore-qiskit demo``."""
    parser.add_argument("--quick", action="store_true",
                        help=f"small run for tests and CI ({QUICK_CIRCUITS} circuits in {QUICK_ROUNDS} rounds)")
    parser.add_argument("--profile", default="cloud", choices=["cloud", "instant"],
                        help="latency profile of the embedded local server (default: cloud)")
    parser.add_argument("--circuits", type=int, default=None,
                        help=f"parameter sets in total (default {DEFAULT_CIRCUITS}; --quick: {QUICK_CIRCUITS})")
    parser.add_argument("--rounds", type=int, default=None,
                        help=f"rounds the sets are sent in (default {DEFAULT_ROUNDS}; --quick: {QUICK_ROUNDS})")
    parser.add_argument("--shots", type=int, default=1024, help="shots per circuit (default 1024)")
    parser.add_argument("--seed", type=int, default=7, help="seed of parameters, server and sampling")


def _less(base: float, ours: float, better: str, worse: str) -> str:
    """``"3.1x faster"`` when ``ours`` is the smaller (better) value, ``"1.2x slower"`` otherwise."""
    if base <= 0 or ours <= 0:
        return ""
    if abs(base - ours) <= 0.05 * max(base, ours):
        return "about the same"
    if ours <= base:
        return f"{base / ours:.1f}x {better}"
    return f"{ours / base:.1f}x {worse}"


def _fmt_ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b > 0 else "n/a"


def main(args: argparse.Namespace) -> int:
    """Run the demo; returns 0 when both sides ran and agree, 1 otherwise."""
    total = args.circuits if args.circuits is not None else (QUICK_CIRCUITS if args.quick else DEFAULT_CIRCUITS)
    num_rounds = args.rounds if args.rounds is not None else (QUICK_ROUNDS if args.quick else DEFAULT_ROUNDS)
    if total < 1 or num_rounds < 1 or args.shots < 1:
        print("error: --circuits, --rounds and --shots must be positive", file=sys.stderr)
        return 2
    num_rounds = min(num_rounds, total)

    def log(msg: str) -> None:
        print(msg, flush=True)

    ansatz = build_ansatz()
    values = parameter_sets(total, ansatz.num_parameters, args.seed)
    rounds = np.array_split(values, num_rounds)
    print("qstore-qiskit demo")
    print(f"Workload: sweep of {total} parameter sets ({num_rounds} rounds) of a {NUM_QUBITS}-qubit "
          f"hardware-efficient ansatz ({ansatz.num_parameters} parameters, "
          f"{ansatz.count_ops().get('cx', 0)} CX), {args.shots} shots each,")
    print(f"measuring a {NUM_QUBITS}-spin Ising energy. Server: embedded local IonQ-API server, "
          f"profile '{args.profile}' (no API key needed).\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        print("[1/2] plain: qiskit-ionq, transpile each bound circuit + backend.run(list)")
        plain = run_plain_side(args.profile, args.seed, ansatz, rounds, args.shots, log)
        print("[2/2] qstore: QStoreProvider, every feature on, backend.run(ansatz, parameter_binds=...)")
        ours = run_qstore_side(args.profile, args.seed, ansatz, rounds, args.shots, log)

    # ---- agreement
    diag = ising_diagonal()
    exact = exact_probabilities(ansatz, values)
    e_exact = exact @ diag
    var = exact @ diag**2 - e_exact**2
    sigma = np.sqrt(np.maximum(var, 1e-12) / args.shots)
    cp, cq = counts_matrix(plain.counts), counts_matrix(ours.counts)
    e_plain = (cp / cp.sum(axis=1, keepdims=True)) @ diag
    e_ours = (cq / cq.sum(axis=1, keepdims=True)) @ diag
    tvd = 0.5 * np.abs(cp / args.shots - cq / args.shots).sum(axis=1)
    tvd_noise = expected_tvd(exact, args.shots, args.seed)
    z_plain = np.abs(e_plain - e_exact) / sigma
    z_ours = np.abs(e_ours - e_exact) / sigma
    tvd_ratio = float(tvd.mean() / tvd_noise.mean())
    agree = bool(z_plain.max() < 5.5 and z_ours.max() < 5.5 and tvd_ratio < 1.5)
    best = int(np.argmin(e_exact))

    rows = [
        ("wall time", f"{plain.wall_seconds:.2f} s", f"{ours.wall_seconds:.2f} s",
         _less(plain.wall_seconds, ours.wall_seconds, "faster", "slower")),
        ("wall time / lower bound", f"{plain.wall_seconds / plain.server['lower_bound_seconds']:.1f}x",
         f"{ours.wall_seconds / ours.server['lower_bound_seconds']:.1f}x", "(server model's minimum = 1x)"),
        ("circuits/s", f"{plain.circuits_per_second:.1f}", f"{ours.circuits_per_second:.1f}",
         _less(ours.circuits_per_second, plain.circuits_per_second, "higher", "lower")),
        ("circuit preparation", f"{plain.prep_seconds:.2f} s", f"{ours.prep_seconds:.3f} s",
         _less(plain.prep_seconds, ours.prep_seconds, "faster", "slower")),
        ("API calls (server)", str(plain.server["api_calls"]), str(ours.server["api_calls"]),
         _less(plain.server["api_calls"], ours.server["api_calls"], "fewer", "more")),
        ("jobs created (server)", str(plain.server["jobs_created"]), str(ours.server["jobs_created"]), ""),
        ("server execution (model)", f"{plain.server['execution_seconds']:.2f} s",
         f"{ours.server['execution_seconds']:.2f} s",
         _less(plain.server["execution_seconds"], ours.server["execution_seconds"], "less", "more")),
        ("2q gates / circuit", f"{plain.gates_2q:.0f} CX (qis)", f"{ours.gates_2q:.0f} MS", ""),
        ("1q gates / circuit", f"{plain.gates_1q:.0f} RY/RZ (qis)", f"{ours.gates_1q:.0f} GPi/GPi2", ""),
        ("native gates / circuit", f"{plain.server['native_gates_per_circuit']:.0f} (server est.)",
         f"{ours.gates_1q + ours.gates_2q:.0f}",
         _less(plain.server["native_gates_per_circuit"], ours.gates_1q + ours.gates_2q, "fewer", "more")),
    ]
    stats = ours.extra["performance_stats"]
    cache = stats.get("circuit_cache") or {}
    width = max(len(r[0]) for r in rows)
    print("\n" + "=" * 72)
    print("SUMMARY (same workload, same server profile)")
    print("=" * 72)
    print(f"{'':<{width}}  {'plain qiskit-ionq':>18}  {'qstore-qiskit':>15}  qstore vs plain")
    for name, a, b, c in rows:
        print(f"{name:<{width}}  {a:>18}  {b:>15}  {c}")
    print(f"{'cache hit rate':<{width}}  {'-':>18}  {cache.get('template_hit_rate', 0.0):>15.0%}  "
          f"({cache.get('compiles', 0)} compile for {total} circuits in {num_rounds} runs)")
    print(f"\nGates: plain = {plain.gate_note};\n       qstore = {ours.gate_note}.")
    print("\nResults agree:" if agree else "\nRESULTS DISAGREE:")
    print(f"  max |E_plain - E_qstore| = {np.abs(e_plain - e_ours).max():.3f} "
          f"(energies in [{e_exact.min():.2f}, {e_exact.max():.2f}])")
    print(f"  max shot-noise z-score vs exact energy: plain {z_plain.max():.1f}, qstore {z_ours.max():.1f} "
          f"(< 5.5 expected)")
    print(f"  total-variation distance plain vs qstore: mean {tvd.mean():.3f}, max {tvd.max():.3f}; "
          f"sampling noise alone gives mean {tvd_noise.mean():.3f} (ratio {tvd_ratio:.2f})")
    print(f"  lowest energy found: set #{best}: exact {e_exact[best]:.3f}, plain {e_plain[best]:.3f}, "
          f"qstore {e_ours[best]:.3f}")
    print()
    print(ours.extra["report"].rstrip())
    print()
    faster = ours.wall_seconds < plain.wall_seconds
    print(f"demo: {'OK' if agree and faster else 'PROBLEM'}: qstore-qiskit "
          f"{_fmt_ratio(plain.wall_seconds, ours.wall_seconds)} faster end to end, "
          f"{'results agree' if agree else 'results DISAGREE'}.\n")
    print(NEXT_STEPS)
    return 0 if agree else 1


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser(prog="qstore-qiskit demo", description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
