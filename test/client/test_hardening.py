"""Regression tests of issue #12's client defects (items 1, 2, 10, 11, 13, 14, 15; #13.4).

Each test fails on the code before the fix: jobs kept forever, foreign result URLs
followed with the key, close() waiting for an unanswered request, a 0644 journal, the
key echoed into exceptions, recovered submissions returned twice and nameless, 429s
using up max_retries, and "Task was destroyed but it is pending!" at exit.
"""

from __future__ import annotations

import gc
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from qstore_qiskit.client import (
    BatchSubmitter,
    IonQJobFailedError,
    IonQRateLimitError,
    IonQRequestError,
    IonQResponseError,
    SubmitterClosedError,
)

from .mini_server import MiniServer

TOKEN = "tok-SECRET-0123456789abcdef"


def x_circuit(bits: int, qubits: int = 4, name: str | None = None) -> dict:
    body = {"qubits": qubits, "circuit": [{"gate": "x", "target": q} for q in range(qubits) if bits >> q & 1]}
    if name:
        body["name"] = name
    return body


def live_objects(*names: str) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects()
               if type(o).__name__ in names and type(o).__module__.startswith("qstore_qiskit.client"))


class TestMemoryBound(unittest.TestCase):
    """Item 1: a job is forgotten once its results are delivered."""

    def test_jobs_are_not_retained_after_delivery(self) -> None:
        before = live_objects("_Job", "Job", "_Request", "Request")
        with MiniServer() as srv, BatchSubmitter("k", srv.url, max_circuits_per_job=4) as sub:
            counts = []
            for run in range(4):
                for _ in range(30):
                    res = sub.submit([x_circuit(b % 16) for b in range(10)], shots=10).result(30)
                    self.assertEqual([r.probabilities for r in res], [{b % 16: 1.0} for b in range(10)])
                del res
                counts.append((sub.stats()["jobs_retained"], live_objects("_Job", "Job", "_Request", "Request") - before))
            self.assertEqual(sub.stats()["jobs_created"], 4 * 30 * 3)
            # Failed and cancelled jobs end their life too.
            srv.mode = "job_failed"
            for _ in range(5):
                with self.assertRaises(IonQJobFailedError):
                    sub.submit([x_circuit(1), x_circuit(2)]).result(30)
            srv.mode = "never_done"
            futs = [sub.submit([x_circuit(3)]) for _ in range(5)]
            time.sleep(0.3)
            for fut in futs:
                fut.cancel()
            srv.mode = "ok"
            sub.submit([x_circuit(4)]).result(30)
            deadline = time.monotonic() + 30
            while sub.stats()["jobs_retained"] and time.monotonic() < deadline:
                time.sleep(0.05)  # the cancelled jobs end when the server reports them final
            counts.append((sub.stats()["jobs_retained"], live_objects("_Job", "Job", "_Request", "Request") - before))
        # 360 jobs ran; none of them (nor their requests) is held once delivered.
        self.assertEqual([c[0] for c in counts], [0, 0, 0, 0, 0])
        self.assertLessEqual(max(c[1] for c in counts), 4)
        self.assertEqual(counts[-1][1], counts[0][1])


class TestForeignUrls(unittest.TestCase):
    """Item 2: only URLs on the configured origin are followed; the key goes nowhere else."""

    def setUp(self) -> None:
        self.srv = MiniServer(api_key=TOKEN).__enter__()
        self.other = MiniServer().__enter__()

    def tearDown(self) -> None:
        self.other.__exit__(None, None, None)
        self.srv.__exit__(None, None, None)

    def run_one(self, **kw):
        with BatchSubmitter(TOKEN, self.srv.url, verify_children=False, **kw) as sub:
            return sub.submit([x_circuit(3)]).result(30)

    def test_results_url_on_another_host_is_refused(self) -> None:
        host, port = self.srv.url.split("//")[1].split("/")[0].split(":")
        for origin in (self.other.url.rsplit("/v0.4", 1)[0],        # another port
                       f"https://{host}:{port}",                     # another scheme
                       f"http://localhost:{port}",                   # another host name
                       f"http://{host}:{port}@127.0.0.2:{port}"):    # userinfo trick
            self.srv.results_origin = origin
            with self.subTest(origin=origin):
                with self.assertRaisesRegex(IonQResponseError, "not on the configured API origin"):
                    self.run_one()
        self.assertEqual(self.other.seen_auth, [])  # nothing at all was sent there

    def test_redirect_to_another_host_is_refused(self) -> None:
        self.srv.mode = "redirect_results"
        self.srv.results_origin = self.other.url.rsplit("/v0.4", 1)[0]
        with self.assertRaisesRegex(IonQResponseError, "not on the configured API origin"):
            self.run_one()
        self.assertEqual(self.other.seen_auth, [])

    def test_same_origin_absolute_url_and_redirect_are_followed(self) -> None:
        self.srv.results_origin = self.srv.url.rsplit("/v0.4", 1)[0]
        self.assertEqual(self.run_one()[0].probabilities, {3: 1.0})
        self.srv.mode = "redirect_results"
        self.srv.results_origin = self.srv.url.rsplit("/v0.4", 1)[0] + "/v0.4/redirected"
        with self.assertRaises(IonQRequestError):  # followed on the same origin: a 404 there
            self.run_one()


