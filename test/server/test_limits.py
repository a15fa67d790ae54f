"""The server's resource limits (issue #12, hostile requests): large job bodies decoded
and validated in a worker process, a connection limit that sheds idle and half-open
connections, a byte budget for bodies in flight, and bounded job histories."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import unittest
from unittest import mock

from qstore_qiskit.server import LocalServer, gates
from qstore_qiskit.server.config import GONE_ID_BYTES, HISTORY_ENTRY_BYTES, PROFILES
from qstore_qiskit.server.decode import CHUNK_GATES, PackedSpec, decode_json
from qstore_qiskit.server.job_requests import parse_job_request
from qstore_qiskit.server.jobs import Job, JobStore

from .helpers import http

# A mix of fixed gates (matrices shared by identity), rotations and two-qubit gates.
_PATTERN = [
    {"gate": "h", "target": 0}, {"gate": "cnot", "control": 0, "target": 1},
    {"gate": "rx", "target": 2, "rotation": 0.3}, {"gate": "s", "target": 1},
    {"gate": "t", "target": 2}, {"gate": "v", "target": 0},
    {"gate": "rz", "target": 1, "rotation": -1.1}, {"gate": "swap", "targets": [0, 2]},
    {"gate": "zz", "targets": [1, 2], "rotation": 0.7}, {"gate": "x", "target": 2},
]


def long_circuit(num_gates: int, bad_at: int | None = None) -> dict:
    """A 3-qubit job of ``num_gates`` gates (``bad_at``: an unknown gate there)."""
    circuit = [dict(_PATTERN[i % len(_PATTERN)]) for i in range(num_gates)]
    if bad_at is not None:
        circuit[bad_at] = {"gate": "frob", "target": 0}
    return {"type": "ionq.circuit.v1", "backend": "simulator", "shots": 1000,
            "input": {"gateset": "qis", "qubits": 3, "circuit": circuit}}


def wait_for(predicate, what: str, attempts: int = 3000) -> None:
    """Poll ``predicate`` (every 10 ms, bounded) until it holds."""
    for _ in range(attempts):
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


class TestPackedSpec(unittest.TestCase):
    """The worker's compact form round-trips the validated job exactly."""

    def test_round_trip_keeps_gates_and_matrix_identity(self):
        body = long_circuit(2 * CHUNK_GATES + 7)
        spec = parse_job_request(body, PROFILES["instant"], native_ranges=True)
        packed = PackedSpec.pack(spec)
        self.assertEqual(len(packed.chunks), 3)
        back = PackedSpec.unpack(packed)
        self.assertEqual(back.circuits[0].gates, spec.circuits[0].gates)
        self.assertEqual(back.circuits[0].num_qubits, 3)
        self.assertEqual(back, spec)
        # Fixed matrices come back as the server's own objects (Aer maps them by id()).
        fixed = [args[0] for (fn, args), _, _ in back.circuits[0].gates if fn is None]
        self.assertTrue(fixed)
        shared = {id(m) for m in vars(gates).values() if hasattr(m, "shape")}
        self.assertTrue(all(id(m) in shared for m in fixed))

    def test_every_gate_kind_and_program_round_trips(self):
        qis = [{"gate": g, "target": 0} for g in ("x", "y", "z", "h", "s", "si", "t", "ti",
                                                   "v", "vi", "not")]
        qis += [{"gate": g, "target": 1, "rotation": 0.2} for g in ("rx", "ry", "rz")]
        qis += [{"gate": "z", "target": 0, "rotation": 0.3},
                {"gate": "x", "target": 2, "controls": [0, 1]},
                {"gate": "swap", "targets": [0, 1]},
                {"gate": "xx", "targets": [0, 1], "rotation": 0.1},
                {"gate": "pauliexp", "targets": [0, 1], "terms": ["XY", "ZZ"],
                 "coefficients": [0.5, 0.2], "time": 0.3}]
        native = [{"gate": "gpi", "target": 0, "phase": 0.1},
                  {"gate": "gpi2", "target": 1, "phase": 0.2},
                  {"gate": "ms", "targets": [0, 1], "phases": [0.1, 0.2], "angle": 0.25},
                  {"gate": "zz", "targets": [1, 2], "angle": 0.1}]
        bodies = [
            {"type": "ionq.multi-circuit.v1", "backend": "simulator", "shots": 10,
             "metadata": {"a": "b"}, "noise": {"model": "aria-1", "seed": 3},
             "input": {"gateset": "qis", "qubits": 3, "circuits": [
                 {"circuit": qis, "name": "c1"}, {"circuit": qis[:3]}]}},
            {"type": "ionq.circuit.v1", "backend": "simulator", "shots": 10,
             "input": {"gateset": "native", "qubits": 3, "circuit": native}},
        ]
        for body in bodies:
            spec = parse_job_request(body, PROFILES["instant"], native_ranges=True)
            self.assertEqual(PackedSpec.pack(spec).unpack(), spec)
        program = parse_job_request(
            {"type": "ionq.qasm3.v1", "backend": "simulator", "shots": 10,
             "input": {"data": 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\n'
                               "creg c[2];\nh q[0];\ncx q[0],q[1];\nmeasure q -> c;\n"}},
            PROFILES["instant"])
        back = PackedSpec.pack(program).unpack()
        self.assertEqual((back.program.num_qubits, back.type), (2, "ionq.qasm3.v1"))

    def test_only_the_servers_own_classes_unpickle(self):
        import pickle

        from qstore_qiskit.server import decode

        for hostile in (print, eval, __import__("os").system):
            with self.assertRaises(pickle.UnpicklingError):
                decode._loads(pickle.dumps(hostile))  # pylint: disable=protected-access
        config = PROFILES["instant"].with_overrides(api_key="secret-key")
        self.assertEqual(decode._loads(decode._dumps(config)), config)  # pylint: disable=W0212

    def test_gate_chunks_name_only_the_servers_fixed_matrices(self):
        import dataclasses
        import pickle

        spec = parse_job_request(long_circuit(10), PROFILES["instant"], native_ranges=True)
        packed = PackedSpec.pack(spec)
        # A chunk names fixed matrices (no persistent ids); a name that is not one of
        # the server's matrices is refused, not looked up anywhere else.
        names = {item for item, _, _ in pickle.loads(packed.chunks[0])
                 if isinstance(item, str)}
        self.assertTrue(names and names <= set(vars(gates)), names)
        for bad in ([("not_a_matrix", 0, (0,))], [("__class__", 0, (0,))], [(1, 2)]):
            forged = dataclasses.replace(packed, chunks=(pickle.dumps(bad),))
            with self.assertRaises(pickle.UnpicklingError):
                forged.unpack()

    def test_decode_json_names_the_problem(self):
        with self.assertRaises(Exception) as ctx:
            decode_json(b'{"a": ')
        self.assertEqual(ctx.exception.status, 400)
        self.assertIn("malformed JSON", ctx.exception.message)


