"""The standard-gate form of IonQ's gates (``sx``, ``x``, ``rxx``, ``rzz`` around ``rz``):
the target, the rewrite, the preset pass manager on it, and the payload of that form."""

from __future__ import annotations

import copy
import math
import pickle
import unittest
from unittest import mock

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterExpression
from qiskit.circuit.library import efficient_su2, real_amplitudes, zz_feature_map
from qiskit.quantum_info import Operator, Statevector
from qiskit.converters import circuit_to_dag, dag_to_circuit
from qiskit.transpiler import PassManager, generate_preset_pass_manager

from qstore_qiskit.cache import CompiledTemplate
from qstore_qiskit.payload import circuit_to_native_gates, ionq_native_to_circuit, native_body
from qstore_qiskit.transpiler import STANDARD_GATE_NAMES, estimated_fidelity, ionq_target
from qstore_qiskit.transpiler import gates as qstore_gates
from qstore_qiskit.transpiler.gates import GPI2Gate, GPIGate, MSGate, ZZGate
from qstore_qiskit.transpiler.passes import NativeToStandard, ParametersToVirtualRZ
from qstore_qiskit.transpiler.passes.native_to_standard import merge_frames

STANDARD = set(STANDARD_GATE_NAMES) | {"measure", "barrier"}


def symbolic(value) -> bool:
    return isinstance(value, ParameterExpression) and bool(value.parameters)


def random_native(seed: int, num_qubits: int = 3, size: int = 16, zz: bool = True) -> QuantumCircuit:
    """GPi/GPi2/MS/ZZ and rz with numeric angles, MS/ZZ angles also beyond a quarter turn
    and negative, rz also by whole turns."""
    rng = np.random.default_rng(seed)
    qc = QuantumCircuit(num_qubits)
    for _ in range(size):
        kind = rng.integers(5 if zz else 4)
        q = rng.choice(num_qubits, 2, replace=False).tolist()
        if kind == 0:
            qc.append(GPIGate(rng.uniform()), [q[0]])
        elif kind == 1:
            qc.append(GPI2Gate(rng.uniform()), [q[0]])
        elif kind == 2:
            qc.append(MSGate(rng.uniform(), rng.uniform(), rng.uniform(-0.7, 0.7)), q)
        elif kind == 3:
            qc.rz(rng.choice([rng.uniform(-7, 7), 2 * math.pi, 4 * math.pi, -2 * math.pi]), q[0])
        else:
            qc.append(ZZGate(rng.uniform(-0.7, 0.7)), q)
    return qc


class TestTarget(unittest.TestCase):
    def test_names_and_errors_match_the_native_form(self):
        for device, names in (("aria-1", {"sx", "x", "rxx", "rz"}), ("forte-1", {"sx", "x", "rxx", "rzz", "rz"})):
            with self.subTest(device):
                standard = ionq_target(device, num_qubits=4, reset=False, isa="standard")
                native = ionq_target(device, num_qubits=4, reset=False)
                self.assertEqual(set(standard.operation_names), names | {"measure"})
                self.assertIsNone(standard.build_coupling_map())
                self.assertIs(standard.native_form(), standard.native_form())
                self.assertEqual(set(standard.native_form().operation_names), set(native.operation_names))
                for ours, theirs in (("sx", "gpi2"), ("x", "gpi"), ("rxx", "ms"), ("rzz", "zz"), ("measure", "measure")):
                    if ours not in names | {"measure"}:
                        continue
                    for qargs, props in native[theirs].items():
                        self.assertEqual(standard[ours][qargs].error, props.error)
                        self.assertEqual(standard[ours][qargs].duration, props.duration)

    def test_pickle_and_deepcopy_keep_the_form(self):
        target = ionq_target("forte-1", num_qubits=3, isa="standard")
        for other in (pickle.loads(pickle.dumps(target)), copy.deepcopy(target)):
            self.assertEqual(other.isa, "standard")
            self.assertEqual(set(other.operation_names), set(target.operation_names))

    def test_unknown_form(self):
        with self.assertRaisesRegex(ValueError, "isa must be one of"):
            ionq_target("aria-1", isa="qis")

    def test_fidelity_model_reads_both_forms(self):
        for seed in range(5):
            qc = random_native(seed, zz=True)
            std = NativeToStandard()(qc)
            for device in ("aria-1", "forte-1"):
                self.assertAlmostEqual(estimated_fidelity(std, device), estimated_fidelity(qc, device), places=12)


