"""``qstore-qiskit bench``: the seed's performance table, measured on this machine.

Reproduces the four rows of the "Quantum-Native Database v3.4" performance table (batch
time for 20 circuits, circuits/second, circuit preparation, execution time) side by side
for qiskit-ionq and qstore-qiskit against the embedded local IonQ-API server, as measured
ratios, plus a sweep of batch sizes. Writes ``bench.md`` (Markdown table), ``bench.json``
(every number), ``bench.csv`` (the table) and ``bench.png`` (time against batch size; needs matplotlib) to ``--out``.

Workload: the demo's 6-qubit hardware-efficient ansatz (36 parameters, 10 CX) bound to
seeded random parameter sets, 1024 shots. Modes:

* ``qiskit-ionq per-circuit``: for each parameter set, ``transpile(bound, backend)``, then
  ``backend.run(qc).result(wait=0.05)`` (the seed's v3.3.1 pattern: sequential jobs);
* ``qiskit-ionq batch``: transpile every bound circuit, one ``backend.run(list)`` per
  server job cap, then ``result(wait=0.05)`` on each;
* ``qstore-qiskit``: ``QStoreBackend.run(ansatz, parameter_binds=...)`` with the default
  options (native gates, template cache, batch API) and ``result()``.

Metrics (see ``docs/benchmarks.rst``):

* **batch time**: wall time from parameter values to every circuit's counts in hand.
* **circuits/second**: circuits / batch time.
* **circuit preparation**: client time turning parameter values into request payloads.
  qiskit-ionq: ``assign_parameters`` + ``transpile`` per binding, plus qiskit-ionq's
  serializer (``qiskit_circ_to_ionq_circ``, timed separately on the same circuits).
  qstore: the backend's ``circuit_preparation_seconds`` (template bind straight to JSON
  payloads).
* **execution time**: the server's modelled execution time of the jobs
  (``predicted_execution_duration_ms`` summed over jobs: per-job overhead + per circuit +
  per shot + per native gate per shot), i.e. what the circuits would occupy a QPU for;
  it depends on the native gate count and on how many jobs carry the circuits.
* **API calls**: HTTP requests the server received during the batch.

Each mode runs on its own fresh server with the same profile and seed, after one
warm-up circuit (so imports, the connection pool and qstore's one-off template compile,
reported separately, are not in the timed runs). Times are medians of ``--repeat`` runs;
the batch-size sweep runs each other size once.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import secrets
import statistics
import sys
import time
import warnings
from typing import Any, Callable

import numpy as np

from . import demo

MODES = ("qiskit-ionq per-circuit", "qiskit-ionq batch", "qstore-qiskit")
DEFAULT_SIZES = (1, 5, 20, 50, 100, 200)
#: The seed's "Performance Targets" table: (metric, v3.3.1, v3.4 target, claimed).
SEED_TABLE = {
    "batch_seconds": ("35s", "3-5s", "7-12x"),
    "circuits_per_second": ("0.6", "5-8", "8-13x"),
    "prep_seconds": ("0.5s", "0.05s", "10x"),
    "execution_seconds": ("1.3s", "0.9s", "1.3x"),
}
METRIC_LABELS = {
    "batch_seconds": "Batch time",
    "circuits_per_second": "Circuits/second",
    "prep_seconds": "Circuit preparation",
    "execution_seconds": "Execution time (server model)",
    "api_calls": "API calls",
}
DEFINITIONS = {
    "batch_seconds": "wall time from parameter values to every circuit's counts in hand (median of repeats)",
    "circuits_per_second": "circuits / batch time",
    "prep_seconds": (
        "client time turning parameter values into request payloads: qiskit-ionq = assign_parameters + "
        "transpile per binding + qiskit-ionq's serializer; qstore = template bind to JSON payloads "
        "(backend.performance_stats()['circuit_preparation_seconds'])"
    ),
    "execution_seconds": (
        "server-side execution time from the local server's latency model, summed over the jobs "
        "(predicted_execution_duration_ms: per-job overhead + per circuit + per shot + per native gate "
        "per shot); depends on native gate count and number of jobs"
    ),
    "api_calls": "HTTP requests received by the server during the batch",
}


# ----------------------------------------------------------------------------- measuring
class _Side:
    """One mode on its own fresh server."""

    def __init__(self, mode: str, profile: str, seed: int, ansatz, shots: int):
        from .server import LocalServer

        self.mode = mode
        self.ansatz = ansatz
        self.shots = shots
        key = secrets.token_hex(16)
        self.srv = LocalServer(profile=profile, api_key=key, seed=seed).start()
        self.cap = self.srv.config.max_circuits_per_job
        self.provider = None
        self.compile_seconds = None
        if mode.startswith("qiskit-ionq"):
            self.backend = demo.plain_backend(key, self.srv.url)
        else:
            from .providers import QStoreProvider

            self.provider = QStoreProvider(token=key, url=self.srv.url)
            self.backend = self.provider.get_backend("ionq_simulator")

    def close(self) -> None:
        if self.provider is not None:
            self.provider.close()
        self.srv.stop()

    def _serialize_seconds(self, circuits: list) -> float:
        from qiskit_ionq.helpers import qiskit_circ_to_ionq_circ

        start = time.perf_counter()
        for qc in circuits:
            qiskit_circ_to_ionq_circ(qc, "qis")
        return time.perf_counter() - start

    def measure(self, values: np.ndarray) -> dict[str, Any]:
        """Run ``values`` once; returns the metrics of that batch."""
        from qiskit import transpile

        jobs_before = len(self.srv.jobs())
        requests_before = self.srv.stats()["requests"]
        native_before = self.srv.stats()["native_gates_created"]
        n = len(values)
        if self.mode == "qiskit-ionq per-circuit":
            prep = 0.0
            circuits = []
            start = time.perf_counter()
            for row in values:
                t0 = time.perf_counter()
                qc = transpile(self.ansatz.assign_parameters(row), self.backend)
                prep += time.perf_counter() - t0
                circuits.append(qc)
                self.backend.run(qc, shots=self.shots).result(wait=0.05).get_counts()
            wall = time.perf_counter() - start
            prep += self._serialize_seconds(circuits)
        elif self.mode == "qiskit-ionq batch":
            start = time.perf_counter()
            t0 = time.perf_counter()
            circuits = [transpile(self.ansatz.assign_parameters(row), self.backend) for row in values]
            prep = time.perf_counter() - t0
            jobs = [self.backend.run(circuits[i : i + self.cap], shots=self.shots) for i in range(0, n, self.cap)]
            for job in jobs:
                job.result(wait=0.05).get_counts()
            wall = time.perf_counter() - start
            prep += self._serialize_seconds(circuits)
        else:
            before = self.backend.performance_stats()["circuit_preparation_seconds"]
            start = time.perf_counter()
            demo.run_qstore_round(self.backend, self.ansatz, values, self.shots)
            wall = time.perf_counter() - start
            prep = self.backend.performance_stats()["circuit_preparation_seconds"] - before
        new_jobs = self.srv.jobs()[jobs_before:]
        native = self.srv.stats()["native_gates_created"] - native_before
        exec_ms = 0
        for job in new_jobs:
            record = self.srv.job_record(job["id"])
            exec_ms += record.get("predicted_execution_duration_ms") or 0
        return {
            "n": n,
            "batch_seconds": wall,
            "circuits_per_second": n / wall,
            "prep_seconds": prep,
            "execution_seconds": exec_ms / 1000.0,
            "api_calls": self.srv.stats()["requests"] - requests_before,
            "jobs": len(new_jobs),
            "native_gates_per_circuit": native / n if n else 0.0,
        }

    def warm_up(self, values: np.ndarray) -> None:
        """One untimed circuit: imports, connections and qstore's template compile."""
        self.measure(values[:1])
        if self.provider is not None:
            cache = self.backend.performance_stats().get("circuit_cache") or {}
            self.compile_seconds = cache.get("compile_seconds")


