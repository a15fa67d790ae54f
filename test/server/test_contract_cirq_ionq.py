"""Contract suite: cirq-ionq, unmodified, against the local server (issue #14).

cirq-ionq 1.x runs against IonQ's cloud every day, so what it sends is what the cloud
accepts and what it parses is what the cloud answers. Every public operation of its
``Service`` and ``Job`` is driven here: run, create/get/list (0, 1, many jobs; limits),
batch jobs, native gates including ZZ, noise models with seeds, error mitigation,
cancel (queued, running, completed), delete and calibrations. Its retry window is cut to
a few seconds so that a wrong answer fails the test instead of hanging it.
"""

from __future__ import annotations

import collections
import datetime
import unittest
import warnings

import numpy as np

try:
    import cirq
    import cirq_ionq
except ImportError:  # pragma: no cover - cirq-ionq is in the test extras
    cirq = cirq_ionq = None

from qstore_qiskit.server import LocalServer

from .helpers import http
from .openapi_check import validating_middleware

KEY = "cirq-contract-key"


def bell(key: str = "m"):
    q = cirq.LineQubit.range(2)
    return cirq.Circuit(cirq.H(q[0]), cirq.CNOT(q[0], q[1]), cirq.measure(*q, key=key))


def basis_state(value: int, width: int = 3):
    """A circuit preparing |value> (cirq's qubit 0 is the most significant bit)."""
    q = cirq.LineQubit.range(width)
    flips = [cirq.X(q[i]) for i in range(width) if (value >> (width - 1 - i)) & 1]
    return cirq.Circuit(*flips, cirq.measure(*q, key="m"))


@unittest.skipIf(cirq_ionq is None, "needs cirq-ionq")
class CirqCase(unittest.TestCase):
    server_args: dict = {}

    @classmethod
    def setUpClass(cls):
        # Every response any server of these tests sends is checked against the OpenAPI
        # document, whatever cirq-ionq asked.
        cls._validation = validating_middleware()
        cls.conformance = cls._validation.__enter__()
        cls.srv = LocalServer(api_key=KEY, seed=21, **cls.server_args).start()
        cls.service = cirq_ionq.Service(remote_host=cls.srv.base_url, api_key=KEY,
                                        default_target="simulator", max_retry_seconds=2)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        cls._validation.__exit__(None, None, None)

    def setUp(self):
        warnings.simplefilter("ignore")

    def tearDown(self):
        self.assertEqual(self.conformance, [], "responses that do not match the document")


class TestCirqRunAndJobs(CirqCase):
    def test_list_jobs_zero_one_many_and_limits(self):
        with LocalServer(api_key=KEY) as srv:
            service = cirq_ionq.Service(remote_host=srv.base_url, api_key=KEY,
                                        default_target="simulator", max_retry_seconds=2)
            self.assertEqual(service.list_jobs(), ())  # returns (no endless paging)
            first = service.create_job(bell(), repetitions=10)
            self.assertEqual([j.job_id() for j in service.list_jobs()], [first.job_id()])
            ids = [service.create_job(bell(), repetitions=10).job_id() for _ in range(6)]
            listed = [j.job_id() for j in service.list_jobs(limit=100)]
            self.assertEqual(len(listed), 7)  # every job once, not `limit` copies
            self.assertEqual(len(set(listed)), 7)
            self.assertEqual(listed[0], ids[-1])  # newest first
            self.assertEqual(len(service.list_jobs(limit=3)), 3)
            # small pages: cirq-ionq follows `next` until it is absent
            paged = [j.job_id() for j in service.list_jobs(limit=100, batch_size=2)]
            self.assertEqual(paged, listed)
            self.assertEqual(len(service.list_jobs(status="completed")), 7)
            self.assertEqual(service.list_jobs(status="canceled"), ())

    def test_run_and_create_get(self):
        result = self.service.run(bell(), repetitions=200, name="bell run")
        hist = result.histogram(key="m")
        self.assertEqual(sum(hist.values()), 200)
        self.assertLessEqual(set(hist), {0, 3})
        job = self.service.create_job(basis_state(5), repetitions=50, name="five")
        again = self.service.get_job(job.job_id())
        self.assertEqual(again.status(), "completed")
        self.assertEqual(again.name(), "five")
        self.assertEqual(again.repetitions(), 50)
        self.assertEqual(again.num_qubits(), 3)
        self.assertEqual(again.target(), "simulator")
        res = again.results()
        self.assertEqual(dict(res.probabilities()), {5: 1.0})  # big-endian, like cirq
        with self.assertRaises(cirq_ionq.IonQNotFoundException):
            self.service.get_job("no-such-job")

    def test_batch_jobs_keep_circuit_order(self):
        circuits = [basis_state(v) for v in (6, 1, 4, 3)]
        results = self.service.run_batch(circuits, repetitions=40)
        for value, res in zip((6, 1, 4, 3), results):
            self.assertEqual(res.histogram(key="m"), collections.Counter({value: 40}))
        job = self.service.create_batch_job(circuits, repetitions=30)
        per_circuit = job.results()
        self.assertEqual([dict(r.probabilities()) for r in per_circuit],
                         [{v: 1.0} for v in (6, 1, 4, 3)])

    def test_native_gates_including_zz(self):
        q = cirq.LineQubit.range(2)
        circuit = cirq.Circuit(
            cirq_ionq.GPI2Gate(phi=0.25).on(q[0]),
            cirq_ionq.GPIGate(phi=0.1).on(q[1]),
            cirq_ionq.MSGate(phi0=0.0, phi1=0.25, theta=0.125).on(*q),
            cirq_ionq.ZZGate(theta=0.2).on(*q),  # sent with "phase", not "angle"
            cirq_ionq.GPI2Gate(phi=0.75).on(q[0]),
            cirq.measure(*q, key="m"),
        )
        job = self.service.create_job(circuit, repetitions=100)
        probs = job.results().probabilities()
        # the exact distribution of cirq's own unitary simulation of the same gates
        state = cirq.final_state_vector(cirq.drop_terminal_measurements(circuit),
                                        qubit_order=q, dtype=np.complex128)
        exact = np.abs(state) ** 2
        for value, p in probs.items():  # cirq's big-endian values index its state
            self.assertAlmostEqual(p, exact[value], places=9)
        self.assertAlmostEqual(sum(probs.values()), 1.0)

    def test_noise_models_with_seeds(self):
        for model in ("aria-1", "aria-2", "forte-1", "forte-enterprise-1", "harmony-2"):
            with self.subTest(model=model):
                runs = [self.service.run(bell(), repetitions=300,
                                         noise={"model": model, "seed": 9}).histogram(key="m")
                        for _ in range(2)]
                self.assertEqual(sum(runs[0].values()), 300)
                # same seed, same noise draw: the server-side distribution repeats
                jobs = [self.service.create_job(bell(), repetitions=300,
                                                noise={"model": model, "seed": 9})
                        for _ in range(2)]
                self.assertEqual(jobs[0].results().probabilities(),
                                 jobs[1].results().probabilities())

    def test_sampler(self):
        sampler = self.service.sampler(seed=3)
        result = sampler.run(bell(), repetitions=64)
        self.assertEqual(len(result.measurements["m"]), 64)

    def test_error_mitigation_on_qpu(self):
        result = self.service.run(bell(), repetitions=600, target="qpu",
                                  error_mitigation={"debiasing": True})
        self.assertEqual(sum(result.histogram(key="m").values()), 600)
        with self.assertRaises(cirq_ionq.IonQException) as ctx:  # fewer than 500 shots
            self.service.run(bell(), repetitions=100, target="qpu",
                             error_mitigation={"debiasing": True})
        self.assertEqual(ctx.exception.status_code, 400)


