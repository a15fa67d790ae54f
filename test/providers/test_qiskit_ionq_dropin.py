"""qiskit-ionq's documented examples, with the import swapped, against the local server.

Each test follows one section of qiskit-ionq's README (Provider Setup, Credential
Environment Variables, Submitting a Circuit, Per-shot memory, Basis gates and
transpilation) written from its documentation with ``from qiskit_ionq import
IonQProvider, ErrorMitigation`` replaced by ``from qstore_qiskit import IonQProvider,
ErrorMitigation`` and nothing else changed; the credentials point at a
:class:`~qstore_qiskit.server.LocalServer` through the environment variables
qiskit-ionq reads. Results are checked against the exact distributions, and the job
records on the server against what the options mean in qiskit-ionq.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import unittest
from unittest import mock

from qiskit import QuantumCircuit, transpile
from qiskit.providers import JobStatus
from qiskit.quantum_info import Statevector

from qstore_qiskit.server import LocalServer

from .helpers import assert_counts_match, exact_distribution

KEY = "dropin-test-key"


class DropInTestCase(unittest.TestCase):
    """A local server whose URL and key are in qiskit-ionq's environment variables."""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.server = LocalServer(profile="instant", api_key=KEY)
        cls.server.start()
        cls._env = mock.patch.dict(
            os.environ, {"IONQ_API_KEY": KEY, "IONQ_API_URL": cls.server.url}, clear=False
        )
        cls._env.start()
        for name in ("QISKIT_IONQ_API_TOKEN", "IONQ_API_TOKEN", "QISKIT_IONQ_API_URL"):
            os.environ.pop(name, None)
        cls.providers: list = []

    @classmethod
    def tearDownClass(cls) -> None:
        for provider in cls.providers:
            provider.close()
        cls._env.stop()
        cls.server.stop()
        super().tearDownClass()

    def job_doc(self, job_id: str) -> dict:
        provider = self.providers[-1]
        return provider._service(None).get_job(job_id)


