"""QStoreBackend.run semantics: results, parameter_binds, memory, options, errors, stats."""

from __future__ import annotations

import collections
import itertools
import math

import numpy as np
from qiskit import QuantumCircuit, transpile
from qiskit.circuit import Parameter, ParameterVector
from qiskit.providers import JobError, JobStatus
from qiskit.quantum_info import Statevector
from qiskit.transpiler.exceptions import TranspilerError

from qstore_qiskit import LocalServer, QStoreProvider
from qstore_qiskit.providers import FEATURE_OPTIONS, QStoreBackend
from qstore_qiskit.transpiler import NATIVE_GATE_NAMES, STANDARD_GATE_NAMES

from .helpers import ProviderTestCase, assert_counts_match, asymmetric, bell, exact_distribution

SHOTS = 4000


class TestRun(ProviderTestCase):
    def test_counts_match_exact(self):
        circuits = [bell(), asymmetric()]
        result = self.backend.run(circuits, shots=SHOTS, sampler_seed=11).result()
        self.assertTrue(result.success)
        for i, circuit in enumerate(circuits):
            assert_counts_match(self, result.get_counts(i), exact_distribution(circuit), SHOTS)
            self.assertEqual(result.results[i].header["name"], circuit.name)

    def test_single_circuit_and_named_registers(self):
        qc = QuantumCircuit(3)
        from qiskit.circuit import ClassicalRegister

        a, b = ClassicalRegister(1, "a"), ClassicalRegister(2, "b")
        qc.add_register(a)
        qc.add_register(b)
        qc.x(2)
        qc.h(0)
        qc.measure(2, a[0])
        qc.measure(0, b[1])
        result = self.backend.run(qc, shots=SHOTS, sampler_seed=3).result()
        counts = result.get_counts()
        # Qiskit prints registers last-first: "b a" with b[1] the leftmost bit of "b".
        self.assertEqual(set(counts), {"00 1", "10 1"})
        assert_counts_match(self, {k.replace(" ", ""): v for k, v in counts.items()},
                            exact_distribution(qc), SHOTS)

    def test_circuit_without_measurements_reports_all_qubits(self):
        qc = QuantumCircuit(3)
        qc.x(0)
        counts = self.backend.run(qc, shots=100).result().get_counts()
        self.assertEqual(counts, {"001": 100})

    def test_empty_list_and_empty_circuit(self):
        self.assertEqual(self.backend.run([]).result().results, [])
        counts = self.backend.run(QuantumCircuit(2), shots=50).result().get_counts()
        self.assertEqual(counts, {"00": 50})

    def test_result_metadata(self):
        result = self.backend.run(bell(), shots=100).result()
        meta = result.results[0].metadata
        for key in ("ionq_job_id", "ionq_child_job_id", "native_gate_counts", "estimated_fidelity", "gateset"):
            self.assertIn(key, meta)
        self.assertEqual(meta["gateset"], "native")
        self.assertTrue(set(meta["native_gate_counts"]) <= NATIVE_GATE_NAMES)
        self.assertEqual(meta["estimated_fidelity"], 1.0)  # ideal simulator
        self.assertEqual(result.backend_name, "ionq_simulator")

    def test_qpu_backend_fidelity_estimate(self):
        # The QPU backend compiles for Aria; the embedded server runs it ideal.
        backend = self.provider.get_backend("ionq_qpu.aria-1")
        # Qubits come from the service's GET /backends (the embedded server offers 20).
        record = self.provider._service(backend).request("GET", "backends/qpu.aria-1")
        self.assertEqual(backend.num_qubits, record["qubits"])
        self.assertEqual(backend.target.num_qubits, record["qubits"])
        result = backend.run(bell(), shots=200).result()
        fidelity = result.results[0].metadata["estimated_fidelity"]
        self.assertGreater(fidelity, 0.9)
        self.assertLess(fidelity, 1.0)
        assert_counts_match(self, result.get_counts(), exact_distribution(bell()), 200)

    def test_job_interface(self):
        job = self.backend.run([bell()] * 3, shots=10)
        result = job.result()
        self.assertIs(job.result(), result)
        self.assertEqual(job.status(), JobStatus.DONE)
        self.assertFalse(job.cancel())  # nothing left to cancel
        self.assertTrue(job.ionq_job_ids())
        self.assertIs(job.backend(), self.backend)
        with self.assertRaises(RuntimeError):
            job.submit()