class TestOffLoopDecode(unittest.TestCase):
    """A job body over ``process_decode_bytes`` is decoded and validated by a worker
    process: the event loop answers other requests meanwhile, and the job is the same."""

    CAP = 64 * 1024

    def test_health_check_answered_while_a_big_body_is_at_the_worker(self):
        from qstore_qiskit.server import decode

        body = json.dumps(long_circuit(30_000)).encode()
        self.assertGreater(len(body), self.CAP)
        release = threading.Event()
        real_call = decode._Worker.call  # pylint: disable=protected-access

        def held_call(worker, raw, version):
            # Hold the body at the worker until the test has had its health check.
            release.wait(120)
            return real_call(worker, raw, version)

        outcome: dict = {}
        with LocalServer(process_decode_bytes=self.CAP, seed=3) as srv, mock.patch.object(
                decode._Worker, "call", held_call):  # pylint: disable=protected-access
            def create():
                outcome["create"] = http("POST", srv.url + "/jobs", raw=body, timeout=300)

            sender = threading.Thread(target=create)
            sender.start()
            try:
                wait_for(lambda: http("GET", srv.base_url + "/_qstore/stats")[2]["bodies"]
                         ["in_worker"] == 1, "the body reached the worker")
                status, _, health = http("GET", srv.base_url + "/")
                during = http("GET", srv.base_url + "/_qstore/stats")[2]["bodies"]
            finally:
                release.set()
                sender.join(120)
            after = http("GET", srv.base_url + "/_qstore/stats")[2]["bodies"]
            self.assertEqual((status, health["status"]), (200, "ok"))
            # Answered while the body was still at the worker, not after it.
            self.assertEqual(during["in_worker"], 1)
            create_status, _, created = outcome["create"]
            self.assertEqual(create_status, 201, created)
            self.assertEqual(created["status"], "completed")
            self.assertEqual((after["in_worker"], after["decoded_in_process"]), (0, 1))

    def test_same_results_and_errors_as_in_process_decoding(self):
        body = json.dumps(long_circuit(25_000)).encode()
        bad = json.dumps(long_circuit(25_000, bad_at=21_000)).encode()
        answers = []
        for overrides in ({"process_decode_bytes": self.CAP}, {"decode_processes": 0}):
            with LocalServer(seed=11, **overrides) as srv:
                status, _, job = http("POST", srv.url + "/jobs", raw=body)
                self.assertEqual(status, 201, job)
                _, _, probs = http("GET", srv.url + f"/jobs/{job['id']}/results/probabilities")
                _, _, record = http("GET", srv.url + f"/jobs/{job['id']}")
                bad_status, _, err = http("POST", srv.url + "/jobs", raw=bad)
                stats = http("GET", srv.base_url + "/_qstore/stats")[2]["bodies"]
                answers.append((probs, record["stats"]["gate_counts"], bad_status,
                                err["message"], err["validation"]))
                self.assertEqual(stats["decoded_in_process"],
                                 2 if "process_decode_bytes" in overrides else 0)
        self.assertEqual(answers[0], answers[1])
        self.assertEqual(answers[0][2], 400)
        self.assertIn("input.circuit[21000]", answers[0][3])


