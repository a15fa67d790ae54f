"""Hostile requests against the local IonQ-API server (issue #12), one table.

Every hostile input of issue #12 that the server must answer is sent to a fresh
:class:`~qstore_qiskit.server.ServerProcess` (its own process, so its RSS is its own),
``--repeat`` times, while another process checks ``GET /`` every 20 ms (so that the
sender's own work does not slow the checks). Bodies are built before the clock starts.

One row per request, over its repeats: the status codes answered, the slowest time to
answer, the slowest *successful* concurrent health check, the number of *failed* health
checks (a connection error, a timeout of :data:`HEALTH_TIMEOUT` or a status other than
200: counted and printed, never taken as a latency), the peak RSS of the server process
and its workers against their limit, and a verdict. The targets (issue #12):

* the expected answer (a 4xx for a hostile request; 201 for the accepted controls, whose
  job is then polled until it completes while the checks go on; 200
  for the idle control row, whose health checks show the floor that the machine's
  load sets; for half-open connections: every one closed by the server) in under
  :data:`ANSWER_TARGET` seconds (for half-open connections: closed within the header
  timeout plus :data:`ANSWER_TARGET`);
* every health check answered 200, the slowest in under :data:`HEALTH_TARGET_MS`;
* peak RSS of the server and its workers under ``baseline + memory_budget() +
  max_body_bytes_in_flight`` (baseline: their RSS after start-up and a warm-up request).

Rows named in ``--compare`` (by default the three that stalled the event loop before
the accept front, the decode worker and the simulation worker) are also run against a
server configured as before (:data:`BEFORE`), side by side, with the ratio of the
slowest health checks.

Usage::

    python benchmarks/server_hostile.py --repeat 3 --json out.json
    python benchmarks/server_hostile.py --only half-open --repeat 5
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import select
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qstore_qiskit.server import ServerConfig, ServerProcess  # noqa: E402

ANSWER_TARGET = 1.0  # seconds
HEALTH_TARGET_MS = 100.0
HEALTH_TIMEOUT = 10.0  # a health check not answered within this is a failure
HALF_OPEN_HEADER_TIMEOUT = 1.0  # the half-open row's header (and first-byte) timeout
IN_FLIGHT = ServerConfig().max_body_bytes_in_flight

# A server configured as before the off-loop decoder, the connection limit, the deeper
# accept queue, the simulation worker and answering large jobs before their simulation
# (the accept front itself has no switch).
BEFORE = {"decode_processes": 0, "max_connections": 1_000_000, "listen_backlog": 128,
          "simulation_processes": 0, "inline_max_work": None}


# -- process measurements ----------------------------------------------------------------


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as fh:
                kids.extend(int(k) for k in fh.read().split())
    except OSError:
        pass
    return kids


def tree_rss_mb(pid: int) -> tuple[float, float]:
    """RSS (MB) of the server process, and of it plus its worker processes."""
    server = _rss_mb(pid)
    workers = 0.0
    for child in _children(pid):
        try:
            workers += _rss_mb(child)
        except OSError:
            pass  # exited meanwhile
    return server, server + workers


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(pid: int, limit: float = 120.0) -> None:
    """Wait (at most ``limit`` s) until the server and its workers use under 10% of a
    CPU over a quarter second: the prestarted workers have finished importing."""
    def tree_cpu() -> float:
        total = 0.0
        for p in (pid, *_children(pid)):
            try:
                total += cpu_seconds(p)
            except OSError:
                pass
        return total

    deadline = time.monotonic() + limit
    before = tree_cpu()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = tree_cpu()
        if now - before < 0.025:
            return
        before = now


# -- requests ----------------------------------------------------------------------------


def post(url: str, data: bytes, timeout: float = 120.0) -> int | str:
    """POST ``data``; the status, or what went wrong instead of an answer."""
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
    except (TimeoutError, socket.timeout):
        return "timeout"
    except (OSError, urllib.error.URLError) as exc:
        return f"no answer ({type(exc).__name__})"


def run_job(base: str, data: bytes, limit: float = 300.0) -> tuple[str, float]:
    """POST an accepted job and poll it until it has finished (at most ``limit`` s), so
    that the health checks and RSS cover its simulation too. Returns ``"<status>
    <final job status> after <s> s"`` and the seconds until the 201."""
    req = urllib.request.Request(base + "/jobs", data=data, method="POST",
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "apiKey k"})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            status, job_id = resp.status, json.loads(resp.read())["id"]
    except urllib.error.HTTPError as err:
        err.read()
        return str(err.code), time.perf_counter() - t0
    answered = time.perf_counter() - t0
    final = "?"
    while time.perf_counter() - t0 < limit:
        with urllib.request.urlopen(urllib.request.Request(
                f"{base}/jobs/{job_id}", headers={"Authorization": "apiKey k"}),
                timeout=60) as resp:
            final = json.loads(resp.read())["status"]
        if final in ("completed", "failed", "canceled"):
            break
        time.sleep(0.1)
    return f"{status} {final} {time.perf_counter() - t0:.1f}s", answered


