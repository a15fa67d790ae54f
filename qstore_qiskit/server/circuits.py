"""Validate IonQ JSON circuits (``qis`` and ``native`` gatesets) into simulator operations.

The accepted ``qis`` gates are exactly what :func:`qiskit_ionq.helpers.qiskit_circ_to_ionq_circ`
emits (after its aliasing: ``v``/``vi`` for ``sx``/``sxdg``, ``si``/``ti``, ``z`` with a
``rotation`` for the phase gate, ``xx``/``yy``/``zz`` with a ``rotation``, ``pauliexp``, and
any of them with ``controls``), plus the API's ``cnot``/``not`` spellings. The ``native``
gateset accepts ``gpi``/``gpi2`` (``phase``), ``ms`` (``phases`` [φ0, φ1], ``angle``) and
``zz`` (``angle``), all in turns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from . import simulator as sim
from .errors import ApiError, bad_request, unprocessable

# qis gates with no parameter: name -> 1q matrix.
_QIS_FIXED_1Q: dict[str, np.ndarray] = {
    "x": sim.X,
    "not": sim.X,
    "y": sim.Y,
    "z": sim.Z,
    "h": sim.H,
    "s": sim.S,
    "si": sim.SDG,
    "t": sim.T,
    "ti": sim.TDG,
    "v": sim.SX,
    "vi": sim.SXDG,
}
# qis 1q rotations (``rotation`` in radians).
_QIS_ROT_1Q: dict[str, Callable[[float], np.ndarray]] = {"rx": sim.rx, "ry": sim.ry,
                                                          "rz": sim.rz}
# qis 2q rotations on two ``targets``.
_QIS_ROT_2Q: dict[str, Callable[[float], np.ndarray]] = {"xx": sim.rxx, "yy": sim.ryy,
                                                          "zz": sim.rzz}
# 1q gates that are diagonal, i.e. virtual (free) Z rotations on IonQ hardware.
_DIAGONAL_1Q = {"z", "s", "si", "t", "ti", "rz"}

QIS_GATES = frozenset(
    set(_QIS_FIXED_1Q) | set(_QIS_ROT_1Q) | set(_QIS_ROT_2Q) | {"swap", "pauliexp", "cnot"}
)
NATIVE_GATES = frozenset({"gpi", "gpi2", "ms", "zz", "nop"})
# Documented parameter ranges of the native gates, in turns ("Using native gates with
# the IonQ API"): phases within [-1, 1], the MS angle within [0, 0.25]. The ZZ angle is
# taken within [-1, 1] like a phase (a negative angle is a ZZ in the other direction).
PHASE_RANGE = (-1.0, 1.0)
MS_ANGLE_RANGE = (0.0, 0.25)
ZZ_ANGLE_RANGE = (-1.0, 1.0)


@dataclass(frozen=True)
class ParsedCircuit:
    """A validated circuit, ready to simulate.

    Attributes:
        name: Circuit name (may be ``None``).
        num_qubits: Width of the simulated register.
        gates: ``(matrix recipe, number of controls, qubits)`` per gate, in order;
            qubits are ``targets + controls``. See :meth:`unitaries`.
        gates_1q: Number of single-qubit gates as submitted.
        gates_2q: Number of multi-qubit gates as submitted.
        native_gates: Native gate count (exact for ``native``, estimated for ``qis``);
            drives the execution-time model.
        native_names: Names of the native gates used (empty for ``qis``), so a backend
            can refuse a two-qubit gate that is not its own.
    """

    name: str | None
    num_qubits: int
    gates: tuple[tuple[MatrixRecipe, int, tuple[int, ...]], ...]
    gates_1q: int
    gates_2q: int
    native_gates: int
    native_names: frozenset = frozenset()

    def unitaries(self) -> list[sim.Unitary]:
        """Build the gate matrices (memoized per recipe within the circuit)."""
        memo: dict = {}
        out = []
        for recipe, num_controls, qubits in self.gates:
            key = (id(recipe[0]), recipe[1], num_controls) if recipe[0] is not None else None
            matrix = memo.get(key) if key is not None else None
            if matrix is None:
                matrix = sim.controlled(build_matrix(recipe), num_controls)
                if key is not None:
                    memo[key] = matrix
            out.append(sim.Unitary(matrix, qubits))
        return out


def iter_probabilities(circuits: Sequence[ParsedCircuit]) -> Iterator[np.ndarray]:
    """Born probabilities of each circuit, in order.

    Circuits :func:`simulator.batchable <qstore_qiskit.server.simulator.batchable>` takes
    (2-12 qubits, gates on at most two) are simulated up front, all those of one width in
    one :func:`~qstore_qiskit.server.simulator.simulate_small_batch` call; the others,
    with the general kernel one at a time as the iteration reaches them (so only one
    wide state is alive at once).
    """
    small: dict[int, np.ndarray] = {}
    by_width: dict[int, list[int]] = {}
    for i, circuit in enumerate(circuits):
        if sim.batchable(circuit.num_qubits, circuit.gates):
            by_width.setdefault(circuit.num_qubits, []).append(i)
    for width, indices in by_width.items():
        probs = sim.simulate_small_batch(width, [circuits[i].gates for i in indices])
        small.update(zip(indices, probs))
    for i, circuit in enumerate(circuits):
        if i in small:
            yield small.pop(i)
        else:
            state = sim.simulate_unitary_circuit(circuit.num_qubits, circuit.unitaries())
            yield sim.probabilities(state)


def _as_float(value: Any) -> float | None:
    """A finite float from a JSON number, else ``None``.

    Numeric strings are accepted too: qiskit-ionq's JSON encoder falls back to
    ``str()`` for parameter objects it cannot encode (e.g. a bound
    ``ParameterExpression`` in ``ms``/``zz`` angles).
    """
    if type(value) is float:  # the common case first (this runs for every gate parameter)
        return value if math.isfinite(value) else None
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _is_number(value: Any) -> bool:
    return _as_float(value) is not None


def _number(gate: dict, key: str, where: str, default: float | None = None) -> float:
    value = gate.get(key, default)
    if value is None:
        raise bad_request(f"{where}: gate '{gate.get('gate')}' requires '{key}'")
    number = _as_float(value)
    if number is None:
        raise bad_request(f"{where}: '{key}' must be a finite number, got {value!r}")
    return number


def _indices(gate: dict, plural: str, singular: str, where: str) -> list[int]:
    if plural in gate:
        values = gate[plural]
        if not isinstance(values, list):
            raise bad_request(f"{where}: '{plural}' must be a list of qubit indices")
    elif singular in gate:
        values = [gate[singular]]
    else:
        return []
    for v in values:
        if type(v) is not int and (not isinstance(v, int) or isinstance(v, bool)):
            raise bad_request(f"{where}: qubit indices must be integers, got {v!r}")
        if v < 0:
            raise bad_request(f"{where}: qubit index {v} is negative")
    return list(values)


def _native_cost_qis(name: str, num_controls: int, num_targets: int, gate: dict) -> int:
    """Rough native (GPI/GPI2/MS) gate count of one qis gate.

    Hand-written estimate (not a compiler): virtual Z rotations are free, other 1q
    gates cost one or two pulses, a singly controlled gate one MS plus four 1q
    pulses, and a k-controlled one the usual 6(2k-3)-CNOT ladder.
    """
    if name == "pauliexp":
        cost = 0
        for term in gate.get("terms", []):
            weight = sum(1 for ch in str(term) if ch != "I")
            cost += 10 * max(0, weight - 1) + 2 * weight + 1
        return cost
    if num_controls == 0:
        if num_targets == 1:
            if name in _DIAGONAL_1Q:
                return 0
            return 2 if name in ("rx", "ry") else 1
        return 9 if name == "swap" else 3  # swap: 3 MS; xx/yy/zz: 1 MS + basis changes
    ladder = 1 if num_controls == 1 else 6 * (2 * num_controls - 3)
    return 5 * ladder * (3 if name == "swap" else 1)


# A gate's matrix, built lazily (in the simulation thread, not the request handler):
# ``(function, args)``, where ``function`` is None when ``args[0]`` is the matrix.
MatrixRecipe = tuple[Callable[..., np.ndarray] | None, tuple]


def _fixed(matrix: np.ndarray) -> MatrixRecipe:
    return (None, (matrix,))


def build_matrix(recipe: MatrixRecipe) -> np.ndarray:
    """Materialize a :data:`MatrixRecipe`."""
    fn, args = recipe
    return args[0] if fn is None else fn(*args)


def _qis_matrix(name: str, gate: dict, targets: list[int], where: str) -> MatrixRecipe:
    if name in ("cnot",):
        name = "x"
    if name in _QIS_FIXED_1Q:
        if len(targets) != 1:
            raise bad_request(f"{where}: gate '{name}' takes exactly one target")
        if name == "z" and "rotation" in gate:
            # qiskit-ionq sends PhaseGate / CPhase / MCPhase as ``z`` + rotation.
            return (sim.phase, (_number(gate, "rotation", where),))
        return _fixed(_QIS_FIXED_1Q[name])
    if name in _QIS_ROT_1Q:
        if len(targets) != 1:
            raise bad_request(f"{where}: gate '{name}' takes exactly one target")
        return (_QIS_ROT_1Q[name], (_number(gate, "rotation", where),))
    if name in _QIS_ROT_2Q:
        if len(targets) != 2:
            raise bad_request(f"{where}: gate '{name}' takes exactly two targets")
        return (_QIS_ROT_2Q[name], (_number(gate, "rotation", where),))
    if name == "swap":
        if len(targets) != 2:
            raise bad_request(f"{where}: gate 'swap' takes exactly two targets")
        return _fixed(sim.SWAP)
    if name == "pauliexp":
        terms = gate.get("terms")
        coeffs = gate.get("coefficients")
        if not isinstance(terms, list) or not terms or not all(
            isinstance(t, str) and t and set(t) <= set("IXYZ") for t in terms
        ):
            raise bad_request(f"{where}: 'pauliexp' needs 'terms', a list of Pauli strings")
        if not isinstance(coeffs, list) or len(coeffs) != len(terms) or not all(
            _is_number(c) for c in coeffs
        ):
            raise bad_request(f"{where}: 'coefficients' must be numbers, one per term")
        if any(len(t) != len(targets) for t in terms):
            raise bad_request(f"{where}: every Pauli term must have one letter per target")
        if len(targets) > 10:
            raise unprocessable(f"{where}: 'pauliexp' on more than 10 qubits is not supported")
        time = _number(gate, "time", where, default=gate.get("rotation"))
        return (sim.pauli_exponential, (tuple(terms), tuple(_as_float(c) for c in coeffs), time))
    raise bad_request(f"{where}: unknown gate '{name}' for gateset 'qis'")


def _in_range(value: float, bounds: tuple[float, float] | None, what: str, where: str
              ) -> float:
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise bad_request(f"{where}: {what} {value} is outside [{bounds[0]}, {bounds[1]}] "
                          "turns", keys=[where])
    return value


def _native_matrix(name: str, gate: dict, targets: list[int], where: str,
                   strict: bool = False) -> MatrixRecipe:
    phase_range = PHASE_RANGE if strict else None
    if name in ("gpi", "gpi2"):
        if len(targets) != 1:
            raise bad_request(f"{where}: gate '{name}' takes exactly one target")
        fn = sim.gpi if name == "gpi" else sim.gpi2
        return (fn, (_in_range(_number(gate, "phase", where), phase_range, "phase", where),))
    if name == "ms":
        if len(targets) != 2:
            raise bad_request(f"{where}: gate 'ms' takes exactly two targets")
        phases = gate.get("phases")
        phi0 = phi1 = None
        if isinstance(phases, list) and len(phases) == 2:
            phi0, phi1 = _as_float(phases[0]), _as_float(phases[1])
        if phi0 is None or phi1 is None:
            raise bad_request(f"{where}: 'ms' needs 'phases', a list of two numbers (turns)")
        _in_range(phi0, phase_range, "phase", where)
        _in_range(phi1, phase_range, "phase", where)
        angle = _in_range(_number(gate, "angle", where, default=0.25),
                          MS_ANGLE_RANGE if strict else None, "MS angle", where)
        return (sim.ms, (phi0, phi1, angle))
    if name == "zz":
        if len(targets) != 2:
            raise bad_request(f"{where}: gate 'zz' takes exactly two targets")
        # IonQ documents ``angle``; cirq-ionq 1.x sends the same value as ``phase``.
        key = "angle" if "angle" in gate or "phase" not in gate else "phase"
        return (sim.zz, (_in_range(_number(gate, key, where),
                                   ZZ_ANGLE_RANGE if strict else None, "ZZ angle", where),))
    raise bad_request(f"{where}: unknown gate '{name}' for gateset 'native'")


def parse_circuit(
    gates: Any,
    gateset: str,
    declared_qubits: int | None,
    max_qubits: int,
    max_gates: int,
    name: str | None = None,
    where: str = "input.circuit",
    strict: bool = False,
) -> ParsedCircuit:
    """Validate one IonQ JSON circuit.

    Args:
        gates: The list of gate dicts.
        gateset: ``"qis"`` or ``"native"``.
        declared_qubits: ``qubits`` the request declared (``None``: infer from indices).
        max_qubits: Widest circuit accepted.
        max_gates: Most gates accepted.
        name: Circuit name to keep.
        where: Location prefix for error messages.
        strict: Enforce the documented native parameter ranges (phases within
            [-1, 1], MS angle within [0, 0.25], ZZ angle within [-1, 1] turns), as the
            API does; off for direct use (the simulator takes any angle).

    Returns:
        The parsed circuit.

    Raises:
        ApiError: 400 for malformed gates/indices, 413 for too many gates, 422 for too
            many qubits.
    """
    if not isinstance(gates, list):
        raise bad_request(f"{where} must be a list of gates")
    if len(gates) > max_gates:
        raise ApiError(413, f"{where}: {len(gates)} gates exceed the limit of {max_gates}")
    if declared_qubits is not None and declared_qubits > max_qubits:
        raise unprocessable(
            f"circuit uses {declared_qubits} qubits; this backend supports at most {max_qubits}"
        )
    pending: list[tuple[MatrixRecipe, int, tuple[int, ...]]] = []
    n1 = n2 = native = 0
    highest = -1
    names: set[str] = set()
    for idx, gate in enumerate(gates):
        here = f"{where}[{idx}]"
        if not isinstance(gate, dict):
            raise bad_request(f"{here} must be an object")
        gname = gate.get("gate")
        if not isinstance(gname, str):
            raise bad_request(f"{here}: missing 'gate' name")
        targets = _indices(gate, "targets", "target", here)
        controls = _indices(gate, "controls", "control", here)
        if not targets:
            raise bad_request(f"{here}: gate '{gname}' has no targets")
        if (controls or len(targets) > 1) and (
            len(set(targets + controls)) != len(targets) + len(controls)
        ):
            raise bad_request(f"{here}: a qubit appears twice in targets/controls")
        if gateset == "native":
            if controls:
                raise bad_request(f"{here}: native gates take no controls")
            if gname == "nop":
                # A documented no-op (a wait on hardware): it widens nothing it names
                # beyond the register and changes no amplitude.
                highest = max(highest, max(targets))
                continue
            recipe = _native_matrix(gname, gate, targets, here, strict)
            names.add(gname)
            native += 1
        else:
            recipe = _qis_matrix(gname, gate, targets, here)
            native += _native_cost_qis(gname, len(controls), len(targets), gate)
        qubits = tuple(targets + controls) if controls else tuple(targets)
        top = max(qubits)
        if top > highest:
            highest = top
        if len(qubits) == 1:
            n1 += 1
        else:
            n2 += 1
        pending.append((recipe, len(controls), qubits))
    if declared_qubits is None:
        num_qubits = highest + 1
    else:
        num_qubits = declared_qubits
        if highest >= declared_qubits:
            raise bad_request(
                f"{where}: qubit index {highest} out of range for {declared_qubits} qubits"
            )
    num_qubits = max(num_qubits, 1)
    if num_qubits > max_qubits:
        raise unprocessable(
            f"circuit uses {num_qubits} qubits; this backend supports at most {max_qubits}"
        )
    return ParsedCircuit(name, num_qubits, tuple(pending), n1, n2, native, frozenset(names))


__all__ = [
    "ParsedCircuit",
    "parse_circuit",
    "iter_probabilities",
    "build_matrix",
    "MatrixRecipe",
    "QIS_GATES",
    "NATIVE_GATES",
]
