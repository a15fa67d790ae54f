"""``EstimatorV2`` on a qstore backend: commuting measurement bases on compiled templates."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from qiskit.circuit import ClassicalRegister, QuantumCircuit
from qiskit.primitives import BaseEstimatorV2, PrimitiveJob, PrimitiveResult, PubResult
from qiskit.primitives.containers import DataBin, EstimatorPubLike
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.quantum_info import PauliList

from ..transpiler.gates import GPI2Gate
from ._run import collect_run_garbage, job_ids, parameter_binds, shot_outcomes, submit

if TYPE_CHECKING:  # pragma: no cover
    from ..providers.backend import QStoreBackend

#: Gates that make a circuit native (already transpiled for the backend).
_NATIVE = frozenset({"gpi", "gpi2", "ms", "zz"})
#: The standard-gate form of the same (a backend's target: ``sx`` = GPi2(0), ...).
_STANDARD = frozenset({"sx", "x", "rxx", "rzz"})
_STANDARD_FORM = _STANDARD | {"rz", "barrier", "measure"}


@dataclass
class _Basis:
    """One measurement circuit: a qubit-wise commuting group measured in one basis."""

    circuit: QuantumCircuit
    labels: list[str]  # the group's Pauli labels (full width)
    masks: np.ndarray  # per label: which measured clbits enter its parity (bit mask)


class EstimatorV2(BaseEstimatorV2):
    """Qiskit's ``BaseEstimatorV2`` on a :class:`~qstore_qiskit.QStoreBackend`.

    For each PUB ``(circuit, observables, parameter_values, precision)``:

    * the Pauli terms of all its observables are grouped into qubit-wise commuting
      groups with Qiskit's ``PauliList.group_commuting(qubit_wise=True)``; each group is
      measured in one basis, so every parameter set costs exactly one circuit per group;
    * the basis change is appended to the circuit: as native ``GPi2`` gates (``GPi2(3/4)``
      = ``RY(-pi/2)`` for X, ``GPi2(0)`` = ``RX(pi/2)`` for Y) when the circuit is already
      transpiled for the backend (in the standard-gate form of a backend's target: ``sx``
      between ``rz`` frames, the same gates), whose compiled template then gains those gates, and as
      ``RY``/``RX`` otherwise, which the compiler folds into the last layer;
    * every parameter set is bound through the compiled template of each measurement
      circuit (``bind_many``), never through a bound ``QuantumCircuit``; all PUBs of a
      call go in one backend submission;
    * ``precision`` maps to ``ceil(1 / precision**2)`` shots and standard errors are
      computed as by Qiskit's ``BackendEstimatorV2``.

    Results are a :class:`~qiskit.primitives.PrimitiveResult` of
    :class:`~qiskit.primitives.PubResult` with ``evs`` and ``stds`` of the PUB's
    broadcast shape; metadata carries ``shots``, ``target_precision``, the number of
    measurement bases (``num_bases``) and the IonQ job ids (``ionq_job_ids``).

    Args:
        backend: The backend to run on.
        default_precision: Precision of PUBs that do not say.
        seed: Seed of the service's sampler (``sampler_seed``); ``None`` for fresh entropy.
        options: Extra ``backend.run`` options for every call.
    """

    def __init__(
        self,
        backend: "QStoreBackend",
        *,
        default_precision: float = 0.015625,
        seed: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self._backend = backend
        self._default_precision = float(default_precision)
        self._seed = seed
        self._run_options = dict(options or {})
        for reserved in ("shots", "parameter_binds", "memory", "sampler_seed"):
            if reserved in self._run_options:
                raise ValueError(f"option {reserved!r} is set by the estimator itself")
        self._bases: dict[tuple, tuple[QuantumCircuit, list[_Basis]]] = {}

    @property
    def backend(self) -> "QStoreBackend":
        """The backend the estimator runs on."""
        return self._backend

    @property
    def default_precision(self) -> float:
        """Precision of PUBs that do not say."""
        return self._default_precision

    def run(
        self, pubs: Iterable[EstimatorPubLike], *, precision: float | None = None
    ) -> PrimitiveJob[PrimitiveResult[PubResult]]:
        """Estimate every PUB (see the class docstring).

        Raises:
            ValueError: a malformed PUB, or a precision that is not positive.
        """
        if precision is None:
            precision = self._default_precision
        coerced = [EstimatorPub.coerce(pub, precision) for pub in pubs]
        for i, pub in enumerate(coerced):
            if not pub.precision > 0.0:
                raise ValueError(f"the {i}-th pub has precision {pub.precision}; precision must be positive")
        job = PrimitiveJob(self._run, coerced)
        job._submit()
        return job

    # ------------------------------------------------------------------ measurement bases
    def _measurement_bases(self, pub: EstimatorPub) -> list[_Basis]:
        circuit = pub.circuit
        labels = sorted({label for obs in pub.observables.ravel().tolist() for label in obs})
        key = (id(circuit), tuple(labels))
        cached = self._bases.get(key)
        if cached is not None and cached[0] is circuit:
            return cached[1]
        base = circuit.remove_final_measurements(inplace=False) if circuit.num_clbits else circuit
        names = set(base.count_ops())
        native = not names.isdisjoint(_NATIVE)
        # An ISA circuit in the backend target's standard-gate form: the basis change in
        # that form too (rz frames around sx), so the circuit stays native.
        standard = not native and names <= _STANDARD_FORM and not names.isdisjoint(_STANDARD)
        bases = []
        for group in PauliList(labels).group_commuting(qubit_wise=True):
            z = np.logical_or.reduce(group.z, axis=0)
            x = np.logical_or.reduce(group.x, axis=0)
            measured = [q for q in range(circuit.num_qubits) if z[q] or x[q]]
            meas = base.copy()
            creg = ClassicalRegister(max(len(measured), 1), "qstore_basis")
            meas.add_register(creg)
            for q in measured:
                if x[q] and z[q]:  # Y: RX(pi/2) = GPi2(0) ~ SX
                    if native:
                        meas.append(GPI2Gate(0.0), [q])
                    elif standard:
                        meas.sx(q)
                    else:
                        meas.rx(math.pi / 2, q)
                elif x[q]:  # X: RY(-pi/2) = GPi2(3/4) ~ RZ(3 pi/2) SX RZ(-3 pi/2)
                    if native:
                        meas.append(GPI2Gate(0.75), [q])
                    elif standard:
                        meas.rz(-1.5 * math.pi, q)
                        meas.sx(q)
                        meas.rz(1.5 * math.pi, q)
                    else:
                        meas.ry(-math.pi / 2, q)
            for c, q in enumerate(measured):
                meas.measure(q, creg[c])
            group_labels = [p.to_label() for p in group]
            masks = np.zeros(len(group), dtype=np.int64)
            for j, pauli in enumerate(group):
                for c, q in enumerate(measured):
                    if pauli.z[q] or pauli.x[q]:
                        masks[j] |= 1 << c
            bases.append(_Basis(meas, group_labels, masks))
        # Training loops send one circuit object again and again: keep the last few.
        if len(self._bases) >= 32:
            self._bases.pop(next(iter(self._bases)))
        self._bases[key] = (circuit, bases)
        return bases

    # ------------------------------------------------------------------ run
    def _run(self, pubs: list[EstimatorPub]) -> PrimitiveResult[PubResult]:
        shots_of = [int(math.ceil(1.0 / pub.precision**2)) for pub in pubs]
        groups: dict[int, list[int]] = {}
        for i, shots in enumerate(shots_of):
            groups.setdefault(shots, []).append(i)
        jobs = []
        sent = 0
        for shots, members in groups.items():
            circuits: list[QuantumCircuit] = []
            binds: list[dict] = []
            plan: list[tuple[int, list[_Basis], int]] = []
            for i in members:
                pub = pubs[i]
                bases = self._measurement_bases(pub)
                n = max(pub.parameter_values.size, 1)
                for basis in bases:
                    if pub.circuit.parameters:
                        circuits.append(basis.circuit)
                        binds.append(parameter_binds(basis.circuit, pub.parameter_values))
                    else:
                        circuits.extend([basis.circuit] * n)
                        binds.extend([{}] * n)
                plan.append((i, bases, n))
                sent += n * len(bases)
            jobs.append((shots, plan, submit(self._backend, circuits, binds, shots, self._seed, self._run_options)))
        results: list[PubResult | None] = [None] * len(pubs)
        all_ids: list[str] = []
        rng = np.random.default_rng(self._seed)
        for shots, plan, job in jobs:
            pairs = job.circuit_results()
            start = 0
            for i, bases, n in plan:
                mine = pairs[start : start + n * len(bases)]
                start += n * len(bases)
                results[i] = self._pub_result(pubs[i], bases, mine, n, shots, rng)
                all_ids.extend(x for x in job_ids(mine) if x not in all_ids)
        if jobs:  # the payloads and per-circuit results: freed here
            del pairs, mine, job
            jobs.clear()
        collect_run_garbage(sent)
        return PrimitiveResult(results, metadata={"version": 2, "ionq_job_ids": all_ids})

    def _pub_result(self, pub: EstimatorPub, bases: list[_Basis], pairs: list, n: int, shots: int, rng) -> PubResult:
        # Pauli expectation values and variances per flat parameter index.
        expval: dict[str, np.ndarray] = {}
        variance: dict[str, np.ndarray] = {}
        for b, basis in enumerate(bases):
            ev = np.zeros((n, len(basis.labels)))
            for k in range(n):
                prepared, result = pairs[b * n + k]
                outcomes = shot_outcomes(prepared, result, shots, rng)
                # Parity of the bits each Pauli reads: +1 for even, -1 for odd.
                parity = np.bitwise_count(outcomes[None, :] & basis.masks[:, None]) & 1
                ev[k] = 1.0 - 2.0 * parity.mean(axis=1)
            for j, label in enumerate(basis.labels):
                expval[label] = ev[:, j]
                variance[label] = 1.0 - ev[:, j] ** 2
        shape = pub.parameter_values.shape
        flat_index = np.arange(n).reshape(shape) if shape else np.array(0)
        bc_index, bc_obs = np.broadcast_arrays(flat_index, pub.observables)
        evs = np.zeros(bc_index.shape, dtype=float)
        spread = np.zeros(bc_index.shape, dtype=float)
        for index in np.ndindex(*bc_index.shape):
            k = int(bc_index[index])
            terms: dict[str, complex] = bc_obs[index]  # type: ignore[assignment]  # {label: coefficient}
            for label, coeff in terms.items():
                evs[index] += np.real(coeff) * expval[label][k]
                spread[index] += abs(coeff) * math.sqrt(max(variance[label][k], 0.0))
        stds = spread / math.sqrt(shots)
        return PubResult(
            DataBin(evs=evs, stds=stds, shape=evs.shape),
            metadata={
                "target_precision": pub.precision,
                "shots": shots,
                "num_bases": len(bases),
                "circuit_metadata": pub.circuit.metadata,
                "ionq_job_ids": job_ids(pairs),
            },
        )