def get(url: str, timeout: float = 60.0) -> int | str:
    """GET ``url``; the status, or what went wrong instead of an answer."""
    try:
        with urllib.request.urlopen(urllib.request.Request(
                url, headers={"Authorization": "apiKey k"}), timeout=timeout) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as err:
        err.read()
        return err.code
    except (TimeoutError, socket.timeout):
        return "timeout"
    except (OSError, urllib.error.URLError) as exc:
        return f"no answer ({type(exc).__name__})"


def job(circuits: list[list[dict]], qubits: int, shots: int = 100) -> bytes:
    if len(circuits) == 1:
        inp: dict[str, Any] = {"gateset": "qis", "qubits": qubits, "circuit": circuits[0]}
        kind = "ionq.circuit.v1"
    else:
        inp = {"gateset": "qis", "qubits": qubits,
               "circuits": [{"circuit": c} for c in circuits]}
        kind = "ionq.multi-circuit.v1"
    return json.dumps({"type": kind, "backend": "simulator", "shots": shots,
                       "input": inp}).encode()


def all_h(circuits: int, qubits: int) -> bytes:
    return job([[{"gate": "h", "target": q} for q in range(qubits)]] * circuits, qubits)


def many_gates(n: int) -> bytes:
    gate = '{"gate":"h","target":0},'
    head = (b'{"type":"ionq.circuit.v1","backend":"simulator","shots":10,'
            b'"input":{"gateset":"qis","qubits":1,"circuit":[')
    return head + (gate * n)[:-1].encode() + b"]}}"


def layered(qubits: int, reps: int) -> bytes:
    """An accepted job under every cap that simulates for about a second."""
    layer = ([{"gate": "h", "target": q} for q in range(qubits)]
             + [{"gate": "cnot", "control": q, "target": q + 1} for q in range(qubits - 1)]
             + [{"gate": "rx", "target": q, "rotation": 0.1 * (q + 1)} for q in range(qubits)])
    return job([layer * reps], qubits, shots=1000)


def qasm_include(path: str) -> bytes:
    return json.dumps({"type": "ionq.qasm3.v1", "backend": "simulator", "shots": 10,
                       "input": {"data": f'OPENQASM 2.0;\ninclude "{path}";\nqreg q[1];\n'}}
                      ).encode()


def padded(size: int) -> bytes:
    return json.dumps({"type": "ionq.circuit.v1", "backend": "simulator", "shots": 10,
                       "metadata": {"pad": "x" * size},
                       "input": {"gateset": "qis", "circuit": [{"gate": "h", "target": 0}]}}
                      ).encode()


def wait_closed(socks: list[socket.socket], since: float, deadline: float) -> tuple[int, float]:
    """Wait (until ``deadline`` s after ``since``, a ``time.perf_counter()`` reading) for
    the server to close ``socks``. Returns how many it closed and when the last one was."""
    open_socks = {s.fileno(): s for s in socks}
    closed, last = 0, since
    poller = select.poll()
    for fd in open_socks:
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    while open_socks and time.perf_counter() - since < deadline:
        for fd, _ in poller.poll(100):
            sock = open_socks.pop(fd, None)
            if sock is None:
                continue
            poller.unregister(fd)
            try:
                data = sock.recv(1)
            except OSError:
                data = b""
            if data == b"":
                closed += 1
                last = time.perf_counter()
    return closed, last


def open_flood(port: int, count: int) -> list[socket.socket]:
    """Open up to ``count`` connections; every other one sends half a request head."""
    socks = []
    for i in range(count):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            break
        if i % 2:
            sock.sendall(b"GET /v0.4/jobs HTTP/1.1\r\nHost: x\r\n")
        socks.append(sock)
    return socks