class TestParameterBinds(ProviderTestCase):
    def test_multiple_value_sets_per_circuit(self):
        theta = ParameterVector("t", 2)
        qc = QuantumCircuit(2, name="pc")
        qc.ry(theta[0], 0)
        qc.cx(0, 1)
        qc.rx(theta[1], 1)
        qc.measure_all()
        values = {theta[0]: [0.1, 1.2, 2.5], theta[1]: [0.4, 0.0, 3.0]}
        other = Parameter("phi")
        qc2 = QuantumCircuit(1, name="pc2")
        qc2.ry(other, 0)
        qc2.measure_all()
        result = self.backend.run(
            [qc, qc2], shots=SHOTS, sampler_seed=5, parameter_binds=[values, {"phi": [0.3, 2.0]}]
        ).result()
        self.assertEqual(len(result.results), 5)
        expected = [qc.assign_parameters([a, b]) for a, b in zip(values[theta[0]], values[theta[1]])]
        expected += [qc2.assign_parameters([v]) for v in (0.3, 2.0)]
        for i, bound in enumerate(expected):
            assert_counts_match(self, result.get_counts(i), exact_distribution(bound), SHOTS)
        self.assertEqual([r.header["name"] for r in result.results], ["pc[0]", "pc[1]", "pc[2]", "pc2[0]", "pc2[1]"])

    def test_scalar_values(self):
        t = Parameter("t")
        qc = QuantumCircuit(1)
        qc.rx(t, 0)
        qc.measure_all()
        counts = self.backend.run(qc, shots=100, parameter_binds=[{t: math.pi}]).result().get_counts()
        self.assertEqual(counts, {"1": 100})

    def test_bad_binds(self):
        t, u = Parameter("t"), Parameter("u")
        qc = QuantumCircuit(1)
        qc.rx(t, 0)
        qc.ry(u, 0)
        qc.measure_all()
        cases = {
            "one dict per circuit": dict(parameter_binds=[{t: [1]}, {u: [1]}]),
            "lacks u": dict(parameter_binds=[{t: [1.0]}]),
            "does not have": dict(parameter_binds=[{t: [1.0], u: [1.0], Parameter("w"): [1.0]}]),
            "different lengths": dict(parameter_binds=[{t: [1.0, 2.0], u: [1.0]}]),
            "NaN": dict(parameter_binds=[{t: [float("nan")], u: [1.0]}]),
            "parameter_binds value for t.*flat list": dict(parameter_binds=[{t: [[1.0, 2.0], [3.0]], u: [1.0]}]),
            "parameter_binds value for t.*not a number": dict(parameter_binds=[{t: ["a"], u: [1.0]}]),
            "parameter_binds entry.*is a list": dict(parameter_binds=[[1.0, 2.0]]),
        }
        for message, kwargs in cases.items():
            with self.subTest(message), self.assertRaisesRegex(ValueError, message):
                self.backend.run(qc, **kwargs)
        # The wrong outer container is a TypeError saying what shape is expected.
        for given in ({t: 1.0, u: 2.0}, "t=1", 3.0):
            with self.subTest(given=given), self.assertRaisesRegex(TypeError, "parameter_binds.*(dict|list)"):
                self.backend.run(qc, parameter_binds=given)
        plain = bell()
        with self.assertRaisesRegex(ValueError, "no parameters"):
            self.backend.run(plain, parameter_binds=[{t: [1.0]}])

    def test_unbound_parameters_without_binds(self):
        t = Parameter("theta_unbound")
        qc = QuantumCircuit(1)
        qc.rx(t, 0)
        qc.measure_all()
        with self.assertRaisesRegex(ValueError, "unbound parameters.*theta_unbound"):
            self.backend.run(qc)