def _idle_keep_alive(port: int, count: int) -> list[socket.socket]:
    """``count`` connections that each send one complete request, read its answer and
    then stay open and idle (keep-alive). They reach aiohttp and count against the
    connection limit; connections that never finish their request head do not (the
    accept front holds them, see ``test_accept``)."""
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:  # shed at once: every open connection was busy
                break
            answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head, re.I).group(1)) if head else 0
        while len(body) < length:
            body += sock.recv(4096)
        socks.append(sock)
    return socks


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


class TestConnectionLimit(unittest.TestCase):
    """Connections beyond ``max_connections`` shed the oldest idle or half-open ones;
    a connection serving a request is never shed."""

    def test_idle_connections_are_shed_and_health_is_answered(self):
        limit, opened = 8, 40
        with LocalServer(max_connections=limit, header_timeout=60) as srv:
            # All were served once and stay open: all reached aiohttp and the limit.
            socks = _idle_keep_alive(srv.port, opened)
            try:
                # The keep-alive timeout (60 s) is far away: only the limit closes them.
                status, _, health = http("GET", srv.base_url + "/")
                self.assertEqual((status, health["status"]), (200, "ok"))
                closed = sum(_closed_by_server(s) for s in socks[:opened - limit])
                counts = http("GET", srv.base_url + "/_qstore/stats")[2]["connections"]
            finally:
                for sock in socks:
                    sock.close()
            # Every connection but the newest (limit - 1) was shed to admit later ones.
            self.assertEqual(closed, opened - limit)
            self.assertGreaterEqual(counts["shed_idle"], opened - limit + 1)
            self.assertEqual(counts["refused"], 0)

    def test_a_busy_connection_is_never_shed(self):
        body = json.dumps(long_circuit(10)).encode()
        with LocalServer(max_connections=4, header_timeout=60, body_timeout=60) as srv:
            busy = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
            # Headers complete, body half sent: the handler is waiting for the rest.
            busy.sendall(b"POST /v0.4/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: "
                         b"application/json\r\nContent-Length: " + str(len(body)).encode()
                         + b"\r\n\r\n" + body[:20])
            # The POST and the stats request itself.
            wait_for(lambda: http("GET", srv.base_url + "/_qstore/stats")[2]["connections"]
                     ["busy"] == 2, "the POST handler started")
            idle = _idle_keep_alive(srv.port, 20)
            try:
                self.assertEqual(http("GET", srv.base_url + "/")[0], 200)
                busy.sendall(body[20:])
                reply = busy.recv(65536)
            finally:
                busy.close()
                for sock in idle:
                    sock.close()
            self.assertTrue(reply.startswith(b"HTTP/1.1 201"), reply[:200])


