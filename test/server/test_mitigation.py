"""Debiasing emulation: when it runs, its variants, and the averaged / sharpened aggregation."""

from __future__ import annotations

import json
import unittest
import uuid

import numpy as np
from qiskit import QuantumCircuit
from qiskit_ionq.helpers import qiskit_circ_to_ionq_circ

from qstore_qiskit.server import mitigation
from qstore_qiskit.server.config import ServerConfig
from qstore_qiskit.server.jobs import Job, parse_job_request
from qstore_qiskit.server.runner import simulate_job


def _job(qc: QuantumCircuit, shots: int, backend: str = "qpu.aria-1", settings=None,
         gateset: str = "qis", seed: int = 11) -> Job:
    gates, _, _ = qiskit_circ_to_ionq_circ(qc, gateset)
    body = {"type": "ionq.circuit.v1", "backend": backend, "shots": shots,
            "noise": {"model": "aria-1", "seed": seed},
            "input": {"gateset": gateset, "qubits": qc.num_qubits, "circuit": gates}}
    if settings is not None:
        body["settings"] = settings
    spec = parse_job_request(body, ServerConfig(max_qubits=29))
    return Job(id="job-1", spec=spec, seq=1)


class TestWhenDebiasingRuns(unittest.TestCase):
    """IonQ's documented defaults and limits."""

    def test_rules(self):
        on = {"error_mitigation": {"debiasing": True}}
        off = {"error_mitigation": {"debiasing": False}}
        twirl = {"error_mitigation": {"debiasing": {"phi_chi_twirling": {"p2q": 0.1}}}}
        req = mitigation.debiasing_requested
        self.assertTrue(req(None, "qis", 500, "qpu.aria-1"))  # qis: on by default
        self.assertFalse(req(None, "native", 500, "qpu.aria-1"))  # native: off by default
        self.assertTrue(req(on, "native", 500, "qpu.forte-1"))
        self.assertFalse(req(off, "qis", 1000, "qpu.aria-1"))
        self.assertTrue(req(twirl, "qis", 1000, "qpu.aria-1"))
        self.assertFalse(req(on, "qis", 499, "qpu.aria-1"))  # under 500 shots: never
        self.assertFalse(req(on, "qis", 1000, "simulator"))  # never on simulators
        self.assertFalse(req({"compilation": {}}, "qis", 100, "qpu.aria-1"))

    def test_plan_splits_shots_over_distinct_physical_qubits(self):
        rng = np.random.default_rng(3)
        plan = mitigation.plan_variants(4, 25, 1003, rng)
        self.assertEqual(len(plan), 10)
        self.assertEqual(sum(shots for *_, shots in plan), 1003)
        for variant_id, qubit_map, layout, _ in plan:
            uuid.UUID(variant_id)
            self.assertEqual(len(set(qubit_map)), 4)
            self.assertTrue(all(0 <= q < 25 for q in qubit_map))
            self.assertEqual(sorted(layout), [0, 1, 2, 3])
            # layout keeps the physical order: the lowest physical qubit is simulated on 0
            self.assertEqual(layout[int(np.argmin(qubit_map))], 0)
        self.assertEqual(len({p[0] for p in plan}), 10)
        self.assertEqual(len(mitigation.plan_variants(2, 25, 500, rng)), 5)


class TestAggregation(unittest.TestCase):
    """Averaging and plurality voting, computed by hand."""

    def test_average_and_sharpen(self):
        variants = [{0: 60, 3: 40}, {0: 45, 3: 50, 1: 5}, {3: 70, 2: 30}]
        averaged = mitigation.aggregate_variants(variants, sharpen=False)
        self.assertAlmostEqual(averaged[0], (0.6 + 0.45 + 0) / 3)
        self.assertAlmostEqual(averaged[3], (0.4 + 0.5 + 0.7) / 3)
        self.assertAlmostEqual(averaged[1], 0.05 / 3)
        self.assertAlmostEqual(sum(averaged.values()), 1.0)
        sharpened = mitigation.aggregate_variants(variants, sharpen=True)
        self.assertEqual(sharpened, {0: 1 / 3, 3: 2 / 3})

    def test_ties_split_the_vote_and_empty_inputs(self):
        self.assertEqual(mitigation.aggregate_variants([{1: 5, 2: 5}, {2: 9}], sharpen=True),
                         {1: 0.25, 2: 0.75})
        self.assertEqual(mitigation.aggregate_variants([], sharpen=True), {})
        self.assertEqual(mitigation.aggregate_variants([{}], sharpen=False), {})


