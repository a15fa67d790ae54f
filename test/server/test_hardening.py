"""Regression tests for the server defects of issue #12 (3, 4, 6, 7 and 12): every resource
a request can claim has a limit, answered with a 4xx before any work."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time
import unittest
from unittest import mock

from qstore_qiskit.server import LocalServer
from qstore_qiskit.server.qasm import load_program, qasm3_available

from .helpers import http


def all_h(n: int, shots: int = 100) -> dict:
    return {"type": "ionq.circuit.v1", "backend": "simulator", "shots": shots,
            "input": {"gateset": "qis", "qubits": n,
                      "circuit": [{"gate": "h", "target": q} for q in range(n)]}}


def ghz(n: int) -> dict:
    gates = [{"gate": "h", "target": 0}] + [
        {"gate": "cnot", "control": q, "target": q + 1} for q in range(n - 1)]
    return {"type": "ionq.circuit.v1", "backend": "simulator", "shots": 100,
            "input": {"gateset": "qis", "qubits": n, "circuit": gates}}


def raw_exchange(port: int, data: bytes, wait: float = 5.0) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks) and b"Content-Length" in b"".join(chunks):
                    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
                    length = int(head.split(b"Content-Length:")[1].split(b"\r\n")[0])
                    if len(body) >= length:
                        break
        except socket.timeout:
            pass
        return b"".join(chunks)


class TestJobStoreBudget(unittest.TestCase):
    """Defect 3: the store has a byte budget; old finished jobs are evicted (410)."""

    def test_evicts_oldest_finished_jobs_within_budget(self):
        budget = 300_000
        with LocalServer(job_store_bytes=budget, job_store_min_age=0.0) as srv:
            ids = [http("POST", srv.url + "/jobs", body=all_h(10, shots=2000))[2]["id"]
                   for _ in range(25)]
            state = srv._state  # pylint: disable=protected-access
            held = state.store.bytes_held
            self.assertLessEqual(held, budget)
            self.assertGreater(state.store.evicted, 0)
            # the newest job is served, the oldest is gone with a 410 (record and results)
            self.assertEqual(http("GET", f"{srv.url}/jobs/{ids[-1]}/results/probabilities")[0],
                             200)
            for path in (f"/jobs/{ids[0]}", f"/jobs/{ids[0]}/results/probabilities",
                         f"/jobs/{ids[0]}/results/histogram"):
                status, _, body = http("GET", srv.url + path)
                self.assertEqual(status, 410, body)
                self.assertIn("evicted", body["message"])
            listed = {j["id"] for j in http("GET", srv.url + "/jobs?limit=1000")[2]["jobs"]}
            self.assertNotIn(ids[0], listed)
            self.assertIn(ids[-1], listed)
            # the test log still knows every job (no duplicate can hide)
            self.assertEqual([j["id"] for j in srv.jobs()], ids)
            remote = http("GET", srv.base_url + "/_qstore/stats")[2]
            self.assertEqual(remote["store"]["evicted_jobs"], state.store.evicted)

    def test_count_cap_never_evicts_active_jobs(self):
        with LocalServer(max_stored_jobs=3, inline_execution=False, queue_wait=30.0,
                         job_store_min_age=0.0) as srv:
            ids = [http("POST", srv.url + "/jobs", body=ghz(2))[2]["id"] for _ in range(5)]
            for job_id in ids:  # all still queued: none may be evicted
                self.assertEqual(http("GET", f"{srv.url}/jobs/{job_id}")[0], 200)
            http("PUT", srv.url + "/jobs/status/cancel", body={"ids": ids[:3]})
            http("POST", srv.url + "/jobs", body=ghz(2))  # triggers eviction
            self.assertEqual(http("GET", f"{srv.url}/jobs/{ids[0]}")[0], 410)
            self.assertEqual(http("GET", f"{srv.url}/jobs/{ids[4]}")[0], 200)


    def test_recent_jobs_are_kept_over_budget(self):
        with LocalServer(job_store_bytes=10_000, job_store_min_age=60.0) as srv:
            ids = [http("POST", srv.url + "/jobs", body=all_h(8))[2]["id"] for _ in range(5)]
            for job_id in ids:  # over budget, but all finished just now: none evicted
                self.assertEqual(http("GET", f"{srv.url}/jobs/{job_id}/results/histogram")[0],
                                 200)
            state = srv._state  # pylint: disable=protected-access
            self.assertEqual(state.store.evicted, 0)
            for job_id in ids[:3]:  # a minute later they may go
                job = state.store.get(job_id)
                job.created -= 61
                job.completed -= 61
            http("POST", srv.url + "/jobs", body=all_h(8))
            self.assertEqual(http("GET", f"{srv.url}/jobs/{ids[0]}")[0], 410)
            self.assertEqual(http("GET", f"{srv.url}/jobs/{ids[4]}")[0], 200)


class TestBoundedResults(unittest.TestCase):
    """Defect 3: a dense state never becomes a dense 2^n probability map."""

    def test_dense_state_keeps_sampled_frequencies(self):
        with LocalServer(max_result_entries=256, seed=1) as srv:
            dense = http("POST", srv.url + "/jobs", body=all_h(12, shots=500))[2]["id"]
            probs = http("GET", f"{srv.url}/jobs/{dense}/results/probabilities")[2]
            hist = http("GET", f"{srv.url}/jobs/{dense}/results/histogram")[2]
            # not 4096 exact entries: at most one per shot
            self.assertLessEqual(len(probs), 500)
            self.assertEqual(set(probs), set(hist))
            for key, count in hist.items():
                self.assertAlmostEqual(probs[key], count / 500)
            sparse = http("POST", srv.url + "/jobs", body=ghz(12))[2]["id"]
            probs = http("GET", f"{srv.url}/jobs/{sparse}/results/probabilities")[2]
            self.assertEqual(probs, {"0": 0.5, str(2**12 - 1): 0.5})  # exact, as before


class TestWorkCaps(unittest.TestCase):
    """Defect 3: one request's work is capped, with a 413 before anything runs."""

    def test_qubit_shot_cap(self):
        with LocalServer(max_job_work=1000) as srv:
            body = {"type": "ionq.multi-circuit.v1", "backend": "simulator", "shots": 100,
                    "input": {"gateset": "qis", "qubits": 10, "circuits": [
                        {"circuit": all_h(10)["input"]["circuit"]} for _ in range(2)]}}
            status, _, err = http("POST", srv.url + "/jobs", body=body)
            self.assertEqual(status, 413, err)
            self.assertIn("qubit-shots", err["message"])
            self.assertEqual(srv.jobs(), [])
            self.assertEqual(srv.stats()["jobs_created"], 0)
            body["shots"] = 50
            self.assertEqual(http("POST", srv.url + "/jobs", body=body)[0], 201)

    def test_amplitude_cap(self):
        with LocalServer(max_job_amplitudes=1 << 12) as srv:
            status, _, err = http("POST", srv.url + "/jobs", body=all_h(13))
            self.assertEqual(status, 413, err)
            self.assertIn("amplitudes", err["message"])
            self.assertEqual(srv.jobs(), [])
            self.assertEqual(http("POST", srv.url + "/jobs", body=all_h(12))[0], 201)