class TestNativeToStandard(unittest.TestCase):
    def test_exact_with_global_phase(self):
        for seed in range(40):
            qc = random_native(seed)
            out = NativeToStandard()(qc)
            self.assertLessEqual(set(out.count_ops()), STANDARD)
            self.assertEqual(Operator(out), Operator(qc), f"seed {seed}")

    def test_frames_merged(self):
        for seed in range(10):
            out = NativeToStandard()(random_native(seed, size=30))
            last: dict = {}
            for inst in out.data:
                for qubit in inst.qubits:
                    if inst.name == "rz":
                        self.assertNotEqual(last.get(qubit), "rz", f"seed {seed}: two rz in a row")
                    last[qubit] = inst.name

    def test_parameterized_rz_stays_one_affine_rz(self):
        a, b = Parameter("a"), Parameter("b")
        qc = QuantumCircuit(2)
        qc.append(GPI2Gate(0.1), [0])
        qc.rz(a, 0)
        qc.append(MSGate(0.2, 0.3, 0.1), [0, 1])
        qc.rz(2 * b, 1)
        qc.rz(a, 1)
        qc.append(GPIGate(0.4), [1])
        out = NativeToStandard()(qc)
        rz = [inst.params[0] for inst in out.data if inst.name == "rz" and symbolic(inst.params[0])]
        self.assertEqual(len(rz), 3)
        for expr in rz:
            self.assertEqual(len(expr.parameters), 1)
            (p,) = expr.parameters
            self.assertFalse(symbolic(expr.gradient(p)))
        for values in ({a: 0.3, b: -1.2}, {a: 2.0, b: 0.5}):
            self.assertEqual(Operator(out.assign_parameters(values)), Operator(qc.assign_parameters(values)))
        # Numeric frames on either side of a parameterized rz are merged into it.
        last: dict = {}
        for inst in out.data:
            for qubit in inst.qubits:
                if inst.name == "rz" and last.get(qubit) is not None and last[qubit].name == "rz":
                    self.assertTrue(symbolic(inst.params[0]) and symbolic(last[qubit].params[0]), out)
                last[qubit] = inst

    def test_frames_moved_through_x_and_half_turns_through_rxx(self):
        qc = QuantumCircuit(2)
        qc.append(GPI2Gate(0.1), [0])
        qc.append(GPI2Gate(0.2), [1])
        qc.append(GPIGate(0.35), [0])  # its frame goes through the x
        qc.append(GPI2Gate(0.6), [0])
        qc.append(MSGate(0.1, 0.2, 0.15), [0, 1])
        qc.append(MSGate(0.6, 0.2, 0.1), [0, 1])  # a half turn from the last MS on qubit 0
        qc.append(GPI2Gate(0.3), [0])
        out = NativeToStandard()(qc)
        self.assertEqual(Operator(out), Operator(qc))
        before = {}
        for inst in out.data:
            if inst.name in ("x", "rxx"):
                self.assertNotEqual(before.get(inst.qubits[0]), "rz", f"an rz before {inst.name}: {out}")
            for qubit in inst.qubits:
                before[qubit] = inst.name
        self.assertTrue(any(inst.name == "rxx" and float(inst.params[0]) < 0 for inst in out.data), out)

    def test_never_more_instructions_than_frames_between_gates(self):
        """Each wire holds at most one rz between two of its gates (and before the first,
        after the last), and the moves only take rz away."""
        for seed in range(40):
            qc = random_native(seed, size=30)
            out = NativeToStandard()(qc)
            gates = sum(1 for inst in out.data if inst.name != "rz")
            slots = gates + sum(1 for q in out.qubits if any(q in inst.qubits for inst in out.data))
            self.assertLessEqual(out.count_ops().get("rz", 0), slots)
            self.assertEqual(Operator(out), Operator(qc), f"seed {seed}")

    def test_leading_frames_dropped_on_qubits_starting_in_zero(self):
        for seed in range(30):
            qc = random_native(seed, size=20)
            out = NativeToStandard(qubits_initially_zero=True)(qc)
            self.assertTrue(Statevector(out).equiv(Statevector(qc)), f"seed {seed}")
            first = {}
            for inst in out.data:
                for qubit in inst.qubits:
                    first.setdefault(qubit, inst.name)
            self.assertNotIn("rz", first.values(), f"seed {seed}")
            self.assertLessEqual(len(out.data), len(NativeToStandard()(qc).data))

    def test_merge_frames_exact_and_only_removes(self):
        a, b = Parameter("a"), Parameter("b")
        for seed in range(40):
            rng = np.random.default_rng(seed)
            qc = QuantumCircuit(3)
            for _ in range(30):
                q = rng.choice(3, 2, replace=False).tolist()
                kind = rng.integers(7)
                if kind == 0:
                    qc.rz(rng.choice([math.pi, -math.pi, 3 * math.pi, rng.uniform(-7, 7)]), q[0])
                elif kind == 1:
                    qc.rz((a if rng.integers(2) else 2 * b) + rng.uniform(-1, 1), q[0])
                elif kind == 2:
                    qc.sx(q[0])
                elif kind == 3:
                    qc.x(q[0])
                elif kind == 4:
                    qc.rxx(rng.choice([math.pi / 2, -math.pi / 2, rng.uniform(-3, 3)]), *q)
                elif kind == 5:
                    qc.rzz(rng.uniform(-3, 3), *q)
                else:
                    qc.rxx(a, *q)
            for zero in (False, True):
                out = dag_to_circuit(merge_frames(circuit_to_dag(qc), zero))
                self.assertLessEqual(len(out.data), len(qc.data))
                self.assertEqual(set(out.parameters), set(qc.parameters))
                for inst in out.data:
                    if inst.name == "rz" and symbolic(inst.params[0]):
                        (p,) = inst.params[0].parameters
                        self.assertFalse(symbolic(inst.params[0].gradient(p)))
                values = {p: rng.uniform(-3, 3) for p in qc.parameters}
                bound_out, bound_in = out.assign_parameters(values), qc.assign_parameters(values)
                if zero:
                    self.assertTrue(Statevector(bound_out).equiv(Statevector(bound_in)), f"seed {seed}")
                else:
                    self.assertEqual(Operator(bound_out), Operator(bound_in), f"seed {seed}")
        # A numeric rz next to a parameterized one, or an x or a half-turn rxx away from
        # one, is taken in.
        qc = QuantumCircuit(2)
        qc.sx(0)
        qc.rz(a, 0)
        qc.rz(0.3, 0)
        qc.sx(0)
        qc.rz(b, 1)
        qc.rxx(0.4, 0, 1)
        qc.x(1)
        qc.rz(math.pi, 1)
        qc.sx(1)
        out = dag_to_circuit(merge_frames(circuit_to_dag(qc)))
        self.assertEqual(out.count_ops()["rz"], 2)
        self.assertTrue(all(symbolic(inst.params[0]) for inst in out.data if inst.name == "rz"))
        self.assertEqual(Operator(out.assign_parameters({a: 0.7, b: -0.2})), Operator(qc.assign_parameters({a: 0.7, b: -0.2})))

    def test_nothing_native_is_left_alone(self):
        qc = real_amplitudes(3, reps=1)
        pm = PassManager([NativeToStandard()])
        self.assertEqual(pm.run(qc), qc)