class TestPromptClose(unittest.TestCase):
    """Item 10: close() cancels requests that get no answer instead of waiting them out."""

    def test_close_cancels_a_hanging_create(self) -> None:
        with MiniServer() as srv:
            srv.mode = "hang_create"
            sub = BatchSubmitter("k", srv.url, request_timeout=120, max_retries=0, max_circuits_per_job=5)
            fut = sub.submit([x_circuit(1)])
            time.sleep(0.3)
            closer = threading.Thread(target=sub.close, kwargs={"wait": False})
            closer.start()
            closer.join(30)  # a quarter of the request timeout
            self.assertFalse(closer.is_alive(), "close() waited for the unanswered request")
            with self.assertRaises(SubmitterClosedError):
                fut.result(5)

    def test_provider_close_cancels_a_hanging_create(self) -> None:
        from qiskit import QuantumCircuit  # pylint: disable=import-outside-toplevel

        from qstore_qiskit import QStoreProvider  # pylint: disable=import-outside-toplevel

        qc = QuantumCircuit(1)
        qc.x(0)
        qc.measure_all()
        with MiniServer() as srv:
            srv.mode = "hang_create"
            provider = QStoreProvider("k", url=srv.url)
            job = provider.get_backend("ionq_simulator").run(qc, shots=10, request_timeout=120, max_retries=0)
            time.sleep(0.3)
            closer = threading.Thread(target=provider.close)
            closer.start()
            closer.join(30)
            self.assertFalse(closer.is_alive(), "provider.close() waited for the unanswered request")
            with self.assertRaises(Exception):
                job.result(5)

    def test_close_does_not_wait_for_an_unanswered_backend_lookup(self) -> None:
        with MiniServer() as srv:
            srv.mode = "hang_backend"  # GET /backends/{b} (the circuit-cap lookup) hangs
            sub = BatchSubmitter("k", srv.url, request_timeout=120)
            self.assertEqual(sub.submit([x_circuit(1)]).result(30)[0].probabilities, {1: 1.0})
            closer = threading.Thread(target=sub.close)
            closer.start()
            closer.join(30)
            self.assertFalse(closer.is_alive(), "close() waited for the unanswered lookup")


class TestJournalAndRecovery(unittest.TestCase):
    """Items 11 and 14: a private journal; recovery hands each submission back once, named."""

    def test_journal_is_private_and_recovery_marks_delivery(self) -> None:
        old = os.umask(0o022)
        try:
            with tempfile.TemporaryDirectory() as tmp, MiniServer() as srv:
                journal = os.path.join(tmp, "journal.jsonl")
                with BatchSubmitter("k", srv.url, journal_path=journal, max_circuits_per_job=3) as sub:
                    sub.submit([x_circuit(b, name=f"c{b}") for b in range(5)]).result(30)
                self.assertEqual(os.stat(journal).st_mode & 0o777, 0o600)
                # As if the process had died before delivering: drop the delivery records.
                with open(journal, encoding="utf-8") as fh:
                    lines = [ln for ln in fh if json.loads(ln)["event"] != "delivered"]
                with open(journal, "w", encoding="utf-8") as fh:
                    fh.writelines(lines)
                with BatchSubmitter("k", srv.url) as sub:
                    first = sub.recover(journal, timeout=30)
                    again = sub.recover(journal, timeout=30)
        finally:
            os.umask(old)
        self.assertEqual(len(first), 2)  # two jobs: 3 + 2 circuits
        got = sorted((r.circuit_index, r.name, r.probabilities) for e in first.values() for r in e["results"])
        self.assertEqual(got, [(b, f"c{b}", {b: 1.0}) for b in range(5)])
        self.assertEqual(again, {})


