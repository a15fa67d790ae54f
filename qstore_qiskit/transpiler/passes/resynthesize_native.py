"""Re-optimise a native IonQ circuit, keeping the result only if it is better."""

from __future__ import annotations

import copy
import math

from qiskit.dagcircuit import DAGCircuit
from qiskit.circuit.library import UnitaryGate
from qiskit.passmanager import PropertySet
from qiskit.transpiler import Target
from qiskit.transpiler.basepasses import TransformationPass
from qiskit.transpiler.passes import ConsolidateBlocks

from ..gc_pause import pauses_cyclic_gc
from ..native_ops import entries_cost, entries_to_dag
from ..target import instruction_error, spec_from_target
from .absorb_pi_pulses import absorb_entries
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


def consolidate_and_lower(work: DAGCircuit, lower: LowerToIonQNative, qubits) -> list:
    """Candidate entries: consolidate the native two-qubit blocks of ``work`` (modified)
    and lower them again with ``lower``, then absorb pi pulses."""
    # Without a ``block_list`` in its property set, ConsolidateBlocks collects the same
    # blocks as Collect2qBlocks (``DAGCircuit.collect_2q_runs``) in Rust, without
    # building a Python node object per gate only to read back its index.
    consolidate = ConsolidateBlocks(force_consolidate=True)
    consolidate.property_set = PropertySet()
    work = consolidate.run(work)
    # The candidate stays a light entry list until it wins: most are discarded.
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
        before = native_cost(dag, self.spec)
        entries = consolidate_and_lower(working_copy(dag), self._lower, dag.qubits)
        if entries_cost(entries, self.spec) < before:
            return entries_to_dag(dag, entries)
        return dag