class TestBodiesInFlight(unittest.TestCase):
    """Bodies being received share ``max_body_bytes_in_flight``: beyond it, 503."""

    def test_second_body_beyond_the_budget_gets_503(self):
        body = json.dumps(long_circuit(5)).encode()
        size = 600_000
        padded = body[:-1] + b', "metadata": {"p": "' + b"x" * (size - len(body) - 40) + b'"}}'
        with LocalServer(max_body_bytes=1 << 20, max_body_bytes_in_flight=1 << 20) as srv:
            slow = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
            slow.sendall(b"POST /v0.4/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: "
                         b"application/json\r\nContent-Length: " + str(len(padded)).encode()
                         + b"\r\n\r\n" + padded[:100])
            try:
                wait_for(lambda: http("GET", srv.base_url + "/_qstore/stats")[2]["bodies"]
                         ["bytes_in_flight"] > 0, "the first body reserved its bytes")
                status, headers, err = http("POST", srv.url + "/jobs", raw=padded)
                self.assertEqual(status, 503, err)
                self.assertEqual(headers.get("Retry-After"), "1")
                self.assertIn("at most 1048576 at once", err["message"])
                slow.sendall(padded[100:])
                reply = slow.recv(65536)
            finally:
                slow.close()
            # The first one went through; the metadata value is too long for IonQ (400).
            self.assertTrue(reply.startswith(b"HTTP/1.1 "), reply[:100])
            self.assertNotIn(b"HTTP/1.1 503", reply[:20])
            held = http("GET", srv.base_url + "/_qstore/stats")[2]["bodies"]["bytes_in_flight"]
            self.assertEqual(held, 0)

    def test_other_routes_take_small_bodies_only(self):
        with LocalServer(process_decode_bytes=4096) as srv:
            raw = json.dumps({"backend": "simulator", "pad": "x" * 10_000}).encode()
            status, _, err = http("POST", srv.url + "/sessions", raw=raw, validate=False)
            self.assertEqual(status, 413, err)
            self.assertIn("exceeds 4096 bytes", err["message"])


