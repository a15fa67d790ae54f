"""Reject circuits that IonQ devices cannot run, before any work is spent on them."""

from __future__ import annotations

import math

from qiskit.dagcircuit import DAGCircuit
from qiskit.transpiler import Target
from qiskit.transpiler.basepasses import AnalysisPass
from qiskit.transpiler.exceptions import TranspilerError

#: Non-unitary instructions that pass through to IonQ (mid-circuit ones as OpenQASM 3).
PASS_THROUGH = frozenset({"measure", "reset", "barrier"})


class CheckIonQInput(AnalysisPass):
    """Raise a clear :class:`~qiskit.transpiler.exceptions.TranspilerError` on input IonQ rejects.

    Guarantees that, when it returns, the circuit:

    * has no classical control flow (``if_else``, ``while_loop``, ``for_loop``,
      ``switch_case``, ``box``): IonQ's gate-list and OpenQASM 3 inputs do not accept it;
    * has no ``delay`` or other timing/classical-only instructions;
    * fits the target's qubit count;
    * has no ``initialize`` (it resets qubits), and no ``reset`` unless the target lists it;
    * has only finite numeric gate parameters;

    The error names the offending instruction and the reason. Mid-circuit ``measure`` and
    ``reset`` are accepted (they are sent as OpenQASM 3 jobs). Sets
    ``property_set["ionq_mid_circuit_measurement"]`` when a measurement or reset is
    followed by further operations on the same qubit.

    Args:
        target: Target whose ``num_qubits`` bounds the circuit width.
    """

    def __init__(self, target: Target | None = None) -> None:
        super().__init__()
        self.target = target

    def run(self, dag: DAGCircuit) -> None:
        limit = getattr(self.target, "num_qubits", None)
        if limit is not None and dag.num_qubits() > limit:
            raise TranspilerError(
                f"Circuit '{dag.name}' uses {dag.num_qubits()} qubits but the target has only "
                f"{limit}."
            )
        mid_circuit = False
        # Names, parameters and flags are read from the DAG nodes directly: ``node.op``
        # would build a Python gate object for every standard gate.
        for node in dag.op_nodes():
            if node.is_standard_gate():
                # A standard gate is unitary, on qubits only, and none of the instructions
                # below: only its parameters need a look.
                for param in node.params:
                    if isinstance(param, (int, float)) and not math.isfinite(param):
                        raise TranspilerError(
                            f"Instruction '{node.name}' has a non-finite parameter ({param}); "
                            "IonQ gates need finite angles."
                        )
                continue
            name = node.name
            if node.is_control_flow():
                raise TranspilerError(
                    f"Instruction '{name}' (classical control flow) is not supported on IonQ "
                    "devices; unroll it or run the branches as separate circuits."
                )
            if name == "initialize":
                raise TranspilerError(
                    "Instruction 'initialize' resets its qubits, which IonQ circuits cannot do "
                    "(qubits start in |0>); use StatePreparation (QuantumCircuit.prepare_state) "
                    "at the start of the circuit instead."
                )
            if name == "reset" and self.target is not None and "reset" not in self.target.operation_names:
                raise TranspilerError(
                    "Instruction 'reset' is not supported by this target: IonQ's circuit jobs have "
                    "no reset (qubits start in |0>). Remove it, or run OpenQASM 3 jobs with "
                    "qiskit-ionq for mid-circuit reset."
                )
            if name == "delay":
                raise TranspilerError("Instruction 'delay' is not supported on IonQ devices.")
            if name in ("store",) or (node.cargs and name not in PASS_THROUGH):
                raise TranspilerError(
                    f"Instruction '{name}' acts on classical data and is not supported on "
                    "IonQ devices."
                )
            for param in node.params:
                if isinstance(param, (int, float)) and not math.isfinite(param):
                    raise TranspilerError(
                        f"Instruction '{name}' has a non-finite parameter ({param}); IonQ "
                        "gates need finite angles."
                    )
            if name in ("measure", "reset") and not mid_circuit:
                for succ in dag.quantum_successors(node):
                    if hasattr(succ, "op") and succ.name not in ("measure", "barrier"):
                        mid_circuit = True
                        break
        self.property_set["ionq_mid_circuit_measurement"] = mid_circuit