def half_open(port: int, count: int, deadline: float) -> tuple[str, float]:
    """Open ``count`` connections (every other one sends half a request head) and wait
    (at most ``deadline`` s) for the server to close them. Returns ``"<n> closed"`` and
    the seconds from the last connect until the server had closed them all."""
    socks = open_flood(port, count)
    opened = time.perf_counter()
    closed, last = wait_closed(socks, opened, deadline)
    for sock in socks:
        sock.close()
    return f"{closed}/{count} closed", last - opened


# -- one run -----------------------------------------------------------------------------


def _watch(base_url: str, pid: int, stop, worst, failures, failure_log, peak_server,
           peak_total) -> None:
    """Health checks every 20 ms until ``stop``: slowest successful check (s), failed
    checks (count and the first few reasons), peak RSS (MB) out."""
    while not stop.is_set():
        t0 = time.perf_counter()
        status = get(base_url + "/", timeout=HEALTH_TIMEOUT)
        took = time.perf_counter() - t0
        if status == 200:
            worst.value = max(worst.value, took)
        else:
            with failures.get_lock():
                failures.value += 1
                if failures.value <= 3:
                    failure_log.put(f"{status} after {took:.2f} s")
        try:
            server, total = tree_rss_mb(pid)
            peak_server.value = max(peak_server.value, server)
            peak_total.value = max(peak_total.value, total)
        except OSError:
            pass
        time.sleep(0.02)


def run_one(action: Callable[[ServerProcess], Any], **overrides: Any) -> dict[str, Any]:
    """Run ``action(server)`` against a fresh server process."""
    with ServerProcess(**overrides) as srv:
        pid = srv.pid
        assert pid is not None
        get(srv.base_url + "/")  # warm up
        stats = srv.stats()
        budget_mb = stats["store"]["memory_budget"] / 2**20
        wait_idle(pid)  # the prestarted workers finish importing
        base_server, base_total = tree_rss_mb(pid)
        ctx = multiprocessing.get_context("fork")
        stop = ctx.Event()
        worst, failures = ctx.Value("d", 0.0), ctx.Value("i", 0)
        peak_server, peak_total = ctx.Value("d", base_server), ctx.Value("d", base_total)
        failure_log = ctx.Queue()
        watcher = ctx.Process(target=_watch, args=(srv.base_url, pid, stop, worst, failures,
                                                   failure_log, peak_server, peak_total))
        watcher.start()
        time.sleep(0.3)
        load1 = float(Path("/proc/loadavg").read_text(encoding="ascii").split()[0])
        cpu0 = cpu_seconds(pid)
        t0 = time.perf_counter()
        outcome = action(srv)
        elapsed = time.perf_counter() - t0
        if isinstance(outcome, tuple):  # (outcome, the time that counts as the answer's)
            outcome, elapsed = outcome
        time.sleep(0.3)
        cpu = cpu_seconds(pid) - cpu0  # the server process only, not its workers
        stop.set()
        watcher.join(HEALTH_TIMEOUT + 30)
        reasons = []
        while not failure_log.empty():
            reasons.append(failure_log.get())
        try:
            after = srv.stats()
            extra = {"connections": after.get("connections"), "bodies": after.get("bodies"),
                     "simulation": after.get("simulation")}
        except OSError:
            extra = {}
    limit = base_total + budget_mb + IN_FLIGHT / 2**20
    return {"outcome": outcome, "seconds": round(elapsed, 3), "load1": load1,
            "worst_health_ms": round(1000 * worst.value, 1),
            "failed_health_checks": failures.value, "failure_reasons": reasons,
            "rss_base_server_mb": round(base_server), "rss_base_total_mb": round(base_total),
            "rss_peak_server_mb": round(peak_server.value),
            "rss_peak_total_mb": round(peak_total.value), "rss_limit_mb": round(limit),
            "server_cpu_s": round(cpu, 3), **extra}


# -- the requests ------------------------------------------------------------------------