def _median(samples: list[dict[str, Any]]) -> dict[str, Any]:
    out = dict(samples[0])
    for key, value in samples[0].items():
        if isinstance(value, (int, float)) and key != "n":
            out[key] = statistics.median(s[key] for s in samples)
    out["circuits_per_second"] = out["n"] / out["batch_seconds"]
    out["repeats"] = len(samples)
    return out


def run_bench(
    profile: str = "cloud",
    circuits: int = 20,
    repeat: int = 3,
    sizes: tuple[int, ...] = DEFAULT_SIZES,
    shots: int = 1024,
    seed: int = 7,
    per_circuit_max: int = 20,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure every mode; returns the JSON-ready results."""
    ansatz = demo.build_ansatz()
    rng_seed = seed
    all_sizes = sorted(set(sizes) | {circuits})
    values_for = {n: demo.parameter_sets(n, ansatz.num_parameters, rng_seed + n) for n in all_sizes}
    table: dict[str, dict[str, Any]] = {}
    sweep: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
    compile_seconds = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mode in MODES:
            side = _Side(mode, profile, seed, ansatz, shots)
            try:
                side.warm_up(values_for[all_sizes[0]])
                if side.compile_seconds is not None:
                    compile_seconds = side.compile_seconds
                for n in all_sizes:
                    if mode == "qiskit-ionq per-circuit" and n > max(per_circuit_max, circuits):
                        continue
                    runs = repeat if n == circuits else 1
                    samples = []
                    for _ in range(runs):
                        samples.append(side.measure(values_for[n]))
                    row = _median(samples)
                    log(f"  {mode:<24} n={n:<4} {row['batch_seconds']:7.2f} s  "
                        f"{row['circuits_per_second']:7.1f} circ/s  (median of {runs})")
                    if n == circuits:
                        table[mode] = row
                    if n in sizes:
                        sweep[mode].append(row)
            finally:
                side.close()
    return {
        "config": {
            "profile": profile, "circuits": circuits, "repeat": repeat, "sizes": list(sizes),
            "shots": shots, "seed": seed, "workload": (
                f"{demo.NUM_QUBITS}-qubit efficient_su2 (ry, rz; linear; reps=2; "
                f"{ansatz.num_parameters} parameters, {ansatz.count_ops().get('cx', 0)} CX)"
            ),
        },
        "machine": {
            "python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "definitions": DEFINITIONS,
        "qstore_template_compile_seconds": compile_seconds,
        "table": table,
        "sweep": sweep,
        "seed_table": SEED_TABLE,
    }


# ----------------------------------------------------------------------------- output
def _fmt(metric: str, value: float) -> str:
    if metric == "circuits_per_second":
        return f"{value:.1f}"
    if metric == "api_calls":
        return f"{value:.0f}"
    return f"{value:.3f} s" if value < 1 else f"{value:.2f} s"


def _ratio(metric: str, base: float, ours: float) -> str:
    if metric == "circuits_per_second":
        return f"{ours / base:.1f}x" if base > 0 else "n/a"
    return f"{base / ours:.1f}x" if ours > 0 else "n/a"


def markdown_table(results: dict[str, Any]) -> str:
    """The performance table as Markdown."""
    cfg = results["config"]
    table = results["table"]
    n = cfg["circuits"]
    per, batch, ours = (table.get(m) for m in MODES)
    lines = [
        f"| Metric ({n} circuits) | qiskit-ionq per-circuit | qiskit-ionq batch | qstore-qiskit "
        f"| qstore vs per-circuit | qstore vs batch | seed: v3.3.1 -> v3.4 (claimed) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for metric, label in METRIC_LABELS.items():
        cells = [label if metric != "batch_seconds" else f"Batch time ({n} circuits)"]
        for row in (per, batch, ours):
            cells.append(_fmt(metric, row[metric]) if row else "-")
        for base in (per, batch):
            cells.append(_ratio(metric, base[metric], ours[metric]) if base and ours else "-")
        seed = SEED_TABLE.get(metric)
        cells.append(f"{seed[0]} -> {seed[1]} ({seed[2]})" if seed else "-")
        lines.append("| " + " | ".join(cells) + " |")
    if ours:
        lines.append(
            f"| Native gates / circuit | {per['native_gates_per_circuit']:.0f} (server estimate, qis) "
            f"| {batch['native_gates_per_circuit']:.0f} (server estimate, qis) "
            f"| {ours['native_gates_per_circuit']:.0f} (exact, native) | | | |"
            if per and batch else ""
        )
    return "\n".join(line for line in lines if line)


def table_rows(results: dict[str, Any]) -> list[list[str]]:
    """The performance table as rows of cells (header first), for CSV/Markdown."""
    md = markdown_table(results).splitlines()
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in md]
    return [rows[0]] + rows[2:]


def markdown_report(results: dict[str, Any]) -> str:
    """The whole Markdown file: table, setup, definitions."""
    cfg, machine = results["config"], results["machine"]
    out = [
        "# qstore-qiskit bench",
        "",
        f"Local IonQ-API server, profile `{cfg['profile']}`; workload: {cfg['workload']}, "
        f"{cfg['shots']} shots; medians of {cfg['repeat']} runs; seed {cfg['seed']}. "
        f"Machine: {machine['platform']}, {machine['cpus']} CPUs, Python {machine['python']}.",
        "",
        markdown_table(results),
        "",
        "The two `qstore vs` columns are improvement factors (higher is better): the other mode's "
        "time or call count divided by qstore's, or qstore's rate divided by the other's.",
        "",
    ]
    if results.get("qstore_template_compile_seconds") is not None:
        out += [f"qstore's one-off template compile (in the warm-up, not in the table): "
                f"{1000 * results['qstore_template_compile_seconds']:.0f} ms.", ""]
    out += ["Definitions:", ""]
    for metric, text in results["definitions"].items():
        out.append(f"* **{METRIC_LABELS[metric]}**: {text}.")
    out += ["", "Batch-size sweep (batch time, seconds):", "",
            "| circuits | " + " | ".join(MODES) + " |", "|---:|" + "---:|" * len(MODES)]
    sizes = cfg["sizes"]
    for n in sizes:
        cells = [str(n)]
        for mode in MODES:
            row = next((r for r in results["sweep"][mode] if r["n"] == n), None)
            cells.append(f"{row['batch_seconds']:.2f}" if row else "-")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def write_plot(results: dict[str, Any], path: str) -> str | None:
    """Batch time against batch size for each mode; returns a message if skipped."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install 'qstore-qiskit[bench]'): skipping the plot"
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for mode, marker in zip(MODES, ("s", "o", "^")):
        rows = sorted(results["sweep"][mode], key=lambda r: r["n"])
        if rows:
            ax.plot([r["n"] for r in rows], [r["batch_seconds"] for r in rows], marker=marker, label=mode)
    ax.set_xscale("log")
    ax.set_yscale("log")
    sizes = sorted({r["n"] for rows in results["sweep"].values() for r in rows})
    if sizes:
        ax.set_xticks(sizes)
        ax.set_xticklabels([str(n) for n in sizes])
        ax.minorticks_off()
    ax.set_xlabel("circuits in the batch (parameter sets)")
    ax.set_ylabel("batch time, s (parameters -> counts)")
    cfg = results["config"]
    ax.set_title(f"qiskit-ionq vs qstore-qiskit, local server '{cfg['profile']}' profile", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return None


# ----------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``qstore-qiskit bench``."""
    parser.add_argument("--profile", default="cloud", choices=["cloud", "instant"],
                        help="latency profile of the local server (default: cloud)")
    parser.add_argument("--circuits", type=int, default=20, help="batch size of the table (default 20)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per table cell, median (default 3)")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES),
                        help="batch sizes of the sweep / plot (default 1 5 20 50 100 200)")
    parser.add_argument("--per-circuit-max", type=int, default=20,
                        help="largest sweep size for the slow sequential qiskit-ionq mode (default 20)")
    parser.add_argument("--shots", type=int, default=1024, help="shots per circuit (default 1024)")
    parser.add_argument("--seed", type=int, default=7, help="seed of parameters and server")
    parser.add_argument("--out", default=os.path.join("benchmarks", "results"),
                        help="output directory (default benchmarks/results/)")
    parser.add_argument("--no-plot", action="store_true", help="do not write the PNG plot")