class TestQasmIncludes(unittest.TestCase):
    """Defect 4: only the standard library may be included; nothing is read from disk."""

    def test_include_rejected_without_reading(self):
        with tempfile.NamedTemporaryFile("w", suffix=".inc", delete=False) as fh:
            fh.write("gate secret a { x a; }\n")
        try:
            names = [fh.name, "/definitely/not/here.inc", "../../etc/passwd", "/etc/hostname",
                     os.path.basename(fh.name)]
            sources = [f'OPENQASM 2.0;\ninclude "{name}";\nqreg q[1];\nh q[0];\n'
                       for name in names]
            if qasm3_available():
                sources += [f'OPENQASM 3.0;\ninclude "{name}";\nqubit[1] q;\nh q[0];\n'
                            for name in names]
            with LocalServer() as srv:
                messages = set()
                for source in sources:
                    body = {"type": "ionq.qasm3.v1", "backend": "simulator", "shots": 10,
                            "input": {"data": source}}
                    status, _, err = http("POST", srv.url + "/jobs", body=body)
                    self.assertEqual(status, 400, err)
                    messages.add(err["message"])
                    self.assertNotIn("secret", err["message"])
                # one message per OpenQASM version, whatever the file: no existence oracle
                self.assertEqual(len(messages), 2 if qasm3_available() else 1)
            real_open = open

            def guarded(path, *args, **kwargs):
                if str(path).endswith(".inc") or "passwd" in str(path):
                    raise AssertionError(f"the server opened {path}")
                return real_open(path, *args, **kwargs)

            with mock.patch("builtins.open", guarded):
                for source in sources:
                    with self.assertRaises(Exception) as ctx:
                        load_program(source, 5)
                    self.assertEqual(getattr(ctx.exception, "status", None), 400)
                # the standard library still works, from the parser's built-in copy
                ok = load_program('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\n'
                                  "h q[0];\ncx q[0],q[1];\n", 5)
                self.assertEqual(ok.num_qubits, 2)
        finally:
            os.unlink(fh.name)