class TestMemory(ProviderTestCase):
    def test_memory_consistent_with_counts(self):
        shots = 1000
        result = self.backend.run([asymmetric(), bell()], shots=shots, memory=True, sampler_seed=9).result()
        for i in range(2):
            memory = result.get_memory(i)
            self.assertEqual(len(memory), shots)
            self.assertEqual(dict(collections.Counter(memory)), result.get_counts(i))
            self.assertTrue(all(len(m) == 3 - i for m in memory))

    def test_memory_reproducible_with_seed(self):
        a = self.backend.run(asymmetric(), shots=300, memory=True, sampler_seed=4).result().get_memory()
        b = self.backend.run(asymmetric(), shots=300, memory=True, sampler_seed=4).result().get_memory()
        self.assertEqual(a, b)

    def test_no_memory_by_default(self):
        result = self.backend.run(bell(), shots=10).result()
        self.assertFalse(hasattr(result.results[0].data, "memory") and result.results[0].data.memory)


class TestOptionsAndErrors(ProviderTestCase):
    def test_bad_options(self):
        cases = [
            ({"foo": 1}, "unknown run option.*'foo'"),
            ({"shots": 0}, "'shots'"),
            ({"shots": "x"}, "'shots'.*integer"),
            ({"shots": 1.5}, "'shots'.*integer"),
            ({"shots": True}, "'shots'.*integer"),
            ({"shots": 2_000_000}, "'shots'"),
            ({"memory": "yes"}, "'memory'"),
            ({"use_batch_api": 1}, "'use_batch_api'"),
            ({"sampler_seed": "abc"}, "'sampler_seed'"),
            ({"sampler_seed": -1}, "'sampler_seed'"),
            ({"noise_model": 5}, "'noise_model'"),
            ({"optimization_level": 7}, "'optimization_level'"),
            ({"connection_pool_size": 0}, "'connection_pool_size'"),
            ({"batch_window": "soon"}, "'batch_window'"),
            ({"max_queue_wait_time": -1}, "'max_queue_wait_time'"),
            ({"progress_bar": "auto"}, "'progress_bar'"),
        ]
        for kwargs, pattern in cases:
            with self.subTest(kwargs):
                with self.assertRaisesRegex(ValueError, pattern):
                    self.backend.run(bell(), **kwargs)
                with self.assertRaisesRegex(ValueError, pattern.replace("run option", "option")):
                    self.backend.set_options(**kwargs)
        # Nothing above changed the backend's options.
        self.assertEqual(self.backend.options.shots, 1024)

    def test_set_options_roundtrip(self):
        backend = self.provider.get_backend("ionq_qpu.forte-1", shots=77)
        try:
            self.assertEqual(backend.options.shots, 77)
            self.assertEqual(backend.run(bell(), shots=12).result().results[0].shots, 12)
            self.assertEqual(sum(backend.run(bell()).result().get_counts().values()), 77)
        finally:
            backend.set_options(shots=1024)

    def test_seed_simulator_alias(self):
        # Qiskit's BackendSamplerV2/BackendEstimatorV2 pass Aer's ``seed_simulator``.
        a = self.backend.run(asymmetric(), shots=500, seed_simulator=21).result().get_counts()
        b = self.backend.run(asymmetric(), shots=500, sampler_seed=21).result().get_counts()
        self.assertEqual(a, b)
        self.backend.run(bell(), shots=5, seed_simulator=None).result()

    def test_too_wide(self):
        qc = QuantumCircuit(self.backend.target.num_qubits + 1)
        qc.h(0)
        qc.measure_all()
        with self.assertRaisesRegex(ValueError, "qubits; backend ionq_simulator has"):
            self.backend.run(qc)

    def test_control_flow(self):
        qc = QuantumCircuit(1, 1)
        qc.h(0)
        qc.measure(0, 0)
        with qc.if_test((qc.clbits[0], 1)):
            qc.x(0)
        qc.measure(0, 0)
        with self.assertRaisesRegex(TranspilerError, "if_else.*control flow"):
            self.backend.run(qc)

    def test_mid_circuit_measurement(self):
        qc = QuantumCircuit(1, 2)
        qc.h(0)
        qc.measure(0, 0)
        qc.h(0)
        qc.measure(0, 1)
        with self.assertRaisesRegex(ValueError, "mid-circuit"):
            self.backend.run(qc)

    def test_non_finite_angle(self):
        for value in (float("nan"), float("inf")):
            qc = QuantumCircuit(1, name="angle")
            qc.rx(value, 0)
            qc.measure_all()
            with self.subTest(value=value), self.assertRaisesRegex(ValueError, "must be finite"):
                self.backend.run(qc)

    def test_not_a_circuit(self):
        with self.assertRaises(TypeError):
            self.backend.run(["not a circuit"])

    def test_unknown_backend_name(self):
        with self.assertRaisesRegex(ValueError, "unknown backend"):
            self.provider.get_backend("ionq_qpu.nope")
        with self.assertRaisesRegex(TypeError, "backend name"):
            self.provider.get_backend(42)


