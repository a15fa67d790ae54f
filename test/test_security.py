"""Security guarantees: the API key stays secret, transport is safe, server data is data.

* The key never appears in log records (root logger at DEBUG, everything captured,
  tracebacks included), in reprs (provider, backend, submitter, HTTP client, job,
  server, config), in exceptions (message, args, chained causes), in reports and stats,
  or in job metadata stored on the server.
* TLS certificates are verified; plain ``http://`` to a non-loopback host is refused
  *before any connection* unless ``allow_insecure_http=True``.
* The local server binds loopback by default and rejects missing/wrong keys (401).
* No ``eval``/``exec``/``pickle``/``yaml.load``/``marshal`` of server data anywhere in
  ``qstore_qiskit/`` (a source scan; the one ``exec`` is the template cache's generated
  emitter, built from integers only).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import pathlib
import re
import secrets
import socket
import ssl
import subprocess
import tempfile
import threading
import traceback
import unittest
import urllib.error
import urllib.request
from contextlib import redirect_stderr, redirect_stdout
from unittest import mock

from aiohttp import web
from qiskit import QuantumCircuit

from qstore_qiskit.client import BatchSubmitter, IonQAuthenticationError, IonQClientError, IonQConnectionError
from qstore_qiskit.client.rest import IonQHttpClient
from qstore_qiskit.providers import QStoreProvider
from qstore_qiskit.server import LocalServer

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "qstore_qiskit"


def bell() -> QuantumCircuit:
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure_all()
    return qc


class _Capture(logging.Handler):
    """Keep every record, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        self.lines.append(text + " " + repr(record.args) + " " + repr(record.__dict__.get("extra")))


def _exception_texts(exc: BaseException) -> list[str]:
    """Message, repr, args and the formatted chain of ``exc``."""
    out = []
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        out += [str(exc), repr(exc), repr(exc.args)]
        exc = exc.__cause__ or exc.__context__
    return out


