"""The ``fair_share`` queue model (``qpu`` profile): one job at a time per backend,
organizations (API keys) served round-robin. Asserted on counts and orders, never times."""

from __future__ import annotations

import asyncio
import time
import unittest

from qstore_qiskit.server import LocalServer
from qstore_qiskit.server.machine import ANONYMOUS, Machine, Organizations

from .helpers import http


def _body(backend: str = "simulator") -> dict:
    return {"type": "ionq.circuit.v1", "backend": backend, "shots": 100,
            "input": {"gateset": "qis", "qubits": 2,
                      "circuit": [{"gate": "h", "target": 0},
                                  {"gate": "cnot", "control": 0, "target": 1}]}}


def _wait_completed(srv: LocalServer, ids: list[str], timeout: float = 120.0) -> list:
    """The stored jobs once all are completed (the timeout only guards against a hang)."""
    store = srv._require_state().store  # pylint: disable=protected-access
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = [store.get(i) for i in ids]
        if all(j.status == "completed" for j in jobs):
            return jobs
        time.sleep(0.05)
    raise AssertionError(f"jobs not completed: {[store.get(i).status for i in ids]}")


def _overlaps(jobs: list) -> int:
    """How many pairs of jobs executed at overlapping times (start/end records)."""
    spans = sorted((j.started, j.completed) for j in jobs)
    return sum(1 for i, (_, end) in enumerate(spans) for start, _ in spans[i + 1:] if start < end)


def _server(**overrides) -> LocalServer:
    options = {"network_delay": 0.0, "network_jitter": 0.0, "rate_limit": None, "seed": 1}
    options.update(overrides)
    return LocalServer(profile="qpu", **options)


class TestFairShareServer(unittest.TestCase):
    """Through HTTP, on a ``qpu``-profile server."""

    def test_one_keys_jobs_run_one_after_another(self):
        with _server(job_overhead=0.3) as srv:
            ids = [http("POST", srv.url + "/jobs", body=_body(), key="alpha")[2]["id"]
                   for _ in range(4)]
            jobs = _wait_completed(srv, ids)
            machine = srv.stats()["machines"]["simulator"]
        self.assertEqual(machine["executed"], 4)
        self.assertEqual(machine["max_running"], 1)
        self.assertEqual(machine["order"], ["org-1"] * 4)
        self.assertEqual(_overlaps(jobs), 0)
        # In submission order: each starts after the previous one ended.
        for before, after in zip(jobs, jobs[1:]):
            self.assertGreaterEqual(after.started, before.completed)

    def test_concurrent_model_overlaps_the_same_jobs(self):
        """The contrast: the cloud profile's queue runs the same jobs side by side."""
        with LocalServer(profile="cloud", network_delay=0.0, network_jitter=0.0,
                         rate_limit=None, queue_wait=0.0, job_overhead=0.3, seed=1) as srv:
            ids = [http("POST", srv.url + "/jobs", body=_body(), key="alpha")[2]["id"]
                   for _ in range(4)]
            jobs = _wait_completed(srv, ids)
            self.assertEqual(srv.stats()["machines"], {})
        self.assertGreater(_overlaps(jobs), 0)

    def test_two_keys_alternate(self):
        with _server(job_overhead=1.0) as srv:
            first = http("POST", srv.url + "/jobs", body=_body(), key="alpha")[2]["id"]
            ids = [first]
            ids += [http("POST", srv.url + "/jobs", body=_body(), key="alpha")[2]["id"]
                    for _ in range(2)]
            ids += [http("POST", srv.url + "/jobs", body=_body(), key="beta")[2]["id"]
                    for _ in range(3)]
            jobs = _wait_completed(srv, ids)
            machine = srv.stats()["machines"]["simulator"]
        # Precondition (not a timing assertion): all jobs were queued while the first ran.
        self.assertTrue(all(j.created < jobs[0].completed for j in jobs))
        self.assertEqual(machine["order"], ["org-1", "org-2"] * 3)
        self.assertEqual(machine["max_running"], 1)
        self.assertEqual(_overlaps(jobs), 0)
        by_id = {j.id: j for j in jobs}
        starts = [j.id for j in sorted(jobs, key=lambda j: j.started)]
        self.assertEqual([by_id[i].org for i in starts], ["org-1", "org-2"] * 3)
        # Within a key: submission order.
        self.assertEqual([i for i in starts if i in ids[:3]], ids[:3])
        self.assertEqual([i for i in starts if i in ids[3:]], ids[3:])

    def test_backends_are_separate_machines(self):
        with _server(job_overhead=0.5) as srv:
            ids = [http("POST", srv.url + "/jobs", body=_body(b), key="alpha")[2]["id"]
                   for b in ("simulator", "qpu.aria-1", "simulator", "qpu.aria-1")]
            jobs = _wait_completed(srv, ids)
            machines = srv.stats()["machines"]
        self.assertEqual({k: v["executed"] for k, v in machines.items()},
                         {"simulator": 2, "qpu.aria-1": 2})
        self.assertEqual({v["max_running"] for v in machines.values()}, {1})
        self.assertEqual(_overlaps([jobs[0], jobs[2]]) + _overlaps([jobs[1], jobs[3]]), 0)