class TestCirqCancelDelete(CirqCase):
    server_args = {"profile": "cloud", "queue_wait": 30.0, "rate_limit": None}

    def test_cancel_queued_job(self):
        job = self.service.create_job(bell(), repetitions=10)
        self.assertEqual(job.status(), "submitted")
        job.cancel()
        self.assertEqual(job.status(), "canceled")
        fresh = self.service.get_job(job.job_id())
        self.assertEqual(fresh.status(), "canceled")
        with self.assertRaises(RuntimeError):  # cirq-ionq's "not completed" error
            fresh.results()

    def test_delete(self):
        job = self.service.create_job(bell(), repetitions=10)
        job.delete()
        self.assertEqual(job.status(), "deleted")
        with self.assertRaises(cirq_ionq.IonQNotFoundException):
            self.service.get_job(job.job_id())


class TestCirqCancelRunningAndCompleted(CirqCase):
    server_args = {"inline_execution": False, "job_overhead": 30.0}

    def test_cancel_running_job(self):
        job = self.service.create_job(bell(), repetitions=10)
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=10)
        while self.service.get_job(job.job_id()).status() != "started":
            self.assertLess(datetime.datetime.now(), deadline)
        job.cancel()
        self.assertEqual(self.service.get_job(job.job_id()).status(), "canceled")

    def test_cancel_completed_job(self):
        with LocalServer(api_key=KEY) as srv:
            service = cirq_ionq.Service(remote_host=srv.base_url, api_key=KEY,
                                        default_target="simulator", max_retry_seconds=2)
            job = service.create_job(bell(), repetitions=10)
            self.assertEqual(job.status(), "completed")
            job.cancel()  # "the IonQ API v0.4 can cancel a completed job"
            again = service.get_job(job.job_id())
            self.assertEqual(again.status(), "canceled")
            with self.assertRaises(RuntimeError):
                again.results()


class TestCirqCalibrations(CirqCase):
    def test_current_and_listed(self):
        current = self.service.get_current_calibration()
        self.assertEqual(current.target(), "qpu")
        self.assertEqual(current.num_qubits(), 25)
        self.assertTrue(0.9 < current.fidelities()["2q"]["median"] <= 1.0)
        self.assertIn("readout", current.timings())
        self.assertIn((cirq.LineQubit(0), cirq.LineQubit(1)), current.connectivity())
        listed = self.service.list_calibrations(limit=40, batch_size=7)
        self.assertEqual(len(listed), 30)  # all of them, across pages of 7
        times = [c.calibration_time(datetime.timezone.utc) for c in listed]
        self.assertEqual(times, sorted(times, reverse=True))
        self.assertEqual(len(set(times)), 30)
        start = times[4] - datetime.timedelta(seconds=1)
        recent = self.service.list_calibrations(start=start)
        self.assertEqual(len(recent), 5)
        self.assertEqual(self.service.list_calibrations(limit=3)[0].calibration_time(),
                         current.calibration_time())

    def test_errors_are_clear_not_hangs(self):
        status, _, body = http("GET", self.srv.url + "/jobs/x/results/probabilities", key=KEY)
        self.assertEqual(status, 404)
        bad = cirq_ionq.Service(remote_host=self.srv.base_url, api_key="wrong",
                                default_target="simulator", max_retry_seconds=2)
        with self.assertRaises(cirq_ionq.IonQException) as ctx:
            bad.list_jobs()
        self.assertEqual(ctx.exception.status_code, 401)


if __name__ == "__main__":
    unittest.main()
