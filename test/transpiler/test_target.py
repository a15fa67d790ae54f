# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""IonQ device targets and the estimated-success model (``qstore_qiskit.transpiler.target``)."""

from __future__ import annotations

import copy
import math
import pickle
import unittest

from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.transpiler import Target
from qiskit_ionq.ionq_gates import GPI2Gate, GPIGate, MSGate, ZZGate

from qstore_qiskit.transpiler import (
    DEVICES,
    DeviceSpec,
    IonQTarget,
    device_spec,
    estimated_fidelity,
    ionq_target,
)
from qstore_qiskit.transpiler.target import PARTIAL_FLOOR

#: The figures documented in ``target.py`` (MQT Bench's IonQ devices): fidelities, seconds.
DOCUMENTED = {
    "aria": dict(oneq=0.9998, twoq=0.9872, spam=0.9937, t1=135e-6, t2=600e-6, tro=300e-6, n=25),
    "forte": dict(oneq=0.9998, twoq=0.9932, spam=0.9959, t1=130e-6, t2=970e-6, tro=150e-6, n=36),
}

#: Small qubit count for targets whose pair tables we walk (full-size ones are checked once).
SMALL_N = 5


def _family(name: str) -> str | None:
    for family in DOCUMENTED:
        if name.startswith(family):
            return family
    return None


def _bell_native() -> QuantumCircuit:
    """A Bell-state circuit written in qiskit-ionq's native gates (phases in turns)."""
    qc = QuantumCircuit(2, 2)
    qc.append(GPI2Gate(0.25), [0])
    qc.append(MSGate(0, 0, 0.25), [0, 1])
    qc.append(GPI2Gate(0.5), [0])
    qc.append(GPI2Gate(0.5), [1])
    qc.append(GPIGate(0.0), [1])
    qc.measure([0, 1], [0, 1])
    return qc