class TestReadmeExamples(DropInTestCase):
    def test_provider_setup_and_bell_with_error_mitigation(self):
        # --- README: "Credential Environment Variables" + "Submitting a Circuit" ---
        from qstore_qiskit import ErrorMitigation, IonQProvider

        provider = IonQProvider()
        self.providers.append(provider)

        # Show all current supported backends:
        names = [b.name for b in provider.backends()]
        self.assertIn("ionq_simulator", names)

        # Get IonQ's simulator backend:
        simulator_backend = provider.get_backend("ionq_simulator")

        # Create a basic Bell State circuit:
        qc = QuantumCircuit(2, 2)
        qc.h(0)
        qc.cx(0, 1)
        qc.measure([0, 1], [0, 1])

        # Run the circuit on IonQ's platform with error mitigation:
        job = simulator_backend.run(qc, error_mitigation=ErrorMitigation.DEBIASING)

        counts = job.result().get_counts()
        assert_counts_match(self, counts, exact_distribution(qc), 1024)
        with self.assertWarnsRegex(UserWarning, "sharpen"):
            self.assertEqual(job.result(sharpen=True).get_counts(), counts)
        probabilities = job.result().get_probabilities()
        self.assertEqual(set(probabilities), {"00", "11"})
        self.assertAlmostEqual(probabilities["00"], 0.5, places=9)
        self.assertAlmostEqual(probabilities["11"], 0.5, places=9)

        # The service received error mitigation where qiskit-ionq sends it.
        doc = self.job_doc(job.job_id())
        self.assertEqual(doc["settings"].get("error_mitigation"), {"debiasing": True})
        self.assertEqual(job.status(), JobStatus.DONE)

    def test_token_argument(self):
        # --- README: "Provider Setup": IonQProvider("token") ---
        from qstore_qiskit import IonQProvider

        provider = IonQProvider(KEY)
        self.providers.append(provider)
        backend = provider.get_backend("simulator")
        qc = QuantumCircuit(1, 1)
        qc.x(0)
        qc.measure(0, 0)
        self.assertEqual(backend.run(qc, shots=10).result().get_counts(), {"1": 10})

    def test_per_shot_memory(self):
        # --- README: "Per-shot memory (memory)" ---
        from qstore_qiskit import IonQProvider

        provider = IonQProvider()
        self.providers.append(provider)
        backend = provider.get_backend("ionq_simulator")
        qc = QuantumCircuit(2, 2)
        qc.h(0)
        qc.cx(0, 1)
        qc.measure([0, 1], [0, 1])
        job = backend.run(qc, shots=1000, memory=True)
        memory = job.get_memory()
        self.assertEqual(len(memory), 1000)
        self.assertTrue(set(memory) <= {"00", "11"})
        # Without memory=True there is none, with a clear error (as in qiskit-ionq).
        job = backend.run(qc, shots=10)
        with self.assertRaisesRegex(Exception, "memory=True"):
            job.get_memory()

    def test_basis_gates_and_transpilation(self):
        # --- README: "Basis gates and transpilation" ---
        from math import pi

        from qstore_qiskit import IonQProvider

        provider = IonQProvider()
        self.providers.append(provider)
        simulator_backend = provider.get_backend("ionq_simulator")

        qc2 = QuantumCircuit(1, 1)
        qc2.u(pi, pi / 2, pi / 4, 0)
        qc2.measure(0, 0)
        transpiled_circuit = transpile(qc2, simulator_backend)
        # Equivalent on the one qubit used (the target has more; they stay idle).
        used = {transpiled_circuit.find_bit(q).index for inst in transpiled_circuit.data for q in inst.qubits
                if inst.name not in ("barrier", "measure")}
        self.assertEqual(used, {0})
        native = QuantumCircuit(1, global_phase=transpiled_circuit.global_phase)
        for inst in transpiled_circuit.data:
            if inst.name not in ("barrier", "measure"):
                native.append(inst.operation, [0])
        # The compiler may use that qubits start in |0>: compare the prepared states.
        unitary = qc2.remove_final_measurements(inplace=False)
        self.assertTrue(Statevector(native).equiv(Statevector(unitary)))
        counts = simulator_backend.run(transpiled_circuit, shots=100).result().get_counts()
        self.assertEqual(counts, {"1": 100})

    def test_qis_and_native_gatesets(self):
        # get_backend(..., gateset=...) as in qiskit-ionq: the target is that gate set.
        from qstore_qiskit import IonQProvider

        provider = IonQProvider()
        self.providers.append(provider)
        qis = provider.get_backend("simulator", gateset="qis")
        native = provider.get_backend("simulator", gateset="native")
        self.assertEqual(qis.gateset(), "qis")
        self.assertEqual(native.gateset(), "native")
        self.assertIn("cx", qis.target.operation_names)
        self.assertNotIn("ms", qis.target.operation_names)
        # The native target holds GPi2/GPi/MS in their standard-gate form (sx, x, rxx
        # around virtual rz), which run() sends as gpi2/gpi/ms (checked below).
        self.assertLessEqual({"sx", "x", "rxx"}, set(native.target.operation_names))
        self.assertNotIn("cx", native.target.operation_names)
        qc = QuantumCircuit(2, 2)
        qc.h(0)
        qc.cx(0, 1)
        qc.measure([0, 1], [0, 1])
        for backend, gateset in ((qis, "qis"), (native, "native")):
            with self.subTest(gateset):
                job = backend.run(transpile(qc, backend), shots=200)
                assert_counts_match(self, job.result().get_counts(), exact_distribution(qc), 200)
                self.assertEqual(job.result().results[0].metadata["gateset"], gateset)
                sent = {g["gate"] for g in job._prepared[0].body["circuit"]}
                self.assertEqual(bool(sent & {"gpi", "gpi2", "ms"}), gateset == "native", sent)


