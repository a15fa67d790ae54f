"""Restarted training run with the persistent template cache: compile time, run 1 vs run 2.

A training-like script (``--child``): a handful of 6-12-qubit ansatz structures (ry/rz
layers with cx ladders, and rzz rings as in QAOA), several epochs; every step asks the
:class:`~qstore_qiskit.cache.TemplateCache` for each structure's template (compiled with
the project's default compiler) and binds a batch of parameter sets into payloads. The
parent runs that script as a fresh process three times:

1. with an empty persistent cache directory (everything compiles),
2. again on the same directory (a restart: templates load from disk),
3. with the persistent cache off (the reference: what every restart cost before).

It prints, per run: templates compiled, loaded from disk, the time spent obtaining
templates (compile, or load and check), the bind time, and the ratio to run 1; and checks
that all runs produced identical payloads. Target (#16): run 2 spends < 5% of run 1's
compile time.

Run: ``python benchmarks/persistent_cache.py`` (``--quick`` for two small structures,
``--large`` for five 16-24-qubit ones).
Nothing leaves the machine; the cache directory is a temporary one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def structures(size: str):
    from qiskit import QuantumCircuit
    from qiskit.circuit import ParameterVector

    def ansatz(n: int, layers: int) -> QuantumCircuit:
        t = ParameterVector("t", 2 * n * layers)
        qc = QuantumCircuit(n, name=f"ansatz-{n}x{layers}")
        k = 0
        for _ in range(layers):
            for q in range(n):
                qc.ry(t[k], q)
                qc.rz(t[k + 1], q)
                k += 2
            for q in range(n - 1):
                qc.cx(q, q + 1)
        qc.measure_all()
        return qc

    def qaoa_ring(n: int, p: int) -> QuantumCircuit:
        g, b = ParameterVector("g", p), ParameterVector("b", p)
        qc = QuantumCircuit(n, name=f"qaoa-ring-{n}x{p}")
        qc.h(range(n))
        for layer in range(p):
            for q in range(n):
                qc.rzz(g[layer], q, (q + 1) % n)
            for q in range(n):
                qc.rx(2 * b[layer], q)
        qc.measure_all()
        return qc

    if size == "quick":
        return [ansatz(6, 2), qaoa_ring(6, 2)]
    if size == "large":
        return [ansatz(16, 4), ansatz(20, 4), ansatz(24, 4), qaoa_ring(16, 4), qaoa_ring(24, 4)]
    return [ansatz(6, 3), ansatz(8, 3), ansatz(10, 3), ansatz(12, 3), qaoa_ring(8, 3), qaoa_ring(12, 3)]


def child(directory: str | None, epochs: int, batch: int, size: str) -> None:
    """One training run in this (fresh) process; prints a JSON line of measurements."""
    from qstore_qiskit.cache import TemplateCache

    circuits = structures(size)
    cache = TemplateCache(store=directory if directory else False)
    rng = np.random.default_rng(2024)
    obtain = bind = 0.0
    digest = hashlib.sha256()
    for _ in range(epochs):
        for qc in circuits:
            start = time.perf_counter()
            template, _ = cache.get_template(qc, device="aria-1", optimization_level=2)
            obtain += time.perf_counter() - start
            X = rng.uniform(-np.pi, np.pi, (batch, qc.num_parameters))
            start = time.perf_counter()
            bodies = template.bodies(X)
            bind += time.perf_counter() - start
            digest.update(json.dumps(bodies).encode())
    stats = cache.stats()
    print(json.dumps({
        "compiles": stats["compiles"],
        "disk_hits": stats["disk_hits"],
        "compile_seconds": stats["compile_seconds"],
        "obtain_seconds": obtain,
        "bind_seconds": bind,
        "digest": digest.hexdigest(),
        "templates": len(circuits),
    }))


def size_of(args) -> str:
    return "quick" if args.quick else "large" if args.large else "default"


def run_child(directory: str | None, args) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--epochs", str(args.epochs),
           "--batch", str(args.batch), "--size", size_of(args)]
    if directory:
        cmd += ["--dir", directory]
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - start
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two small structures (CI smoke test)")
    parser.add_argument("--large", action="store_true", help="five 16-24-qubit structures instead")
    parser.add_argument("--size", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64, help="parameter sets bound per step")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.dir, args.epochs, args.batch, args.size or size_of(args))
        return 0
    load = os.getloadavg()[0]
    print(f"qstore-qiskit persistent template cache: restarted training run ({size_of(args)} structures)")
    print(f"python {sys.version.split()[0]}; load average {load:.2f} on {os.cpu_count()} CPUs; "
          f"{args.epochs} epochs x {args.batch} parameter sets per structure per epoch; each run a fresh process")
    with tempfile.TemporaryDirectory() as tmp:
        directory = os.path.join(tmp, "templates")
        runs = [
            ("1. first run, empty cache dir", run_child(directory, args)),
            ("2. restarted, same cache dir", run_child(directory, args)),
            ("3. restarted, persistent cache off", run_child(None, args)),
        ]
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(directory) for f in fs)
    base = runs[0][1]
    print(f"\nstructures: {base['templates']} ({', '.join(qc.name for qc in structures(size_of(args)))})")
    print(f"\n| {'run':<36} | {'compiled':>8} | {'from disk':>9} | {'compile s':>9} | {'get template s':>14} "
          f"| {'vs run 1':>8} | {'bind s':>7} | {'process s':>9} |")
    print(f"|{'-' * 38}|{'-' * 10}|{'-' * 11}|{'-' * 11}|{'-' * 16}|{'-' * 10}|{'-' * 9}|{'-' * 11}|")
    for name, r in runs:
        print(f"| {name:<36} | {r['compiles']:>8} | {r['disk_hits']:>9} | {r['compile_seconds']:>9.3f} "
              f"| {r['obtain_seconds']:>14.3f} | {r['obtain_seconds'] / base['obtain_seconds']:>7.1%} "
              f"| {r['bind_seconds']:>7.3f} | {r['process_seconds']:>9.2f} |")
    same = len({r["digest"] for _, r in runs}) == 1
    ratio = runs[1][1]["obtain_seconds"] / base["obtain_seconds"]
    print(f"\ncache directory after run 2: {size / 1024:.0f} KiB on disk")
    print(f"identical payloads in all runs: {same}")
    print(f"run 2 compiles: {runs[1][1]['compiles']} (compile time {runs[1][1]['compile_seconds']:.3f} s)")
    print(f"run 2 time to get its templates (load + check + build the binder) / run 1's (compile + build): "
          f"{ratio:.1%} (target < 5%: {'met' if ratio < 0.05 else 'NOT met'})")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