class TestPresetPassManager(unittest.TestCase):
    """Qiskit's own preset pass manager on the standard-gate target (a backend's)."""

    def circuits(self):
        yield "efficient_su2", efficient_su2(3, reps=2)
        yield "zz_feature_map+ansatz", zz_feature_map(3, reps=1).compose(real_amplitudes(3, reps=1))

    def test_every_level_isa_form_and_equal(self):
        rng = np.random.default_rng(7)
        for device in ("aria-1", "forte-1"):
            target = ionq_target(device, num_qubits=3, reset=False, isa="standard")
            for name, qc in self.circuits():
                for level in range(4):
                    with self.subTest(device=device, circuit=name, level=level):
                        pm = generate_preset_pass_manager(level, target=target, translation_method="qstore",
                                                          qubits_initially_zero=False, seed_transpiler=1)
                        isa = pm.run(qc)
                        self.assertLessEqual(set(isa.count_ops()), set(target.operation_names) | {"barrier"})
                        self.assertEqual(set(isa.parameters), set(qc.parameters))
                        for inst in isa.data:
                            if inst.name != "rz":
                                self.assertFalse(any(symbolic(p) for p in inst.params), inst)
                        values = rng.uniform(-np.pi, np.pi, qc.num_parameters)
                        bound = dict(zip(qc.parameters, values))
                        self.assertTrue(Operator(isa.assign_parameters(bound)).equiv(Operator(qc.assign_parameters(bound))))
                        self.assertEqual(pm.run(isa), isa)  # ISA in, the same ISA out

    def test_isa_is_a_fixed_point_of_the_optimization_stage(self):
        """The translation stage's ISA output is what Qiskit's optimization stage keeps
        (its loop ends after one round, Optimize1qGatesDecomposition changes nothing), and
        no numeric rz is left next to a parameterized one."""
        for device in ("aria-1", "forte-1"):
            target = ionq_target(device, num_qubits=4, reset=False, isa="standard")
            for name, qc in (("zz_feature_map+ansatz", zz_feature_map(4, reps=1).compose(real_amplitudes(4, reps=1))),
                             ("efficient_su2", efficient_su2(4, reps=2))):
                with self.subTest(device=device, circuit=name):
                        pm = generate_preset_pass_manager(1, target=target, translation_method="qstore")
                        translated = pm.translation.run(pm.init.run(qc))
                        isa = pm.run(qc)
                        self.assertEqual(isa, translated)
                        ran = []
                        pm.run(isa, callback=lambda pass_, **_: ran.append(type(pass_).__name__))
                        self.assertEqual(ran.count("Optimize1qGatesDecomposition"), 1)
                        last = {}
                        for inst in isa.data:
                            if inst.name == "rz":
                                prev = last.get(inst.qubits[0])
                                if prev is not None and prev.name == "rz":
                                    self.assertTrue(symbolic(prev.params[0]) and symbolic(inst.params[0]), isa)
                            for qubit in inst.qubits:
                                last[qubit] = inst
                        values = np.random.default_rng(5).uniform(-np.pi, np.pi, qc.num_parameters)
                        bound = dict(zip(qc.parameters, values))
                        self.assertTrue(Statevector(isa.assign_parameters(bound)).equiv(Statevector(qc.assign_parameters(bound))))

    def test_isa_given_again_skips_the_stage(self):
        """An ISA circuit given again (each shifted circuit of a gradient) runs none of
        the translation stage's lowering passes, bound or not, and comes out unchanged."""
        target = ionq_target("aria-1", num_qubits=3, reset=False, isa="standard")
        pm = generate_preset_pass_manager(1, target=target, translation_method="qstore")
        qc = efficient_su2(3, reps=1)
        qc.measure_all()
        isa = pm.run(qc)
        for circuit in (isa, isa.assign_parameters(np.linspace(0.1, 1.2, 12))):
            ran = []
            out = pm.run(circuit, callback=lambda pass_, **_: ran.append(type(pass_).__name__))
            if circuit.parameters:
                self.assertEqual(out, circuit)
            else:  # bound, Qiskit's Optimize1qGatesDecomposition merges the rz into runs
                self.assertTrue(Operator(out.remove_final_measurements(inplace=False)).equiv(
                    Operator(circuit.remove_final_measurements(inplace=False))))
            self.assertIn("CheckParameterized", ran)
            for name in ("ParametersToVirtualRZ", "LowerToIonQNative", "NativeToStandard", "ConsolidateBlocks",
                         "ConsolidateTwoQubitBlocks"):
                self.assertNotIn(name, ran)

    def test_rzz_is_isa_only_where_the_target_has_it(self):
        theta = Parameter("t")
        qc = QuantumCircuit(2)
        qc.rz(theta, 0)
        qc.rzz(0.3, 0, 1)
        qc.sx(1)
        for device, kept in (("aria-1", False), ("forte-1", True)):
            with self.subTest(device):
                target = ionq_target(device, num_qubits=2, reset=False, isa="standard")
                out = generate_preset_pass_manager(1, target=target, translation_method="qstore",
                                                   qubits_initially_zero=False).run(qc)
                self.assertLessEqual(set(out.count_ops()), set(target.operation_names))
                self.assertEqual("rzz" in out.count_ops(), kept)
                bound = {theta: 0.7}
                self.assertTrue(Operator(out.assign_parameters(bound)).equiv(Operator(qc.assign_parameters(bound))))

    def test_bound_circuits_too(self):
        qc = efficient_su2(3, reps=1).assign_parameters(np.linspace(0.1, 1.2, 12))
        target = ionq_target("aria-1", num_qubits=3, reset=False, isa="standard")
        for level in range(4):
            with self.subTest(level=level):
                out = generate_preset_pass_manager(level, target=target, translation_method="qstore",
                                                   qubits_initially_zero=False).run(qc)
                self.assertLessEqual(set(out.count_ops()), STANDARD)
                self.assertTrue(Operator(out).equiv(Operator(qc)))

    def test_no_python_matrix_calls_on_the_standard_form(self):
        """The cause of the preset path's cost: Qiskit's passes ask every IonQ gate for its
        matrix in Python. On the standard-gate ISA they never do (on the native one they
        do, which shows that the count sees them)."""
        qc = zz_feature_map(4, reps=1).compose(real_amplitudes(4, reps=1))
        qc.measure_all()
        calls = {}
        for form in ("native", "standard"):
            target = ionq_target("simulator", num_qubits=4, reset=False, isa=form)
            pm = generate_preset_pass_manager(1, target=target, translation_method="qstore")
            isa = pm.run(qc)
            count = [0]
            real = qstore_gates.GPI2Gate.to_matrix

            def counted(self, *args, _real=real, **kwargs):
                count[0] += 1
                return _real(self, *args, **kwargs)

            with mock.patch.object(qstore_gates.GPI2Gate, "to_matrix", counted), \
                    mock.patch.object(qstore_gates.GPI2Gate, "__array__", lambda self, *a, **k: counted(self)):
                pm.run([isa] * 3)
            calls[form] = count[0]
        self.assertGreater(calls["native"], 0)
        self.assertEqual(calls["standard"], 0)