class TestBackendDescription(ProviderTestCase):
    def test_names_and_aliases(self):
        names = [b.name for b in self.provider.backends()]
        self.assertEqual(
            names,
            ["ionq_simulator", "ionq_qpu", "ionq_qpu.aria-1", "ionq_qpu.aria-2", "ionq_qpu.forte-1",
             "ionq_qpu.forte-enterprise-1", "local"],
        )
        self.assertIs(self.provider.get_backend("simulator"), self.backend)
        self.assertIs(self.provider.get_backend("aria-1"), self.provider.get_backend("ionq_qpu.aria-1"))
        self.assertIs(self.provider.get_backend("qpu.forte-1"), self.provider.get_backend("ionq_qpu.forte-1"))
        self.assertEqual([b.name for b in self.provider.backends(simulator=True)], ["ionq_simulator", "local"])
        self.assertIsInstance(self.backend, QStoreBackend)

    def test_target_lists_all_pairs(self):
        for name, has_zz in (("ionq_qpu.aria-1", False), ("ionq_qpu.forte-1", True), ("ionq_simulator", False)):
            backend = self.provider.get_backend(name)
            target = backend.target
            n = target.num_qubits
            pairs = set(itertools.permutations(range(n), 2))
            with self.subTest(name):
                # The standard-gate form of GPi/GPi2/MS/ZZ (ionq_target(..., isa="standard")).
                self.assertEqual(set(target.operation_names), {"rz", "sx", "x", "rxx", "measure"} | ({"rzz"} if has_zz else set()))
                self.assertEqual(set(target["rxx"]), pairs)
                self.assertEqual("rzz" in target.operation_names, has_zz)
                if has_zz:
                    self.assertEqual(set(target["rzz"]), pairs)
                for gate in ("x", "sx", "rz", "measure"):
                    self.assertEqual(set(target[gate]), {(q,) for q in range(n)})
                self.assertEqual(backend.num_qubits, n)
                self.assertIsNotNone(target["rxx"][(0, 1)].error)
                self.assertEqual(target["sx"][(0,)].error, target.native_form()["gpi2"][(0,)].error)

    def test_transpile_uses_qstore_plugin(self):
        self.assertEqual(self.backend.get_translation_stage_plugin(), "qstore")
        allowed = set(STANDARD_GATE_NAMES) | {"measure", "barrier"}
        for backend in (self.backend, self.provider.get_backend("aria-1")):
            out = transpile(asymmetric(), backend, optimization_level=1, seed_transpiler=1)
            self.assertTrue(set(out.count_ops()) <= allowed, out.count_ops())
            self.assertIn("rxx", out.count_ops())
            # transpile assumes qubits start in |0>, and Z frames before a measurement are
            # dropped: the same outcome probabilities from |0...0>.
            np.testing.assert_allclose(
                Statevector(out.remove_final_measurements(inplace=False)).probabilities(),
                Statevector(asymmetric().remove_final_measurements(inplace=False)).probabilities(),
                atol=1e-9,
            )
            counts = backend.run(out, shots=SHOTS, sampler_seed=2).result().get_counts()
            assert_counts_match(self, counts, exact_distribution(asymmetric()), SHOTS)

    def test_generate_ionq_pass_manager_is_cached(self):
        import qstore_qiskit
        from qstore_qiskit.providers import CachedIonQPassManager

        pm = qstore_qiskit.generate_ionq_pass_manager(self.backend)
        self.assertIsInstance(pm, CachedIonQPassManager)
        self.assertIs(pm.backend, self.backend)
        out = pm.run(asymmetric())
        self.assertTrue(set(out.count_ops()) <= set(NATIVE_GATE_NAMES) | {"measure", "barrier"})
        self.assertEqual([c.name for c in out.cregs], ["meas"])


    def test_native_inputs_with_many_angles(self):
        # Lifted templates of native angles are wrong for other angles in the template
        # cache; the backend and the cached pass manager must not use them.
        import qstore_qiskit
        from qiskit.quantum_info import Statevector
        from qiskit_ionq.ionq_gates import GPI2Gate, MSGate

        pm = qstore_qiskit.generate_ionq_pass_manager(self.backend)
        rng = np.random.default_rng(3)
        circuits = []
        for x, y in rng.uniform(-1, 1, (5, 2)):
            qc = QuantumCircuit(2)
            qc.append(GPI2Gate(x), [0])
            qc.append(MSGate(0, 0, 0.25), [0, 1])
            qc.append(GPI2Gate(y), [1])
            out = pm.run(qc)
            np.testing.assert_allclose(Statevector(out).probabilities(), Statevector(qc).probabilities(), atol=1e-9)
            qc.measure_all()
            circuits.append(qc)
        result = self.backend.run(circuits, shots=SHOTS, sampler_seed=8).result()
        for i, qc in enumerate(circuits):
            assert_counts_match(self, result.get_counts(i), exact_distribution(qc), SHOTS)


