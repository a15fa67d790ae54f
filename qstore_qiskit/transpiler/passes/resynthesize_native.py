"""Re-optimise a native IonQ circuit, keeping the result only if it is better."""

from __future__ import annotations

import copy
import math

from qiskit.circuit import CircuitInstruction
from qiskit.dagcircuit import DAGCircuit, DAGOpNode
from qiskit.circuit.library import UnitaryGate
from qiskit.passmanager import PropertySet
from qiskit.transpiler import Target
from qiskit.transpiler.basepasses import TransformationPass

from ...gc_pause import pauses_cyclic_gc
from ..native_ops import NATIVE_CLASSES, entries_cost, entries_to_dag, entry_op
from ..target import instruction_error, spec_from_target
from .absorb_pi_pulses import absorb_entries
from .consolidate_two_qubit_blocks import ConsolidateTwoQubitBlocks
from .lower_to_native import LowerToIonQNative


def native_cost(dag: DAGCircuit, spec) -> tuple[float, int]:
    """(-log estimated success, native gate count) of a DAG; lower is better.

    Reads names and parameters from the DAG nodes (``node.op`` would build a Python
    object per standard gate); single-qubit natives all cost alike, so they are priced
    from the gate counts. The sum is exactly rounded (``math.fsum``), hence independent
    of node order: equal gate multisets get equal costs.
    """
    counts = dag.count_ops(recurse=False)
    oneq = counts.get("gpi", 0) + counts.get("gpi2", 0)
    terms = []
    if counts.get("ms", 0) or counts.get("zz", 0):
        for node in dag.op_nodes():
            name = node.name
            if name == "ms" or name == "zz":
                err = instruction_error(name, node.params, spec)
                terms.append(-math.log1p(-min(err, 1.0 - 1e-15)))
    terms.append(oneq * -math.log1p(-min(spec.oneq_error, 1.0 - 1e-15)))
    return math.fsum(terms), oneq + len(terms) - 1


def _share_gpi2_matrices(work: DAGCircuit) -> None:
    """Replace the bound ``gpi2`` gates of ``work`` by unitaries holding their matrices,
    one shared gate per distinct phase.

    :class:`~qiskit.transpiler.passes.ConsolidateBlocks` asks every non-standard gate
    for its matrix through Python (``GPI2Gate.__array__``, ~10 us each), which was most
    of its time on native circuits; a circuit has a few distinct GPi2 phases for many
    gates. Even a phase that occurs once is substituted: a unitary's matrix is read
    without calling into Python, which measured cheaper than that call. The matrices
    are the very arrays ``to_matrix`` returns, so the block matrices, hence the
    candidate, are bit for bit the same as without this step. Only the working copy is
    changed; the input DAG and its gate objects are not touched.
    """
    shared: dict[tuple[float, float], UnitaryGate] = {}
    for node in work.named_nodes("gpi2"):
        (phase,) = node.params
        if type(phase) is not float:  # symbolic (or unusual) phases: leave as they are
            continue
        # The sign of a zero phase reaches the signs of zero matrix entries: keep it apart.
        key = (phase, math.copysign(1.0, phase))
        gate = shared.get(key)
        if gate is None:
            gate = shared[key] = UnitaryGate(node.op.to_matrix(), check_input=False)
        work.substitute_node(node, gate)


def working_copy(dag: DAGCircuit) -> DAGCircuit:
    """The copy of a native DAG that :func:`consolidate_and_lower` may consume.

    A shallow copy (``copy.copy``: the graph is copied, the immutable instructions are
    shared), with bound GPi2 gates as shared unitaries (:func:`_share_gpi2_matrices`).
    Block matrices computed any other way differ in the last bits, which flips Weyl's
    choice of local gates on degenerate blocks (CX-like) and costs single-qubit gates on
    some circuits.
    """
    work = copy.copy(dag)
    _share_gpi2_matrices(work)
    return work


def working_dag(template: DAGCircuit, entries: list) -> DAGCircuit:
    """The DAG of ``entries`` that :func:`consolidate_and_lower` may consume.

    Like :func:`~qstore_qiskit.transpiler.native_ops.entries_to_dag`, except that every
    native gate (GPi, GPi2, MS, ZZ) whose parameters are all plain floats is a
    :class:`~qiskit.circuit.library.UnitaryGate` holding that gate's matrix, one shared
    gate per distinct gate. These are the very arrays the gate's ``to_matrix`` returns
    (:mod:`~qstore_qiskit.transpiler.gates`), so ConsolidateBlocks computes the same
    block matrices bit for bit as on the native DAG (hence the same candidate, see
    :func:`working_copy`), but reads them without a call into Python per gate: for a
    Python gate it costs about 25 us each (measured on vqe_two_local-16: 10.5 ms with
    the MS gates as Python gates, 2 ms as unitaries). Building this DAG directly also
    replaces the shallow copy of the native DAG and the substitution of its GPi2 nodes.
    Gates with symbolic parameters, ``rz`` and non-gate entries are the same objects
    :func:`~qstore_qiskit.transpiler.native_ops.entries_to_dag` builds.
    """
    out = template.copy_empty_like()
    append = out._apply_op_node_back  # pylint: disable=protected-access
    # One instruction per distinct gate, re-targeted per use (``replace`` keeps the
    # operation Rust already converted): appending a Python operation converts it again
    # each time (the matrix of a unitary is copied into Rust), 3x the cost of the rest.
    # Qiskit's own UnitarySynthesis appends nodes this way.
    shared: dict[tuple, CircuitInstruction] = {}
    for entry in entries:
        name, params, op = entry[0], entry[1], entry[2]
        if op is None and name in _UNITARY_FORM:
            for param in params:
                if type(param) is not float:
                    break
            else:
                key = (name, *params)
                if 0.0 in params:
                    # The sign of a zero phase reaches the signs of zero matrix entries.
                    key += tuple(math.copysign(1.0, p) for p in params)
                inst = shared.get(key)
                if inst is None:
                    # Rust keeps its own copy of a unitary's matrix: the memo's
                    # read-only array is not copied here.
                    matrix = NATIVE_CLASSES[name].float_matrix(params)
                    inst = shared[key] = CircuitInstruction(
                        UnitaryGate(matrix, check_input=False), entry[3]
                    )
                else:
                    inst = inst.replace(qubits=entry[3])
                append(DAGOpNode.from_instruction(inst))
                continue
        out.apply_operation_back(entry_op(entry), entry[3], entry[4], check=False)
    return out