class TestIonQTarget(unittest.TestCase):
    """Targets built for every known device."""

    def test_every_device_builds(self):
        for name, spec in DEVICES.items():
            with self.subTest(device=name):
                target = ionq_target(name)
                self.assertIsInstance(target, IonQTarget)
                self.assertIsInstance(target, Target)
                self.assertEqual(target.num_qubits, spec.num_qubits)
                self.assertEqual(target.device.name, name)

    def test_gates_present(self):
        for name in DEVICES:
            with self.subTest(device=name):
                ops = set(ionq_target(name, num_qubits=SMALL_N).operation_names)
                self.assertTrue({"gpi", "gpi2", "ms", "rz", "measure", "reset"} <= ops, ops)
                self.assertFalse(ops & {"cx", "h", "u", "sx", "ecr"}, ops)

    def test_reset_optional(self):
        # IonQ's gate-list jobs have no reset: backends build their target without it.
        self.assertIn("reset", ionq_target("aria-1", num_qubits=SMALL_N).operation_names)
        target = ionq_target("aria-1", num_qubits=SMALL_N, reset=False)
        self.assertNotIn("reset", target.operation_names)
        self.assertNotIn("reset", pickle.loads(pickle.dumps(target)).operation_names)
        self.assertNotIn("reset", copy.deepcopy(target).operation_names)

    def test_zz_only_on_forte(self):
        for name in DEVICES:
            with self.subTest(device=name):
                ops = ionq_target(name, num_qubits=SMALL_N).operation_names
                self.assertEqual("zz" in ops, name.startswith("forte"), sorted(ops))

    # Regression (fixed in 60fc82e): the simulator's target used to list "zz".
    def test_simulator_has_no_zz(self):
        self.assertNotIn("zz", ionq_target("simulator", num_qubits=SMALL_N).operation_names)

    def test_two_qubit_gates_on_every_ordered_pair(self):
        for name in DEVICES:
            target = ionq_target(name, num_qubits=SMALL_N)
            expected = {(i, j) for i in range(SMALL_N) for j in range(SMALL_N) if i != j}
            for gate in ("ms", "zz"):
                if gate not in target.operation_names:
                    continue
                with self.subTest(device=name, gate=gate):
                    qargs = set(target[gate].keys())
                    self.assertNotIn(None, qargs)
                    self.assertEqual(qargs, expected)
                    for pair in expected:
                        self.assertTrue(target.instruction_supported(gate, pair))

    def test_full_size_pairs_and_no_global_entries(self):
        for name, spec in DEVICES.items():
            with self.subTest(device=name):
                target = ionq_target(name)
                n = spec.num_qubits
                self.assertEqual(len(target["ms"]), n * (n - 1))
                self.assertIsNotNone(target.qargs)
                self.assertNotIn(None, target.qargs)
                for gate in target.operation_names:
                    self.assertNotIn(None, target[gate].keys(), gate)

    def test_no_connectivity_constraint(self):
        """All-to-all: no coupling map (as for a target of global instructions), so
        Qiskit's preset pass managers run no layout or routing stage; the per-pair map
        is still there when asked for by gate."""
        from qiskit.circuit.library import real_amplitudes
        from qiskit.quantum_info import SparsePauliOp
        from qiskit.transpiler import generate_preset_pass_manager

        target = ionq_target("aria-1", num_qubits=SMALL_N)
        self.assertIsNone(target.build_coupling_map())
        full = target.build_coupling_map("ms")
        self.assertEqual(len(full.get_edges()), SMALL_N * (SMALL_N - 1))
        self.assertEqual(len(target.build_coupling_map(filter_idle_qubits=True).get_edges()), SMALL_N * (SMALL_N - 1))
        circuit = real_amplitudes(3, reps=1)
        for level in range(4):
            with self.subTest(level=level):
                isa = generate_preset_pass_manager(level, target=target, translation_method="qstore").run(circuit)
                self.assertEqual(isa.num_qubits, 3)
                self.assertEqual(isa.parameters, circuit.parameters)
                # the trivial layout is stated (qiskit-machine-learning reads it)
                self.assertEqual(isa.layout._input_qubit_count, 3)
                self.assertEqual(isa.layout.final_index_layout(), [0, 1, 2])
                obs = SparsePauliOp("ZIX")
                self.assertEqual(obs.apply_layout(isa.layout), obs)

    def test_one_qubit_gates_on_every_qubit(self):
        target = ionq_target("aria-1", num_qubits=SMALL_N)
        for gate in ("gpi", "gpi2", "rz", "measure", "reset"):
            with self.subTest(gate=gate):
                self.assertEqual(set(target[gate].keys()), {(q,) for q in range(SMALL_N)})

    def test_rz_is_free(self):
        for name in DEVICES:
            target = ionq_target(name, num_qubits=SMALL_N)
            for q in range(SMALL_N):
                with self.subTest(device=name, qubit=q):
                    props = target["rz"][(q,)]
                    self.assertEqual(props.error, 0.0)
                    self.assertEqual(props.duration, 0.0)

    def test_error_rates_match_documented_figures(self):
        for name in DEVICES:
            target = ionq_target(name, num_qubits=SMALL_N)
            family = _family(name)
            with self.subTest(device=name):
                if family is None:  # the ideal simulator
                    self.assertEqual(name, "simulator")
                    for gate in target.operation_names:
                        for props in target[gate].values():
                            self.assertIn(props.error, (None, 0.0), gate)
                    continue
                doc = DOCUMENTED[family]
                self.assertEqual(DEVICES[name].num_qubits, doc["n"])
                for gate in ("gpi", "gpi2"):
                    props = target[gate][(0,)]
                    self.assertAlmostEqual(props.error, 1 - doc["oneq"], places=12)
                    self.assertAlmostEqual(props.duration, doc["t1"], places=12)
                props = target["ms"][(0, 1)]
                self.assertAlmostEqual(props.error, 1 - doc["twoq"], places=12)
                self.assertAlmostEqual(props.duration, doc["t2"], places=12)
                if "zz" in target.operation_names:
                    self.assertAlmostEqual(target["zz"][(1, 0)].error, 1 - doc["twoq"], places=12)
                props = target["measure"][(0,)]
                self.assertAlmostEqual(props.error, 1 - doc["spam"], places=12)
                self.assertAlmostEqual(props.duration, doc["tro"], places=12)

    def test_num_qubits_override(self):
        target = ionq_target("forte-1", num_qubits=3)
        self.assertEqual(target.num_qubits, 3)
        self.assertEqual(target.device.num_qubits, 3)
        self.assertEqual(target.device.ms_error, DEVICES["forte-1"].ms_error)
        with self.assertRaises(ValueError):
            ionq_target("aria-1", num_qubits=0)

    def test_name_prefixes(self):
        for alias in ("qpu.aria-1", "ionq_qpu.aria-1", "ARIA-1"):
            with self.subTest(alias=alias):
                self.assertEqual(ionq_target(alias, num_qubits=2).device.name, "aria-1")
        self.assertEqual(device_spec("ionq_simulator").name, "simulator")

    def test_device_spec_accepted(self):
        spec = DEVICES["aria-2"]
        target = ionq_target(spec, num_qubits=2)
        self.assertEqual(target.device.name, "aria-2")

    def test_unknown_device(self):
        with self.assertRaises(ValueError) as ctx:
            ionq_target("aria-9")
        self.assertIn("aria-9", str(ctx.exception))
        with self.assertRaises(ValueError) as ctx:
            device_spec("harmony-x")
        self.assertIn("harmony-x", str(ctx.exception))

    # Regression (fixed in 60fc82e): IonQTarget.__reduce__ used to raise "TypeError:
    # 'IonQTarget' object is not an instance of 'str' while processing 'description'".
    def test_pickle_round_trip(self):
        for name in DEVICES:
            with self.subTest(device=name):
                target = ionq_target(name, num_qubits=SMALL_N)
                clone = pickle.loads(pickle.dumps(target))
                self.assertIsInstance(clone, IonQTarget)
                self.assertEqual(clone.device, target.device)
                self.assertEqual(clone.num_qubits, SMALL_N)
                self.assertEqual(set(clone.operation_names), set(target.operation_names))
                self.assertEqual(clone["ms"][(0, 1)].error, target["ms"][(0, 1)].error)

    def test_deepcopy(self):
        target = ionq_target("forte-1", num_qubits=SMALL_N)
        self.assertEqual(copy.deepcopy(target).device, target.device)