class TestPayloadOfTheStandardForm(unittest.TestCase):
    def assertSameGates(self, ours, theirs):
        self.assertEqual([g["gate"] for g in ours], [g["gate"] for g in theirs])
        for a, b in zip(ours, theirs):
            self.assertEqual(a.get("target", a.get("targets")), b.get("target", b.get("targets")))
            for key in ("phase", "angle"):
                if key in a:
                    diff = abs(a[key] - b[key])
                    self.assertLess(min(diff, 1 - diff) if key == "phase" else diff, 1e-9, (a, b))
            for x, y in zip(a.get("phases", ()), b.get("phases", ())):
                self.assertLess(min(abs(x - y), 1 - abs(x - y)), 1e-9, (a, b))

    def test_serialized_as_the_native_gates_they_stand_for(self):
        for seed in range(30):
            qc = random_native(seed)
            std = NativeToStandard()(qc)
            gates, frames = circuit_to_native_gates(std, return_frames=True)
            reference = circuit_to_native_gates(qc)
            # The same native gates (the rewrite may list gates on other qubits in
            # another order), and with the dropped frames, the same unitary.
            self.assertEqual(sorted(g["gate"] for g in gates), sorted(g["gate"] for g in reference))
            rebuilt = ionq_native_to_circuit(gates, qc.num_qubits, frames)
            self.assertTrue(Operator(rebuilt).equiv(Operator(qc)), f"seed {seed}")
            qc.measure_all()
            self.assertEqual(native_body(NativeToStandard()(qc))["qubits"], native_body(qc)["qubits"])

    def test_template_of_a_parameterized_standard_isa(self):
        qc = efficient_su2(3, reps=1)
        qc.measure_all()
        target = ionq_target("aria-1", num_qubits=3, reset=False, isa="standard")
        isa = PassManager([ParametersToVirtualRZ(target, 1)]).run(qc)
        self.assertLessEqual(set(isa.count_ops()), STANDARD)
        template = CompiledTemplate.from_native(isa, list(isa.parameters))
        values = np.random.default_rng(3).uniform(-np.pi, np.pi, (4, isa.num_parameters))
        for row, body in zip(values, template.bodies(values)):
            self.assertSameGates(body["circuit"], circuit_to_native_gates(isa.assign_parameters(row)))


if __name__ == "__main__":
    unittest.main()
