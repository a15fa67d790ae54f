"""Long run: memory stays flat over many circuits through one backend (issue #12).

``--circuits`` circuits (default 1,000,000) go through one ``QStoreBackend``
(``QStoreProvider(url=server.url)``) against ``ServerProcess(profile="instant")`` from
``--threads`` threads (8). Each ``run()`` is either ``--batch`` bindings of one of three
parameterized templates (``parameter_binds``) or ``--batch`` of 1,000 distinct bound
circuits, cycled. Every parameter value is 0 or pi, so every circuit has one known
outcome: each result is checked exactly (lost: a circuit without a result; duplicated:
more results than circuits; mismatched: any count on another outcome).

Every ``--sample`` circuits it records the client's RSS and the server process's RSS
(psutil on its pid) and prints them against circuits done, as a table and a PNG
(``benchmarks/results/long_run.png``). The verdict line gives the client's RSS growth
after the first ``--warmup`` circuits (the issue's target: < 50 MB to the end) and the
least-squares slope in MB per 10,000 circuits. ``--max-seconds`` stops starting new
``run()`` calls after a time budget and reports the circuits done by then.

Server side: the table also gives the server's RSS and the bytes its job store has
accounted (``GET /_qstore/stats``). The verdict checks them against the server's memory
budget (``ServerConfig.memory_budget()``: job store budget plus the bounded histories):
the store's accounted bytes stay within ``job_store_bytes``, and the server's RSS stays
within its baseline (its RSS before the first job: Python, NumPy, Qiskit and Aer
imported) plus the budget, at every sample.

Usage::

    python benchmarks/long_run.py                      # 1,000,000 circuits
    python benchmarks/long_run.py --circuits 200000    # shorter
    python benchmarks/long_run.py --json out.json
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import os
import sys
import threading
import time
from dataclasses import dataclass, field

import psutil
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter

NQ = 4


def templates() -> list[tuple[QuantumCircuit, list[Parameter], callable]]:
    """Three templates with their parameters and ``values -> expected outcome``."""
    out = []
    # 1: rx(a_i) on each qubit: outcome bit i = (a_i == pi).
    a = [Parameter(f"a{i}") for i in range(NQ)]
    qc = QuantumCircuit(NQ)
    for i, p in enumerate(a):
        qc.rx(p, i)
    qc.measure_all()
    out.append((qc, a, lambda v: sum(1 << i for i, x in enumerate(v) if x)))
    # 2: ry(b_i) then cx(0,1), cx(2,3): bits flip, then targets XOR their controls.
    b = [Parameter(f"b{i}") for i in range(NQ)]
    qc = QuantumCircuit(NQ)
    for i, p in enumerate(b):
        qc.ry(p, i)
    qc.cx(0, 1)
    qc.cx(2, 3)
    qc.measure_all()

    def exp2(v):
        bits = list(v)
        bits[1] ^= bits[0]
        bits[3] ^= bits[2]
        return sum(1 << i for i, x in enumerate(bits) if x)

    out.append((qc, b, exp2))
    # 3: h, rz(c_i), h on each qubit: rz(pi) between two H is an X (up to phase).
    c = [Parameter(f"c{i}") for i in range(NQ)]
    qc = QuantumCircuit(NQ)
    for i, p in enumerate(c):
        qc.h(i)
        qc.rz(p, i)
        qc.h(i)
    qc.measure_all()
    out.append((qc, c, lambda v: sum(1 << i for i, x in enumerate(v) if x)))
    return out


def distinct_circuits(n: int = 1000) -> list[tuple[QuantumCircuit, int]]:
    """``n`` structurally distinct circuits with known outcomes (X on the outcome's
    bits, plus an outcome-neutral ``rz`` whose angle differs per circuit)."""
    out = []
    for k in range(n):
        qc = QuantumCircuit(NQ)
        outcome = k % (1 << NQ)
        for q in range(NQ):
            if outcome >> q & 1:
                qc.x(q)
        qc.rz(0.001 * (k + 1), k % NQ)  # a distinct circuit, same outcome
        qc.measure_all()
        out.append((qc, outcome))
    return out


@dataclass
class Tally:
    """Counts of circuits, shared by the worker threads."""

    done: int = 0
    lost: int = 0
    duplicated: int = 0
    mismatched: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def check(result, expected: list[int], shots: int, tally: Tally) -> None:
    n = len(result.results)
    lost = max(0, len(expected) - n)
    dup = max(0, n - len(expected))
    bad = 0
    for i, want in enumerate(expected[:n]):
        counts = result.get_counts(i)
        key = format(want, f"0{NQ}b")
        if counts.get(key) != shots or sum(counts.values()) != shots:
            bad += 1
    with tally.lock:
        tally.done += len(expected)
        tally.lost += lost
        tally.duplicated += dup
        tally.mismatched += bad


def run_long(
    circuits: int,
    *,
    threads: int = 8,
    batch: int = 50,
    shots: int = 100,
    sample: int = 10_000,
    seed: int = 7,
    progress: bool = False,
    max_seconds: float | None = None,
) -> dict:
    """Run the long run; returns ``{"rows": [(done, client_mb, server_mb)], "tally": ...}``."""
    import random  # pylint: disable=import-outside-toplevel

    from qstore_qiskit import QStoreProvider  # pylint: disable=import-outside-toplevel
    from qstore_qiskit.server import ServerProcess  # pylint: disable=import-outside-toplevel

    temps = templates()
    distinct = distinct_circuits()
    me = psutil.Process()
    tally = Tally()
    rows: list[tuple[int, float, float, float]] = []
    runs = math.ceil(circuits / batch)
    counter = itertools.count()
    started = time.perf_counter()
    with ServerProcess(profile="instant", seed=seed) as srv:
        server_proc = psutil.Process(srv._proc.pid)  # pylint: disable=protected-access
        provider = QStoreProvider("long-run-key", url=srv.url)
        backend = provider.get_backend("ionq_simulator")

        def rss() -> tuple[float, float, float]:
            try:
                store = srv.stats()["store"]["bytes"] / 2**20
            except (OSError, KeyError, ValueError):
                store = float("nan")
            return (me.memory_info().rss / 2**20, server_proc.memory_info().rss / 2**20,
                    store)

        first = srv.stats()["store"]
        budget = {"job_store_bytes": first["budget_bytes"], "memory_budget": first["memory_budget"]}
        rows.append((0, *rss()))
        next_sample = [sample]
        sample_lock = threading.Lock()

        def worker(wid: int) -> None:
            rng = random.Random(seed * 1000 + wid)
            while True:
                if max_seconds is not None and time.perf_counter() - started > max_seconds:
                    return  # time budget spent: stop taking new runs, finish the open ones
                k = next(counter)
                if k >= runs:
                    return
                size = min(batch, circuits - k * batch)
                kind = k % 4
                try:
                    if kind < 3:
                        qc, params, expect = temps[kind]
                        values = [[rng.choice((0, 1)) for _ in params] for _ in range(size)]
                        # Aer's shape: one dict per circuit, each parameter -> its values.
                        binds = [{p: [math.pi * v[i] for v in values] for i, p in enumerate(params)}]
                        job = backend.run(qc, parameter_binds=binds, shots=shots)
                        expected = [expect(v) for v in values]
                    else:
                        start = (k * batch) % len(distinct)
                        chosen = [distinct[(start + j) % len(distinct)] for j in range(size)]
                        job = backend.run([c for c, _ in chosen], shots=shots)
                        expected = [o for _, o in chosen]
                    check(job.result(timeout=600), expected, shots, tally)
                except Exception as exc:  # pylint: disable=broad-except  # counted, reported
                    with tally.lock:
                        tally.lost += size
                        tally.done += size
                        if len(tally.errors) < 5:
                            tally.errors.append(f"{type(exc).__name__}: {exc}")
                with sample_lock:
                    if tally.done >= next_sample[0]:
                        next_sample[0] += sample
                        gc.collect()
                        row = (tally.done, *rss())
                        rows.append(row)
                        if progress:
                            rate = tally.done / (time.perf_counter() - started)
                            print(f"  {row[0]:>9,d} circuits  client {row[1]:7.1f} MB  server {row[2]:7.1f} MB"
                                  f"  store {row[3]:7.1f} MB  ({rate:,.0f} circuits/s)", flush=True)

        pool = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        gc.collect()
        rows.append((tally.done, *rss()))
        client_stats = backend._client_stats()  # pylint: disable=protected-access
        provider.close()
    elapsed = time.perf_counter() - started
    return {
        "circuits": circuits,
        "threads": threads,
        "batch": batch,
        "elapsed_s": elapsed,
        "rows": rows,
        "done": tally.done,
        "lost": tally.lost,
        "duplicated": tally.duplicated,
        "mismatched": tally.mismatched,
        "errors": tally.errors,
        "jobs_created": client_stats.get("jobs_created"),
        **budget,
    }


def growth(rows: list[tuple], warmup: int, column: int = 1) -> tuple[float, float]:
    """``(growth MB after warm-up, least-squares slope MB per 10,000 circuits)``."""
    tail = [r for r in rows if r[0] >= warmup] or rows[-2:]
    if len(tail) < 2:
        return 0.0, 0.0
    xs = [r[0] for r in tail]
    ys = [r[column] for r in tail]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else 0.0
    return ys[-1] - ys[0], slope * 10_000


def plot(rows, path: str, budget_mb: float | None = None) -> None:
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot([r[0] for r in rows], [r[1] for r in rows], marker=".", label="client RSS")
    ax.plot([r[0] for r in rows], [r[2] for r in rows], marker=".", label="server RSS (ServerProcess)")
    ax.plot([r[0] for r in rows], [r[3] for r in rows], marker=".", linestyle="--",
            label="server job store, accounted bytes")
    if budget_mb is not None:
        ax.axhline(budget_mb, color="gray", linestyle=":",
                   label=f"server baseline + memory budget ({budget_mb:.0f} MB)")
    ax.set_xlabel("circuits done")
    ax.set_ylabel("RSS (MB)")
    ax.set_title("qstore-qiskit long run: RSS against circuits done")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--circuits", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--batch", type=int, default=50, help="circuits per run() call")
    parser.add_argument("--shots", type=int, default=100)
    parser.add_argument("--sample", type=int, default=None, help="circuits between RSS samples")
    parser.add_argument("--warmup", type=int, default=None, help="circuits before growth is measured")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="stop starting new runs after this many seconds (reports what was done)")
    parser.add_argument("--png", default=os.path.join(os.path.dirname(__file__), "results", "long_run.png"))
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    sample = args.sample or max(1000, args.circuits // 40)
    warmup = args.warmup if args.warmup is not None else min(50_000, args.circuits // 4)
    print(f"long run: {args.circuits:,d} circuits, {args.threads} threads, {args.batch} per run(), "
          f"ServerProcess(profile='instant')", flush=True)
    out = run_long(args.circuits, threads=args.threads, batch=args.batch, shots=args.shots,
                   sample=sample, progress=True, max_seconds=args.max_seconds)
    rows = out["rows"]
    print()
    print(f"{'circuits done':>14} | {'client RSS MB':>13} | {'server RSS MB':>13} | {'store MB':>9}")
    print(f"{'-' * 14}-+-{'-' * 13}-+-{'-' * 13}-+-{'-' * 9}")
    for done, cli, srv, store in rows:
        print(f"{done:>14,d} | {cli:>13.1f} | {srv:>13.1f} | {store:>9.1f}")
    cg, cs = growth(rows, warmup, 1)
    sg, ss = growth(rows, warmup, 2)
    base = rows[0][2]
    budget_mb = out["memory_budget"] / 2**20 if out["memory_budget"] else None
    store_cap = out["job_store_bytes"] / 2**20 if out["job_store_bytes"] else None
    peak_srv = max(r[2] for r in rows)
    peak_store = max(r[3] for r in rows)
    after = [r for r in rows if r[0] >= warmup] or rows[-1:]
    srv_after = max(r[2] for r in after) - min(r[2] for r in after)
    client_ok = cg < 50.0
    # Within the budget over the baseline at every sample (so also the growth after
    # the warm-up, which is at most that).
    server_ok = budget_mb is None or (peak_srv <= base + budget_mb and sg <= budget_mb)
    store_ok = store_cap is None or peak_store <= store_cap
    print()
    print(f"client RSS after {warmup:,d} circuits: {cg:+.1f} MB to the end ({cs:+.2f} MB per 10k "
          f"circuits); target < 50 MB: {'met' if client_ok else 'NOT met'}")
    print(f"server RSS after {warmup:,d} circuits: {sg:+.1f} MB to the end ({ss:+.2f} MB per 10k "
          f"circuits); range after warm-up {srv_after:.1f} MB")
    if budget_mb is not None:
        print(f"server memory budget {budget_mb:.1f} MB (job store {store_cap:.1f} MB + histories) "
              f"over a baseline of {base:.1f} MB RSS (imports, no job yet): peak RSS "
              f"{peak_srv:.1f} MB = baseline {peak_srv - base:+.1f} MB; within budget: "
              f"{'yes' if server_ok else 'NO'}")
        print(f"job store accounted bytes: peak {peak_store:.1f} MB of {store_cap:.1f} MB; "
              f"within: {'yes' if store_ok else 'NO'}")
    print(f"circuits: {out['done']:,d} done, {out['lost']} lost, {out['duplicated']} duplicated, "
          f"{out['mismatched']} mismatched; {out['jobs_created']} jobs; {out['elapsed_s']:.0f} s "
          f"({out['done'] / out['elapsed_s']:,.0f} circuits/s)")
    for err in out["errors"]:
        print("  error:", err)
    plot(rows, args.png, None if budget_mb is None else base + budget_mb)
    print(f"plot: {args.png}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({**out, "client_growth_mb": cg, "client_slope_mb_per_10k": cs,
                       "server_growth_mb": sg, "server_slope_mb_per_10k": ss}, fh, indent=1)
    ok = (out["lost"] == 0 and out["duplicated"] == 0 and out["mismatched"] == 0
          and client_ok and server_ok and store_ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