def cases() -> list[tuple[str, Any, Callable[[ServerProcess], Any]]]:
    """``(name, expected, action)``: expected is ``"4xx"``, ``200``, ``201`` or
    ``"closed"``."""
    big = padded(30 * 1024 * 1024)
    bodies = {
        "64MB": padded(64 * 1024 * 1024), "1M": many_gates(1_000_000),
        "300k": many_gates(300_000), "40x20": all_h(40, 20), "26": all_h(1, 26),
        # 1,000 two-qubit circuits x 10**6 shots: 2e9 qubit-shots > max_job_work.
        "work": job([[{"gate": "h", "target": 0}]] * 1000, 2, shots=1_000_000),
        "neg": job([[{"gate": "h", "target": 0}]], 1, shots=-5),
        "nested": b"[" * 200_000 + b"]" * 200_000,
        "etc": qasm_include("/etc/hostname"), "up": qasm_include("../../etc/passwd"),
        "4x20": all_h(4, 20), "90k": many_gates(90_000), "large": layered(12, 800),
    }

    def jobs(key: str) -> Callable[[ServerProcess], Any]:
        return lambda s: post(s.url + "/jobs", bodies[key])

    def runs(key: str) -> Callable[[ServerProcess], Any]:
        return lambda s: run_job(s.url, bodies[key])

    def estimate(query: str) -> Callable[[ServerProcess], Any]:
        return lambda s: get(s.url + "/jobs/estimate?backend=qpu.aria-1&" + query)

    def four_big(s: ServerProcess) -> str:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            codes = sorted(pool.map(lambda _: post(s.url + "/jobs", big), range(4)),
                           key=str)
        return "/".join(map(str, codes))

    def flood(s: ServerProcess) -> tuple[str, float]:
        return half_open(int(s.base_url.rsplit(":", 1)[1]), 1500,
                         HALF_OPEN_HEADER_TIMEOUT + 10)

    def idle(s: ServerProcess) -> tuple[Any, float]:
        time.sleep(2.0)  # the health checks alone: the floor the machine's load sets
        t0 = time.perf_counter()
        return get(s.base_url + "/"), time.perf_counter() - t0

    return [
        ("control: no request, health checks only", 200, idle),
        ("64 MB body (over the 8 MiB cap)", "4xx", jobs("64MB")),
        ("1M-gate body (~25 MB)", "4xx", jobs("1M")),
        ("4 concurrent 30 MB bodies", "4xx", four_big),
        ("300k-gate body (~7 MB, over the gate cap)", "4xx", jobs("300k")),
        ("40 x 20-qubit all-H (23 KB)", "4xx", jobs("40x20")),
        ("26-qubit circuit (over 2**25 amplitudes)", "4xx", jobs("26")),
        ("1000 circuits x 1e6 shots (work cap)", "4xx", jobs("work")),
        ("negative shots", "4xx", jobs("neg")),
        ("200k-deep nested JSON", "4xx", jobs("nested")),
        ('qasm include "/etc/hostname"', "4xx", jobs("etc")),
        ('qasm include "../../etc/passwd"', "4xx", jobs("up")),
        ("estimate shots=1 + 400 zeros", "4xx", estimate("shots=1" + "0" * 400)),
        ("estimate negative shots", "4xx", estimate("shots=-5")),
        ("estimate negative gate counts", "4xx", estimate("shots=10&1q_gates=-1")),
        ("1500 half-open connections", "closed", flood),
        ("control: 4 x 20-qubit all-H (runs)", 201, runs("4x20")),
        ("control: 90k-gate body (~2 MB, runs)", 201, runs("90k")),
        ("control: 12 qubits x 28k gates (runs)", 201, runs("large")),
    ]


def answered_as_expected(outcome: Any, expected: Any) -> bool:
    if expected == "4xx":
        codes = str(outcome).split("/")
        return all(c.isdigit() and 400 <= int(c) < 500 for c in codes)
    if expected == "closed":
        done, total = str(outcome).split()[0].split("/")
        return done == total
    if expected == 201:  # "201 completed 4.2s": answered, and the job then completed
        return str(outcome).split()[:2] == ["201", "completed"]
    return outcome == expected


def verdict(runs: list[dict], expected: Any) -> tuple[bool, list[str]]:
    """Whether every run meets the targets, and which targets some run missed."""
    missed = []
    answer_limit = ANSWER_TARGET + (HALF_OPEN_HEADER_TIMEOUT if expected == "closed" else 0)
    if not all(answered_as_expected(r["outcome"], expected) for r in runs):
        missed.append("answer")
    if max(r["seconds"] for r in runs) >= answer_limit:
        missed.append("time")
    if max(r["worst_health_ms"] for r in runs) >= HEALTH_TARGET_MS:
        missed.append("health")
    if sum(r["failed_health_checks"] for r in runs):
        missed.append("failed checks")
    if any(r["rss_peak_total_mb"] >= r["rss_limit_mb"] for r in runs):
        missed.append("memory")
    return not missed, missed