class TestFeatureFlags(ProviderTestCase):
    def test_every_flag_combination_agrees(self):
        circuits = [asymmetric(), bell()]
        t = Parameter("t")
        pc = QuantumCircuit(2, name="p")
        pc.ry(t, 0)
        pc.cx(0, 1)
        pc.measure_all()
        exact = [exact_distribution(c) for c in circuits] + [
            exact_distribution(pc.assign_parameters([v])) for v in (0.5, 2.0)
        ]
        shots = 2000
        for combo in itertools.product([False, True], repeat=len(FEATURE_OPTIONS)):
            flags = dict(zip(FEATURE_OPTIONS, combo))
            with self.subTest(**flags):
                result = self.backend.run(
                    circuits + [pc], shots=shots, sampler_seed=13,
                    parameter_binds=[{}, {}, {t: [0.5, 2.0]}], **flags,
                ).result()
                self.assertEqual(len(result.results), 4)
                gateset = "native" if flags["use_native_gates"] else "qis"
                for i, distribution in enumerate(exact):
                    self.assertEqual(result.results[i].metadata["gateset"], gateset)
                    assert_counts_match(self, result.get_counts(i), distribution, shots)

    def test_qis_path(self):
        backend = self.provider.get_backend("ionq_simulator")
        result = backend.run([asymmetric()], shots=SHOTS, use_native_gates=False, sampler_seed=1).result()
        self.assertEqual(result.results[0].metadata["gateset"], "qis")
        self.assertEqual(result.results[0].metadata["native_gate_counts"], {})
        assert_counts_match(self, result.get_counts(), exact_distribution(asymmetric()), SHOTS)
        # A circuit laid out on the full device (an explicit initial layout: IonQ targets
        # are all-to-all, so the preset pass managers keep the circuit's own qubits
        # otherwise) is sent at its used width.
        from qiskit.transpiler import generate_preset_pass_manager

        isa = generate_preset_pass_manager(backend=backend, optimization_level=1).run(bell())
        self.assertEqual(isa.num_qubits, bell().num_qubits)
        wide = generate_preset_pass_manager(backend=backend, optimization_level=1, initial_layout=[7, 3]).run(bell())
        self.assertEqual(wide.num_qubits, backend.target.num_qubits)
        counts = backend.run(wide, shots=SHOTS, use_native_gates=False, sampler_seed=1).result().get_counts()
        assert_counts_match(self, counts, exact_distribution(bell()), SHOTS)

    def test_batch_api_off_sends_one_job_per_circuit(self):
        provider = QStoreProvider(local_profile="instant")
        try:
            backend = provider.get_backend()
            backend.run([bell()] * 4, shots=10, use_batch_api=False).result()
            self.assertEqual(backend.performance_stats()["batch_client"]["jobs_created"], 4)
            backend.run([bell()] * 4, shots=10).result()
            self.assertEqual(backend.performance_stats()["batch_client"]["jobs_created"], 5)
        finally:
            provider.close()


