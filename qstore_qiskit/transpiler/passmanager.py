"""Pass managers of the qstore native-gate compiler."""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.passmanager.flow_controllers import ConditionalController
from qiskit.transpiler import PassManager, Target
from qiskit.transpiler.passes import HighLevelSynthesis

from .passes import (
    BestOfStateAndUnitaryModes,
    CheckIonQInput,
    CheckNativeForm,
    CommuteIntoTwoQubitBlocks,
    ConsolidateTwoQubitBlocks,
    LowerAndResynthesize,
    LowerBestOfCandidates,
    LowerToIonQNative,
    ResynthesizeNativeBlocks,
    ResynthesizeThreeQubitBlocks,
    UniformLayoutScore,
)
from .parallel import ParallelPassManager
from .target import DeviceSpec, ionq_target

#: Instructions the lowering handles itself; wider gates are unrolled first.
_LOWERING_BASIS = sorted(
    {name for name, gate in get_standard_gate_name_mapping().items() if gate.num_qubits <= 2}
    | {"gpi", "gpi2", "ms", "zz", "unitary", "measure", "reset", "barrier"}
)


@lru_cache(maxsize=2)
def _unroll_prototype(qubits_initially_zero: bool) -> HighLevelSynthesis:
    return HighLevelSynthesis(
        basis_gates=_LOWERING_BASIS, min_qubits=3, qubits_initially_zero=qubits_initially_zero
    )


def _unroll_wide_gates(qubits_initially_zero: bool) -> HighLevelSynthesis:
    """Qiskit's :class:`HighLevelSynthesis` unrolling gates on three or more qubits into
    gates the lowering handles.

    A copy of one prototype per setting: building the pass loads Qiskit's synthesis
    plugins through their entry points (about 0.5 ms, twice per ``transpile`` call, as
    much as compiling a small circuit), and the state it builds (the plugin table and
    its fixed options) is only read when it runs. A shallow copy is a pass instance of
    its own (Qiskit sets its ``property_set`` per run) sharing that read-only state.
    """
    return copy.copy(_unroll_prototype(bool(qubits_initially_zero)))


def init_passes(qubits_initially_zero: bool = True, target: Target | None = None) -> list:
    """Init stage: unroll gates on three or more qubits into gates the lowering handles.

    Qiskit's default init stage translates such gates into the *target's* basis through
    the global equivalence library, which has no path to GPi/GPi2/MS (qiskit-ionq adds
    one by mutating that library; we do not). Use ``init_method="qstore"`` for circuits
    with gates on three or more qubits.

    With a ``target`` whose qubits are all coupled alike (every IonQ target), the stage
    also tells Qiskit's layout search so (:class:`UniformLayoutScore`), which then stops
    at the first perfect layout instead of scoring thousands of equivalent ones.
    """
    passes: list = [_unroll_wide_gates(qubits_initially_zero)]
    if target is not None:
        passes.append(UniformLayoutScore(target))
    return passes


def translation_passes(
    target: Target | None,
    optimization_level: int = 2,
    approximation_degree: float | None = 1.0,
    qubits_initially_zero: bool = False,
    resynthesize: bool = False,
) -> list:
    """The passes that turn any circuit into IonQ native gates.

    1. :class:`CheckIonQInput` rejects what IonQ cannot run, with a clear error; a
       circuit already in native output form (:class:`CheckNativeForm`) skips the
       rest, which makes the stage idempotent.
    2. Qiskit's :class:`HighLevelSynthesis` unrolls gates on three or more qubits
       (and custom gates) into one- and two-qubit gates.
    3. At ``optimization_level >= 2``, :class:`CommuteIntoTwoQubitBlocks` moves
       two-qubit gates back through gates they commute with onto an earlier block of
       the same pair.
    4. At ``optimization_level >= 1``, :class:`ConsolidateTwoQubitBlocks` (Qiskit's
       :class:`~qiskit.transpiler.passes.ConsolidateBlocks`, collecting the blocks as
       :class:`~qiskit.transpiler.passes.Collect2qBlocks` does) merges each
       run of bound gates on a qubit pair into one two-qubit unitary, so that the
       lowering resynthesises it with the fewest MS.
    5. :class:`LowerToIonQNative` emits GPi/GPi2/MS/ZZ with virtual RZ.
    6. At ``optimization_level >= 1``, :class:`AbsorbPiPulses` commutes the remaining
       GPi gates forward as a Pauli frame and merges them into later gates (run inside
       the lowering, ``absorb_pi_pulses=True``, so the circuit in between is not built).
    7. At ``optimization_level 3``, steps 2-6 plus :class:`ResynthesizeNativeBlocks` run
       on the circuit as given and after Qiskit level-3 rewrites into other gate sets
       (:class:`LowerBestOfCandidates`), keeping the result with the highest estimated
       success; then :class:`ResynthesizeThreeQubitBlocks` replaces three-qubit blocks
       by exact numerical syntheses with fewer MS where it finds one. With
       ``qubits_initially_zero``, :class:`BestOfStateAndUnitaryModes` also runs the
       unitary-mode passes when that search had blocks to look at, so that the
       state-mode output never has more MS than the unitary-mode one.

    With ``resynthesize`` (the ``qstore`` translation plugin sets it when the
    optimization stage is ``qstore`` too), levels 1-2 run steps 5-6 as
    :class:`LowerAndResynthesize`, which also does the optimization stage's
    :class:`ResynthesizeNativeBlocks` round on the lowering's entries, before any gate
    object is built; that stage then passes the circuit through. The output is the
    same as without it followed by that stage.
    """

    def lowering_passes(zero: bool = qubits_initially_zero) -> list:
        passes: list = [_unroll_wide_gates(False)]
        if optimization_level >= 2:
            passes.append(CommuteIntoTwoQubitBlocks())
        if optimization_level >= 1:
            # ConsolidateBlocks collects the blocks itself (the same as Collect2qBlocks,
            # in Rust) when no pass left a ``block_list`` (ConsolidateTwoQubitBlocks drops
            # any): Collect2qBlocks would build a Python node object per gate only for
            # their indices to be read back.
            passes.append(ConsolidateTwoQubitBlocks())
        # Level >= 1 also absorbs pi pulses (AbsorbPiPulses), fused into the lowering so
        # that the intermediate circuit is never built.
        if resynthesize and optimization_level in (1, 2):
            passes.append(
                LowerAndResynthesize(
                    target, approximation_degree=approximation_degree, qubits_initially_zero=zero
                )
            )
            return passes
        passes.append(
            LowerToIonQNative(
                target,
                approximation_degree=approximation_degree,
                qubits_initially_zero=zero,
                absorb_pi_pulses=optimization_level >= 1,
            )
        )
        if optimization_level >= 3:
            passes.append(
                ResynthesizeNativeBlocks(
                    target,
                    approximation_degree=approximation_degree,
                    qubits_initially_zero=zero,
                )
            )
        return passes

    def level3_passes(zero: bool) -> list:
        def lower() -> list:
            return lowering_passes(zero)

        return [
            LowerBestOfCandidates(target, lower, qubits_initially_zero=zero),
            ResynthesizeThreeQubitBlocks(target, lower),
        ]

    if optimization_level >= 3 and qubits_initially_zero:
        lowering: list = [
            BestOfStateAndUnitaryModes(
                target, lambda: level3_passes(True), lambda: level3_passes(False)
            )
        ]
    elif optimization_level >= 3:
        lowering = level3_passes(False)
    else:
        lowering = lowering_passes()
    # A circuit already made of native instructions is left as it is: the stage is then
    # idempotent, as Qiskit's optimization loop (which re-runs translation) requires.
    return [
        CheckIonQInput(target),
        CheckNativeForm(target),
        ConditionalController(lowering, condition=_not_native),
    ]


