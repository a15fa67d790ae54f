"""A tiny IonQ-like aiohttp server whose responses a test can break on purpose.

The real local server (:mod:`qstore_qiskit.server`) answers correctly or with injected
transport faults; this one exists for the *malformed* answers a client must reject
(truncated JSON, wrong child count, outcomes wider than the circuit, 401s).  It only
understands circuits made of ``x`` / ``not`` gates (deterministic outcomes).
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid

from aiohttp import web


class MiniServer:
    """Run with ``with MiniServer() as srv: srv.url``; set ``srv.mode`` to break things.

    Modes: ``ok``, ``truncated_json`` (job status body cut short), ``bad_create``
    (create answers non-JSON), ``wrong_child_count``, ``wrong_qubits``,
    ``wrong_result_keys``, ``job_failed``, ``never_done``, ``echo_auth`` (errors and
    failures quote the request's Authorization header), ``redirect_results`` (results
    answer 302 to ``results_origin``), ``hang_create`` / ``hang_backend`` (never answer).

    Attributes: ``results_origin`` (job records point their results URL there),
    ``throttle`` (that many next requests answer 429 with ``Retry-After: retry_after``),
    ``seen_auth`` (the Authorization header of every request).
    """

    def __init__(self, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.mode = "ok"
        self.jobs: dict[str, dict] = {}
        self.seen_auth: list[str] = []
        self.results_origin: str | None = None
        self.throttle = 0
        self.retry_after = "0"
        self.throttled = 0
        self.failure: dict | None = None  # the failure record of failed jobs
        self.backend_extra: dict = {}  # extra fields of GET /backends/{b}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    # ---------------------------------------------------------------- lifecycle
    def __enter__(self) -> "MiniServer":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._hang.set)  # release hanging handlers
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> None:
        self._hang = asyncio.Event()
        app = web.Application()
        app.router.add_post("/v0.4/jobs", self._create)
        app.router.add_get("/v0.4/jobs", self._list)
        app.router.add_get("/v0.4/jobs/{id}", self._get)
        app.router.add_get("/v0.4/jobs/{id}/results/probabilities", self._results)
        app.router.add_put("/v0.4/jobs/{id}/status/cancel", self._cancel)
        app.router.add_get("/v0.4/backends/{b}", self._backend)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v0.4"

    # ---------------------------------------------------------------- handlers
    def _auth(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        self.seen_auth.append(header)
        if self.throttle > 0:
            self.throttle -= 1
            self.throttled += 1
            raise web.HTTPTooManyRequests(headers={"Retry-After": self.retry_after},
                                          text=json.dumps({"error": {"message": "slow down"}}))
        if self.mode == "echo_auth" and request.method == "POST":
            raise web.HTTPBadRequest(text=json.dumps({"error": {"message": f"bad request from {header}"}}),
                                     content_type="application/json")
        if self.api_key is not None and header != f"apiKey {self.api_key}":
            raise web.HTTPUnauthorized(
                text=json.dumps({"error": {"type": "authentication_error", "message": "invalid API key"}}),
                content_type="application/json",
            )

    @staticmethod
    def _outcome(circuit: list[dict]) -> int:
        value = 0
        for gate in circuit:
            if gate.get("gate") in ("x", "not"):
                value ^= 1 << gate["target"]
        return value

    async def _create(self, request: web.Request) -> web.Response:
        if self.mode == "hang_create":
            await self._hang.wait()
        self._auth(request)
        body = await request.json()
        job_id = str(uuid.uuid4())
        inp = body["input"]
        circuits = inp.get("circuits") or [{"circuit": inp["circuit"]}]
        children = [str(uuid.uuid4()) for _ in circuits] if "circuits" in inp else []
        self.jobs[job_id] = {"body": body, "children": children, "circuits": circuits}
        if self.mode == "bad_create":  # created, but the answer is cut short
            self.mode = "ok"
            return web.Response(text='{"id": "' + job_id[:5], content_type="application/json")
        return web.json_response({"id": job_id, "status": "submitted"})

    def _doc(self, job_id: str) -> dict:
        job = self.jobs[job_id]
        status = "completed"
        if self.mode == "job_failed":
            status = "failed"
        elif self.mode == "never_done":
            status = "ready"
        children = list(job["children"])
        if self.mode == "wrong_child_count" and children:
            children = children[:-1]
        doc = {
            "id": job_id,
            "status": status,
            "metadata": job["body"].get("metadata", {}),
            "stats": {"qubits": job["body"]["input"]["qubits"], "circuits": len(job["circuits"])},
            "results": {"probabilities": {"url": (self.results_origin or "") + f"/v0.4/jobs/{job_id}/results/probabilities"}},
        }
        if children:
            doc["child_job_ids"] = children
        if status == "failed":
            doc["failure"] = self.failure or {"code": "SimulationError", "error": "boom"}
        if self.mode == "echo_auth_failure":
            doc["status"] = "failed"
            doc["failure"] = {"code": "SimulationError", "message": "denied for " + self.seen_auth[-1]}
        return doc

    async def _get(self, request: web.Request) -> web.Response:
        self._auth(request)
        job_id = request.match_info["id"]
        if job_id not in self.jobs:
            raise web.HTTPNotFound(text=json.dumps({"error": {"message": "no such job"}}))
        text = json.dumps(self._doc(job_id))
        if self.mode == "truncated_json":
            text = text[: len(text) // 2]
        return web.Response(text=text, content_type="application/json")

    async def _list(self, request: web.Request) -> web.Response:
        self._auth(request)
        parent = request.query.get("parent_job_id")
        if parent:
            job = self.jobs[parent]
            names = [c.get("name") for c in job["circuits"]]
            if self.mode == "swapped_children":
                names = names[::-1]
            return web.json_response(
                {"jobs": [{"id": cid, "status": "completed", "name": n} for cid, n in zip(job["children"], names)]}
            )
        return web.json_response({"jobs": [self._doc(j) for j in self.jobs]})

    async def _results(self, request: web.Request) -> web.Response:
        self._auth(request)
        if self.mode == "redirect_results":
            raise web.HTTPFound(self.results_origin + request.path)
        job = self.jobs[request.match_info["id"]]
        width = job["body"]["input"]["qubits"]
        hists = []
        for c in job["circuits"]:
            outcome = self._outcome(c["circuit"])
            if self.mode == "wrong_qubits":
                outcome |= 1 << (width + 2)
            hists.append({str(outcome): 1.0})
        if not job["children"]:
            return web.json_response(hists[0])
        keys = list(job["children"])
        if self.mode == "wrong_result_keys":
            keys[0] = "not-a-child"
        return web.json_response(dict(zip(keys, hists)))

    async def _cancel(self, request: web.Request) -> web.Response:
        self._auth(request)
        return web.json_response({"id": request.match_info["id"], "status": "canceled"})

    async def _backend(self, request: web.Request) -> web.Response:
        if self.mode == "hang_backend":
            await self._hang.wait()
        self._auth(request)
        return web.json_response({"backend": request.match_info["b"], "qubits": 20, **self.backend_extra})
