"""IonQ device targets with per-gate error rates, and the estimated-success model.

The compiler is fidelity-aware: where two lowerings are possible it prices both with the
error model here and keeps the one with the higher estimated success probability.

Sources of the figures (means over the device, as published):

* Aria-class (``aria-1``, ``aria-2``): 1q fidelity 99.98 %, 2q (MS) fidelity 98.72 %,
  SPAM fidelity 99.37 %, durations 135 us / 600 us / 300 us. These are the values MQT
  Bench ships for its ``ionq_aria_25`` device (``mqt/bench/targets/devices/ionq.py``),
  taken from IonQ's published Aria characterization.
* Forte-class (``forte-1``, ``forte-enterprise-1``): 1q 99.98 %, 2q 99.32 %, SPAM
  99.59 %, durations 130 us / 970 us / 150 us (MQT Bench ``ionq_forte_36``). Forte
  supports both MS and the ZZ gate natively (IonQ, "Getting started with native gates").
* Partial-angle MS: IonQ documents that arbitrary-angle (partially entangling) MS gates
  are executed with a shorter interaction and lower error than a fully entangling one.
  We model the error of ``MS(theta)`` (``theta`` in turns, ``0 <= theta <= 1/4``) as
  ``e_full * (PARTIAL_FLOOR + (1 - PARTIAL_FLOOR) * theta / 0.25)``: half the full-MS
  error as the angle goes to zero, the full error at a quarter turn. This is a modelling
  assumption, stated here so that estimated fidelities are reproducible.
* ``simulator``: IonQ's cloud simulator is ideal by default, so every error is zero; its
  native gate set is Aria's (GPi, GPi2, MS).
* ``rz`` is virtual (a frame change in the control software): zero error and duration.

Two instruction-set forms of the same device (``ionq_target(..., isa=...)``):

* ``"native"`` (default): IonQ's own gates, GPi, GPi2, MS (and ZZ), as qiskit-ionq's
  native targets hold them.
* ``"standard"``: the same gates written as Qiskit standard gates, each exactly one IonQ
  native gate once its ``rz`` frames are pushed into the phases (which the payload does
  for free): ``sx`` = GPi2(0), ``x`` = GPi(0), ``rxx(t)`` = MS(0, 0, t / 2pi) and
  ``rzz(t)`` = ZZ(t / 2pi), with ``GPi2(phi) = rz(2 pi phi) . sx . rz(-2 pi phi)`` up to a
  global phase, and likewise for GPi and MS. Qiskit's own passes (``Optimize1qGatesDecomposition``,
  ``ConsolidateBlocks``, ``UnitarySynthesis``) then work on Rust gates, without a call
  back into Python per gate, and parameters stay in ``rz`` angles. A
  :class:`~qstore_qiskit.QStoreBackend` advertises this form (see docs/transpiler.rst).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from qiskit.circuit import Parameter, QuantumCircuit
from qiskit.circuit.library import Measure, Reset, RXXGate, RZGate, RZZGate, SXGate, XGate
from qiskit.transpiler import InstructionProperties, Target
from qiskit_ionq.ionq_gates import GPI2Gate, GPIGate, MSGate, ZZGate

#: Fraction of the full-MS error that a vanishingly small MS angle still costs.
PARTIAL_FLOOR = 0.5

#: Names of the instructions a native IonQ circuit may contain.
NATIVE_GATE_NAMES = frozenset({"gpi", "gpi2", "ms", "zz", "rz"})
#: Names of the instructions of the standard-gate form (``isa="standard"``).
STANDARD_GATE_NAMES = frozenset({"sx", "x", "rxx", "rzz", "rz"})
#: The instruction-set forms :func:`ionq_target` builds.
ISA_FORMS = ("native", "standard")


@dataclass(frozen=True)
class DeviceSpec:
    """Static facts about one IonQ device family, used to build its :class:`Target`.

    Attributes:
        name: IonQ's backend name without the ``qpu.`` prefix, e.g. ``"aria-1"``.
        num_qubits: Number of qubits.
        oneq_error: Error of one GPi or GPi2 gate.
        ms_error: Error of one fully entangling MS gate (a quarter turn).
        zz_error: Error of a ZZ gate, or ``None`` when ZZ is not native.
        spam_error: State preparation and measurement error per qubit.
        oneq_duration: Duration of a 1q gate in seconds.
        twoq_duration: Duration of a 2q gate in seconds.
        readout_duration: Duration of a measurement in seconds.
        partial_ms: Whether arbitrary-angle MS gates are supported.
    """

    name: str
    num_qubits: int
    oneq_error: float
    ms_error: float
    zz_error: float | None
    spam_error: float
    oneq_duration: float
    twoq_duration: float
    readout_duration: float
    partial_ms: bool = True

    @property
    def has_zz(self) -> bool:
        """Whether the ZZ gate is native on this device."""
        return self.zz_error is not None

    def ms_error_at(self, angle: float) -> float:
        """Error of an MS gate of ``angle`` turns (see the module docstring for the model)."""
        frac = min(abs(float(angle)), 0.25) / 0.25
        if not self.partial_ms:
            frac = 1.0
        return self.ms_error * (PARTIAL_FLOOR + (1.0 - PARTIAL_FLOOR) * frac)

    def zz_error_at(self, angle: float) -> float:
        """Error of a ZZ gate of ``angle`` turns (same partial-angle model as MS)."""
        if self.zz_error is None:
            raise ValueError(f"device {self.name!r} has no native ZZ gate")
        frac = min(abs(float(angle)), 0.25) / 0.25
        return self.zz_error * (PARTIAL_FLOOR + (1.0 - PARTIAL_FLOOR) * frac)


_ARIA = dict(
    num_qubits=25,
    oneq_error=1 - 0.9998,
    ms_error=1 - 0.98720,
    zz_error=None,
    spam_error=1 - 0.99370,
    oneq_duration=135e-6,
    twoq_duration=600e-6,
    readout_duration=300e-6,
)
_FORTE = dict(
    num_qubits=36,
    oneq_error=1 - 0.9998,
    ms_error=1 - 0.9932,
    zz_error=1 - 0.9932,
    spam_error=1 - 0.9959,
    oneq_duration=130e-6,
    twoq_duration=970e-6,
    readout_duration=150e-6,
)

#: Known devices, keyed by IonQ's backend name (``qpu.`` prefix removed).
DEVICES: dict[str, DeviceSpec] = {
    "simulator": DeviceSpec(
        name="simulator",
        num_qubits=29,
        oneq_error=0.0,
        ms_error=0.0,
        zz_error=None,
        spam_error=0.0,
        oneq_duration=0.0,
        twoq_duration=0.0,
        readout_duration=0.0,
    ),
    "aria-1": DeviceSpec(name="aria-1", **_ARIA),
    "aria-2": DeviceSpec(name="aria-2", **_ARIA),
    "forte-1": DeviceSpec(name="forte-1", **_FORTE),
    "forte-enterprise-1": DeviceSpec(name="forte-enterprise-1", **_FORTE),
}


def device_spec(device: str | DeviceSpec) -> DeviceSpec:
    """Look up a :class:`DeviceSpec` by name.

    Accepts IonQ names with or without the ``qpu.``/``ionq_qpu.``/``ionq_`` prefixes
    (``"aria-1"``, ``"qpu.aria-1"``, ``"ionq_qpu.aria-1"``, ``"ionq_simulator"``).

    Raises:
        ValueError: if the device is unknown.
    """
    if isinstance(device, DeviceSpec):
        return device
    key = str(device).lower()
    for prefix in ("ionq_", "qpu.", "qpu-"):
        if key.startswith(prefix):
            key = key[len(prefix) :]
    if key.startswith("qpu."):
        key = key[4:]
    if key in DEVICES:
        return DEVICES[key]
    raise ValueError(f"unknown IonQ device {device!r}; known devices: {', '.join(sorted(DEVICES))}")


class IonQTarget(Target):
    """A :class:`~qiskit.transpiler.Target` for an IonQ device that remembers its spec.

    Holds GPi, GPi2, MS (and ZZ where native) on every qubit and on every ordered pair of
    distinct qubits (all-to-all connectivity, each pair listed explicitly: no global
    entries), a virtual ``rz`` with zero error and duration, ``measure`` and (unless
    built with ``reset=False``) ``reset``. In the ``"standard"`` form (``isa``
    attribute) ``sx``, ``x``, ``rxx`` (and ``rzz``) stand for GPi2, GPi, MS (and ZZ),
    with the same errors and durations.
    """

    def __new__(cls, *args, device: DeviceSpec | None = None, isa: str = "native", **kwargs):  # noqa: D102
        # Target is built in __new__ (Rust-backed base class): attach the spec there.
        obj = super().__new__(cls, *args, **kwargs)
        obj.device = device
        obj.isa = isa
        return obj

    # Pickling (parallel transpile) and deepcopy rebuild the target from its spec: the
    # Rust base class cannot reduce a subclass instance itself.
    def __reduce__(self):
        return (_rebuild_target, (self.device, self.num_qubits, "reset" in self.operation_names, self.isa))

    def __reduce_ex__(self, protocol):
        return self.__reduce__()

    def __deepcopy__(self, memo):
        return _rebuild_target(self.device, self.num_qubits, "reset" in self.operation_names, self.isa)

    def native_form(self) -> "IonQTarget":
        """This device's target in the ``"native"`` form (itself if it is one): what the
        lowering passes read (they emit GPi/GPi2/MS/ZZ)."""
        if self.isa == "native":
            return self
        twin = getattr(self, "_native_twin", None)
        if twin is None:
            twin = self._native_twin = _rebuild_target(
                self.device, self.num_qubits, "reset" in self.operation_names, "native"
            )
        return twin

    def build_coupling_map(self, two_q_gate=None, filter_idle_qubits=False):
        """``None``: an IonQ device has no connectivity constraint (all-to-all).

        Qiskit's ``Target.build_coupling_map`` returns ``None`` for a target without
        connectivity constraints; it only detects that from *global* two-qubit entries.
        This target lists every ordered pair (so that per-pair error data stays
        possible) and says the same thing explicitly. Qiskit's preset pass managers
        then skip the layout and routing stages, as for qiskit-ionq's target: ISA
        circuits keep their own qubits instead of growing to the device's width.

        With ``two_q_gate`` or ``filter_idle_qubits`` the per-pair
        :class:`~qiskit.transpiler.CouplingMap` is built as usual (the complete graph).
        """
        if two_q_gate is None and not filter_idle_qubits:
            return None
        return super().build_coupling_map(two_q_gate, filter_idle_qubits)


def _rebuild_target(device: DeviceSpec, num_qubits: int, reset: bool = True, isa: str = "native") -> IonQTarget:
    return ionq_target(device, num_qubits=num_qubits, reset=reset, isa=isa)


def native_form(target: Target | None) -> Target | None:
    """``target`` in IonQ's native form: the native twin of a ``"standard"``
    :class:`IonQTarget`, any other target (or ``None``) as it is."""
    if isinstance(target, IonQTarget):
        return target.native_form()
    return target


def is_standard_form(target: Target | None) -> bool:
    """Whether ``target`` is an :class:`IonQTarget` in the ``"standard"`` form."""
    return getattr(target, "isa", "native") == "standard"


def ionq_target(
    device: str | DeviceSpec = "aria-1",
    num_qubits: int | None = None,
    *,
    reset: bool = True,
    isa: str = "native",
) -> IonQTarget:
    """Build the transpiler :class:`Target` of an IonQ device.

    Args:
        device: Device name (see :data:`DEVICES`) or a :class:`DeviceSpec`.
        num_qubits: Use fewer (or more) qubits than the device has, e.g. to keep
            transpiled circuits small. Defaults to the device's qubit count.
        reset: Whether to list ``reset``. IonQ's gate-list (``ionq.circuit.v1``) jobs
            have no reset, so the target of a :class:`~qstore_qiskit.QStoreBackend` is
            built with ``reset=False`` (it advertises exactly what ``run`` accepts);
            ``True`` (default) suits OpenQASM 3 flows with mid-circuit reset.
        isa: ``"native"`` (GPi, GPi2, MS, ZZ: IonQ's names, as qiskit-ionq's native
            targets) or ``"standard"`` (``sx``, ``x``, ``rxx``, ``rzz``: the same gates
            as Qiskit standard gates, see the module docstring).

    Returns:
        The target, whose ``device`` attribute is the :class:`DeviceSpec`.
    """
    if isa not in ISA_FORMS:
        raise ValueError(f"isa must be one of {ISA_FORMS}, got {isa!r}")
    spec = device_spec(device)
    if num_qubits is not None:
        if num_qubits < 1:
            raise ValueError(f"num_qubits must be positive, got {num_qubits}")
        spec = replace(spec, num_qubits=int(num_qubits))
    n = spec.num_qubits
    standard = isa == "standard"
    target = IonQTarget(num_qubits=n, description=f"IonQ {spec.name}", device=spec, isa=isa)
    one_q = {
        (q,): InstructionProperties(duration=spec.oneq_duration, error=spec.oneq_error)
        for q in range(n)
    }
    target.add_instruction(XGate() if standard else GPIGate(Parameter("phi")), dict(one_q))
    target.add_instruction(SXGate() if standard else GPI2Gate(Parameter("phi")), dict(one_q))
    target.add_instruction(
        RZGate(Parameter("theta")),
        {(q,): InstructionProperties(duration=0.0, error=0.0) for q in range(n)},
    )
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    target.add_instruction(
        RXXGate(Parameter("theta")) if standard else MSGate(Parameter("phi0"), Parameter("phi1"), Parameter("theta")),
        {p: InstructionProperties(duration=spec.twoq_duration, error=spec.ms_error) for p in pairs},
    )
    if spec.has_zz:
        target.add_instruction(
            RZZGate(Parameter("theta")) if standard else ZZGate(Parameter("theta")),
            {p: InstructionProperties(duration=spec.twoq_duration, error=spec.zz_error) for p in pairs},
        )
    readout = {
        (q,): InstructionProperties(duration=spec.readout_duration, error=spec.spam_error)
        for q in range(n)
    }
    target.add_instruction(Measure(), readout)
    if reset:
        target.add_instruction(Reset(), {(q,): InstructionProperties(duration=spec.readout_duration) for q in range(n)})
    return target


def spec_from_target(target: Target | None) -> DeviceSpec:
    """Derive a :class:`DeviceSpec` from any target holding IonQ native gates.

    An :class:`IonQTarget` returns its own spec; for other targets (e.g. MQT Bench's)
    mean error rates are read from the target's instruction properties.
    """
    if target is None:
        return DEVICES["aria-1"]
    spec = getattr(target, "device", None)
    if isinstance(spec, DeviceSpec):
        return spec

    def mean_error(name: str, default: float | None) -> float | None:
        if name not in target.operation_names:
            return default
        errs = [p.error for p in target[name].values() if p is not None and p.error is not None]
        return sum(errs) / len(errs) if errs else 0.0

    names = target.operation_names
    oneq, ms, zz = ("gpi2", "ms", "zz") if "gpi2" in names or "sx" not in names else ("sx", "rxx", "rzz")
    has_zz = zz in names
    has_ms = ms in names
    base = DEVICES["forte-1" if has_zz and not has_ms else "aria-1"]
    return replace(
        base,
        name=target.description or base.name,
        num_qubits=target.num_qubits or base.num_qubits,
        oneq_error=mean_error(oneq, base.oneq_error),
        ms_error=mean_error(ms, base.ms_error) if has_ms else mean_error(zz, base.ms_error),
        zz_error=mean_error(zz, None) if has_zz else None,
        spam_error=mean_error("measure", base.spam_error),
    )


def instruction_error(name: str, params, spec: DeviceSpec) -> float:
    """Error of one native instruction under ``spec``'s model (0 for unknown/virtual).

    The standard-gate form counts as the native gate it stands for: ``sx``/``x`` as
    GPi2/GPi, ``rxx(t)`` as MS(0, 0, t / 2pi), ``rzz(t)`` as ZZ(t / 2pi)."""
    if name in ("gpi", "gpi2", "sx", "x"):
        return spec.oneq_error
    if name == "ms":
        angle = params[2] if len(params) > 2 else 0.25
        return spec.ms_error_at(_as_float(angle, 0.25))
    if name == "rxx":
        return spec.ms_error_at(_as_float(params[0], math.pi / 2) / (2 * math.pi))
    if name in ("zz", "rzz"):
        turns = _as_float(params[0], 0.25 if name == "zz" else math.pi / 2)
        if name == "rzz":
            turns /= 2 * math.pi
        if spec.zz_error is None:
            return spec.ms_error
        return spec.zz_error_at(turns)
    if name == "measure":
        return spec.spam_error
    return 0.0


def _as_float(value, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):  # an unbound ParameterExpression: price it as worst case
        return default


def estimated_fidelity(circuit: QuantumCircuit, target: Target | str | DeviceSpec = "aria-1") -> float:
    """Estimated success probability of ``circuit`` on a device.

    The product of ``1 - error`` over every GPi, GPi2, MS, ZZ and measurement in the
    circuit (``rz`` is virtual and free; MS/ZZ errors depend on the angle, see the module
    docstring). Works for any circuit made of those instruction names, including the
    output of qiskit-ionq's and MQT Bench's flows, so compilers can be compared on the
    same model. Unbound angles are priced as full-angle gates.

    Args:
        circuit: A circuit of IonQ native gates.
        target: An IonQ target, a device name or a :class:`DeviceSpec`.

    Returns:
        A probability in ``[0, 1]``.
    """
    if isinstance(target, Target):
        spec = spec_from_target(target)
    else:
        spec = device_spec(target)
    log_f = 0.0
    for instruction in circuit.data:
        err = instruction_error(instruction.operation.name, instruction.operation.params, spec)
        if err >= 1.0:
            return 0.0
        log_f += math.log1p(-err)
    return math.exp(log_f)