class TestDeviceSpec(unittest.TestCase):
    """The partial-angle error model of :class:`DeviceSpec`."""

    def test_ms_error_model(self):
        spec = DEVICES["aria-1"]
        self.assertAlmostEqual(spec.ms_error_at(0.25), spec.ms_error)
        self.assertAlmostEqual(spec.ms_error_at(0.0), PARTIAL_FLOOR * spec.ms_error)
        self.assertAlmostEqual(
            spec.ms_error_at(0.1), spec.ms_error * (PARTIAL_FLOOR + (1 - PARTIAL_FLOOR) * 0.4)
        )
        self.assertAlmostEqual(spec.ms_error_at(-0.1), spec.ms_error_at(0.1))
        self.assertAlmostEqual(spec.ms_error_at(0.4), spec.ms_error)  # capped at a quarter turn
        angles = [0.0, 0.05, 0.1, 0.2, 0.25]
        errors = [spec.ms_error_at(a) for a in angles]
        self.assertEqual(errors, sorted(errors))

    def test_no_partial_ms(self):
        spec = DeviceSpec(
            name="x", num_qubits=2, oneq_error=0.0, ms_error=0.01, zz_error=None,
            spam_error=0.0, oneq_duration=0.0, twoq_duration=0.0, readout_duration=0.0,
            partial_ms=False,
        )
        self.assertAlmostEqual(spec.ms_error_at(0.01), 0.01)
        self.assertFalse(spec.has_zz)
        with self.assertRaises(ValueError):
            spec.zz_error_at(0.1)

    def test_has_zz(self):
        self.assertTrue(DEVICES["forte-1"].has_zz)
        self.assertTrue(DEVICES["forte-enterprise-1"].has_zz)
        self.assertFalse(DEVICES["aria-1"].has_zz)
        self.assertFalse(DEVICES["aria-2"].has_zz)


