"""Qiskit's BackendSamplerV2 / BackendEstimatorV2 on qstore backends, against exact values."""

from __future__ import annotations

import numpy as np
from qiskit import QuantumCircuit
from qiskit import transpile
from qiskit.circuit.library import efficient_su2
from qiskit.transpiler.exceptions import TranspilerError
from qiskit.primitives import BackendEstimatorV2, BackendSamplerV2
from qiskit.quantum_info import SparsePauliOp, Statevector
from qiskit.transpiler import generate_preset_pass_manager

import qstore_qiskit

from .helpers import ProviderTestCase, ansatz, assert_counts_match, asymmetric, bell, exact_distribution

SHOTS = 4000


VALUES = np.array([[0.3, 1.1, -0.7], [2.0, -0.4, 1.3], [1.0, 2.5, 0.2]])
OBSERVABLES = SparsePauliOp.from_list([("ZZI", 0.7), ("IXX", -0.4), ("YIZ", 0.9), ("IIZ", 0.3)])


class PrimitivesTestCase(ProviderTestCase):
    def pass_managers(self):
        return {
            "raw": None,
            "preset": generate_preset_pass_manager(backend=self.backend, optimization_level=1, seed_transpiler=3),
            "qstore": qstore_qiskit.generate_ionq_pass_manager(self.backend),
        }


class TestSampler(PrimitivesTestCase):
    def test_bound_circuits(self):
        circuits = [bell(), asymmetric()]
        for name, pm in self.pass_managers().items():
            with self.subTest(pass_manager=name):
                sampler = BackendSamplerV2(backend=self.backend, options={"seed_simulator": 17})
                isa = circuits if pm is None else [pm.run(c) for c in circuits]
                result = sampler.run(isa, shots=SHOTS).result()
                for pub, circuit in zip(result, circuits):
                    assert_counts_match(self, pub.data.meas.get_counts(), exact_distribution(circuit), SHOTS)

    def test_parameter_sweep(self):
        circuit = ansatz(measure=True)
        for name, pm in self.pass_managers().items():
            with self.subTest(pass_manager=name):
                sampler = BackendSamplerV2(backend=self.backend, options={"seed_simulator": 5})
                isa = circuit if pm is None else pm.run(circuit)
                pub = sampler.run([(isa, VALUES)], shots=SHOTS).result()[0]
                self.assertEqual(pub.data.meas.shape, (len(VALUES),))
                for i, row in enumerate(VALUES):
                    exact = exact_distribution(circuit.assign_parameters(row))
                    assert_counts_match(self, pub.data.meas.get_counts(i), exact, SHOTS)

    def test_sweep_compiles_once(self):
        provider = type(self.provider)(local_profile="instant")
        try:
            backend = provider.get_backend()
            sampler = BackendSamplerV2(backend=backend)
            values = np.random.default_rng(0).uniform(-3, 3, (40, 3))
            sampler.run([(ansatz(True), values)], shots=50).result()
            cache = backend.performance_stats()["circuit_cache"]
            # Adaptive lifting: the first sighting compiles exactly, the second compiles
            # the bind-many template; every later binding is a hit.
            self.assertLessEqual(cache["compiles"], 2)
            self.assertGreaterEqual(cache["template_hits"], 38)
        finally:
            provider.close()