#: Native gates that :func:`working_dag` holds as unitaries (``rz`` is a standard gate:
#: Rust reads its matrix without Python).
_UNITARY_FORM = frozenset({"gpi", "gpi2", "ms", "zz"})


def consolidate_and_lower(
    work: DAGCircuit, lower: LowerToIonQNative, qubits, cost_to_beat: tuple | None = None
) -> list | None:
    """Candidate entries: consolidate the native two-qubit blocks of ``work`` (modified)
    and lower them again with ``lower``, then absorb pi pulses.

    With ``cost_to_beat`` (an :func:`~qstore_qiskit.transpiler.native_ops.entries_cost`
    value), the candidate is first lowered for pricing only (``lower_entries(...,
    pricing=True)``: no phases, hence no frame arithmetic, whose cost is exactly the full
    candidate's) and ``None`` is returned unless it is strictly cheaper; only a winning
    candidate is lowered in full (its plans come from ``lower``'s cache). Most
    candidates lose (every one on the vqe circuits of the benchmark suite).
    """
    # Without a ``block_list`` in its property set, ConsolidateBlocks collects the same
    # blocks as Collect2qBlocks (``DAGCircuit.collect_2q_runs``) in Rust, without
    # building a Python node object per gate only to read back its index.
    consolidate = ConsolidateTwoQubitBlocks()
    consolidate.property_set = PropertySet()
    work = consolidate.run(work)
    if cost_to_beat is not None:
        priced = lower.lower_entries(work, pricing=True)
        priced = absorb_entries(priced, qubits) or priced
        if not entries_cost(priced, lower.spec) < cost_to_beat:
            return None
    # The candidate stays a light entry list until it wins.
    entries = lower.lower_entries(work)
    return absorb_entries(entries, qubits) or entries


def resynthesis_key(spec, approximation_degree: float | None, qubits_initially_zero: bool) -> tuple:
    """What determines a resynthesis round's result besides its input circuit."""
    return (spec, approximation_degree, bool(qubits_initially_zero))


class ResynthesizeNativeBlocks(TransformationPass):
    """Consolidate native two-qubit blocks, resynthesise them, keep the better circuit.

    Guarantees: the output is unitary-equivalent (up to global phase) to the input
    (state-equivalent from ``|0...0>`` with ``qubits_initially_zero``), holds
    only native instructions, and its estimated success probability (ties broken by
    native gate count) is at least the input's: a candidate that is not strictly better
    is discarded, which makes the pass safe to run in Qiskit's optimization loop.

    The inner passes run on a shallow copy of the DAG and the candidate is kept as a
    light entry list (:mod:`~qstore_qiskit.transpiler.native_ops`) until it wins, so a
    losing candidate (the common case) costs no gate objects and no DAG; the input is
    then returned as it is.

    Args:
        target: The IonQ target (error rates and ZZ availability).
        approximation_degree: Forwarded to :class:`LowerToIonQNative`.
        qubits_initially_zero: Forwarded to :class:`LowerToIonQNative`; when true the
            output equals the input on ``|0...0>`` instead of as a unitary.
    """

    def __init__(
        self,
        target: Target | None = None,
        approximation_degree: float | None = 1.0,
        qubits_initially_zero: bool = False,
    ) -> None:
        super().__init__()
        self.spec = spec_from_target(target)
        self._target = target
        self._approximation_degree = approximation_degree
        self._qubits_initially_zero = qubits_initially_zero
        self._lowering: LowerToIonQNative | None = None  # built on first use
        #: What determines the pass's result besides its input.
        self.options_key = resynthesis_key(self.spec, approximation_degree, qubits_initially_zero)

    @property
    def _lower(self) -> LowerToIonQNative:
        if self._lowering is None:
            self._lowering = LowerToIonQNative(
                self._target,
                approximation_degree=self._approximation_degree,
                qubits_initially_zero=self._qubits_initially_zero,
            )
        return self._lowering

    @pauses_cyclic_gc
    def run(self, dag: DAGCircuit) -> DAGCircuit:
        done = self.property_set["ionq_resynthesized"]
        if done is not None and done[0] is dag and done[1] == self.options_key:
            # This very circuit is the output of a LowerAndResynthesize with the same
            # options (the translation stage), which has already run this pass's one
            # round on it: the stage's result is that output.
            self.property_set["ionq_resynthesized"] = None
            return dag
        entries = consolidate_and_lower(
            working_copy(dag), self._lower, dag.qubits, native_cost(dag, self.spec)
        )
        if entries is not None:
            return entries_to_dag(dag, entries)
        return dag
