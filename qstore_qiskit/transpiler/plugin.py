"""Qiskit transpiler stage plugins named ``qstore`` (translation and optimization).

Registered through the ``qiskit.transpiler.translation`` and
``qiskit.transpiler.optimization`` entry points, so that::

    transpile(qc, target=ionq_target("aria-1"),
              translation_method="qstore", optimization_method="qstore")

and ``transpile(qc, backend=qstore_backend)`` (whose default translation stage is
``qstore``) compile to IonQ native gates. Circuits with gates on three or more qubits
also need ``init_method="qstore"`` (see :func:`~.passmanager.init_passes`).

Circuits with free parameters come out in the parameter-preserving ISA form of
:class:`~.passes.ParametersToVirtualRZ`: every input parameter kept, only inside virtual
``rz`` gates (numeric GPi/GPi2/MS phases), so that Qiskit's primitives can bind them and
parameter-shift gradients stay exact.

For a target in the standard-gate form (a :class:`~qstore_qiskit.QStoreBackend`'s
target, ``ionq_target(..., isa="standard")``) the native output is rewritten exactly as
the standard gates ``sx``, ``x``, ``rxx`` (``rzz``) between ``rz`` frames
(:class:`~.passes.NativeToStandard`): Qiskit's own optimization passes then run on Rust
gates.
"""

from __future__ import annotations

from qiskit.passmanager.flow_controllers import ConditionalController
from qiskit.transpiler import PassManager, PassManagerConfig
from qiskit.transpiler.preset_passmanagers.plugin import PassManagerStagePlugin

from .passes import CheckParameterized, NativeToStandard, ParametersToVirtualRZ, StateTrivialLayout
from .passmanager import init_passes, optimization_passes, translation_passes
from .target import STANDARD_GATE_NAMES, ionq_target, is_standard_form, native_form


def _target(config: PassManagerConfig | None):
    target = getattr(config, "target", None)
    if target is None:
        # No target given (e.g. only basis_gates): compile for Aria, IonQ's default QPU.
        target = ionq_target("aria-1")
    return target


def _options(config: PassManagerConfig | None) -> dict:
    """Compiler options read from Qiskit's pass-manager configuration."""
    approximation = getattr(config, "approximation_degree", 1.0) if config is not None else 1.0
    return {
        "approximation_degree": 1.0 if approximation is None and config is None else approximation,
        # Qiskit's transpile assumes qubits start in |0> unless told otherwise.
        "qubits_initially_zero": bool(getattr(config, "qubits_initially_zero", True)),
    }


def _not_isa_form(property_set) -> bool:
    return not property_set["ionq_isa_form"]


def _parameterized(property_set) -> bool:
    return bool(property_set["ionq_parameterized"]) and not property_set["ionq_isa_form"]


def _bound(property_set) -> bool:
    return not property_set["ionq_parameterized"] and not property_set["ionq_isa_form"]


def _isa_names(target) -> frozenset[str]:
    """The instruction names of a standard-form target's ISA (``rzz`` only where the
    target has it)."""
    return frozenset(STANDARD_GATE_NAMES & set(target.operation_names)) | {"rz", "measure", "barrier"}


class QStoreTranslationPlugin(PassManagerStagePlugin):
    """Translation stage: lower any circuit to IonQ native gates.

    Bound circuits go through :func:`~.passmanager.translation_passes`; circuits with
    free parameters through :class:`~.passes.ParametersToVirtualRZ`, which keeps every
    parameter, only in virtual ``rz`` gates. Idempotent on native circuits (Qiskit re-runs the translation stage inside its
    optimization loop), leaves the global ``SessionEquivalenceLibrary`` untouched (the
    lowering carries its own rules), and never changes the layout. Where no layout stage
    ran (IonQ targets are all-to-all, so Qiskit's preset pass managers run none), it
    states the trivial layout (:class:`~.passes.StateTrivialLayout`). On a target in
    the standard-gate form, the native gates are then rewritten as standard gates
    (:class:`~.passes.NativeToStandard`, exact).
    """

    def pass_manager(
        self, pass_manager_config: PassManagerConfig, optimization_level: int | None = None
    ) -> PassManager:
        level = 2 if optimization_level is None else optimization_level
        target, options = _target(pass_manager_config), _options(pass_manager_config)
        # With the qstore optimization stage too, its resynthesis round runs fused into
        # the lowering (LowerAndResynthesize; same output, less bookkeeping).
        resynthesize = getattr(pass_manager_config, "optimization_method", None) == "qstore"
        # The lowering emits (and reads) IonQ's own gate names.
        lowering = translation_passes(native_form(target), level, resynthesize=resynthesize, **options)
        standard = is_standard_form(target)
        if standard:
            lowering = lowering + [NativeToStandard(options["qubits_initially_zero"])]
        return PassManager(
            [
                # On a standard-form target, a circuit already in that form (an ISA
                # circuit given again, e.g. each shifted circuit of a gradient) is left
                # as it is: the stage's other passes do not even run, and one condition
                # says so (Qiskit's preset pass managers run this stage on every such
                # circuit: each task it evaluates costs a few microseconds).
                CheckParameterized(_isa_names(target) if standard else None),
                ConditionalController(
                    [
                        ConditionalController(lowering, condition=_bound),
                        # Emits the target's form itself.
                        ConditionalController(
                            [ParametersToVirtualRZ(target, level, **options)], condition=_parameterized
                        ),
                    ],
                    condition=_not_isa_form,
                ),
                # No layout stage ran on an all-to-all IonQ target: say so (trivial layout).
                StateTrivialLayout(),
            ]
        )


class QStoreOptimizationPlugin(PassManagerStagePlugin):
    """Optimization stage: re-consolidate native two-qubit blocks and resynthesise them."""

    def pass_manager(
        self, pass_manager_config: PassManagerConfig, optimization_level: int | None = None
    ) -> PassManager:
        level = 2 if optimization_level is None else optimization_level
        target = _target(pass_manager_config)
        if is_standard_form(target):
            # The translation stage lowered the circuit with this stage's resynthesis
            # fused in (levels 1-2) or as its own last step (level 3), then rewrote it
            # in standard gates, which the native resynthesis does not read.
            return PassManager([])
        passes = optimization_passes(target, level, **_options(pass_manager_config))
        # Parameterized (ISA-form) circuits were optimized part by part by the
        # translation stage; resynthesis would fold their virtual rz back into phases.
        return PassManager([CheckParameterized(), ConditionalController(passes, condition=_bound)])


class QStoreInitPlugin(PassManagerStagePlugin):
    """Init stage: unroll gates on three or more qubits without touching the global
    equivalence library (``init_method="qstore"``)."""

    def pass_manager(
        self, pass_manager_config: PassManagerConfig, optimization_level: int | None = None
    ) -> PassManager:
        return PassManager(
            init_passes(
                _options(pass_manager_config)["qubits_initially_zero"],
                target=native_form(_target(pass_manager_config)),
            )
        )