class TestRedaction(unittest.TestCase):
    """Item 13: server text quoting the key reaches no exception and no log."""

    def test_key_is_redacted_from_server_text(self) -> None:
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        log = logging.getLogger("qstore_qiskit")
        log.addHandler(handler)
        old_level = log.level
        log.setLevel(logging.DEBUG)
        try:
            with MiniServer(api_key=TOKEN) as srv:
                errors = []
                for mode, exc_type in (("echo_auth", IonQRequestError), ("echo_auth_failure", IonQJobFailedError)):
                    srv.mode = mode
                    with BatchSubmitter(TOKEN, srv.url) as sub:
                        with self.assertRaises(exc_type) as ctx:
                            sub.submit([x_circuit(1)]).result(30)
                    errors.append(ctx.exception)
        finally:
            log.removeHandler(handler)
            log.setLevel(old_level)
        self.assertIn("apiKey ***", str(errors[0]))  # the echo is there, the key is not
        self.assertIn("denied for apiKey ***", str(errors[1]))
        for exc in errors:
            for text in (str(exc), repr(exc), repr(exc.args), repr(vars(exc))):
                self.assertNotIn(TOKEN, text)
        self.assertNotIn(TOKEN, stream.getvalue())


class TestRateLimits(unittest.TestCase):
    """Item 15: 429s are bounded by a deadline, not by max_retries."""

    def test_429s_do_not_use_up_retries(self) -> None:
        with MiniServer() as srv:
            with BatchSubmitter("k", srv.url, max_retries=2, max_circuits_per_job=5) as sub:
                srv.throttle = 6  # creates and polls alike
                res = sub.submit([x_circuit(5)]).result(30)
                srv.throttle = 6
                polled = sub.retrieve([res[0].job_id], timeout=30)
            self.assertEqual(res[0].probabilities, {5: 1.0})
            self.assertEqual(polled[0][0].probabilities, {5: 1.0})
            self.assertEqual(srv.throttled, 12)

    def test_rate_limit_deadline_bounds_the_wait(self) -> None:
        with MiniServer() as srv:
            srv.throttle = 10**6
            srv.retry_after = "0.2"
            with BatchSubmitter("k", srv.url, max_retries=100, rate_limit_deadline=1.0,
                                max_circuits_per_job=5) as sub:
                with self.assertRaises(IonQRateLimitError):
                    sub.submit([x_circuit(5)]).result(60)
            # About deadline / Retry-After attempts, far fewer than max_retries allows.
            self.assertLess(srv.throttled, 15)


_EXIT_SCRIPT = """
import sys
from qstore_qiskit.client import BatchSubmitter
sub = BatchSubmitter(sys.argv[2], sys.argv[1], max_retries=1, request_timeout=5)
try:
    sub.submit([{"qubits": 1, "circuit": [{"gate": "x", "target": 0}]}]).result(60)
except Exception as exc:
    print(type(exc).__name__)
"""


class TestCleanExit(unittest.TestCase):
    """#13 item 4: no "Task was destroyed but it is pending!" at exit after an error."""

    def run_script(self, url: str, key: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        return subprocess.run([sys.executable, "-c", _EXIT_SCRIPT, url, key], capture_output=True,
                              text=True, timeout=120, env=env, check=False)

    def test_no_pending_task_warning_after_auth_or_connection_error(self) -> None:
        with MiniServer(api_key=TOKEN) as srv:
            auth = self.run_script(srv.url, "wrong-key-0123456789")
        refused = self.run_script("http://127.0.0.1:9/v0.4", TOKEN)
        self.assertEqual(auth.stdout.strip(), "IonQAuthenticationError")
        self.assertEqual(refused.stdout.strip(), "IonQConnectionError")
        for proc in (auth, refused):
            self.assertNotIn("Task was destroyed", proc.stderr)
            self.assertNotIn("Traceback", proc.stderr)


if __name__ == "__main__":
    unittest.main()
