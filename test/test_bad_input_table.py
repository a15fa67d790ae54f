"""Bad input across the public surface: one row per kind, one ``subTest`` per row.

Each row names the surface (provider, backend, job, submitter, cache, server), the call,
the exception type a user gets and an excerpt of its message. While each bad call is
made, a good job is in flight on the same backend: it must still complete with correct
counts (a bad input never takes other work down with it).

A few rows are *documented behaviour* rather than errors (empty circuit list, empty and
measurement-free circuits): they assert that behaviour. Rows with a ``known_defect``
describe a reported defect: they pass once it is fixed and are skipped (with the
reason) until then.

The same table is printed in ``docs/reliability.rst``; :func:`rst_table` renders it and a
test checks that the page is in sync.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import secrets
import threading
import time
import unittest
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from aiohttp import web
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.transpiler.exceptions import TranspilerError

from qstore_qiskit.cache import QStoreCacheError, TemplateCache
from qstore_qiskit.client import (
    BatchSubmitter,
    IonQAuthenticationError,
    IonQConnectionError,
    IonQRequestError,
    IonQResponseError,
    SubmitterClosedError,
)
from qstore_qiskit.providers import QStoreProvider
from qstore_qiskit.server import LocalServer

ROOT = pathlib.Path(__file__).resolve().parents[1]
MAX_GATES = 300  # server's per-circuit gate limit in these tests
MAX_BODY = 256 * 1024  # server's request body limit in these tests
SERVER_QUBITS = 20  # server's simulator width (the backend advertises more)


# --------------------------------------------------------------------------- a broken server
class BrokenServer:
    """A tiny IonQ-like aiohttp server whose every answer is set by ``mode``.

    Modes: ``malformed_json`` (create answers ``{"id": "j1", "status": ``),
    ``not_json`` (create answers an HTML page with status 200), ``truncated_body`` (job
    status promises more bytes than it sends), ``truncated_json`` (job status JSON cut
    mid-document), ``no_status`` (job record without ``status``), ``results_not_a_map``
    (results are a list), ``http_404`` / ``http_413`` / ``http_422`` (create answers that
    status with an IonQ error body).
    """

    def __init__(self) -> None:
        self.mode = "malformed_json"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> "BrokenServer":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v0.4/jobs", self._create)
        app.router.add_get("/v0.4/jobs", self._list)
        app.router.add_get("/v0.4/jobs/{id}", self._get)
        app.router.add_get("/v0.4/jobs/{id}/results/probabilities", self._results)
        app.router.add_get("/v0.4/backends/{b}", self._backend)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/v0.4"

    @staticmethod
    def _error(status: int, message: str) -> web.Response:
        return web.json_response({"error": "Bad Request", "message": message}, status=status)

    async def _create(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        if self.mode == "malformed_json":
            return web.Response(text='{"id": "j1", "status": ', content_type="application/json")
        if self.mode == "not_json":
            return web.Response(text="<html><body>gateway</body></html>", content_type="text/html")
        if self.mode.startswith("http_"):
            status = int(self.mode[5:])
            return self._error(status, f"server says {status}")
        return web.json_response({"id": "j1", "status": "submitted"})

    async def _list(self, request: web.Request) -> web.Response:
        return web.json_response({"jobs": [], "next": None})

    async def _get(self, request: web.Request) -> web.StreamResponse:
        doc = {"id": request.match_info["id"], "status": "completed", "qubits": 1,
               "metadata": {"shots": "10"}}
        text = json.dumps(doc)
        if self.mode == "truncated_json":
            return web.Response(text=text[: len(text) // 2], content_type="application/json")
        if self.mode == "truncated_body":
            resp = web.StreamResponse(headers={"Content-Type": "application/json",
                                               "Content-Length": str(len(text) + 50)})
            await resp.prepare(request)
            await resp.write(text.encode())
            request.transport.close()  # fewer bytes than promised, then EOF
            return resp
        if self.mode == "no_status":
            doc.pop("status")
        return web.json_response(doc)

    async def _results(self, request: web.Request) -> web.Response:
        if self.mode == "results_not_a_map":
            return web.json_response([0.5, 0.5])
        return web.json_response({"0": 1.0})

    async def _backend(self, request: web.Request) -> web.Response:
        return web.json_response({"backend": request.match_info["b"], "qubits": 29})


# --------------------------------------------------------------------------- circuits
def bell() -> QuantumCircuit:
    qc = QuantumCircuit(2, name="bell")
    qc.h(0)
    qc.cx(0, 1)
    qc.measure_all()
    return qc


T = Parameter("t")


def with_param() -> QuantumCircuit:
    qc = QuantumCircuit(1, name="param")
    qc.rx(T, 0)
    qc.measure_all()
    return qc


def with_angle(value: float) -> QuantumCircuit:
    qc = QuantumCircuit(1, name="angle")
    qc.rx(value, 0)
    qc.measure_all()
    return qc


def if_else() -> QuantumCircuit:
    qc = QuantumCircuit(1, 1, name="branchy")
    qc.h(0)
    qc.measure(0, 0)
    with qc.if_test((qc.clbits[0], 1)):
        qc.x(0)
    return qc


def for_loop() -> QuantumCircuit:
    qc = QuantumCircuit(1, name="loopy")
    with qc.for_loop(range(2)):
        qc.x(0)
    return qc


def delay() -> QuantumCircuit:
    qc = QuantumCircuit(1, name="slow")
    qc.h(0)
    qc.delay(100, 0)
    qc.measure_all()
    return qc


def mid_measure() -> QuantumCircuit:
    qc = QuantumCircuit(1, 2, name="midmeas")
    qc.h(0)
    qc.measure(0, 0)
    qc.x(0)
    qc.measure(0, 1)
    return qc


def reset_mid() -> QuantumCircuit:
    qc = QuantumCircuit(1, name="resetty")
    qc.h(0)
    qc.reset(0)
    qc.measure_all()
    return qc


def brickwork(qubits: int = 8, layers: int = 40) -> QuantumCircuit:
    """More native gates than the server accepts per circuit (``MAX_GATES``)."""
    qc = QuantumCircuit(qubits, name="huge")
    for layer in range(layers):
        for q in range(qubits):
            qc.ry(0.1 + 0.37 * (layer * qubits + q) % 3.0, q)
        for q in range(layer % 2, qubits - 1, 2):
            qc.cx(q, q + 1)
    qc.measure_all()
    return qc


def wide(qubits: int) -> QuantumCircuit:
    qc = QuantumCircuit(qubits, name=f"wide{qubits}")
    qc.h(0)
    for q in range(qubits - 1):
        qc.cx(q, q + 1)
    qc.measure_all()
    return qc


# --------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Row:
    """One kind of bad input."""

    kind: str
    surface: str
    call: Callable[["BadInputContext"], Any]
    exception: type[BaseException] | None  # None: documented behaviour, see ``check``
    excerpt: str
    when: str = "call"  # "call": raised by the call; "result": by job.result()/future.result()
    check: Callable[[Any], None] | None = None
    known_defect: str | None = None


class BadInputContext:
    """Servers, provider, backend and submitter shared by the rows."""

    def __init__(self) -> None:
        self.key = secrets.token_hex(16)
        self.server = LocalServer(
            "instant", api_key=self.key, max_gates_per_circuit=MAX_GATES,
            max_body_bytes=MAX_BODY, max_qubits=SERVER_QUBITS,
        ).start()
        self.broken = BrokenServer().__enter__()
        self.provider = QStoreProvider(token=self.key, url=self.server.url)
        self.backend = self.provider.get_backend("ionq_simulator")
        self.submitter = BatchSubmitter(self.key, self.server.url, max_retries=1)
        self.broken_submitter = BatchSubmitter("k", self.broken.url, max_retries=1)
        self.cache = TemplateCache()
        self._closers: list[Callable[[], None]] = []

    def closing(self, obj):
        """Close ``obj`` when the context closes."""
        self._closers.append(obj.close)
        return obj

    def close(self) -> None:
        for close in self._closers:
            close()
        self.submitter.close()
        self.broken_submitter.close()
        self.provider.close()
        self.broken.__exit__()
        self.server.stop()

    # helpers used by rows
    def wrong_key_run(self):
        provider = self.closing(QStoreProvider(token="not-the-key", url=self.server.url))
        return provider.get_backend("ionq_simulator").run(bell())

    def broken_run(self, mode: str):
        self.broken.mode = mode
        return self.broken_submitter.submit([{"qubits": 1, "circuit": []}], gateset="qis", shots=10)

    def closed_submit(self):
        sub = BatchSubmitter(self.key, self.server.url)
        sub.close()
        return sub.submit([{"qubits": 1, "circuit": []}])

    def expired_job_id(self) -> str:
        """A job that existed and was deleted on the server (what an expired id looks like)."""
        import urllib.request

        res = self.submitter.submit(_qis([{"gate": "h", "target": 0}]), gateset="qis").result(60)
        job_id = res[0].job_id
        req = urllib.request.Request(f"{self.server.url}/jobs/{job_id}", method="DELETE",
                                     headers={"Authorization": f"apiKey {self.key}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
        return job_id

    def template(self):
        return self.cache.get_template(with_param(), device="aria-1")[0]


def _qis(gates: list[dict], qubits: int = 1) -> list[dict]:
    return [{"qubits": qubits, "circuit": gates}]


def _empty_result(result) -> None:
    assert result.results == [], result.results


def _all_zero(result) -> None:
    assert result.get_counts() == {"00": 1024}, result.get_counts()


def _all_qubits_measured(result) -> None:
    counts = result.get_counts()
    assert set(counts) <= {"00", "11"} and sum(counts.values()) == 1024, counts


def _no_measure() -> QuantumCircuit:
    qc = QuantumCircuit(2, name="nomeas")
    qc.h(0)
    qc.cx(0, 1)
    return qc


ROWS: list[Row] = [
    # -- instructions IonQ cannot run
    Row("control flow (if_else)", "backend.run", lambda c: c.backend.run(if_else()),
        TranspilerError, "classical control flow"),
    Row("control flow (for_loop)", "backend.run", lambda c: c.backend.run(for_loop()),
        TranspilerError, "classical control flow"),
    Row("delay instruction", "backend.run", lambda c: c.backend.run(delay()),
        TranspilerError, "'delay' is not supported"),
    Row("mid-circuit measurement (classical feed-forward)", "backend.run",
        lambda c: c.backend.run(mid_measure()), ValueError, "mid-circuit"),
    Row("mid-circuit reset", "backend.run", lambda c: c.backend.run(reset_mid()),
        ValueError, "mid-circuit"),
    Row("too many qubits for the device", "backend.run", lambda c: c.backend.run(wide(40)),
        ValueError, "has 40 qubits"),
    Row("not a circuit", "backend.run", lambda c: c.backend.run("OPENQASM 2.0;"),
        TypeError, "takes a QuantumCircuit"),
    # -- parameters and angles
    Row("unbound parameters", "backend.run", lambda c: c.backend.run(with_param()),
        ValueError, "unbound parameters (t)"),
    Row("NaN angle in a bound circuit", "backend.run", lambda c: c.backend.run(with_angle(float("nan"))),
        ValueError, "has angle nan; angles must be finite"),
    Row("infinite angle in a bound circuit", "backend.run", lambda c: c.backend.run(with_angle(float("inf"))),
        ValueError, "must be finite"),
    # -- shots and options
    Row("shots=0", "backend.run", lambda c: c.backend.run(bell(), shots=0),
        ValueError, "1 <= shots <= 1000000, got 0"),
    Row("shots=-1", "backend.run", lambda c: c.backend.run(bell(), shots=-1),
        ValueError, "got -1"),
    Row("shots='x'", "backend.run", lambda c: c.backend.run(bell(), shots="x"),
        ValueError, "expected an integer, got 'x'"),
    Row("shots=10**9", "backend.run", lambda c: c.backend.run(bell(), shots=10**9),
        ValueError, "got 1000000000"),
    Row("shots=2.5", "backend.run", lambda c: c.backend.run(bell(), shots=2.5),
        ValueError, "expected an integer, got 2.5"),
    Row("unknown run option", "backend.run", lambda c: c.backend.run(bell(), shotz=10),
        ValueError, "unknown run option(s) 'shotz'"),
    Row("non-boolean flag option", "backend.run", lambda c: c.backend.run(bell(), use_native_gates="yes"),
        ValueError, "'use_native_gates': expected True or False"),
    Row("optimization_level out of range", "backend.run", lambda c: c.backend.run(bell(), optimization_level=7),
        ValueError, "expected 0, 1, 2 or 3, got 7"),
    Row("bad option in set_options", "backend.set_options", lambda c: c.backend.set_options(shots=-5),
        ValueError, "bad value for option 'shots'"),
    Row("unknown noise model (server 400)", "job.result", lambda c: c.backend.run(bell(), noise_model="bogus"),
        IonQRequestError, "unknown noise model 'bogus'", when="result"),
    # -- parameter_binds shapes
    Row("parameter_binds: one dict per circuit violated", "backend.run",
        lambda c: c.backend.run(with_param(), parameter_binds=[{T: [1.0]}, {T: [2.0]}]),
        ValueError, "2 entries for 1 circuits"),
    Row("parameter_binds: unknown parameter", "backend.run",
        lambda c: c.backend.run(with_param(), parameter_binds=[{Parameter("u"): [1.0]}]),
        ValueError, "names u, which circuit"),
    Row("parameter_binds: missing parameter", "backend.run",
        lambda c: c.backend.run(with_param(), parameter_binds=[{}]),
        ValueError, "unbound parameters"),
    Row("parameter_binds: NaN value", "backend.run",
        lambda c: c.backend.run(with_param(), parameter_binds=[{T: [float("nan")]}]),
        ValueError, "NaN or infinite"),
    Row("parameter_binds: ragged value lists", "backend.run",
        lambda c: c.backend.run(with_param(), parameter_binds=[{T: [[1.0, 2.0], [3.0]]}]),
        ValueError, "not a number or a flat list of numbers"),
    Row("parameter_binds: non-numeric value", "backend.run",
        lambda c: c.backend.run(with_param(), parameter_binds=[{T: ["a"]}]),
        ValueError, "not a number or a flat list of numbers: ['a']"),
    Row("parameter_binds: list instead of dict", "backend.run",
        lambda c: c.backend.run(with_param(), parameter_binds=[[1.0]]),
        ValueError, "is a list; give one {Parameter: value or [values]} dict per circuit"),
    Row("parameter_binds: a dict, not a list of dicts", "backend.run",
        lambda c: c.backend.run(with_param(), parameter_binds={T: 1.0}),
        TypeError, "parameter_binds is a dict; expected a list with one"),
    Row("parameter_binds: complex value (numpy)", "backend.run",
        lambda c: c.backend.run(with_param(), parameter_binds=[{T: np.array([np.pi + 5j])}]),
        ValueError, "is complex"),
    Row("parameter_binds: complex value (Python)", "backend.run",
        lambda c: c.backend.run(with_param(), parameter_binds=[{T: 1 + 2j}]),
        ValueError, "is complex"),
    Row("run(42)", "backend.run", lambda c: c.backend.run(42),
        TypeError, "run() takes a QuantumCircuit or a list of QuantumCircuit, got int"),
    Row("run(None)", "backend.run", lambda c: c.backend.run(None),
        TypeError, "run() takes a QuantumCircuit or a list of QuantumCircuit, got NoneType"),
    Row("parameter_binds for an unparameterized circuit", "backend.run",
        lambda c: c.backend.run(bell(), parameter_binds=[{T: [1.0]}]),
        ValueError, "which has no parameters"),
    # -- size limits and server-side errors surfacing
    Row("circuit over the server's gate limit (413)", "job.result",
        lambda c: c.backend.run(brickwork(), optimization_level=0), IonQRequestError,
        "413", when="result"),
    Row("request body over the server's size limit (413)", "submitter",
        lambda c: c.submitter.submit(_qis([{"gate": "h", "target": 0}] * 12000), gateset="qis"),
        IonQRequestError, f"request body exceeds {MAX_BODY} bytes", when="result"),
    Row("more qubits than the service's backend", "backend.run",
        lambda c: c.backend.run(wide(SERVER_QUBITS + 2)), ValueError,
        f"has {SERVER_QUBITS + 2} qubits; backend ionq_simulator has {SERVER_QUBITS}"),
    Row("unknown gate in a body (400)", "submitter",
        lambda c: c.submitter.submit(_qis([{"gate": "frob", "target": 0}]), gateset="qis"),
        IonQRequestError, "unknown gate 'frob'", when="result"),
    Row("qubit index out of range (400)", "submitter",
        lambda c: c.submitter.submit(_qis([{"gate": "h", "target": 5}]), gateset="qis"),
        IonQRequestError, "qubit index 5 out of range", when="result"),
    Row("unknown gateset (400)", "submitter",
        lambda c: c.submitter.submit(_qis([{"gate": "h", "target": 0}]), gateset="bogus"),
        IonQRequestError, "unknown gateset 'bogus'", when="result"),
    Row("malformed circuit body", "submitter", lambda c: c.submitter.submit([{"qubits": 2}]),
        ValueError, "expected an IonQ circuit body"),
    Row("submitter shots=0", "submitter", lambda c: c.submitter.submit(_qis([]), shots=0),
        ValueError, "shots must be a positive integer"),
    Row("submit to a closed submitter", "submitter", lambda c: c.closed_submit(),
        SubmitterClosedError, "closed"),
    Row("server answers 404 to a create", "submitter", lambda c: c.broken_run("http_404"),
        IonQRequestError, "error 404 POST jobs: Bad Request: server says 404", when="result"),
    Row("server answers 413 to a one-circuit create", "submitter", lambda c: c.broken_run("http_413"),
        IonQRequestError, "error 413 POST jobs: Bad Request: server says 413", when="result"),
    Row("server answers 422", "submitter", lambda c: c.broken_run("http_422"),
        IonQRequestError, "error 422 POST jobs: Bad Request: server says 422", when="result"),
    # -- malformed and truncated responses
    Row("malformed JSON in the create response", "submitter", lambda c: c.broken_run("malformed_json"),
        IonQResponseError, "malformed JSON in HTTP 200 response", when="result"),
    Row("HTML instead of JSON", "submitter", lambda c: c.broken_run("not_json"),
        IonQResponseError, "malformed JSON", when="result"),
    Row("truncated JSON document (job status)", "submitter", lambda c: c.broken_run("truncated_json"),
        IonQResponseError, "malformed JSON", when="result"),
    Row("truncated body (fewer bytes than Content-Length)", "submitter",
        lambda c: c.broken_run("truncated_body"), IonQConnectionError, "connection dropped", when="result"),
    Row("job record without a status", "submitter", lambda c: c.broken_run("no_status"),
        IonQResponseError, "no status in response", when="result"),
    # -- credentials, URLs, ids, names
    Row("wrong API key (401)", "job.result", lambda c: c.wrong_key_run(),
        IonQAuthenticationError, "rejected the credentials (HTTP 401)", when="result"),
    Row("plain http to a non-loopback host", "provider", lambda c: QStoreProvider(
        token="x", url="http://example.com/v0.4").get_backend("ionq_simulator").run(bell()),
        ValueError, "refusing plain http://"),
    Row("unsupported URL scheme", "submitter", lambda c: BatchSubmitter("x", "ftp://example.com/v0.4"),
        ValueError, "unsupported URL scheme"),
    Row("unknown job id (retrieve)", "submitter.retrieve",
        lambda c: c.submitter.retrieve(["no-such-job"], timeout=30),
        IonQRequestError, "job 'no-such-job' not found"),
    Row("expired (deleted) job id (retrieve)", "submitter.retrieve",
        lambda c: c.closing(BatchSubmitter(c.key, c.server.url)).retrieve([c.expired_job_id()], timeout=30),
        IonQRequestError, "not found"),
    Row("unknown backend name", "provider.get_backend", lambda c: c.provider.get_backend("ionq_qpu.nope"),
        ValueError, "unknown backend 'ionq_qpu.nope'"),
    Row("backend name not a string", "provider.get_backend", lambda c: c.provider.get_backend(42),
        TypeError, "backend name must be a string"),
    Row("unknown backend in a body (400)", "submitter",
        lambda c: c.submitter.submit(_qis([{"gate": "h", "target": 0}]), gateset="qis", backend="qpu.nope"),
        IonQRequestError, "unknown backend 'qpu.nope'", when="result"),
    # -- cache misuse
    Row("cache: wrong number of values", "TemplateCache.payload",
        lambda c: c.cache.payload(with_param(), [1.0, 2.0]), QStoreCacheError, "expected 1 parameter values, got 2"),
    Row("cache: unknown parameter", "TemplateCache.payload",
        lambda c: c.cache.payload(with_param(), {Parameter("zz"): 1.0}), QStoreCacheError,
        "unknown parameter(s)"),
    Row("cache: values missing", "TemplateCache.payload", lambda c: c.cache.payload(with_param()),
        QStoreCacheError, "pass parameter_values"),
    Row("cache: NaN value", "TemplateCache.payload",
        lambda c: c.cache.payload(with_param(), [float("nan")]), QStoreCacheError, "must be finite"),
    Row("cache: template bound for another device", "CompiledTemplate.bind",
        lambda c: c.template().bind([1.0], device="forte-1"), QStoreCacheError,
        "compiled for device 'aria-1', not 'forte-1'"),
    Row("cache: values of the wrong shape", "CompiledTemplate.bind_many",
        lambda c: c.template().bind_many([[1.0, 2.0]]), QStoreCacheError,
        "shape (num_bindings, 1), got shape (1, 2)"),
    Row("cache: zero template limit", "TemplateCache", lambda c: TemplateCache(max_templates=0),
        QStoreCacheError, "max_templates >= 1"),
    # -- documented behaviour (not errors)
    Row("empty circuit list", "backend.run", lambda c: c.backend.run([]), None,
        "a Result with no experiments", when="result", check=_empty_result),
    Row("empty circuit (no gates)", "backend.run", lambda c: c.backend.run(QuantumCircuit(2)), None,
        "all shots read 00...0", when="result", check=_all_zero),
    Row("measurement-free circuit", "backend.run", lambda c: c.backend.run(_no_measure()), None,
        "every qubit is measured at the end (IonQ semantics)", when="result", check=_all_qubits_measured),
]


def rst_table() -> str:
    """The table as reStructuredText (what ``docs/reliability.rst`` shows)."""
    header = ("Bad input", "Surface", "Exception", "Message contains")
    body = []
    for row in ROWS:
        exc = row.exception.__name__ if row.exception else "(none: documented)"
        if row.known_defect:
            exc += " [defect reported]"
        where = row.surface + (" (at result)" if row.when == "result" and row.exception else "")
        body.append((row.kind, where, exc, row.excerpt))
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(4)]
    line = "  ".join("=" * w for w in widths)
    fmt = lambda r: "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line, fmt(header), line, *map(fmt, body), line])


class TestBadInputTable(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.ctx = BadInputContext()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.ctx.close()

    def test_table_has_enough_kinds(self) -> None:
        self.assertGreaterEqual(sum(1 for r in ROWS if r.exception), 30)
        self.assertEqual(len({r.kind for r in ROWS}), len(ROWS))

    def test_rows(self) -> None:
        ctx = self.ctx
        for row in ROWS:
            with self.subTest(kind=row.kind):
                # A good job in flight on the same backend while the bad call happens.
                good = ctx.backend.run(bell(), shots=1024)
                outcome = self._attempt(row)
                result = good.result(timeout=60)
                counts = result.get_counts()
                self.assertEqual(sum(counts.values()), 1024)
                self.assertLessEqual(set(counts), {"00", "11"})
                if row.exception is None:
                    self.assertIsNone(outcome[0], f"{row.kind}: raised {outcome[0]!r}")
                    row.check(outcome[1])
                    continue
                exc = outcome[0]
                ok = isinstance(exc, row.exception) and row.excerpt in str(exc)
                if row.known_defect and not ok:
                    self.skipTest(f"known defect: {row.known_defect}; got {exc!r:.200}")
                self.assertIsInstance(exc, row.exception, f"{row.kind}: got {exc!r}")
                self.assertIn(row.excerpt, str(exc))
                self.assertNotIn(ctx.key, str(exc))

    @staticmethod
    def _attempt(row: Row) -> tuple[BaseException | None, Any]:
        try:
            out = row.call(TestBadInputTable.ctx)
            if row.when == "result":
                out = out.result(timeout=60) if hasattr(out, "result") else out
            elif hasattr(out, "result") and row.exception is not None:
                # The error should have come from the call itself; make it visible.
                out.result(timeout=60)
            return None, out
        except Exception as exc:  # pylint: disable=broad-except
            return exc, None

    def test_docs_show_the_table(self) -> None:
        page = (ROOT / "docs" / "reliability.rst").read_text(encoding="utf-8")
        self.assertIn(rst_table(), page, "regenerate with: python -c 'from test.test_bad_input_table "
                                         "import rst_table; print(rst_table())'")


class TestBadCircuitIsolation(unittest.TestCase):
    """A circuit the server rejects (400/422) must not fail other callers' circuits that
    the submitter coalesced into the same multicircuit job (regression test)."""

    def test_rejected_circuit_does_not_fail_coalesced_neighbours(self) -> None:
        key = secrets.token_hex(16)
        good_body = {"qubits": 2, "circuit": [{"gate": "h", "target": 0},
                                              {"gate": "cnot", "control": 0, "target": 1}]}
        too_wide = {"qubits": SERVER_QUBITS + 2, "circuit": [{"gate": "h", "target": SERVER_QUBITS + 1}]}
        bad_gate = {"qubits": 1, "circuit": [{"gate": "frob", "target": 0}]}
        with LocalServer("instant", api_key=key, max_qubits=SERVER_QUBITS) as srv, \
                BatchSubmitter(key, srv.url, batch_window=0.3, max_retries=1) as sub:
            for bad, status in ((too_wide, 422), (bad_gate, 400)):
                with self.subTest(status=status):
                    goods = [sub.submit([good_body], gateset="qis", shots=100) for _ in range(3)]
                    rejected = sub.submit([bad], gateset="qis", shots=100)
                    more = sub.submit([good_body, good_body], gateset="qis", shots=100)
                    with self.assertRaises(IonQRequestError) as ctx:
                        rejected.result(30)
                    self.assertEqual(ctx.exception.status, status)
                    for fut in [*goods, more]:
                        for res in fut.result(30):
                            self.assertAlmostEqual(res.probabilities.get(0, 0.0), 0.5)
                            self.assertAlmostEqual(res.probabilities.get(3, 0.0), 0.5)
            # Nothing was created twice, and the rejected bodies never became jobs.
            sids = [j["metadata"].get("submission_id") for j in srv.jobs()]
            self.assertEqual(len(sids), len(set(sids)))


class TestServerTruncatedRequest(unittest.TestCase):
    """A client that dies mid-request (fewer body bytes than Content-Length) is not a
    server error: no ERROR log, no 500 (regression test)."""

    def test_client_disconnect_mid_body(self) -> None:
        import logging
        import socket

        key = secrets.token_hex(16)
        records: list[logging.LogRecord] = []
        handler = logging.Handler(logging.ERROR)
        handler.emit = records.append  # type: ignore[method-assign]
        log = logging.getLogger("qstore_qiskit.server")
        log.addHandler(handler)
        try:
            with LocalServer("instant", api_key=key) as srv:
                for _ in range(3):
                    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
                        sock.sendall(
                            f"POST /v0.4/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            f"Authorization: apiKey {key}\r\nContent-Type: application/json\r\n"
                            f"Content-Length: 5000\r\n\r\n{{\"backend\": ".encode()
                        )
                    deadline = time.monotonic() + 5
                    while srv.stats()["by_status"].get(0, 0) < 1 and time.monotonic() < deadline:
                        time.sleep(0.02)
                stats = srv.stats()
        finally:
            log.removeHandler(handler)
        self.assertEqual([r.getMessage() for r in records], [])
        self.assertNotIn(500, stats["by_status"])
        self.assertEqual(srv.jobs(), [])


if __name__ == "__main__":
    unittest.main()