class TestCancel(ProviderTestCase):
    def test_cancel_on_cloud_profile(self):
        with LocalServer(profile="cloud", seed=1) as server:
            provider = QStoreProvider(token="any-key", url=server.url)
            try:
                backend = provider.get_backend()
                job = backend.run([asymmetric()] * 20, shots=100)
                job.cancel()
                self.assertIn(job.status(), (JobStatus.CANCELLED, JobStatus.DONE))
                if job.status() is JobStatus.CANCELLED:
                    with self.assertRaisesRegex(JobError, "cancelled"):
                        job.result(timeout=30)
                else:
                    self.assertEqual(len(job.result(timeout=30).results), 20)
                # The backend still works after a cancellation.
                result = backend.run(bell(), shots=100).result(timeout=60)
                self.assertEqual(sum(result.get_counts().values()), 100)
            finally:
                provider.close()

    def test_cancel_after_done(self):
        job = self.backend.run(bell(), shots=10)
        job.result()
        self.assertFalse(job.cancel())
        self.assertEqual(job.status(), JobStatus.DONE)


class TestPerformanceStats(ProviderTestCase):
    def test_keys_and_values(self):
        provider = QStoreProvider(local_profile="instant")
        try:
            backend = provider.get_backend()
            t = Parameter("t")
            qc = QuantumCircuit(2)
            qc.ry(t, 0)
            qc.cx(0, 1)
            qc.measure_all()
            bound = [qc.assign_parameters([v]) for v in np.linspace(0, 3, 10)]
            backend.run(bound, shots=20).result()
            backend.run(bound[:4], shots=20).result()
            backend.run(qc, shots=20, parameter_binds=[{t: [0.1, 0.2, 0.3]}]).result()
            stats = backend.performance_stats()
            for key in (
                "total_circuits", "total_batches", "results_received", "total_time_seconds",
                "avg_batch_time_ms", "throughput_circuits_per_sec", "circuit_preparation_seconds",
                "native_compiler", "circuit_cache", "batch_client", "features",
            ):
                self.assertIn(key, stats)
            self.assertEqual(stats["total_circuits"], 17)
            self.assertEqual(stats["total_batches"], 3)
            self.assertEqual(stats["results_received"], 17)
            self.assertGreater(stats["total_time_seconds"], 0)
            self.assertGreater(stats["throughput_circuits_per_sec"], 0)
            cache = stats["circuit_cache"]
            for key in ("template_hits", "template_misses", "bound_hits", "bound_misses", "compiles",
                        "template_hit_rate", "bound_hit_rate", "time_saved_seconds"):
                self.assertIn(key, cache)
            self.assertLessEqual(cache["compiles"], 2)  # one structure (exact first sight + template)
            for key in ("template_hit_rate", "bound_hit_rate"):
                self.assertGreaterEqual(cache[key], 0.0)
                self.assertLessEqual(cache[key], 1.0)
            self.assertGreater(cache["template_hit_rate"], 0.5)
            client = stats["batch_client"]
            self.assertEqual(client["circuits_submitted"], 17)
            self.assertEqual(client["jobs_created"], 3)
            self.assertGreaterEqual(client["api_calls"], 3 * 2)
            self.assertAlmostEqual(client["circuits_per_job"]["mean"], 17 / 3)
            compiler = stats["native_compiler"]
            self.assertEqual(compiler["input_gates"], 17 * 2)
            self.assertGreater(compiler["native_gates"], 0)
            self.assertLessEqual(compiler["native_2q_gates"], compiler["native_gates"])
            self.assertEqual(stats["features"], {name: backend.options[name] for name in FEATURE_OPTIONS})
            import io

            out = io.StringIO()
            backend.print_performance_report(file=out)
            report = out.getvalue()
            for line in ("Total Circuits: 17", "Template Hit Rate", "API Calls", "Jobs Created: 3"):
                self.assertIn(line, report)
            backend.reset_performance_stats()
            self.assertEqual(backend.performance_stats()["total_circuits"], 0)
        finally:
            provider.close()