class TestEstimator(PrimitivesTestCase):
    def test_expectation_values(self):
        circuit = ansatz(measure=False)
        exact = [Statevector(circuit.assign_parameters(row)).expectation_value(OBSERVABLES).real for row in VALUES]
        precision = 0.02
        for name, pm in self.pass_managers().items():
            with self.subTest(pass_manager=name):
                estimator = BackendEstimatorV2(
                    backend=self.backend, options={"seed_simulator": 23, "default_precision": precision}
                )
                isa = circuit if pm is None else pm.run(circuit)
                obs = OBSERVABLES.apply_layout(isa.layout)
                pub = estimator.run([(isa, obs, VALUES)]).result()[0]
                evs, stds = pub.data.evs, pub.data.stds
                self.assertEqual(evs.shape, (len(VALUES),))
                for ev, std, ref in zip(evs, stds, exact):
                    self.assertLess(abs(ev - ref), 5 * max(std, precision), f"{ev} vs exact {ref}")

    def test_logical_circuit_with_basis_changes(self):
        # Raw, non-native input: BackendEstimatorV2 appends h/sdg for X/Y terms itself.
        qc = QuantumCircuit(2)
        qc.h(0)
        qc.cx(0, 1)
        qc.s(1)
        obs = [SparsePauliOp("XY"), SparsePauliOp("YX"), SparsePauliOp("ZZ"), SparsePauliOp("XX")]
        exact = [Statevector(qc).expectation_value(o).real for o in obs]
        estimator = BackendEstimatorV2(backend=self.backend, options={"seed_simulator": 1, "default_precision": 0.02})
        result = estimator.run([(qc, o) for o in obs]).result()
        for pub, ref in zip(result, exact):
            self.assertLess(abs(float(pub.data.evs) - ref), 0.1)


class TestPresetISA(ProviderTestCase):
    """Qiskit's ISA workflow on a qstore backend: parameters survive transpilation."""

    def test_transpile_keeps_every_parameter(self):
        qc = efficient_su2(3, reps=1)
        qc.measure_all()
        self.assertEqual(qc.num_parameters, 12)
        self.assertEqual(transpile(qc, self.backend).num_parameters, 12)
        for level in range(4):
            with self.subTest(level=level):
                isa = generate_preset_pass_manager(optimization_level=level, backend=self.backend).run(qc)
                self.assertEqual(set(isa.parameters), set(qc.parameters))
                for inst in isa.data:
                    if inst.name != "rz":
                        self.assertFalse(any(getattr(p, "parameters", None) for p in inst.params), inst)
                # The backend target's standard-gate form of GPi2/GPi/MS.
                self.assertTrue(set(isa.count_ops()) <= {"sx", "x", "rxx", "rz", "measure", "barrier"})

    def test_backend_sampler_on_isa_circuit(self):
        qc = efficient_su2(3, reps=1)
        qc.measure_all()
        values = np.random.default_rng(4).uniform(-np.pi, np.pi, (3, 12))
        for level in range(4):
            with self.subTest(level=level):
                isa = generate_preset_pass_manager(optimization_level=level, backend=self.backend).run(qc)
                sampler = BackendSamplerV2(backend=self.backend, options={"seed_simulator": 5})
                pub = sampler.run([(isa, values)], shots=SHOTS).result()[0]
                self.assertEqual(pub.data.meas.shape, (3,))
                for i, row in enumerate(values):
                    exact = exact_distribution(qc.assign_parameters(row))
                    assert_counts_match(self, pub.data.meas.get_counts(i), exact, SHOTS)

    def test_isa_sweep_binds_one_template(self):
        qc = efficient_su2(3, reps=1)
        qc.measure_all()
        isa = transpile(qc, self.backend)
        values = np.random.default_rng(5).uniform(-np.pi, np.pi, (30, 12))
        job = self.backend.run(isa, parameter_binds=[dict(zip(isa.parameters, values.T))], shots=100)
        self.assertEqual(len(job.result().results), 30)
        self.assertEqual(len(self.backend._native_templates), 1)  # noqa: SLF001 -- one analysis

    def test_target_matches_run(self):
        self.assertNotIn("reset", self.backend.target.operation_names)
        qc = QuantumCircuit(2)
        qc.reset(0)
        qc.h(0)
        qc.measure_all()
        with self.assertRaisesRegex(TranspilerError, "'reset'"):
            transpile(qc, self.backend)
        with self.assertRaisesRegex(ValueError, "'reset'"):
            self.backend.run(qc)

    def test_initialize_clear_error(self):
        qc = QuantumCircuit(2)
        qc.initialize([0, 1, 0, 0], [0, 1])
        qc.measure_all()
        with self.assertRaisesRegex(TranspilerError, "'initialize'.*StatePreparation"):
            transpile(qc, self.backend)
        with self.assertRaisesRegex(ValueError, "'initialize'.*StatePreparation"):
            self.backend.run(qc)
