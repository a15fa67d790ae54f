"""The qstore native-gate compiler for IonQ devices.

Lowers any Qiskit circuit to IonQ's native GPi, GPi2, MS (and ZZ on Forte-class
devices) with virtual RZ, partial-angle MS and Weyl-based two-qubit resynthesis, and
prices alternatives with device error rates.

.. autosummary::

   generate_ionq_pass_manager
   ionq_target
   estimated_fidelity
   IonQTarget
   DeviceSpec
"""

from .passmanager import generate_ionq_pass_manager, optimization_passes, translation_passes
from .passes import CheckIonQInput, LowerToIonQNative
from .target import (
    DEVICES,
    NATIVE_GATE_NAMES,
    STANDARD_GATE_NAMES,
    DeviceSpec,
    IonQTarget,
    device_spec,
    estimated_fidelity,
    ionq_target,
)

__all__ = [
    "generate_ionq_pass_manager",
    "translation_passes",
    "optimization_passes",
    "CheckIonQInput",
    "LowerToIonQNative",
    "DEVICES",
    "NATIVE_GATE_NAMES",
    "STANDARD_GATE_NAMES",
    "DeviceSpec",
    "IonQTarget",
    "device_spec",
    "estimated_fidelity",
    "ionq_target",
]