class TestDropInCalls(DropInTestCase):
    """The rest of qiskit-ionq's public calls, each with its meaning."""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        from qstore_qiskit import IonQProvider

        cls.provider = IonQProvider()
        cls.providers.append(cls.provider)
        cls.backend = cls.provider.get_backend("simulator")

    def bell(self) -> QuantumCircuit:
        qc = QuantumCircuit(2, 2, name="bell")
        qc.h(0)
        qc.cx(0, 1)
        qc.measure([0, 1], [0, 1])
        return qc

    def test_backend_names(self):
        for name, api in (
            ("simulator", "simulator"),
            ("ionq_simulator", "simulator"),
            ("qpu.aria-1", "qpu.aria-1"),
            ("ionq_qpu.aria-1", "qpu.aria-1"),
            ("ionq_qpu", "qpu"),
            ("qpu.forte-1", "qpu.forte-1"),
        ):
            with self.subTest(name):
                self.assertEqual(self.provider.get_backend(name)._api_backend, api)
        from qiskit.providers.exceptions import QiskitBackendNotFoundError

        with self.assertRaises(QiskitBackendNotFoundError):
            self.provider.get_backend("qpu.nonexistent")

    def test_job_settings_extra_metadata_name_noise_seed(self):
        job = self.backend.run(
            self.bell(),
            shots=300,
            job_settings={"compilation": {"opt": 1}},
            extra_metadata={"experiment": "dropin", "run": 7},
            name="my bell job",
            noise_model="aria-1",
            sampler_seed=11,
        )
        result = job.result()
        self.assertEqual(sum(result.get_counts().values()), 300)
        doc = self.job_doc(job.job_id())
        self.assertEqual(doc["name"], "my bell job")
        self.assertEqual(doc["settings"]["compilation"], {"opt": 1})
        self.assertEqual(doc["metadata"]["experiment"], "dropin")
        self.assertEqual(doc["metadata"]["run"], "7")  # IonQ metadata values are strings
        self.assertEqual(doc["noise"]["model"], "aria-1")
        self.assertEqual(doc["noise"]["seed"], 11)
        # Same seed, same counts (sampler_seed's meaning in qiskit-ionq).
        again = self.backend.run(self.bell(), shots=300, noise_model="aria-1", sampler_seed=11).result()
        self.assertEqual(again.get_counts(), result.get_counts())

    def test_bad_qiskit_ionq_option_values(self):
        for kwargs, pattern in (
            (dict(error_mitigation="debias"), "error_mitigation"),
            (dict(job_settings=[1]), "job_settings"),
            (dict(extra_metadata="x"), "extra_metadata"),
            (dict(name=""), "name"),
            (dict(noise_model=3), "noise_model"),
            (dict(dry_run=True), "unknown run option.*dry_run"),
        ):
            with self.subTest(kwargs), self.assertRaisesRegex(ValueError, pattern):
                self.backend.run(self.bell(), **kwargs)

    def test_job_id_is_the_ionq_job_id_and_retrieve_job(self):
        job = self.backend.run(self.bell(), shots=100, sampler_seed=5)
        counts = job.result().get_counts()
        job_id = job.job_id()
        doc = self.job_doc(job_id)  # an id the service knows
        self.assertEqual(doc["id"], job_id)
        self.assertEqual(job.ionq_job_ids(), [job_id])
        for retrieved in (self.backend.retrieve_job(job_id), self.provider.retrieve_job(job_id)):
            self.assertEqual(retrieved.job_id(), job_id)
            self.assertEqual(retrieved.status(), JobStatus.DONE)
            self.assertEqual(retrieved.result().get_counts(), counts)
            self.assertEqual(retrieved.get_probabilities(), job.get_probabilities())

    def test_retrieve_job_in_a_new_process(self):
        qc = QuantumCircuit(3, 2, name="partial")
        qc.x(0)
        qc.h(2)
        qc.measure(0, 1)  # clbit 1 reads qubit 0; qubit 1 is never measured
        qc.measure(2, 0)
        job = self.backend.run([qc, self.bell()], shots=200, sampler_seed=3)
        expected = job.result().get_counts()
        code = textwrap.dedent(
            f"""
            import json
            from qstore_qiskit import IonQProvider
            provider = IonQProvider()
            job = provider.get_backend("simulator").retrieve_job({job.job_id()!r})
            print(json.dumps([job.status().name, job.result().get_counts()]))
            provider.close()
            """
        )
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
            env=dict(os.environ, PYTHONPATH=root),
        )
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        import json

        status, counts = json.loads(proc.stdout.strip().splitlines()[-1])
        self.assertEqual(status, "DONE")
        self.assertEqual(counts, expected)

    def test_composite_job_id_when_split(self):
        # More circuits than one IonQ job takes: one run() becomes several IonQ jobs.
        cap = self.server.config.max_circuits_per_job
        circuits = []
        for i in range(cap + 3):
            qc = QuantumCircuit(2, 2, name=f"c{i}")
            if i % 2:
                qc.x(1)
            qc.measure([0, 1], [0, 1])
            circuits.append(qc)
        job = self.backend.run(circuits, shots=20)
        counts = job.result().get_counts()
        job_id = job.job_id()
        self.assertIn("+", job_id)
        self.assertGreaterEqual(len(job.ionq_job_ids()), 2)
        self.assertEqual(job_id.split("+"), job.ionq_job_ids())  # each job whole, in order
        retrieved = self.provider.retrieve_job(job_id)
        self.assertEqual(retrieved.result().get_counts(), counts)
        self.assertEqual(counts[0], {"00": 20})
        self.assertEqual(counts[1], {"10": 20})

    def test_composite_job_id_when_coalesced(self):
        # Two concurrent run() calls share one IonQ job: each id names only its circuits.
        from concurrent.futures import ThreadPoolExecutor

        self.backend.set_options(batch_window=0.2)
        try:
            def one(flip: bool):
                qc = QuantumCircuit(1, 1, name=f"flip{flip}")
                if flip:
                    qc.x(0)
                qc.measure(0, 0)
                return self.backend.run([qc] * 3, shots=10)

            with ThreadPoolExecutor(2) as pool:
                jobs = list(pool.map(one, (False, True)))
        finally:
            self.backend.set_options(batch_window=0.005)
        ids = [job.job_id() for job in jobs]
        parents = {jid.split("[")[0] for jid in ids}
        self.assertEqual(len(parents), 1, ids)  # one shared IonQ job
        self.assertTrue(all("[" in jid for jid in ids), ids)
        for job, want in zip(jobs, ({"0": 10}, {"1": 10})):
            retrieved = self.backend.retrieve_job(job.job_id())
            self.assertEqual(retrieved.result().get_counts(), [want] * 3)

    def test_cancel_job_by_id(self):
        from qstore_qiskit.client import IonQRequestError

        job = self.backend.run(self.bell(), shots=10)
        job.result()
        # The service's answer comes back as is, and the job record agrees with it.
        answer = self.backend.cancel_job(job.job_id())
        self.assertEqual(answer["id"], job.job_id())
        self.assertEqual(self.job_doc(job.job_id())["status"], answer["status"])
        with self.assertRaises(IonQRequestError):
            self.backend.cancel_jobs(["00000000-0000-0000-0000-000000000000"])

    def test_retrieve_job_bad_ids(self):
        for bad in ("", "a b", "abc[", "abc[1-]", 42):
            with self.subTest(bad), self.assertRaises((ValueError, TypeError)):
                self.backend.retrieve_job(bad)
        from qstore_qiskit.client import IonQRequestError

        job = self.backend.retrieve_job("00000000-0000-0000-0000-000000000000")
        with self.assertRaises(IonQRequestError):
            job.result(timeout=30)

    def test_status_and_calibration(self):
        self.assertTrue(self.backend.status())
        self.assertIsNone(self.backend.calibration())  # simulators have none, as in qiskit-ionq
        qpu = self.provider.get_backend("qpu.aria-1")
        cal = qpu.calibration()
        from qiskit_ionq.ionq_client import Characterization

        self.assertIsInstance(cal, Characterization)  # qiskit-ionq's type and attributes
        self.assertEqual(cal.backend, "qpu.aria-1")
        self.assertEqual(cal.qubits, qpu.num_qubits)
        self.assertGreater(cal.fidelity["2q"]["median"], 0.9)
        self.assertEqual(cal["backend"], "qpu.aria-1")
        self.assertIn("cx", self.provider.get_backend("simulator", gateset="qis").basis_gates)
        self.assertEqual(len(qpu.characterizations(limit=1)), 1)

    def test_num_qubits_from_service_and_too_wide_fails_at_run(self):
        record = self.provider._service(None).request("GET", "backends/simulator")
        self.assertEqual(self.backend.num_qubits, record["qubits"])
        self.assertEqual(self.backend.target.num_qubits, record["qubits"])
        wide = QuantumCircuit(record["qubits"] + 1)
        wide.h(range(wide.num_qubits))
        wide.measure_all()
        before = self.server.stats()["by_route"].get("create_job", 0) if hasattr(self.server, "stats") else None
        with self.assertRaisesRegex(ValueError, f"{record['qubits'] + 1} qubits.*has {record['qubits']}"):
            self.backend.run(wide)
        if before is not None:
            self.assertEqual(self.server.stats()["by_route"].get("create_job", 0), before)


