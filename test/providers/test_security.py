"""The API key never leaks: repr, DEBUG logs, reports, stats, results, exceptions."""

from __future__ import annotations

import io
import logging
import os
import traceback
import unittest
from unittest import mock

from qiskit.providers import JobStatus

from qstore_qiskit import LocalServer, QStoreProvider
from qstore_qiskit.client import IonQClientError

from .helpers import bell

KEY = "SECRET-KEY-123"
WRONG = "WRONG-KEY-456"


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.records.append(self.format(record))
        except Exception:  # pragma: no cover - a broken record must not hide others
            self.records.append(repr(record.__dict__))
        self.records.append(repr(record.args))


class _LeakTestCase(unittest.TestCase):
    """A server with a known key, a provider using it, and DEBUG logs captured."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = LocalServer(api_key=KEY).start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    def setUp(self) -> None:
        self.root = logging.getLogger()
        self.old_level = self.root.level
        self.handler = _Capture()
        self.handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.root.addHandler(self.handler)
        self.root.setLevel(logging.DEBUG)
        self.provider = QStoreProvider(token=KEY, url=self.server.url)

    def tearDown(self) -> None:
        self.provider.close()
        self.root.removeHandler(self.handler)
        self.root.setLevel(self.old_level)

    def assertNoKey(self, text: str, what: str) -> None:
        self.assertNotIn(KEY, text, f"API key found in {what}")
        self.assertNotIn(WRONG, text, f"API key found in {what}")



class TestApiKeyNeverLeaks(_LeakTestCase):
    def test_everything_a_job_produces(self):
        backend = self.provider.get_backend("ionq_simulator")
        job = backend.run([bell()] * 3, shots=100, memory=True)
        result = job.result(timeout=60)
        self.assertEqual(job.status(), JobStatus.DONE)
        self.assertNoKey(repr(self.provider), "repr(provider)")
        self.assertNoKey(str(self.provider), "str(provider)")
        self.assertNoKey(repr(backend), "repr(backend)")
        self.assertNoKey(repr(backend.options), "backend options")
        self.assertNoKey(repr(vars(job)), "job attributes")
        self.assertNoKey(repr(result.to_dict()), "result")
        self.assertNoKey(repr([r.metadata for r in result.results]), "result metadata")
        self.assertNoKey(repr(backend.performance_stats()), "performance stats")
        report = io.StringIO()
        backend.print_performance_report(file=report)
        self.assertNoKey(report.getvalue(), "performance report")
        for record in self.server.jobs():
            self.assertNoKey(repr(record["metadata"]), "IonQ job metadata")
        self.assertTrue(self.handler.records, "expected DEBUG records while running a job")
        self.assertNoKey("\n".join(self.handler.records), "DEBUG logs")

    def test_wrong_key(self):
        provider = QStoreProvider(token=WRONG, url=self.server.url)
        try:
            with self.assertRaises(IonQClientError) as ctx:
                provider.get_backend().run(bell(), shots=10).result(timeout=60)
            exc = ctx.exception
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            self.assertNoKey(str(exc) + repr(exc) + text, "exception")
            self.assertIn("401", str(exc))
        finally:
            provider.close()
        self.assertNoKey("\n".join(self.handler.records), "DEBUG logs")

    def test_key_from_environment(self):
        with mock.patch.dict(os.environ, {"IONQ_API_KEY": KEY, "IONQ_API_URL": self.server.url}):
            provider = QStoreProvider()
        try:
            self.assertFalse(provider.uses_local_server)
            backend = provider.get_backend()
            backend.run(bell(), shots=10).result(timeout=60)
            self.assertNoKey(repr(provider) + repr(backend), "repr")
        finally:
            provider.close()
        self.assertNoKey("\n".join(self.handler.records), "DEBUG logs")

    def test_embedded_server_key_is_private(self):
        with mock.patch.dict(os.environ, {}, clear=True):
            provider = QStoreProvider(local_profile="instant")
        try:
            backend = provider.get_backend()
            backend.run(bell(), shots=10).result(timeout=60)
            server = provider.local_server()
            self.assertIsNotNone(server.api_key)  # the embedded server requires a key
            self.assertNotIn(server.api_key, repr(provider) + repr(backend) + repr(server))
            self.assertNotIn(server.api_key, "\n".join(self.handler.records))
        finally:
            provider.close()


class TestDropInSurfacesNeverLeak(_LeakTestCase):
    """Sessions, estimates, retrieval and the control-plane client keep the key private."""

    def test_sessions_estimates_and_retrieval(self):
        backend = self.provider.get_backend("qpu.aria-1")
        with backend.session(max_cost=1e6) as session:
            job = backend.run(bell(), shots=50)
            job.result(timeout=60)
        estimate = backend.estimate_cost(bell(), shots=50)
        retrieved = backend.retrieve_job(job.job_id())
        retrieved.result(timeout=60)
        service = self.provider._service(backend)
        for what, obj in (("session", session), ("estimate", estimate), ("retrieved job", vars(retrieved)),
                          ("service client", service), ("calibration", backend.calibration())):
            self.assertNoKey(repr(obj) + str(obj), what)
        from qstore_qiskit.providers import CostLimitError

        with self.assertRaises(CostLimitError) as ctx:
            backend.run(bell(), shots=50, max_cost=0.0)
        self.assertNoKey(str(ctx.exception), "cost limit error")
        self.assertNoKey("\n".join(self.handler.records), "DEBUG logs")

    def test_wrong_key_at_get_backend(self):
        from qstore_qiskit.client import IonQAuthenticationError

        provider = QStoreProvider(token=WRONG, url=self.server.url)
        try:
            with self.assertRaises(IonQAuthenticationError) as ctx:
                provider.get_backend("simulator")
            exc = ctx.exception
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            self.assertNoKey(str(exc) + repr(exc) + text, "exception")
        finally:
            provider.close()
