"""Large jobs simulated in a worker process (``ServerConfig.simulation_processes``): the
same results as in a server thread, the event loop answers meanwhile, a worker crash or
a cancel leaves a clean job record."""

from __future__ import annotations

import os
import threading
import time
import unittest
from pathlib import Path
from unittest import mock

from qstore_qiskit.server import LocalServer, ServerConfig
from qstore_qiskit.server.sim_process import WORKER_NICENESS, SimulationPool

from .helpers import http


def wait_for(predicate, what: str, attempts: int = 3000) -> None:
    """Poll ``predicate`` (every 10 ms, bounded) until it holds."""
    for _ in range(attempts):
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def _layer(q: int) -> list[dict]:
    return ([{"gate": "h", "target": i} for i in range(q)]
            + [{"gate": "cnot", "control": i, "target": i + 1} for i in range(q - 1)]
            + [{"gate": "rx", "target": i, "rotation": 0.1 * (i + 1)} for i in range(q)])


def multi_job(noise: str | None = None) -> dict:
    """Two circuits: a small one (numpy batch when ideal) and a 13-qubit one (Aer)."""
    body = {"type": "ionq.multi-circuit.v1", "backend": "simulator", "shots": 500,
            "input": {"gateset": "qis", "qubits": 13, "circuits": [
                {"name": "small", "circuit": _layer(3)},
                {"name": "wide", "circuit": _layer(13) * 3}]}}
    if noise is not None:
        body["noise"] = {"model": noise}
    return body


def stats(srv) -> dict:
    return http("GET", srv.base_url + "/_qstore/stats")[2]["simulation"]


def results(srv, job_id: str) -> list:
    """Status, then per circuit (in order; the ids differ between servers) its
    probabilities and histogram."""
    _, _, record = http("GET", srv.url + f"/jobs/{job_id}")
    out = [record["status"]]
    _, _, by_child = http("GET", srv.url + f"/jobs/{job_id}/results/probabilities")
    for child in by_child:  # in circuit order
        _, _, probs = http("GET", srv.url + f"/jobs/{child}/results/probabilities")
        _, _, hist = http("GET", srv.url + f"/jobs/{child}/results/histogram",
                          validate=False)
        out.append((by_child[child], probs, hist))
    return out


class TestSameResults(unittest.TestCase):
    """A worker runs the very simulation a thread runs: identical results per seed."""

    def test_in_thread_and_in_worker_agree(self):
        answers = []
        for overrides in ({"process_simulation_work": 1}, {"simulation_processes": 0}):
            with LocalServer(seed=7, **overrides) as srv:
                got = []
                for noise in (None, "aria-1"):
                    status, _, job = http("POST", srv.url + "/jobs", multi_job(noise))
                    self.assertEqual(status, 201, job)
                    got.append(results(srv, job["id"]))
                got.append(stats(srv)["jobs_in_process"])
            answers.append(got)
        worker, thread = answers
        self.assertEqual((worker[-1], thread[-1]), (2, 0))
        self.assertEqual(worker[:-1], thread[:-1])
        self.assertEqual(worker[0][0], "completed")
        # Both circuits have results, and they differ (not one copied to the other).
        self.assertEqual(len(worker[0]), 3)
        self.assertNotEqual(worker[0][1], worker[0][2])

    def test_shutdown_stops_the_worker(self):
        started = []
        real_start = SimulationPool._start  # pylint: disable=protected-access

        def start(pool):
            started.append(real_start(pool))
            return started[-1]

        with mock.patch.object(SimulationPool, "_start", start):
            with LocalServer(seed=7, process_simulation_work=1) as srv:
                status, _, _ = http("POST", srv.url + "/jobs", multi_job())
                self.assertEqual(status, 201)
                self.assertEqual(len(started), 1)
                self.assertIsNone(started[0].proc.poll())  # alive between jobs
        self.assertIsNotNone(started[0].proc.poll())  # gone after shutdown

    def test_job_over_inline_max_work_is_answered_before_it_completes(self):
        answers, outcomes = [], []
        for limit in (None, 1):  # every job inline; every job answered at once
            with LocalServer(seed=7, inline_max_work=limit) as srv:
                status, _, job = http("POST", srv.url + "/jobs", multi_job())
                self.assertEqual(status, 201, job)
                answers.append(job["status"])
                wait_for(lambda jid=job["id"]: http("GET", srv.url + f"/jobs/{jid}")[2]
                         ["status"] == "completed", "the job completed")
                outcomes.append(results(srv, job["id"]))
        self.assertEqual(answers, ["completed", "submitted"])
        self.assertEqual(outcomes[0], outcomes[1])  # the same results either way

    def test_small_jobs_stay_in_thread(self):
        with LocalServer(seed=7) as srv:
            status, _, _ = http("POST", srv.url + "/jobs", multi_job())
            self.assertEqual(status, 201)
            self.assertEqual(stats(srv)["jobs_in_process"], 0)