HEADER = (f"{'request':<42} {'server':<10} {'answer':<22} {'answer s':>13} "
          f"{'health max ms':>15} {'failed':>6} {'peak RSS MB srv/+workers (limit)':>33} "
          f"{'load':>10}  verdict")


def row_line(name: str, label: str, runs: list[dict], expected: Any) -> str:
    outcomes = sorted({str(r["outcome"]) for r in runs})
    if expected == 201:  # "201 completed 4.2s" -> "201 completed <=4.2s"
        done = [float(o.rsplit(" ", 1)[1][:-1]) for o in outcomes if o.count(" ") == 2]
        outcomes = sorted({o.rsplit(" ", 1)[0] if o.count(" ") == 2 else o
                           for o in outcomes})
        if done:
            outcomes[-1] += f" <={max(done):.1f}s"
    secs = [r["seconds"] for r in runs]
    health = [r["worst_health_ms"] for r in runs]
    ok, missed = verdict(runs, expected)
    rss = (f"{max(r['rss_peak_server_mb'] for r in runs)}/"
           f"{max(r['rss_peak_total_mb'] for r in runs)} "
           f"({min(r['rss_limit_mb'] for r in runs)})")
    return (f"{name[:42]:<42} {label:<10} {','.join(outcomes)[:22]:<22} "
            f"{min(secs):>6.3f}-{max(secs):<6.3f} {min(health):>6.1f}-{max(health):<8.1f}"
            f"{sum(r['failed_health_checks'] for r in runs):>6} {rss:>33} "
            f"{min(r['load1'] for r in runs):>4.1f}-{max(r['load1'] for r in runs):<5.1f}  "
            + ("meets" if ok else "MISSES " + ", ".join(missed)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write every run to this file")
    parser.add_argument("--only", help="run only the requests whose name contains this")
    parser.add_argument("--repeat", type=int, default=3,
                        help="fresh-server runs of each request (default 3)")
    parser.add_argument("--compare", default="300k-gate,1500 half-open,90k-gate",
                        help="comma-separated name parts of the requests also run "
                             "against a server configured as before ('' for none)")
    args = parser.parse_args()
    compare = tuple(p for p in args.compare.split(",") if p)
    print(f"load average at start: {open('/proc/loadavg', encoding='ascii').read().split()[:3]}",
          flush=True)
    print(HEADER, flush=True)
    results = []
    for name, expected, action in cases():
        if args.only and args.only not in name:
            continue
        variants = [("now", {})]
        if any(p in name for p in compare):
            variants.append(("as before", BEFORE))
        worst: dict[str, float] = {}
        for label, overrides in variants:
            if expected == "closed":
                overrides = {**overrides, "header_timeout": HALF_OPEN_HEADER_TIMEOUT}
            runs = [run_one(action, **overrides) for _ in range(args.repeat)]
            ok, missed = verdict(runs, expected)
            results.append({"request": name, "server": label, "expected": expected,
                            "meets": ok, "missed": missed, "runs": runs})
            worst[label] = max(r["worst_health_ms"] for r in runs)
            print(row_line(name, label, runs, expected), flush=True)
            for r in runs:
                for reason in r["failure_reasons"]:
                    print(f"    failed health check: {reason}", flush=True)
        if len(worst) > 1 and worst["now"] > 0:
            print(f"    slowest health check {worst['now']:.1f} ms vs "
                  f"{worst['as before']:.1f} ms as before "
                  f"({worst['as before'] / worst['now']:.1f}x)", flush=True)
    now_rows = [r for r in results if r["server"] == "now"]
    print(f"{sum(r['meets'] for r in now_rows)}/{len(now_rows)} requests meet every target "
          f"(expected answer in < {ANSWER_TARGET:g} s; half-open: closed within the "
          f"{HALF_OPEN_HEADER_TIMEOUT:g} s header timeout + {ANSWER_TARGET:g} s; every "
          f"health check 200 and < {HEALTH_TARGET_MS:g} ms; peak RSS of server + workers "
          f"< baseline + memory_budget() + max_body_bytes_in_flight); "
          f"{args.repeat} fresh server(s) per row; as before = {BEFORE}")
    print(f"load average at end: {open('/proc/loadavg', encoding='ascii').read().split()[:3]}",
          flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