def _not_native(property_set) -> bool:
    return not property_set["ionq_native_form"]


def optimization_passes(
    target: Target | None,
    optimization_level: int = 2,
    approximation_degree: float | None = 1.0,
    qubits_initially_zero: bool = False,
) -> list:
    """Passes that re-optimise an already native circuit.

    Re-collecting two-qubit blocks on native gates and resynthesising them merges MS
    gates that other stages left adjacent and re-fuses single-qubit runs; the result is
    never worse than the input because Weyl resynthesis is optimal per block.
    """
    if optimization_level < 1:
        return []
    return [
        ResynthesizeNativeBlocks(
            target,
            approximation_degree=approximation_degree,
            qubits_initially_zero=qubits_initially_zero,
        )
    ]


def generate_ionq_pass_manager(
    device: Any = "aria-1",
    optimization_level: int = 2,
    *,
    target: Target | None = None,
    num_qubits: int | None = None,
    approximation_degree: float | None = 1.0,
    qubits_initially_zero: bool = False,
) -> PassManager:
    """Build a pass manager that compiles any circuit to IonQ native gates.

    The returned pass manager keeps the circuit's own qubits (trivial layout, no
    ancillas; IonQ devices are all-to-all) and outputs only ``gpi``, ``gpi2``, ``ms``
    (``zz`` on Forte-class targets), ``measure``, ``reset``, ``barrier`` and trailing
    virtual ``rz``.

    Args:
        device: A device name (``"aria-1"``, ``"forte-1"``, ``"simulator"``, ...), a
            :class:`DeviceSpec`, or a backend with a ``target``.
        optimization_level: 0 lowers gate by gate; 1-3 also consolidate two-qubit blocks
            and resynthesise them with partial-angle MS gates.
        target: Use this target instead of building one from ``device``.
        num_qubits: Qubit count of the target built from ``device``.
        approximation_degree: 1.0 for exact synthesis, ``None`` to approximate up to
            the hardware's error, or a fidelity floor in ``(0, 1)``.
        qubits_initially_zero: ``False`` (default) keeps the output equal to the input
            as a unitary (up to global phase). ``True`` lets the compiler use that
            qubits start in ``|0>``, as on hardware (and as Qiskit's ``transpile``
            assumes): the output then prepares the same state from ``|0...0>``, hence
            gives the same measurement statistics, often with fewer MS gates. Our
            backends compile with ``True``.

    Returns:
        A :class:`~.parallel.ParallelPassManager` (a
        :class:`~qiskit.transpiler.PassManager` whose ``run`` on a list of circuits
        compiles them in forked worker processes, one per usable core).
    """
    if isinstance(optimization_level, bool) or optimization_level not in (0, 1, 2, 3) or not isinstance(
        optimization_level, int
    ):
        raise ValueError(f"optimization_level must be 0, 1, 2 or 3, got {optimization_level!r}")
    hook = getattr(device, "qstore_pass_manager", None)
    if target is None and callable(hook):
        # A qstore backend: its pass manager shares the backend's template cache.
        return hook(optimization_level)
    if target is None:
        backend_target = getattr(device, "target", None)
        if isinstance(backend_target, Target):
            target = backend_target
        elif isinstance(device, (str, DeviceSpec)):
            target = ionq_target(device, num_qubits=num_qubits)
        else:
            raise TypeError(f"device must be a device name, DeviceSpec or backend, got {device!r}")
    return ParallelPassManager(
        translation_passes(target, optimization_level, approximation_degree, qubits_initially_zero)
    )