class TestTemplateHitsReport(ProviderTestCase):
    """#13 defect 5: bindings served from a compiled template are template hits."""

    def test_bindings_count_as_hits_with_measured_time_saved(self):
        import io

        from qiskit.circuit.library import efficient_su2

        provider = QStoreProvider(local_profile="instant")
        try:
            backend = provider.get_backend()
            ansatz = efficient_su2(3, reps=1)
            ansatz.measure_all()
            values = {p: list(np.linspace(0, 1, 100) + i) for i, p in enumerate(ansatz.parameters)}
            backend.run(ansatz, shots=10, parameter_binds=[values]).result()
            cache = backend.performance_stats()["circuit_cache"]
            template, _ = backend._cache.get_template(ansatz, device=backend.device, optimization_level=2)
            self.assertEqual(cache["compiles"], 1)
            self.assertEqual(cache["template_misses"], 1)
            self.assertEqual(cache["template_hits"], 99)
            self.assertAlmostEqual(cache["template_hit_rate"], 0.99)
            self.assertGreater(template.compile_seconds, 0)
            # Time saved is the measured compile time of the template, once per binding avoided.
            self.assertAlmostEqual(cache["time_saved_seconds"], 99 * template.compile_seconds, places=9)
            out = io.StringIO()
            backend.print_performance_report(file=out)
            self.assertIn("Templates Compiled: 1", out.getvalue())
            self.assertIn("Template Hit Rate: 99.0%", out.getvalue())
            self.assertNotIn("Time Saved: 0ms", out.getvalue())
        finally:
            provider.close()


class TestRunInputAndCredentials(ProviderTestCase):
    """#13 defect 4: clear TypeErrors; a wrong key fails at get_backend."""

    def test_run_rejects_non_circuits_naming_what_is_expected(self):
        for bad in (42, None, "qc", {"a": 1}, 3.5, [bell(), 7]):
            with self.subTest(bad=bad), self.assertRaisesRegex(TypeError, "QuantumCircuit or a list of QuantumCircuit"):
                self.backend.run(bad)
        with self.assertRaisesRegex(TypeError, "item.*1: int"):
            self.backend.run([bell(), 7])

    def test_wrong_key_fails_at_get_backend(self):
        from qstore_qiskit.client import IonQAuthenticationError

        with LocalServer(profile="instant", api_key="the-right-key") as server:
            provider = QStoreProvider(token="a-wrong-key", url=server.url)
            try:
                with self.assertRaises(IonQAuthenticationError) as caught:
                    provider.get_backend("simulator")
                self.assertNotIn("a-wrong-key", str(caught.exception))
                self.assertNotIn("a-wrong-key", repr(caught.exception))
            finally:
                provider.close()
            good = QStoreProvider(token="the-right-key", url=server.url)
            try:
                self.assertTrue(good.get_backend("simulator").status())
            finally:
                good.close()

    def test_unreachable_service_falls_back_to_the_device_table(self):
        import socket

        with socket.socket() as sock:  # a loopback port nobody listens on
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        provider = QStoreProvider(token="k", url=f"http://127.0.0.1:{port}/v0.4")
        try:
            with self.assertWarnsRegex(RuntimeWarning, "device table"):
                backend = provider.get_backend("qpu.aria-1")
            self.assertEqual(backend.num_qubits, 25)
            self.assertFalse(backend.status())
        finally:
            provider.close()