def main(args: argparse.Namespace) -> int:
    """Run the benchmark and write bench.md, bench.json and bench.png."""
    if args.circuits < 1 or args.repeat < 1 or args.shots < 1 or any(s < 1 for s in args.sizes):
        print("error: --circuits, --repeat, --shots and --sizes must be positive", file=sys.stderr)
        return 2
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as exc:
        print(f"error: cannot create output directory {args.out!r}: {exc}", file=sys.stderr)
        return 2
    print(f"qstore-qiskit bench: profile '{args.profile}', {args.circuits} circuits x {args.repeat} "
          f"repeats, sweep {args.sizes}")
    results = run_bench(
        profile=args.profile, circuits=args.circuits, repeat=args.repeat, sizes=tuple(args.sizes),
        shots=args.shots, seed=args.seed, per_circuit_max=args.per_circuit_max,
        log=lambda msg: print(msg, flush=True),
    )
    md_path = os.path.join(args.out, "bench.md")
    json_path = os.path.join(args.out, "bench.json")
    png_path = os.path.join(args.out, "bench.png")
    csv_path = os.path.join(args.out, "bench.csv")
    with open(md_path, "w", encoding="utf-8") as fh:
        fh.write(markdown_report(results))
    with open(json_path, "w", encoding="utf-8") as fh:
        json.dump(results, fh, indent=2)
    with open(csv_path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(table_rows(results))
    print()
    print(markdown_table(results))
    print()
    written = [md_path, json_path, csv_path]
    if args.no_plot:
        print("plot: skipped (--no-plot)")
    else:
        message = write_plot(results, png_path)
        if message:
            print(f"plot: {message}")
        else:
            written.append(png_path)
    print("wrote " + ", ".join(written))
    print("Metric definitions: docs/benchmarks.rst (also in bench.md / bench.json).")
    return 0


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser(prog="qstore-qiskit bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