class TestPrestart(unittest.TestCase):
    """One worker starts with the server; a dead idle one is replaced on demand."""

    def test_worker_runs_when_the_server_reports_ready(self):
        with LocalServer(seed=7, process_simulation_work=1, prestart_workers=True) as srv:
            pool = srv._require_state().runner.processes  # pylint: disable=protected-access
            # No request yet: the worker was started with the server.
            self.assertEqual(len(pool._all), 1)  # pylint: disable=protected-access
            worker = pool._all[0]  # pylint: disable=protected-access
            self.assertIsNone(worker.proc.poll())
            if os.path.exists(f"/proc/{worker.proc.pid}/maps"):
                # It imports Aer before any job arrives (not during the first one).
                wait_for(lambda: "qiskit_aer" in Path(
                    f"/proc/{worker.proc.pid}/maps").read_text(errors="replace"),
                    "the worker imported Aer")
                self.assertEqual(stats(srv)["jobs_in_process"], 0)
                # ... at a lower CPU priority than the server's.
                self.assertEqual(os.getpriority(os.PRIO_PROCESS, worker.proc.pid),
                                 min(19, os.getpriority(os.PRIO_PROCESS, 0)
                                     + WORKER_NICENESS))
            status, _, job = http("POST", srv.url + "/jobs", multi_job())
            self.assertEqual(status, 201, job)
            self.assertEqual(results(srv, job["id"])[0], "completed")
            # The prestarted worker ran the job; no second one was started.
            self.assertEqual(pool._all, [worker])  # pylint: disable=protected-access
            self.assertEqual((stats(srv)["jobs_in_process"], stats(srv)["workers"]), (1, 1))
        with LocalServer(simulation_processes=0, prestart_workers=True) as srv:
            self.assertEqual(srv._require_state().runner.processes._all, [])  # pylint: disable=protected-access

    def test_prestart_off_starts_the_worker_with_the_first_large_job(self):
        # The field wins over the environment (the suite itself runs with "0").
        for env in ("1",):
            with mock.patch.dict(os.environ, {"QSTORE_PRESTART_WORKERS": env}), \
                    LocalServer(seed=7, process_simulation_work=1,
                                prestart_workers=False) as srv:
                pool = srv._require_state().runner.processes  # pylint: disable=protected-access
                decoder = srv._require_state().decoder  # pylint: disable=protected-access
                self.assertEqual((pool._all, decoder._all), ([], []))  # pylint: disable=protected-access
                status, _, job = http("POST", srv.url + "/jobs", multi_job())
                self.assertEqual(status, 201, job)
                wait_for(lambda jid=job["id"]: http("GET", srv.url + f"/jobs/{jid}")[2]
                         ["status"] == "completed", "the job completed")
                self.assertEqual((stats(srv)["jobs_in_process"], stats(srv)["workers"]),
                                 (1, 1))

    def test_environment_decides_when_the_field_is_none(self):
        for env, expected in (("0", False), ("off", False), ("False", False), ("no", False),
                              ("1", True), ("", True), ("yes", True)):
            with mock.patch.dict(os.environ, {"QSTORE_PRESTART_WORKERS": env}):
                self.assertEqual(ServerConfig().prestarts_workers(), expected, repr(env))
                self.assertTrue(ServerConfig(prestart_workers=True).prestarts_workers())
                self.assertFalse(ServerConfig(prestart_workers=False).prestarts_workers())
        # A real server: unset means prestart, "0" means none until a large request.
        for env, expected in ((None, 1), ("0", 0)):
            with mock.patch.dict(os.environ, {}):
                os.environ.pop("QSTORE_PRESTART_WORKERS", None)
                if env is not None:
                    os.environ["QSTORE_PRESTART_WORKERS"] = env
                with LocalServer(seed=7) as srv:
                    state = srv._require_state()  # pylint: disable=protected-access
                    self.assertEqual((len(state.runner.processes._all),  # pylint: disable=protected-access
                                      len(state.decoder._all)),  # pylint: disable=protected-access
                                     (expected, expected), f"QSTORE_PRESTART_WORKERS={env!r}")

    def test_dead_idle_worker_is_replaced_on_demand(self):
        with LocalServer(seed=7, process_simulation_work=1, prestart_workers=True) as srv:
            pool = srv._require_state().runner.processes  # pylint: disable=protected-access
            first = pool._all[0]  # pylint: disable=protected-access
            first.kill()
            first.proc.wait(30)
            status, _, job = http("POST", srv.url + "/jobs", multi_job())
            self.assertEqual(status, 201, job)
            self.assertEqual(results(srv, job["id"])[0], "completed")
            sim = stats(srv)
            self.assertEqual((sim["restarted"], sim["jobs_in_process"], sim["workers"]),
                             (1, 1, 1))
            self.assertNotEqual(pool._all[0].proc.pid, first.proc.pid)  # pylint: disable=protected-access