class TestMachine(unittest.TestCase):
    """The scheduler alone, driven step by step on an event loop."""

    def test_round_robin_and_cancelled_waiters(self):
        async def scenario() -> list[str]:
            machine = Machine()
            served: list[str] = []

            async def job(org: str, name: str) -> None:
                await machine.acquire(org)
                served.append(name)

            await machine.acquire("a")  # a1 holds the machine
            served.append("a1")
            tasks = {}
            for org, name in [("a", "a2"), ("a", "a3"), ("b", "b1"), ("c", "c1"),
                              ("b", "b2"), ("c", "c2")]:
                tasks[name] = asyncio.ensure_future(job(org, name))
                await asyncio.sleep(0)
            tasks["c1"].cancel()  # a cancelled job leaves its queue
            await asyncio.sleep(0)
            self.assertEqual(machine.running, 1)
            while len(served) < 6:
                machine.release()
                for _ in range(3):
                    await asyncio.sleep(0)
                self.assertEqual(machine.running, 1)
            machine.release()
            self.assertEqual((machine.running, machine.max_running), (0, 1))
            return served

        served = asyncio.run(scenario())
        # a1, then b, c (c1 was cancelled: c2), a, b, a.
        self.assertEqual(served, ["a1", "b1", "c2", "a2", "b2", "a3"])

    def test_cancelled_after_grant_passes_the_machine_on(self):
        async def scenario() -> list[str]:
            machine = Machine()
            served: list[str] = []
            await machine.acquire("a")
            b = asyncio.ensure_future(machine.acquire("b"))
            c = asyncio.ensure_future(machine.acquire("c"))
            await asyncio.sleep(0)
            machine.release()  # granted to b ...
            b.cancel()  # ... which is cancelled before it runs: c gets the machine
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            self.assertTrue(b.cancelled())
            self.assertTrue(c.done())
            served.append("c")
            self.assertEqual(machine.running, 1)
            machine.release()
            self.assertEqual(machine.running, 0)
            return served

        self.assertEqual(asyncio.run(scenario()), ["c"])

    def test_organization_labels_hide_the_key(self):
        orgs = Organizations()
        self.assertEqual(orgs.label(None), ANONYMOUS)
        first, second = orgs.label("k3y-alpha-1"), orgs.label("k3y-alpha-2")
        self.assertEqual((first, second), ("org-1", "org-2"))
        self.assertEqual(orgs.label("k3y-alpha-1"), "org-1")
        self.assertNotIn("k3y-alpha", repr(orgs.__dict__))


if __name__ == "__main__":
    unittest.main()
