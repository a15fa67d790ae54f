"""Transpiler passes of the qstore native-gate compiler (one pass per module)."""

from .absorb_pi_pulses import AbsorbPiPulses
from .best_of_lowerings import LowerBestOfCandidates
from .best_of_modes import BestOfStateAndUnitaryModes
from .check_ionq_input import CheckIonQInput
from .check_native_form import CheckNativeForm
from .check_parameterized import CheckParameterized
from .clear_block_list import ClearBlockList
from .commute_into_blocks import CommuteIntoTwoQubitBlocks
from .consolidate_two_qubit_blocks import ConsolidateTwoQubitBlocks
from .lower_and_resynthesize import LowerAndResynthesize
from .lower_to_native import LowerToIonQNative
from .native_to_standard import NativeToStandard
from .parameters_to_virtual_rz import ParametersToVirtualRZ
from .resynthesize_cnot_networks import ResynthesizeCnotNetworks
from .resynthesize_native import ResynthesizeNativeBlocks
from .resynthesize_shift_invariant import ResynthesizeShiftInvariant
from .resynthesize_three_qubit_blocks import ResynthesizeThreeQubitBlocks
from .state_trivial_layout import StateTrivialLayout
from .uniform_layout_score import UniformLayoutScore

__all__ = [
    "AbsorbPiPulses",
    "BestOfStateAndUnitaryModes",
    "CheckIonQInput",
    "CheckNativeForm",
    "CheckParameterized",
    "ClearBlockList",
    "CommuteIntoTwoQubitBlocks",
    "ConsolidateTwoQubitBlocks",
    "LowerAndResynthesize",
    "LowerBestOfCandidates",
    "LowerToIonQNative",
    "NativeToStandard",
    "ParametersToVirtualRZ",
    "ResynthesizeCnotNetworks",
    "ResynthesizeNativeBlocks",
    "ResynthesizeShiftInvariant",
    "ResynthesizeThreeQubitBlocks",
    "StateTrivialLayout",
    "UniformLayoutScore",
]
