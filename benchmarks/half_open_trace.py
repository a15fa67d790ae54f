"""Where a health check waits during a flood of half-open connections (issue #12).

Runs a :class:`~qstore_qiskit.server.LocalServer` in a forked process with its event
loop instrumented, floods it with ``--count`` connections (every other one sends half a
request head, as ``server_hostile.py``'s half-open row does) from a second process, and
checks ``GET /`` every 20 ms from a third. All three use ``CLOCK_MONOTONIC``, so the
times line up. Printed:

* for the slowest health checks: connect -> accepted by the front -> readable (handed
  over) -> answer received, in ms;
* the longest loop iterations (time between two selector waits, i.e. callbacks run),
  with what the front and the connection limit did in each (accepted, handed over,
  expired, evicted, shed);
* totals of the loop's busy time during the flood and during the mass expiry.

This is a diagnostic, not a target: numbers depend on the machine's load (printed).

Usage::

    python benchmarks/half_open_trace.py --count 1500 --header-timeout 1 --runs 3
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qstore_qiskit.server import LocalServer, accept  # noqa: E402
from qstore_qiskit.server.connections import LIMITER  # noqa: E402
from server_hostile import open_flood, wait_closed  # noqa: E402  (same folder: the flood itself)


def _server(conn, header_timeout: float, overrides: dict) -> None:
    """Child: serve with an instrumented loop; send the trace when told to stop."""
    accepted_at: dict[int, float] = {}  # peer port -> accept time
    readable_at: dict[int, float] = {}  # peer port -> hand-over time
    iterations: list[tuple] = []  # (select end, next select start, counters at start)

    real_on_listener = accept.AcceptFront._on_listener
    real_on_readable = accept.AcceptFront._on_readable

    def on_listener(self):
        before = set(self._pending)
        real_on_listener(self)
        now = time.monotonic()
        for fd in set(self._pending) - before:
            try:
                accepted_at[self._pending[fd][0].getpeername()[1]] = now
            except OSError:
                pass

    def on_readable(self, fd):
        entry = self._pending.get(fd)
        if entry is not None:
            try:
                readable_at[entry[0].getpeername()[1]] = time.monotonic()
            except OSError:
                pass
        real_on_readable(self, fd)

    accept.AcceptFront._on_listener = on_listener
    accept.AcceptFront._on_readable = on_readable

    srv = LocalServer(header_timeout=header_timeout, **overrides).start()
    front = srv._front
    app_limiter = srv._runner.app[LIMITER]
    loop = srv._loop
    selector = loop._selector  # pylint: disable=protected-access
    real_select = selector.select
    last_end = [time.monotonic()]

    def counters():
        return (front.accepted, front.handed_over, front.expired, front.evicted,
                front.shed_partial, app_limiter.shed_idle, app_limiter.refused,
                len(front._pending), len(front._partial))

    def traced_select(timeout=None):
        start = time.monotonic()
        iterations.append((last_end[0], start, counters() + (time.thread_time(),)))
        result = real_select(timeout)
        last_end[0] = time.monotonic()
        return result

    loop.call_soon_threadsafe(setattr, selector, "select", traced_select)
    conn.send(srv.port)
    conn.recv()  # stop
    srv.stop()
    conn.send((accepted_at, readable_at, iterations))


def _health(port: int, stop, out) -> None:
    """Child: GET / every 20 ms; (local port, connect start, connected, answered)."""
    records = []
    while not stop.is_set():
        sock = socket.socket()
        t0 = time.monotonic()
        sock.connect(("127.0.0.1", port))
        t1 = time.monotonic()
        local = sock.getsockname()[1]
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        sock.settimeout(10)
        try:
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        t2 = time.monotonic()
        sock.close()
        records.append((local, t0, t1, t2, data[:12]))
        time.sleep(0.02)
    out.send(records)


def _flood(port: int, count: int, deadline: float, out) -> None:
    t_first = time.monotonic()
    socks = open_flood(port, count)
    t_last = time.monotonic()
    closed, _ = wait_closed(socks, time.perf_counter(), deadline)
    t_closed = time.monotonic()
    for sock in socks:
        sock.close()
    out.send((t_first, t_last, t_closed, closed, len(socks)))


def run(count: int, header_timeout: float, overrides: dict) -> dict:
    ctx = multiprocessing.get_context("fork")
    srv_end, srv_child = ctx.Pipe()
    server = ctx.Process(target=_server, args=(srv_child, header_timeout, overrides))
    server.start()
    port = srv_end.recv()
    time.sleep(0.5)
    stop = ctx.Event()
    h_end, h_child = ctx.Pipe()
    health = ctx.Process(target=_health, args=(port, stop, h_child))
    health.start()
    time.sleep(0.3)
    load = Path("/proc/loadavg").read_text(encoding="ascii").split()[0]
    f_end, f_child = ctx.Pipe()
    flood = ctx.Process(target=_flood, args=(port, count, header_timeout + 10, f_child))
    flood.start()
    t_first, t_last, t_closed, closed, opened = f_end.recv()
    flood.join()
    time.sleep(0.3)
    stop.set()
    checks = h_end.recv()
    health.join()
    srv_end.send("stop")
    accepted_at, readable_at, iterations = srv_end.recv()
    server.join()
    return {"load": load, "flood": (t_first, t_last, t_closed, closed, opened),
            "checks": checks, "accepted_at": accepted_at, "readable_at": readable_at,
            "iterations": iterations}


def report(res: dict, top: int) -> None:
    t_first, t_last, t_closed, closed, opened = res["flood"]
    print(f"load1 {res['load']}; flood: {opened} opened in {1e3 * (t_last - t_first):.0f} ms,"
          f" {closed} closed {1e3 * (t_closed - t_last):.0f} ms after the last connect")
    its = res["iterations"]
    stamps = [(start, c[-1]) for _, start, c in its]  # (select start, thread CPU then)

    def loop_cpu(lo: float, hi: float) -> float:
        """Loop thread CPU from the last selector wait before ``lo`` to the first
        after ``hi``: the work the loop did while a check waited."""
        before = [c for t, c in stamps if t <= lo]
        after = [c for t, c in stamps if t >= hi]
        if not before or not after:
            return float("nan")
        return after[0] - before[-1]

    rows = []
    for local, t0, t1, t2, head in res["checks"]:
        acc = res["accepted_at"].get(local)
        rdy = res["readable_at"].get(local)
        rows.append((t2 - t0, local, t0, t1, acc, rdy, t2, head, loop_cpu(t0, t2)))
    rows.sort(reverse=True)
    ms = lambda a, b: f"{1e3 * (b - a):7.1f}" if a is not None and b is not None else "      ?"  # noqa: E731
    print(f"{len(rows)} health checks; slowest (ms since the flood's first connect; "
          "connect, ->accepted, ->handed over, ->answer, total):")
    for total, local, t0, t1, acc, rdy, t2, head, cpu in rows[:top]:
        print(f"  at {1e3 * (t0 - t_first):7.0f}: connect {ms(t0, t1)}  accept {ms(t1, acc)}"
              f"  handover {ms(acc, rdy)}  answer {ms(rdy, t2)}  total {1e3 * total:6.1f}"
              f"  (loop CPU meanwhile {1e3 * cpu:5.1f})  {head!r}")
    cpus = sorted(r[-1] for r in rows)
    print(f"  loop CPU while a check waited: median {1e3 * cpus[len(cpus) // 2]:.1f} ms, "
          f"max {1e3 * cpus[-1]:.1f} ms (what the check would wait on an idle machine)")
    work = []
    for (end_prev, start, c0), (_, _, c1) in zip(its, its[1:]):
        work.append((start - end_prev, end_prev, tuple(b - a for a, b in zip(c0, c1)), c1))
    # thread CPU of an iteration: c1[-1] - c0[-1] includes the select call (small).
    # Busy time by phase.
    def busy(lo: float, hi: float) -> tuple[float, int, float, float, float]:
        sel = [w for w in work if lo <= w[1] < hi]
        return (sum(w[0] for w in sel), len(sel), max((w[0] for w in sel), default=0.0),
                sum(w[2][-1] for w in sel), max((w[2][-1] for w in sel), default=0.0))
    for name, lo, hi in (("flood", t_first, t_last + 0.05),
                         ("quiet", t_last + 0.05, t_last + 0.8),
                         ("expiry", t_last + 0.8, t_closed + 0.05)):
        b, n, mx, cpu, cmx = busy(lo, hi)
        print(f"  {name:<6} {1e3 * (hi - lo):7.0f} ms: loop busy {1e3 * b:6.1f} ms over {n} "
              f"iterations, longest {1e3 * mx:5.1f} ms; loop thread CPU {1e3 * cpu:6.1f} ms,"
              f" most in one iteration {1e3 * cmx:5.1f} ms")
    print("  longest iterations (ms since first connect, ms; deltas of accepted, handed, "
          "expired, evicted, shed_partial, shed_idle, refused; pending, partial after):")
    for w, at, delta, after in sorted(work, key=lambda w: w[2][-1], reverse=True)[:top]:
        print(f"    at {1e3 * (at - t_first):7.0f}: {1e3 * w:6.1f} ms (CPU {1e3 * delta[-1]:5.1f})"
              f"  {delta[:7]}  {after[7:9]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1500)
    parser.add_argument("--header-timeout", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--top", type=int, default=6)
    parser.add_argument("--set", action="append", default=[],
                        help="ServerConfig field=value (int or float)")
    args = parser.parse_args()
    overrides = {}
    for item in args.set:
        key, value = item.split("=", 1)
        overrides[key] = float(value) if "." in value else int(value)
    for _ in range(args.runs):
        report(run(args.count, args.header_timeout, overrides), args.top)
    print(f"load average at end: {Path('/proc/loadavg').read_text().split()[:3]}; "
          f"pid {os.getpid()}")


if __name__ == "__main__":
    main()