class HeldWorker:
    """Holds a job at the worker until released (patches ``SimulationPool._exchange``)."""

    def __init__(self, before=None):
        self.release = threading.Event()
        self.before = before
        self.real = SimulationPool._exchange  # pylint: disable=protected-access

    def __call__(self, pool, worker, request):
        self.release.wait(120)
        if self.before is not None:
            self.before(worker)
        return self.real(pool, worker, request)

    def patch(self):
        def exchange(pool, worker, request):  # a function: bound like the method
            return self(pool, worker, request)

        return mock.patch.object(SimulationPool, "_exchange", exchange)


class TestWhileInWorker(unittest.TestCase):
    """The loop answers while a job is at the worker; cancels and crashes are clean."""

    def _start(self, srv) -> str:
        status, _, job = http("POST", srv.url + "/jobs", multi_job())
        self.assertEqual(status, 201, job)
        wait_for(lambda: stats(srv)["in_worker"] == 1, "the job reached the worker")
        return job["id"]

    def test_health_check_answered_before_the_job_completes(self):
        held = HeldWorker()
        with LocalServer(seed=3, inline_execution=False, process_simulation_work=1) as srv, \
                held.patch():
            try:
                job_id = self._start(srv)
                status, _, health = http("GET", srv.base_url + "/")
                _, _, during = http("GET", srv.url + f"/jobs/{job_id}")
            finally:
                held.release.set()
            self.assertEqual((status, health["status"]), (200, "ok"))
            self.assertEqual(during["status"], "started")  # answered before completion
            wait_for(lambda: http("GET", srv.url + f"/jobs/{job_id}")[2]["status"]
                     == "completed", "the job completed")
            self.assertEqual(stats(srv), {"jobs_in_process": 1, "in_worker": 0, "workers": 1,
                                          "restarted": 0})

    def test_worker_crash_fails_the_job_and_the_next_job_runs(self):
        held = HeldWorker(before=lambda worker: (worker.kill(), worker.proc.wait(30)))
        with LocalServer(seed=3, inline_execution=False, process_simulation_work=1) as srv:
            with held.patch():
                job_id = self._start(srv)
                held.release.set()
                wait_for(lambda: http("GET", srv.url + f"/jobs/{job_id}")[2]["status"]
                         == "failed", "the job failed")
            _, _, record = http("GET", srv.url + f"/jobs/{job_id}")
            self.assertEqual(record["failure"]["code"], "SimulationError")
            self.assertIn("simulation worker exited", record["failure"]["message"])
            status, _, _ = http("GET", srv.url + f"/jobs/{job_id}/results/probabilities")
            self.assertGreaterEqual(status, 400)
            self.assertLess(status, 500)
            # A fresh worker serves the next job.
            status, _, job = http("POST", srv.url + "/jobs", multi_job())
            self.assertEqual(status, 201)
            wait_for(lambda: http("GET", srv.url + f"/jobs/{job['id']}")[2]["status"]
                     == "completed", "the next job completed")

    def test_cancel_discards_the_workers_result(self):
        held = HeldWorker()
        with LocalServer(seed=3, inline_execution=False, process_simulation_work=1) as srv:
            with held.patch():
                job_id = self._start(srv)
                status, _, answer = http("PUT", srv.url + f"/jobs/{job_id}/status/cancel")
                self.assertEqual((status, answer["status"]), (200, "canceled"))
                held.release.set()
                wait_for(lambda: stats(srv)["in_worker"] == 0, "the worker let go")
            _, _, record = http("GET", srv.url + f"/jobs/{job_id}")
            self.assertEqual(record["status"], "canceled")
            self.assertEqual(stats(srv)["jobs_in_process"], 0)
            status, _, job = http("POST", srv.url + "/jobs", multi_job())
            self.assertEqual(status, 201)
            wait_for(lambda: http("GET", srv.url + f"/jobs/{job['id']}")[2]["status"]
                     == "completed", "the next job completed")


if __name__ == "__main__":
    unittest.main()
