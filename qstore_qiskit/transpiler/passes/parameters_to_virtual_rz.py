"""Lower a parameterized circuit to IonQ native gates whose parameters sit only in virtual RZ.

Qiskit's instruction-set-architecture (ISA) contract is that a transpiled circuit keeps
its parameters, so that it can be bound later (``BackendSamplerV2``, qiskit-machine-
learning, ...). The native-gate lowering alone pushes every Z rotation forward as a
virtual frame into the phases of later GPi/GPi2/MS gates: a parameter then appears inside
several native phases at once, and the last rotation layer before a measurement vanishes
(a Z frame before a Z measurement changes nothing), which drops parameters. Neither is
acceptable for an ISA circuit: parameter-shift gradients need every parameter inside
standard Pauli rotations, and binding needs every parameter present.

This pass produces the parameter-preserving ISA form: every parameterized gate becomes
Clifford or numeric gates around ``rz(a * angle + b)`` (``angle`` the input gate's own
angle expression), the numeric parts between those ``rz`` gates are lowered to native
gates by the ordinary lowering, and the parameterized ``rz`` gates stay in the circuit as
*virtual* ``rz`` instructions. The payload serializer turns them into frame changes at
bind time, so they cost nothing on the device.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from qiskit.circuit import CircuitInstruction, Parameter, ParameterExpression, QuantumCircuit
from qiskit.circuit.equivalence_library import StandardEquivalenceLibrary
from qiskit.circuit.library import RXXGate, RZGate, RZZGate
from qiskit.converters import circuit_to_dag
from qiskit.dagcircuit import DAGCircuit, DAGOpNode
from qiskit.transpiler import PassManager, Target
from qiskit.transpiler.basepasses import TransformationPass
from qiskit.transpiler.exceptions import TranspilerError
from qiskit.transpiler.passes import Optimize1qGatesDecomposition
from ..gates import MSGate
from ..target import is_standard_form, native_form
from .native_to_standard import NativeToStandard, merge_frames

#: The basis every parameterized gate is rewritten into: only ``rz`` takes an angle.
_RZ_BASIS = ("rz", "sx", "x", "cx")
#: Instructions of a circuit that is already in the parameter-preserving ISA form.
_ISA_NAMES = frozenset({"gpi", "gpi2", "ms", "zz", "rz", "measure", "reset", "barrier"})
#: The same for a target in the standard-gate form (``ionq_target(..., isa="standard")``).
_STANDARD_ISA_NAMES = frozenset({"sx", "x", "rxx", "rzz", "rz", "measure", "reset", "barrier"})
_TWO_PI = 2.0 * math.pi


def _symbolic(op: Any) -> bool:
    """Whether ``op`` has an angle that still depends on a parameter."""
    return any(isinstance(p, ParameterExpression) and p.parameters for p in getattr(op, "params", ()))


#: ISA instructions without parameters.
_NO_PARAMETERS = frozenset({"sx", "x", "measure", "reset", "barrier"})


def _node_symbolic(node: DAGOpNode) -> bool:
    """Whether a DAG node has an angle that depends on a parameter (without building its
    Python gate object unless it holds an expression)."""
    return node.is_parameterized() and any(
        isinstance(p, ParameterExpression) and p.parameters for p in node.params
    )


def _numeric_phase(phase: Any) -> float:
    """The global phase without its parameter-dependent part (equality up to global phase)."""
    if isinstance(phase, ParameterExpression):
        return float(phase.numeric().real) if not phase.parameters else 0.0
    return float(phase)


class ParametersToVirtualRZ(TransformationPass):
    """Lower to IonQ native gates, keeping every parameter in a virtual ``rz``.

    Guarantees, for a circuit of gates on at most two qubits (wider gates are unrolled by
    the lowering's own :class:`~qiskit.transpiler.passes.HighLevelSynthesis` first):

    * **Every parameter is kept.** The output's parameters are exactly the input's,
      including those of the last rotation layer before a measurement (they become a
      trailing virtual ``rz``, which the payload drops for free).
    * **Parameters sit only in ``rz`` angles.** Every ``gpi``, ``gpi2``, ``ms`` and
      ``zz`` of the output has numeric phases and angles; every parameter occurs in
      ``rz(a * angle + b)`` gates, ``angle`` being the angle expression of one input
      gate, ``a`` and ``b`` numbers. A gate whose angle is a single parameter (the usual
      ansatz) therefore yields ``rz`` gates each linear in one parameter, so
      parameter-shift gradients (qiskit-machine-learning's default) stay exact on the
      output, and every bound value gives a circuit equal to the bound input.
    * **Numeric parts are optimized as usual.** The gates between parameterized ``rz``
      gates go through the ordinary native lowering
      (:func:`~qstore_qiskit.transpiler.translation_passes`): two-qubit block
      resynthesis with partial-angle MS, Z frames pushed into later native phases, GPi
      absorption. Numeric Z frames left at the end of one part are handed to the next.
    * **Equivalence.** The output equals the input as a unitary up to global phase;
      with ``qubits_initially_zero=True`` only the part before the first parameterized
      ``rz`` may use that qubits start in ``|0>``, and the output then prepares the same
      state from ``|0...0>``.
    * **Idempotent.** A circuit made only of native instructions whose parameters are
      all in ``rz`` angles is returned unchanged (Qiskit re-runs the translation stage
      in its optimization loop).

    A circuit without parameters is lowered exactly as by the ordinary lowering.

    With a target in the standard-gate form (``ionq_target(..., isa="standard")``, a
    backend's target), the output is in that form: ``sx``, ``x``, ``rxx`` and ``rzz``
    instead of ``gpi2``, ``gpi``, ``ms`` and ``zz`` (:class:`NativeToStandard`, exact),
    and the same guarantees hold with those names.

    Args:
        target: The IonQ target of the lowering.
        optimization_level: The lowering's optimization level (0-3).
        approximation_degree: As for :class:`LowerToIonQNative`.
        qubits_initially_zero: Whether the circuit starts in ``|0...0>`` (see above).
        lowering: ``f(qubits_initially_zero) -> list of passes`` that lowers a numeric
            circuit; default :func:`~qstore_qiskit.transpiler.translation_passes` with
            the arguments above.
    """

    def __init__(
        self,
        target: Target | None = None,
        optimization_level: int = 2,
        approximation_degree: float | None = 1.0,
        qubits_initially_zero: bool = False,
        lowering: Callable[[bool], list] | None = None,
    ) -> None:
        super().__init__()
        self.target = target
        self.optimization_level = optimization_level
        self.approximation_degree = approximation_degree
        self.qubits_initially_zero = qubits_initially_zero
        self._lowering = lowering
        self._pms: dict[bool, PassManager] = {}
        self._rules: dict[tuple, tuple[QuantumCircuit, list[Parameter]] | None] = {}
        self._standard = is_standard_form(target)
        self._isa_names = _ISA_NAMES
        if self._standard:  # rzz only where the target has ZZ
            self._isa_names = _STANDARD_ISA_NAMES - (set() if "rzz" in target.operation_names else {"rzz"})

    # ------------------------------------------------------------------ driver
    def run(self, dag: DAGCircuit) -> DAGCircuit:
        if self._in_isa_form(dag, self._isa_names):
            return dag
        self._to_rz_form(dag)
        out = self._lower_between_rz(dag)
        if not self._standard:
            return out
        out = NativeToStandard(self.qubits_initially_zero).run(out)
        if self.optimization_level >= 1:
            # The numeric parts were lowered one stage at a time, so a wire's one-qubit
            # run can be split between two parts (two GPi2 where one rotation would do).
            # Qiskit's preset pass managers merge such runs with this same pass in their
            # optimization stage, on every circuit they are given; merged here (once per
            # compile), an ISA circuit given again is already its fixed point. Its runs
            # stop at parameterized rz, next to which it can leave a numeric rz:
            # merge_frames takes those in.
            Optimize1qGatesDecomposition(target=self.target).run(out)
            out = merge_frames(out, self.qubits_initially_zero)
        return out

    @staticmethod
    def _in_isa_form(dag: DAGCircuit, names: frozenset = _ISA_NAMES) -> bool:
        # Names are counted by the DAG itself, and only nodes of names that can hold an
        # expression are looked at in Python: ``node.op`` would build a Python gate
        # object for every standard gate (Qiskit's preset pass managers re-run this stage
        # on every ISA circuit they are given, e.g. each shifted circuit of a gradient).
        counts = dag.count_ops(recurse=False)
        if not counts.keys() <= names:
            return False
        others = [name for name in counts if name not in _NO_PARAMETERS and name != "rz"]
        if others and any(_node_symbolic(node) for node in dag.named_nodes(*others)):
            return False  # a parameter outside rz
        # A numeric native circuit still goes through the lowering (normal form).
        return "rz" in counts and any(_node_symbolic(node) for node in dag.named_nodes("rz"))

    # ------------------------------------------------------------------ rz form
    def _to_rz_form(self, dag: DAGCircuit) -> None:
        """Rewrite every parameterized gate but ``rz`` into numeric gates and ``rz``."""
        for _ in range(8):  # definitions nest a few levels at most
            pending = [n for n in dag.op_nodes() if n.op.name != "rz" and _symbolic(n.op)]
            if not pending:
                return
            for node in pending:
                sub = self._rule(node.op)
                sub_dag = circuit_to_dag(sub, copy_operations=False)
                sub_dag.global_phase = _numeric_phase(sub.global_phase)
                dag.substitute_node_with_dag(node, sub_dag)
        names = sorted({n.op.name for n in dag.op_nodes() if n.op.name != "rz" and _symbolic(n.op)})
        raise TranspilerError(f"Cannot rewrite parameterized instruction(s) {names} into virtual RZ form.")

    def _rule(self, op: Any) -> QuantumCircuit:
        """A circuit equal to ``op`` (up to global phase) whose angles are in ``rz`` only
        (or in gates the next round rewrites)."""
        name = op.name
        params = list(op.params)
        if name in ("p", "u1"):
            sub = QuantumCircuit(1)
            sub.rz(params[0], 0)
            return sub
        if name in ("gpi", "gpi2"):
            # GPi(phi) = RZ(2 pi phi) X RZ(-2 pi phi); GPi2 likewise with SX.
            sub = QuantumCircuit(1)
            sub.rz(-_TWO_PI * params[0], 0)
            sub.x(0) if name == "gpi" else sub.sx(0)
            sub.rz(_TWO_PI * params[0], 0)
            return sub
        if name == "ms":
            # MS(phi0, phi1, theta) = frames around MS(0, 0, theta) = RXX(2 pi theta).
            sub = QuantumCircuit(2)
            sub.rz(-_TWO_PI * params[0], 0)
            sub.rz(-_TWO_PI * params[1], 1)
            theta = params[2]
            if isinstance(theta, ParameterExpression) and theta.parameters:
                sub.append(RXXGate(_TWO_PI * theta), [0, 1])
            else:
                sub.append(MSGate(0.0, 0.0, theta), [0, 1])
            sub.rz(_TWO_PI * params[0], 0)
            sub.rz(_TWO_PI * params[1], 1)
            return sub
        if name == "zz":
            sub = QuantumCircuit(2)
            sub.append(RZZGate(_TWO_PI * params[0]), [0, 1])
            return sub
        template = self._translated(op)
        if template is None:
            definition = getattr(op, "definition", None)
            if definition is None:
                raise TranspilerError(
                    f"Cannot keep the parameters of instruction '{name}' in virtual RZ form: it "
                    "has no rule to standard gates and no definition."
                )
            return definition
        circuit, placeholders = template
        return circuit.assign_parameters(dict(zip(placeholders, params)), inplace=False)

    def _translated(self, op: Any) -> tuple[QuantumCircuit, list[Parameter]] | None:
        """``op``'s rule to ``rz``/``sx``/``x``/``cx`` with placeholder angles (cached)."""
        key = (type(op), op.name, op.num_qubits, len(op.params), getattr(op, "ctrl_state", None))
        if key in self._rules:
            return self._rules[key]
        from qiskit.transpiler.passes import BasisTranslator

        placeholders = [Parameter(f"_qstore_angle{i}") for i in range(len(op.params))]
        result = None
        try:
            gate = op.copy()
            gate.params = list(placeholders)
            circuit = QuantumCircuit(op.num_qubits)
            circuit.append(gate, range(op.num_qubits))
            translated = BasisTranslator(StandardEquivalenceLibrary, list(_RZ_BASIS))(circuit)
            result = (translated, placeholders)
        except Exception:  # noqa: BLE001 -- no standard rule: fall back to the definition
            result = None
        self._rules[key] = result
        return result

    # ------------------------------------------------------------------ lowering
    def _pass_manager(self, qubits_initially_zero: bool) -> PassManager:
        pm = self._pms.get(qubits_initially_zero)
        if pm is None:
            if self._lowering is not None:
                passes = self._lowering(qubits_initially_zero)
            else:
                from ..passmanager import translation_passes  # the lowering imports this module

                passes = translation_passes(
                    native_form(self.target), self.optimization_level, self.approximation_degree, qubits_initially_zero
                )
            pm = self._pms[qubits_initially_zero] = PassManager(passes)
        return pm

    def _lower_between_rz(self, dag: DAGCircuit) -> DAGCircuit:
        """Lower the numeric parts between parameterized ``rz`` gates; keep those ``rz``.

        Each op node gets a *stage*: one more than the stage of a parameterized ``rz``
        before it, else the largest stage before it. The numeric nodes of stage ``s``,
        then the parameterized ``rz`` nodes of stage ``s``, in stage order, are a
        topological order of the circuit; numeric parts are lowered one stage at a time.
        """
        stage: dict[DAGOpNode, int] = {}
        is_rz: dict[DAGOpNode, bool] = {}
        numeric: list[list[DAGOpNode]] = [[]]
        rz_nodes: list[list[DAGOpNode]] = [[]]
        for node in dag.topological_op_nodes():
            s = 0
            for pred in dag.predecessors(node):
                if isinstance(pred, DAGOpNode):
                    s = max(s, stage[pred] + (1 if is_rz[pred] else 0))
            stage[node] = s
            is_rz[node] = node.op.name == "rz" and _symbolic(node.op)
            while len(numeric) <= s:
                numeric.append([])
                rz_nodes.append([])
            (rz_nodes if is_rz[node] else numeric)[s].append(node)
        out = dag.copy_empty_like()
        out.global_phase = _numeric_phase(dag.global_phase)
        qubits, clbits = list(dag.qubits), list(dag.clbits)
        carry: dict[Any, float] = {}  # numeric Z frame handed to the next stage, per qubit
        last = len(numeric) - 1
        for s in range(len(numeric)):
            if numeric[s] or (s == last and carry):
                sub = QuantumCircuit(qubits, clbits)
                for qubit, angle in carry.items():
                    sub._append(CircuitInstruction(RZGate(angle), (qubit,), ()))
                carry = {}
                for node in numeric[s]:
                    sub._append(CircuitInstruction(node.op, node.qargs, node.cargs))
                lowered = self._pass_manager(self.qubits_initially_zero and s == 0).run(sub)
                out.global_phase = out.global_phase + _numeric_phase(lowered.global_phase)
                trailing = self._trailing_rz(lowered) if s < last else set()
                for index, inst in enumerate(lowered.data):
                    if index in trailing:
                        q = inst.qubits[0]
                        carry[q] = carry.get(q, 0.0) + float(inst.operation.params[0])
                        continue
                    out.apply_operation_back(inst.operation, inst.qubits, inst.clbits, check=False)
            for node in rz_nodes[s]:
                out.apply_operation_back(node.op, node.qargs, node.cargs, check=False)
        # Frames still carried (no later numeric part on that wire) stay trailing rz.
        for qubit, angle in carry.items():
            if abs(math.remainder(angle, _TWO_PI)) > 1e-12:
                out.apply_operation_back(RZGate(angle), (qubit,), (), check=False)
        return out

    @staticmethod
    def _trailing_rz(circuit: QuantumCircuit) -> set[int]:
        """Indices of numeric ``rz`` gates that are the last operation on their wire."""
        done: set = set()
        found: set[int] = set()
        for index in range(len(circuit.data) - 1, -1, -1):
            inst = circuit.data[index]
            if inst.name == "rz" and inst.qubits[0] not in done and not _symbolic(inst.operation):
                found.add(index)
            done.update(inst.qubits)
        return found