class TestBodies(unittest.TestCase):
    """Defect 6: bodies are refused by size before decoding, and decoded off the loop."""

    def test_content_length_refused_before_reading(self):
        with LocalServer(max_body_bytes=10_000) as srv:
            request = (f"POST /v0.4/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                       f"\r\nContent-Length: {10**9}\r\n\r\n{{").encode()
            reply = raw_exchange(srv.port, request)
            self.assertTrue(reply.startswith(b"HTTP/1.1 413"), reply[:200])
            self.assertIn(b"exceeds 10000 bytes", reply)

    def test_streamed_body_refused_at_the_cap(self):
        with LocalServer(max_body_bytes=10_000) as srv:
            chunk = b"[" + b"1," * 4000
            request = (b"POST /v0.4/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                       b"\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in range(10):
                request += f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
            request += b"0\r\n\r\n"
            reply = raw_exchange(srv.port, request)
            self.assertTrue(reply.startswith(b"HTTP/1.1 413"), reply[:200])
            self.assertEqual(srv.jobs(), [])

    def test_large_bodies_decoded_off_the_event_loop(self):
        from qstore_qiskit.server import decode as decode_module

        threads = []
        real = decode_module.decode_json

        def spy(raw):
            threads.append((len(raw), threading.current_thread().name))
            return real(raw)

        # Bodies below process_decode_bytes (1 MiB) stay in the server process: small
        # ones on the loop, larger ones in a parse thread (test_limits covers the worker).
        with LocalServer() as srv, mock.patch.object(decode_module, "decode_json", spy):
            small = all_h(2)
            big = all_h(2)
            big["metadata"] = {"pad": "x" * 200_000}
            self.assertEqual(http("POST", srv.url + "/jobs", body=small)[0], 201)
            self.assertEqual(http("POST", srv.url + "/jobs", body=big)[0], 201)
        (small_len, small_thread), (big_len, big_thread) = threads
        self.assertLess(small_len, big_len)
        self.assertTrue(big_thread.startswith("qstore-parse"), big_thread)
        self.assertFalse(small_thread.startswith("qstore-parse"), small_thread)

    def test_malformed_big_body_is_a_400(self):
        with LocalServer() as srv:
            raw = b'{"type": "ionq.circuit.v1", "pad": "' + b"x" * 100_000
            status, _, err = http("POST", srv.url + "/jobs", raw=raw)
            self.assertEqual(status, 400, err)
            self.assertIn("malformed JSON", err["message"])


class TestAbandonedCreates(unittest.TestCase):
    """A create whose client disconnected while the server parsed it is not stored (the
    client never learns the id, and would create a duplicate)."""

    def test_client_gone_before_store(self):
        from qstore_qiskit.server import job_requests

        real = job_requests.parse_job_request

        def slow_parse(*args, **kwargs):
            time.sleep(1.0)
            return real(*args, **kwargs)

        with LocalServer() as srv, mock.patch(
                "qstore_qiskit.server.decode.parse_job_request", slow_parse):
            body = json.dumps(ghz(2)).encode()
            request = (b"POST /v0.4/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: "
                       b"application/json\r\nContent-Length: " + str(len(body)).encode()
                       + b"\r\n\r\n" + body)
            with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
                sock.sendall(request)
                time.sleep(0.2)  # the client gives up while the server parses
            time.sleep(1.5)
            self.assertEqual(srv.jobs(), [])
            self.assertEqual(srv.stats()["jobs_created"], 0)
            # a patient client is served as usual
            self.assertEqual(http("POST", srv.url + "/jobs", body=ghz(2))[0], 201)
            self.assertEqual(len(srv.jobs()), 1)


class TestSlowConnections(unittest.TestCase):
    """Defect 12: half-open connections are closed; a trickling body gets 408."""

    def test_idle_and_partial_header_connections_are_closed(self):
        with LocalServer(header_timeout=0.5) as srv:
            socks = []
            for i in range(20):
                sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
                if i % 2:
                    sock.sendall(b"GET /v0.4/jobs HTTP/1.1\r\nHost: x\r\n")  # never ends
                socks.append(sock)
            closed = 0
            for sock in socks:
                try:
                    closed += sock.recv(1024) == b""  # EOF from the server
                except (ConnectionResetError, socket.timeout):
                    closed += 1
                finally:
                    sock.close()
            self.assertEqual(closed, 20)
            # the server still serves
            self.assertEqual(http("GET", srv.base_url + "/", key=None)[0], 200)

    def test_body_that_never_arrives_gets_408(self):
        with LocalServer(body_timeout=0.5) as srv:
            request = (b"POST /v0.4/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                       b"\r\nContent-Length: 100\r\n\r\n{\"type\"")
            reply = raw_exchange(srv.port, request, wait=10)
            self.assertTrue(reply.startswith(b"HTTP/1.1 408"), reply[:200])
            body = json.loads(reply.partition(b"\r\n\r\n")[2])
            self.assertEqual(body["statusCode"], 408)


if __name__ == "__main__":
    unittest.main()