class TestDebiasedJobs(unittest.TestCase):
    """simulate_job on a simulated QPU: variants, their records, and the aggregates."""

    def test_variants_map_back_to_logical_qubits(self):
        qc = QuantumCircuit(3)
        qc.x(0)
        qc.cx(1, 2)
        qc.cx(1, 2)  # |001>: outcome 1 whatever qubits the variant uses
        job = _job(qc, 1000)
        simulate_job(job, None)
        self.assertEqual(len(job.variants), 10)
        maps = {tuple(v.qubit_map) for v in job.variants.values()}
        self.assertGreater(len(maps), 1)
        for variant in job.variants.values():
            self.assertEqual(sum(variant.histogram.values()), variant.shots)
            self.assertEqual(variant.probabilities,
                             {k: c / variant.shots for k, c in variant.histogram.items()})
            self.assertEqual(max(variant.histogram, key=variant.histogram.get), 1)
        self.assertEqual(sum(job.histogram.values()), 1000)
        self.assertEqual(mitigation.job_probabilities(job, sharpen=True), {1: 1.0})
        self.assertEqual(json.loads(job.sharpened_json), {"1": 1.0})
        averaged = mitigation.job_probabilities(job, sharpen=False)
        self.assertEqual(json.loads(job.probabilities_json),
                         {str(k): v for k, v in averaged.items()})
        self.assertGreater(averaged[1], 0.9)
        self.assertLess(averaged[1], 1.0)  # aria-1 noise: 1.33 % per two-qubit gate

    def test_output_records_and_shots(self):
        qc = QuantumCircuit(2)
        qc.h(0)
        qc.cx(0, 1)
        job = _job(qc, 600)
        simulate_job(job, None)
        output = mitigation.debiasing_output(job)
        variants = output["error_mitigation"]["debiasing"]["variants"]
        self.assertEqual(len(variants), 6)
        first = variants[0]
        self.assertEqual(set(first), {"variant_id", "qubit_map", "shots", "results"})
        self.assertEqual(first["results"]["histogram"]["url"],
                         f"/v0.4/jobs/job-1/variants/{first['variant_id']}/results/histogram")
        variant = job.variants[first["variant_id"]]
        self.assertIs(mitigation.find_variant(job, first["variant_id"]), variant)
        self.assertIsNone(mitigation.find_variant(job, "nope"))
        shots = mitigation.variant_shots(variant)
        self.assertEqual(len(shots), variant.shots)
        self.assertEqual(shots, mitigation.variant_shots(variant))  # seeded order
        self.assertEqual({k: shots.count(k) for k in set(shots)}, variant.histogram)
        # GHZ: every variant votes 0 or 3
        self.assertTrue(set(mitigation.job_probabilities(job, sharpen=True)) <= {0, 3})

    def test_no_variants_without_debiasing(self):
        qc = QuantumCircuit(2)
        qc.h(0)
        for kwargs in ({"shots": 400}, {"shots": 1000, "backend": "simulator"},
                       {"shots": 1000, "settings": {"error_mitigation": {"debiasing": False}}}):
            job = _job(qc, **kwargs)
            simulate_job(job, None)
            self.assertFalse(getattr(job, "variants", None))  # absent or empty
            self.assertIsNone(getattr(job, "sharpened_json", None))
            self.assertIsNone(mitigation.job_probabilities(job, sharpen=True))
            self.assertIsNone(mitigation.debiasing_output(job))

    def test_seeded_debiased_jobs_reproduce(self):
        qc = QuantumCircuit(2)
        qc.h(0)
        qc.cx(0, 1)
        a, b = _job(qc, 500, seed=4), _job(qc, 500, seed=4)
        simulate_job(a, None)
        simulate_job(b, None)
        self.assertEqual(list(a.variants), list(b.variants))
        self.assertEqual([v.histogram for v in a.variants.values()],
                         [v.histogram for v in b.variants.values()])


if __name__ == "__main__":
    unittest.main()