class TestStatusMapping(unittest.TestCase):
    def test_ionq_states(self):
        from qstore_qiskit.providers.job import combined_status

        cases = {
            ("submitted",): JobStatus.QUEUED,
            ("ready",): JobStatus.QUEUED,
            ("started",): JobStatus.RUNNING,
            ("completed",): JobStatus.DONE,
            ("canceled",): JobStatus.CANCELLED,
            ("failed",): JobStatus.ERROR,
            ("completed", "started"): JobStatus.RUNNING,
            ("completed", "ready"): JobStatus.RUNNING,
            ("completed", "failed"): JobStatus.ERROR,
            ("ready", "canceled"): JobStatus.CANCELLED,
            ("completed", "completed"): JobStatus.DONE,
        }
        for states, want in cases.items():
            with self.subTest(states):
                self.assertIs(combined_status(states), want)
        from qiskit.providers import JobError

        with self.assertRaisesRegex(JobError, "unknown IonQ job status"):
            combined_status(["weird"])


class TestJobIdFormat(unittest.TestCase):
    def test_round_trip(self):
        from qstore_qiskit.providers.prepared import compose_job_id, parse_job_id

        parts = [("a1", None), ("b2", [0, 1, 2, 5, 7, 8]), ("c3", [4])]
        text = compose_job_id(parts)
        self.assertEqual(text, "a1+b2[0-2,5,7-8]+c3[4]")
        self.assertEqual(parse_job_id(text), parts)
        self.assertEqual(parse_job_id("6b9c1e0a-1111-2222-3333-444455556666"),
                         [("6b9c1e0a-1111-2222-3333-444455556666", None)])


if __name__ == "__main__":
    unittest.main()
