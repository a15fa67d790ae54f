"""IonQ sessions and cost before spend, against the local server's v0.4 routes."""

from __future__ import annotations

import os
import threading
import unittest
from unittest import mock

from qiskit import QuantumCircuit
from qiskit.circuit.library import efficient_su2

from qstore_qiskit import QStoreProvider
from qstore_qiskit.client import IonQRequestError
from qstore_qiskit.providers import CostEstimate, CostLimitError, Session
from qstore_qiskit.server import LocalServer

KEY = "session-test-key"


def bell() -> QuantumCircuit:
    qc = QuantumCircuit(2, 2, name="bell")
    qc.h(0)
    qc.cx(0, 1)
    qc.measure([0, 1], [0, 1])
    return qc


class ServiceTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.server = LocalServer(profile="instant", api_key=KEY)
        cls.server.start()
        cls._env = mock.patch.dict(os.environ, {}, clear=False)
        cls._env.start()
        for name in ("IONQ_API_KEY", "IONQ_API_TOKEN", "QISKIT_IONQ_API_TOKEN", "IONQ_API_URL", "QISKIT_IONQ_API_URL"):
            os.environ.pop(name, None)
        cls.provider = QStoreProvider(token=KEY, url=cls.server.url)
        cls.qpu = cls.provider.get_backend("qpu.aria-1")  # priced; the local server runs it ideal
        cls.sim = cls.provider.get_backend("simulator")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.provider.close()
        cls.server.stop()
        cls._env.stop()
        super().tearDownClass()

    def doc(self, job_id: str) -> dict:
        return self.provider._service(None).get_job(job_id)

    def created(self) -> int:
        """Jobs the server has accepted so far."""
        return sum(1 for _ in self.provider._service(None).request("GET", "jobs", params={"limit": "1000"})["jobs"])


class TestSessions(ServiceTestCase):
    def test_context_manager_opens_uses_and_closes(self):
        with self.qpu.session(max_jobs=10) as session:
            self.assertIsInstance(session, Session)
            self.assertIn(session.status(), ("created", "started"))
            job = self.qpu.run(bell(), shots=50)
            job2 = session.run(bell(), shots=50)
            for j in (job, job2):
                self.assertEqual(sum(j.result().get_counts().values()), 50)
                self.assertEqual(self.doc(j.ionq_job_ids()[0])["session_id"], session.session_id)
        self.assertTrue(session.closed)
        self.assertEqual(session.status(), "ended")
        # After the block, runs carry no session.
        job = self.qpu.run(bell(), shots=10)
        self.assertIsNone(self.doc(job.job_id())["session_id"])

    def test_qiskit_ionq_signature_and_from_id(self):
        session = Session(self.qpu, max_time=30)
        try:
            attached = Session.from_id(session.session_id, backend=self.qpu)
            job = self.qpu.run(bell(), shots=10, session_id=attached.session_id)
            self.assertEqual(self.doc(job.job_id())["session_id"], session.session_id)
            self.assertEqual(attached.details()["id"], session.session_id)
        finally:
            session.close()
            session.close()  # idempotent
        self.assertEqual(session.status(), "ended")
        with self.assertRaises(ValueError):
            Session(self.qpu, create_new=False)
        with self.assertRaises(IonQRequestError):
            Session.from_id("00000000-0000-0000-0000-000000000000", backend=self.qpu)

    def test_closed_on_error_and_other_threads_unaffected(self):
        seen: dict[str, object] = {}

        def other_thread():
            seen["doc"] = self.doc(self.qpu.run(bell(), shots=10).job_id())

        with self.assertRaises(RuntimeError):
            with self.qpu.session() as session:
                worker = threading.Thread(target=other_thread)
                worker.start()
                worker.join()
                raise RuntimeError("boom")
        self.assertEqual(session.status(), "ended")
        self.assertIsNone(seen["doc"]["session_id"])  # not silently billed to the session

    def test_session_of_another_backend_is_not_used(self):
        with self.qpu.session():
            job = self.sim.run(bell(), shots=10)
            self.assertIsNone(self.doc(job.job_id())["session_id"])


class TestCostBeforeSpend(ServiceTestCase):
    def test_estimate_cost(self):
        estimate = self.qpu.estimate_cost(bell(), shots=100)
        self.assertIsInstance(estimate, CostEstimate)
        self.assertGreater(estimate.cost, 0)
        self.assertEqual(estimate.cost_unit, "usd")
        self.assertEqual(estimate.circuits, 1)
        # The service's own answer for the gate counts we send.
        (shape,) = estimate.by_shape
        direct = self.provider._service(None).estimate(
            {"backend": "qpu.aria-1", "1q_gates": str(shape["1q_gates"]), "2q_gates": str(shape["2q_gates"]),
             "qubits": str(shape["qubits"]), "shots": "100"}
        )
        self.assertAlmostEqual(estimate.cost, direct["estimated_cost"])
        self.assertEqual(self.sim.estimate_cost(bell(), shots=100).cost, 0.0)

    def test_bindings_of_one_ansatz_price_once_per_shape(self):
        ansatz = efficient_su2(3, reps=1)
        ansatz.measure_all()
        values = {p: [0.1 * i for i in range(20)] for p in ansatz.parameters}
        before = self.server.stats()["by_route"].get("estimate_job", 0)
        estimate = self.qpu.estimate_cost(ansatz, shots=100, parameter_binds=[values])
        calls = self.server.stats()["by_route"].get("estimate_job", 0) - before
        self.assertEqual(estimate.circuits, 20)
        self.assertEqual(calls, len(estimate.by_shape))
        self.assertLess(calls, 20)
        self.assertAlmostEqual(estimate.cost, sum(r["cost"] * r["circuits"] for r in estimate.by_shape))

    def test_max_cost_refuses_and_sends_nothing(self):
        price = self.qpu.estimate_cost(bell(), shots=100).cost
        before = self.created()
        with self.assertRaisesRegex(CostLimitError, "exceeds max_cost.*nothing was sent"):
            self.qpu.run(bell(), shots=100, max_cost=price / 2)
        self.assertEqual(self.created(), before)
        job = self.qpu.run(bell(), shots=100, max_cost=price * 1.01)  # within budget: runs
        self.assertEqual(sum(job.result().get_counts().values()), 100)
        self.assertEqual(self.created(), before + 1)
        with self.assertRaisesRegex(ValueError, "max_cost"):
            self.qpu.run(bell(), max_cost=-1)

    def test_session_max_cost_counts_what_ran(self):
        price = self.qpu.estimate_cost(bell(), shots=100, session_id="x").cost
        with self.qpu.session(max_cost=price * 2.5) as session:
            for _ in range(2):
                self.qpu.run(bell(), shots=100).result()
            before = self.created()
            with self.assertRaisesRegex(CostLimitError, "session.*max_cost"):
                self.qpu.run(bell(), shots=100)
            self.assertEqual(self.created(), before)
            self.assertAlmostEqual(session.estimated_spend, 2 * price)
        self.assertEqual(session.details()["settings"]["cost_limit"]["value"], price * 2.5)


if __name__ == "__main__":
    unittest.main()