class TestEstimatedFidelity(unittest.TestCase):
    """:func:`estimated_fidelity`."""

    def test_empty_circuit(self):
        for name in DEVICES:
            self.assertEqual(estimated_fidelity(QuantumCircuit(3), name), 1.0)

    def test_monotonic_in_gate_count(self):
        for name in ("aria-1", "forte-1"):
            target = ionq_target(name, num_qubits=3)
            qc = QuantumCircuit(3)
            previous = estimated_fidelity(qc, target)
            for k in range(12):
                if k % 3 == 0:
                    qc.append(GPI2Gate(0.1 * k), [k % 3])
                elif k % 3 == 1:
                    qc.append(GPIGate(0.05 * k), [k % 3])
                else:
                    qc.append(MSGate(0.0, 0.3, 0.25), [0, 2])
                current = estimated_fidelity(qc, target)
                with self.subTest(device=name, gates=k + 1):
                    self.assertLess(current, previous)
                    self.assertGreater(current, 0.0)
                previous = current

    def test_simulator_is_ideal(self):
        qc = _bell_native()
        self.assertEqual(estimated_fidelity(qc, "simulator"), 1.0)

    def test_rz_is_free(self):
        qc = QuantumCircuit(1)
        qc.append(GPI2Gate(0.1), [0])
        before = estimated_fidelity(qc, "aria-1")
        qc.rz(0.3, 0)
        qc.rz(Parameter("t"), 0)
        self.assertEqual(estimated_fidelity(qc, "aria-1"), before)

    def test_angle_aware_ms(self):
        spec = DEVICES["aria-1"]
        fids = {}
        for theta in (0.05, 0.1, 0.25):
            qc = QuantumCircuit(2)
            qc.append(MSGate(0.0, 0.0, theta), [0, 1])
            fids[theta] = estimated_fidelity(qc, "aria-1")
            self.assertAlmostEqual(fids[theta], 1 - spec.ms_error_at(theta), places=12)
        self.assertGreater(fids[0.05], fids[0.1])
        self.assertGreater(fids[0.1], fids[0.25])
        self.assertAlmostEqual(fids[0.25], 0.9872, places=12)

    def test_angle_aware_zz(self):
        spec = DEVICES["forte-1"]
        small, full = QuantumCircuit(2), QuantumCircuit(2)
        small.append(ZZGate(0.05), [0, 1])
        full.append(ZZGate(0.25), [0, 1])
        self.assertAlmostEqual(estimated_fidelity(small, "forte-1"), 1 - spec.zz_error_at(0.05))
        self.assertGreater(estimated_fidelity(small, "forte-1"), estimated_fidelity(full, "forte-1"))

    def test_unbound_angle_priced_as_full(self):
        qc = QuantumCircuit(2)
        qc.append(MSGate(0.0, 0.0, Parameter("t")), [0, 1])
        self.assertAlmostEqual(estimated_fidelity(qc, "aria-1"), 0.9872, places=12)

    def test_qiskit_ionq_style_circuit(self):
        qc = _bell_native()
        expected = 0.9998**4 * 0.9872 * 0.9937**2
        self.assertAlmostEqual(estimated_fidelity(qc, "aria-1"), expected, places=12)
        expected_forte = 0.9998**4 * 0.9932 * 0.9959**2
        self.assertAlmostEqual(estimated_fidelity(qc, "forte-1"), expected_forte, places=12)

    def test_target_name_and_spec_agree(self):
        qc = _bell_native()
        by_name = estimated_fidelity(qc, "aria-1")
        self.assertAlmostEqual(estimated_fidelity(qc, DEVICES["aria-1"]), by_name, places=15)
        self.assertAlmostEqual(estimated_fidelity(qc, ionq_target("aria-1", num_qubits=2)), by_name, places=15)
        self.assertAlmostEqual(estimated_fidelity(qc, "qpu.aria-1"), by_name, places=15)

    def test_generic_target_with_native_gates(self):
        """A plain Target holding IonQ gates (e.g. MQT Bench's) is priced from its properties."""
        from qiskit.transpiler import InstructionProperties

        target = Target(num_qubits=2)
        target.add_instruction(GPI2Gate(Parameter("p")), {(q,): InstructionProperties(error=1e-3) for q in range(2)})
        target.add_instruction(GPIGate(Parameter("p")), {(q,): InstructionProperties(error=1e-3) for q in range(2)})
        target.add_instruction(
            MSGate(Parameter("a"), Parameter("b"), Parameter("c")),
            {p: InstructionProperties(error=0.02) for p in ((0, 1), (1, 0))},
        )
        qc = QuantumCircuit(2)
        qc.append(GPI2Gate(0.1), [0])
        qc.append(MSGate(0.0, 0.0, 0.25), [0, 1])
        self.assertAlmostEqual(estimated_fidelity(qc, target), (1 - 1e-3) * (1 - 0.02), places=12)

    def test_in_unit_interval(self):
        qc = QuantumCircuit(2)
        for _ in range(2000):
            qc.append(MSGate(0.0, 0.0, 0.25), [0, 1])
        fid = estimated_fidelity(qc, "aria-1")
        self.assertGreaterEqual(fid, 0.0)
        self.assertLessEqual(fid, 1.0)
        self.assertAlmostEqual(fid, math.exp(2000 * math.log(0.9872)), places=12)

    def test_unknown_device(self):
        with self.assertRaises(ValueError) as ctx:
            estimated_fidelity(QuantumCircuit(1), "aria-9")
        self.assertIn("aria-9", str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