class TestBoundedHistory(unittest.TestCase):
    """Per-job histories are bounded by count and hold compact entries once a job has
    left the store; the memory budget adds them up."""

    def _job(self, store: JobStore, n_children: int, metadata: dict) -> Job:
        body = {"type": "ionq.multi-circuit.v1", "backend": "simulator", "shots": 10,
                "metadata": metadata,
                "input": {"gateset": "qis", "qubits": 1, "circuits": [
                    {"circuit": [{"gate": "h", "target": 0}]}] * n_children}}
        spec = parse_job_request(body, PROFILES["instant"])
        job_id, seq = store.new_id()
        job = Job(id=job_id, spec=spec, seq=seq, request_bytes=100)
        for index in range(n_children):
            cid, cseq = store.new_id()
            job.children.append(Job(id=cid, spec=spec, seq=cseq, parent_id=job_id,
                                    circuit_index=index))
        job.status = "completed"
        job.completed = job.created
        store.add(job)
        return job

    def test_history_is_capped_and_compact(self):
        store = JobStore(budget_bytes=None, max_jobs=2, history=5, gone_ids=7)
        meta = {"submission_id": "s" * 36, "long": "y" * 5000}
        jobs = [self._job(store, 50, meta) for _ in range(12)]
        history = store.history()
        self.assertEqual([h["id"] for h in history], [j.id for j in jobs[-5:]])
        self.assertEqual(store.history_dropped, 7)
        self.assertEqual(store.history_len, 5)
        evicted, live = history[0], history[-1]
        self.assertIsNone(evicted["child_job_ids"])  # compact: no child ids kept
        self.assertEqual(evicted["metadata"], {"submission_id": "s" * 36})
        self.assertEqual(len(live["child_job_ids"]), 50)  # still stored: full summary
        self.assertLessEqual(len(json.dumps(evicted)), HISTORY_ENTRY_BYTES)
        # Evicted ids answer 410 for the last gone_ids of them, then 404.
        self.assertEqual(len(store._gone), 7)  # pylint: disable=protected-access

    def test_memory_budget_adds_the_bounded_parts(self):
        cfg = PROFILES["instant"].with_overrides(job_store_bytes=1000, history_entries=10,
                                                  evicted_ids=20)
        self.assertEqual(cfg.memory_budget(),
                         1000 + 10 * HISTORY_ENTRY_BYTES + 20 * GONE_ID_BYTES)
        self.assertIsNone(cfg.with_overrides(job_store_bytes=None).memory_budget())
        with self.assertRaises(ValueError):
            cfg.with_overrides(max_body_bytes_in_flight=10)

    def test_server_reports_its_budget(self):
        with LocalServer(job_store_bytes=10**6, history_entries=3) as srv:
            for _ in range(5):
                self.assertEqual(http("POST", srv.url + "/jobs",
                                      body=long_circuit(3))[0], 201)
            store = http("GET", srv.base_url + "/_qstore/stats")[2]["store"]
        self.assertEqual(store["budget_bytes"], 10**6)
        self.assertEqual(store["memory_budget"], srv.config.memory_budget())
        self.assertEqual((store["history_entries"], store["history_dropped"]), (3, 2))
        self.assertEqual(len(srv.jobs()), 3)


class TestChildLookup(unittest.TestCase):
    """``GET /jobs?parent_job_id=`` goes through the parent (no store scan)."""

    def test_children_of_a_parent(self):
        body = {"type": "ionq.multi-circuit.v1", "backend": "simulator", "shots": 10,
                "input": {"gateset": "qis", "qubits": 1, "circuits": [
                    {"circuit": [{"gate": "h", "target": 0}]}] * 3}}
        with LocalServer() as srv:
            _, _, first = http("POST", srv.url + "/jobs", body=body)
            _, _, second = http("POST", srv.url + "/jobs", body=body)
            _, _, record = http("GET", srv.url + f"/jobs/{second['id']}")
            _, _, listed = http("GET", srv.url + f"/jobs?parent_job_id={second['id']}")
            self.assertEqual([j["id"] for j in listed["jobs"]],
                             list(reversed(record["child_job_ids"])))
            _, _, page = http("GET", srv.url + f"/jobs?parent_job_id={first['id']}&limit=2")
            self.assertEqual(len(page["jobs"]), 2)
            self.assertIn("next", page)
            _, _, none = http("GET", srv.url + "/jobs?parent_job_id=no-such-job")
            self.assertEqual(none["jobs"], [])


if __name__ == "__main__":
    unittest.main()
