"""Hostile requests against the local IonQ-API server (issue #12).

Each request runs against a fresh :class:`~qstore_qiskit.server.ServerProcess` (its own
process, so its RSS is its own) while another process checks ``GET /`` every 20 ms (so
that the sender's own work does not slow the checks). Bodies are built before the clock
starts. For each it prints the status answered, the time to answer, the server's RSS
before, at its peak and after, and the slowest concurrent health check.

The two rows that stall the event loop without this release's limits (a large body
under the size cap, and 1,500 half-open connections) are also run against a server
configured as before (``decode_processes=0``: the body decoded in the server process;
``simulation_processes=0``: every job simulated in a server thread;
``max_connections`` unbounded and the default accept queue of 128), ``--repeat`` times
each, side by side; the health-check ratio is printed.

Usage::

    python benchmarks/server_hostile.py            # all requests
    python benchmarks/server_hostile.py --only half-open --repeat 5
    python benchmarks/server_hostile.py --json out.json
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import socket
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qstore_qiskit.server import ServerProcess  # noqa: E402

JOB_STORE_BYTES = 256 * 1024 * 1024


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def post(url: str, data: bytes, timeout: float = 120.0) -> int:
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "apiKey k"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as err:
        err.read()
        return err.code
    except (ConnectionError, urllib.error.URLError):
        return -1  # connection closed without an answer
    except TimeoutError:
        return -2  # no answer within the timeout


def get(url: str, timeout: float = 60.0) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(
                url, headers={"Authorization": "apiKey k"}), timeout=timeout) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as err:
        err.read()
        return err.code


def all_h_multi(circuits: int, qubits: int) -> bytes:
    gates = [{"gate": "h", "target": q} for q in range(qubits)]
    return json.dumps({"type": "ionq.multi-circuit.v1", "backend": "simulator", "shots": 100,
                       "input": {"gateset": "qis", "qubits": qubits,
                                 "circuits": [{"circuit": gates} for _ in range(circuits)]}}
                      ).encode()


def many_gates(n: int) -> bytes:
    gate = '{"gate":"h","target":0},'
    head = b'{"type":"ionq.circuit.v1","backend":"simulator","shots":10,"input":{"gateset":"qis","qubits":1,"circuit":['
    return head + (gate * n)[:-1].encode() + b"]}}"


def layered(qubits: int, reps: int) -> bytes:
    """An accepted job under every cap that simulates for about a second (numpy kernel
    at 12 qubits: the Python per-gate loop holds the GIL)."""
    layer = ([{"gate": "h", "target": q} for q in range(qubits)]
             + [{"gate": "cnot", "control": q, "target": q + 1} for q in range(qubits - 1)]
             + [{"gate": "rx", "target": q, "rotation": 0.1 * (q + 1)} for q in range(qubits)])
    return json.dumps({"type": "ionq.circuit.v1", "backend": "simulator", "shots": 1000,
                       "input": {"gateset": "qis", "qubits": qubits,
                                 "circuit": layer * reps}}).encode()


def qasm_include(path: str) -> bytes:
    return json.dumps({"type": "ionq.qasm3.v1", "backend": "simulator", "shots": 10,
                       "input": {"data": f'OPENQASM 2.0;\ninclude "{path}";\nqreg q[1];\n'}}
                      ).encode()


def padded(size: int) -> bytes:
    return json.dumps({"type": "ionq.circuit.v1", "backend": "simulator", "shots": 10,
                       "metadata": {"pad": "x" * size},
                       "input": {"gateset": "qis", "circuit": [{"gate": "h", "target": 0}]}}
                      ).encode()


def half_open(port: int, count: int, hold: float) -> int:
    socks = []
    for i in range(count):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            break
        if i % 2:
            sock.sendall(b"GET /v0.4/jobs HTTP/1.1\r\nHost: x\r\n")
        socks.append(sock)
    time.sleep(hold)
    closed = 0
    for sock in socks:
        sock.settimeout(0.01)
        try:
            closed += sock.recv(1) == b""
        except (socket.timeout, BlockingIOError):
            pass
        except OSError:
            closed += 1
        sock.close()
    return closed


def _watch(base_url: str, pid: int, stop, worst, peak) -> None:
    """Health checks every 20 ms until ``stop``; slowest (s) and peak RSS (MB) out."""
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            get(base_url + "/", timeout=30)
        except OSError:
            pass
        worst.value = max(worst.value, time.perf_counter() - t0)
        try:
            peak.value = max(peak.value, rss_mb(pid))
        except OSError:
            pass
        time.sleep(0.02)


# A server configured as before the off-loop decoder and the connection limit.
BEFORE = {"decode_processes": 0, "max_connections": 1_000_000, "listen_backlog": 128,
          "simulation_processes": 0}


def run_one(name: str, action, header_timeout: float = 20.0, **overrides) -> dict:
    """Run ``action(server)`` against a fresh server process; one table row."""
    with ServerProcess(job_store_bytes=JOB_STORE_BYTES, header_timeout=header_timeout,
                       **overrides) as srv:
        pid = srv.pid
        assert pid is not None
        get(srv.base_url + "/")  # warm up
        before = rss_mb(pid)
        ctx = multiprocessing.get_context("fork")
        stop, worst, peak = ctx.Event(), ctx.Value("d", 0.0), ctx.Value("d", before)
        watcher = ctx.Process(target=_watch, args=(srv.base_url, pid, stop, worst, peak))
        watcher.start()
        time.sleep(0.3)
        cpu0 = cpu_seconds(pid)
        t0 = time.perf_counter()
        outcome = action(srv)
        elapsed = time.perf_counter() - t0
        time.sleep(0.3)
        # CPU the server process spent on the request (less sensitive to other load on
        # the machine than the health-check latency; the decode worker is not included).
        cpu = cpu_seconds(pid) - cpu0
        stop.set()
        watcher.join(30)
        after = rss_mb(pid)
        try:
            stats = srv.stats()
            extra = {"connections": stats.get("connections"), "bodies": stats.get("bodies")}
        except OSError:
            extra = {}
    return {"request": name, **extra, "outcome": outcome, "seconds": round(elapsed, 3),
            "rss_before_mb": round(before), "rss_peak_mb": round(peak.value),
            "rss_after_mb": round(after), "worst_health_ms": round(1000 * worst.value, 1),
            "server_cpu_s": round(cpu, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--only", help="run only the requests whose name contains this")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each side-by-side row (default 3)")
    args = parser.parse_args()
    big = padded(30 * 1024 * 1024)
    bodies = {"40x20": all_h_multi(40, 20), "4x20": all_h_multi(4, 20),
              "26": all_h_multi(1, 26), "1M": many_gates(1_000_000),
              "300k": many_gates(300_000), "90k": many_gates(90_000), "large": layered(12, 800),
              "64MB": padded(64 * 1024 * 1024),
              "etc": qasm_include("/etc/hostname"), "up": qasm_include("../../etc/passwd")}
    cases = [
        ("40 x 20-qubit all-H (23 KB)",
         lambda s: post(s.url + "/jobs", bodies["40x20"])),
        ("4 x 20-qubit all-H (within the budget: runs)",
         lambda s: post(s.url + "/jobs", bodies["4x20"])),
        ("26-qubit circuit (beyond the 2**25 budget)",
         lambda s: post(s.url + "/jobs", bodies["26"])),
        ('include "/etc/hostname"',
         lambda s: post(s.url + "/jobs", bodies["etc"])),
        ('include "../../etc/passwd"',
         lambda s: post(s.url + "/jobs", bodies["up"])),
        ("estimate shots=1e400",
         lambda s: get(s.url + "/jobs/estimate?backend=qpu.aria-1&shots=1" + "0" * 400)),
        ("estimate negative shots/gates",
         lambda s: get(s.url + "/jobs/estimate?backend=qpu.aria-1&shots=-5&1q_gates=-1")),
        ("1M-gate body (~25 MB)",
         lambda s: post(s.url + "/jobs", bodies["1M"])),
        ("300k-gate body (~7 MB, under the cap)",
         lambda s: post(s.url + "/jobs", bodies["300k"])),
        ("90k-gate body (~2 MB, accepted: runs)",
         lambda s: post(s.url + "/jobs", bodies["90k"])),
        ("large accepted job (12 qubits, 28k gates, ~1 s)",
         lambda s: post(s.url + "/jobs", bodies["large"])),
        ("4 concurrent 30 MB bodies",
         lambda s: sorted(concurrent.futures.ThreadPoolExecutor(4).map(
             lambda _: post(s.url + "/jobs", big), range(4)))),
        ("64 MB body (over the 8 MiB cap)",
         lambda s: post(s.url + "/jobs", bodies["64MB"])),
        ("1500 half-open connections, 3 s",
         lambda s: f"{half_open(int(s.base_url.rsplit(':', 1)[1]), 1500, 3.0)} closed"),
    ]
    rows = []
    compare = ("300k-gate", "90k-gate", "large accepted", "1500 half-open")
    for name, action in cases:
        if args.only and args.only not in name:
            continue
        timeout = 1.0 if name.startswith("1500") else 20.0
        variants = [("this release", {})]
        if name.startswith(compare):
            variants.append(("as before", BEFORE))
        worst: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}
        for label, overrides in variants:
            for _ in range(args.repeat if len(variants) > 1 else 1):
                row = run_one(name, action, header_timeout=timeout, **overrides)
                row["server"] = label
                rows.append(row)
                worst.setdefault(label, []).append(row["worst_health_ms"])
                cpu.setdefault(label, []).append(row["server_cpu_s"])
                print(f"{row['request'][:40]:<40} {label:<12} {str(row['outcome']):<14} "
                      f"{row['seconds']:>7.3f} s  RSS {row['rss_before_mb']:>4} -> peak "
                      f"{row['rss_peak_mb']:>5} -> {row['rss_after_mb']:>4} MB  health max "
                      f"{row['worst_health_ms']:>7.1f} ms  server CPU {row['server_cpu_s']:.2f} s",
                      flush=True)
        if len(variants) > 1:
            now, before = max(worst["this release"]), max(worst["as before"])
            print(f"  -> slowest health check: {now:.1f} ms vs {before:.1f} ms as before "
                  f"({before / now:.1f}x); median server CPU "
                  f"{statistics.median(cpu['this release']):.2f} s vs "
                  f"{statistics.median(cpu['as before']):.2f} s", flush=True)
    print(f"(job store budget {JOB_STORE_BYTES // 2**20} MiB; body cap 8 MiB; "
          f"header timeout 1 s for the half-open row; 'as before' = {BEFORE})")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