class TestKeyNeverLeaks(unittest.TestCase):
    """One workload with faults, a 401 and a failing job; then look everywhere."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.key = "sk-" + secrets.token_hex(20)
        cls.wrong = "wrong-" + secrets.token_hex(20)
        cls.capture = _Capture()
        root = logging.getLogger()
        cls._old_level = root.level
        root.setLevel(logging.DEBUG)
        root.addHandler(cls.capture)
        cls.out, cls.err = io.StringIO(), io.StringIO()
        cls.texts: list[str] = []
        with redirect_stdout(cls.out), redirect_stderr(cls.err):
            cls.srv = LocalServer("instant", api_key=cls.key, seed=11, fault_rate=0.2,
                                  slow_response_delay=0.3, access_log=True).start()
            cls.provider = QStoreProvider(token=cls.key, url=cls.srv.url)
            cls.backend = cls.provider.get_backend("ionq_simulator")
            jobs = [cls.backend.run([bell()] * 5, shots=100 + i) for i in range(20)]
            cls.errors: list[BaseException] = []
            for job in jobs:
                try:
                    job.result(timeout=120)
                except IonQClientError as exc:  # injected failed jobs
                    cls.errors.append(exc)
            cls.job = jobs[0]
            # A wrong key: the 401 error must name neither key.
            bad = QStoreProvider(token=cls.wrong, url=cls.srv.url)
            try:
                bad.get_backend("ionq_simulator").run(bell()).result(timeout=60)
            except IonQAuthenticationError as exc:
                cls.auth_error = exc
            else:  # pragma: no cover
                raise AssertionError("wrong key accepted")
            cls.bad_provider = bad
            cls.submitter = BatchSubmitter(cls.key, cls.srv.url)
            cls.submitter.submit([{"qubits": 1, "circuit": [{"gate": "h", "target": 0}]}], gateset="qis").result(60)
            report = io.StringIO()
            cls.backend.print_performance_report(file=report)
            cls.report = report.getvalue()
            cls.stats = json.dumps(cls.backend.performance_stats(), default=str)
            cls.submitter_stats = json.dumps(cls.submitter.stats(), default=str)
            cls.server_stats = json.dumps(cls.srv.stats(), default=str)
            cls.server_jobs = json.dumps(cls.srv.jobs(), default=str)
            cls.server_records = json.dumps([cls.srv.job_record(j["id"]) for j in cls.srv.jobs()], default=str)

    @classmethod
    def tearDownClass(cls) -> None:
        with redirect_stdout(cls.out), redirect_stderr(cls.err):
            cls.submitter.close()
            cls.bad_provider.close()
            cls.provider.close()
            cls.srv.stop()
        root = logging.getLogger()
        root.removeHandler(cls.capture)
        root.setLevel(cls._old_level)

    def assertNoKey(self, text: str, what: str) -> None:
        for secret in (self.key, self.wrong):
            self.assertNotIn(secret, text, f"API key found in {what}")
            self.assertNotIn(secret[-12:], text, f"part of the API key found in {what}")

    def test_logs(self) -> None:
        self.assertTrue(self.capture.lines, "nothing was logged at DEBUG")
        for line in self.capture.lines:
            self.assertNoKey(line, "a log record")
        self.assertNoKey(self.out.getvalue() + self.err.getvalue(), "stdout/stderr")

    def test_reprs(self) -> None:
        sub = self.backend._submitter(self.backend._merged_options({}))  # noqa: SLF001
        objects = {
            "provider": self.provider,
            "backend": self.backend,
            "job": self.job,
            "submitter": self.submitter,
            "backend submitter": sub,
            "http client": sub._http,  # noqa: SLF001
            "server": self.srv,
            "server config": self.srv.config,
        }
        for name, obj in objects.items():
            with self.subTest(name):
                self.assertNoKey(repr(obj), f"repr({name})")
                self.assertNoKey(str(obj), f"str({name})")
        self.assertNoKey(repr(IonQHttpClient(self.key, self.srv.url)), "repr(IonQHttpClient)")

    def test_options_hide_the_key(self) -> None:
        # Options are often printed whole.
        self.assertNoKey(repr(self.backend.options), "backend.options")

    def test_exceptions(self) -> None:
        texts = _exception_texts(self.auth_error)
        texts += traceback.format_exception(self.auth_error)
        for exc in self.errors:
            texts += _exception_texts(exc) + traceback.format_exception(exc)
        for text in texts:
            self.assertNoKey(text, "an exception")
        self.assertIn("401", str(self.auth_error))

    def test_reports_and_stats(self) -> None:
        for name, text in (("report", self.report), ("performance_stats", self.stats),
                           ("submitter stats", self.submitter_stats), ("server stats", self.server_stats)):
            self.assertNoKey(text, name)
        self.assertIn("PERFORMANCE REPORT", self.report)

    def test_server_job_metadata(self) -> None:
        self.assertIn("submission_id", self.server_jobs)
        self.assertNoKey(self.server_jobs, "srv.jobs()")
        self.assertNoKey(self.server_records, "server job records")


class TestTransport(unittest.TestCase):
    def _no_network(self):
        """Patch socket creation and DNS so any connection attempt fails the test."""

        def refuse(*args, **kwargs):
            raise AssertionError(f"attempted a network connection: {args[:2]}")

        return mock.patch.multiple(socket, create_connection=refuse, getaddrinfo=refuse)

    def test_plain_http_to_remote_host_refused_before_connecting(self) -> None:
        urls = ["http://example.com/v0.4", "http://10.0.0.1/v0.4", "http://localhost.example.com/v0.4",
                "http://127.0.0.1.nip.io/v0.4", "HTTP://example.com/v0.4"]
        with self._no_network():
            for url in urls:
                with self.subTest(url=url):
                    with self.assertRaisesRegex(ValueError, "refusing plain http://|unsupported URL scheme"):
                        BatchSubmitter("secret", url)
                    with self.assertRaisesRegex(ValueError, "refusing plain http://|unsupported URL scheme"):
                        IonQHttpClient("secret", url)
            provider = QStoreProvider(token="secret", url="http://example.com/v0.4")
            with self.assertRaisesRegex(ValueError, "allow_insecure_http=True"):
                provider.get_backend("ionq_simulator").run(bell())
            provider.close()

    def test_explicit_opt_in_and_loopback_allowed(self) -> None:
        with self._no_network():
            BatchSubmitter("secret", "http://example.com/v0.4", allow_insecure_http=True).close()
            for url in ("http://127.0.0.1:1/v0.4", "http://localhost:1/v0.4", "http://[::1]:1/v0.4"):
                BatchSubmitter("secret", url).close()

    def test_tls_certificates_are_verified(self) -> None:
        """An https server with a self-signed certificate is refused (no silent trust)."""
        with tempfile.TemporaryDirectory() as tmp:
            cert, keyf = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
            try:
                subprocess.run(
                    ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                     "-subj", "/CN=127.0.0.1", "-keyout", keyf, "-out", cert],
                    check=True, capture_output=True, timeout=60,
                )
            except (OSError, subprocess.CalledProcessError) as exc:  # pragma: no cover
                self.skipTest(f"openssl unavailable: {exc}")
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(cert, keyf)
            hits: list[str] = []
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, daemon=True)
            thread.start()

            async def handler(request: web.Request) -> web.Response:
                hits.append(request.headers.get("Authorization", ""))
                return web.json_response({"jobs": []})

            async def start():
                app = web.Application()
                app.router.add_route("*", "/{tail:.*}", handler)
                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
                await site.start()
                return runner, site._server.sockets[0].getsockname()[1]

            runner, port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
            try:
                with BatchSubmitter("tls-secret", f"https://127.0.0.1:{port}/v0.4", max_retries=0) as sub:
                    with self.assertRaises(IonQConnectionError) as caught:
                        sub.retrieve(["abc"], timeout=30)
                self.assertEqual(hits, [], "the request (and key) reached an unverified server")
                self.assertNotIn("tls-secret", str(caught.exception))
            finally:
                asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
                loop.call_soon_threadsafe(loop.stop)
                thread.join(5)


class TestLocalServer(unittest.TestCase):
    def test_binds_loopback_by_default(self) -> None:
        with LocalServer() as srv:
            self.assertEqual(srv.host, "127.0.0.1")
            sockets = srv._runner.addresses  # noqa: SLF001
            self.assertTrue(sockets)
            for addr in sockets:
                self.assertIn(addr[0], ("127.0.0.1", "::1"))

    def test_cli_default_host_is_loopback(self) -> None:
        text = (PACKAGE / "server" / "cli.py").read_text(encoding="utf-8")
        self.assertRegex(text, r'"--host",\s*default="127\.0\.0\.1"')

    def test_checks_the_key(self) -> None:
        key = secrets.token_hex(16)
        with LocalServer(api_key=key) as srv:
            for header in (None, "apiKey wrong", f"Bearer {key}", f"apiKey {key}x", "apiKey "):
                with self.subTest(header=header):
                    req = urllib.request.Request(f"{srv.url}/jobs")
                    if header is not None:
                        req.add_header("Authorization", header)
                    with self.assertRaises(urllib.error.HTTPError) as caught:
                        urllib.request.urlopen(req, timeout=10)
                    self.assertEqual(caught.exception.code, 401)
                    body = caught.exception.read().decode()
                    self.assertNotIn(key, body)
            req = urllib.request.Request(f"{srv.url}/jobs", headers={"Authorization": f"apiKey {key}"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                self.assertEqual(resp.status, 200)


class TestNoUnsafeDeserialization(unittest.TestCase):
    """A source scan: server data is parsed with ``json`` only."""

    PATTERNS = {
        r"\beval\(": "eval",
        r"\bexec\(": "exec",
        r"pickle\.loads?\(|cPickle|\bdill\b|\bshelve\b": "pickle",
        r"yaml\.(load|unsafe_load|full_load)\((?![^)]*SafeLoader)": "yaml.load without SafeLoader",
        r"\bmarshal\.loads?\(": "marshal",
        r"shell=True|os\.system\(|os\.popen\(": "shell",
        r"__import__\(": "__import__",
    }
    # The template cache's generated emitter: source built from gate-kind literals and
    # integer indices only (see qstore_qiskit.cache.emitter.make_emitter), never from server data.
    # The compile workers' results: read from a pipe created before os.fork() by this
    # process's own forked child (what a process pool does internally), never from the
    # network (see qstore_qiskit.transpiler.parallel._collect).
    ALLOWED = {
        ("emitter.py", "exec(compile(src, \"<qstore-template>\", \"exec\"), namespace)"),
        ("parallel.py", "return pickle.loads(data)"),
    }

    def test_scan(self) -> None:
        found = []
        for path in sorted(PACKAGE.rglob("*.py")):
            for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("#", 1)[0]
                for pattern, what in self.PATTERNS.items():
                    if re.search(pattern, code):
                        if (path.name, code.strip()) in self.ALLOWED:
                            continue
                        found.append(f"{path.relative_to(ROOT)}:{lineno}: {what}: {line.strip()}")
        self.assertEqual(found, [])

    def test_generated_emitter_only_interpolates_integers(self) -> None:
        from qstore_qiskit.cache.emitter import make_emitter

        src = (PACKAGE / "cache" / "emitter.py").read_text(encoding="utf-8")
        body = src[src.index("def make_emitter"): src.index("class BindKernel")]
        # Every f-string placeholder is an index into qs/ss (ints), a fixed gate kind or
        # a name made of both (`proto`).
        placeholders = set(re.findall(r"\{([^{}\"']+)\}", body))
        allowed = {"kind", "i", "qs[0]", "qs[1]", "ss[0]", "ss[1]", "ss[2]", "', '.join(names)", "body", "proto"}
        self.assertLessEqual(placeholders, allowed, placeholders - allowed)
        self.assertIn('if kind in ("gpi", "gpi2")', body)
        emit = make_emitter([("gpi", (0,), (0,))])
        self.assertEqual(emit([0.25]), [{"gate": "gpi", "target": 0, "phase": 0.25}])


if __name__ == "__main__":
    unittest.main()
