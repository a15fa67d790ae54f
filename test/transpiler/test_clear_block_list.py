"""ClearBlockList: no stale ``block_list`` reaches ConsolidateBlocks."""

from __future__ import annotations

from qiskit import QuantumCircuit
from qiskit.converters import circuit_to_dag
from qiskit.passmanager import PropertySet
from qiskit.quantum_info import Operator
from qiskit.transpiler import PassManager
from qiskit.transpiler.passes import Collect2qBlocks, ConsolidateBlocks, Optimize1qGatesDecomposition

from qstore_qiskit.transpiler.passes import ClearBlockList


def _circuit() -> QuantumCircuit:
    qc = QuantumCircuit(3)
    qc.h(0)
    qc.cx(0, 1)
    qc.rz(0.3, 1)
    qc.t(1)
    qc.cx(1, 2)
    qc.rx(0.7, 2)
    qc.cx(0, 1)
    return qc


def test_drops_the_block_list_and_leaves_the_circuit():
    dag = circuit_to_dag(_circuit())
    pass_ = ClearBlockList()
    pass_.property_set = PropertySet()
    pass_.property_set["block_list"] = [[node] for node in dag.op_nodes()]
    assert pass_.run(dag) is None
    assert pass_.property_set["block_list"] is None
    pass_.run(dag)  # nothing to drop: no error
    assert pass_.property_set["block_list"] is None


def test_consolidation_after_a_rewrite_sees_the_new_circuit():
    qc = _circuit()
    # Collect2qBlocks lists the input's nodes; the 1q rewrite then replaces nodes, so
    # the list is stale by the time ConsolidateBlocks runs.
    pm = PassManager([
        Collect2qBlocks(),
        Optimize1qGatesDecomposition(basis=["rz", "sx"]),
        ClearBlockList(),
        ConsolidateBlocks(force_consolidate=True),
    ])
    out = pm.run(qc)
    assert "block_list" not in pm.property_set or pm.property_set["block_list"] is None
    assert Operator(out).equiv(Operator(qc))
    assert out.count_ops().get("unitary", 0) >= 1
