"""``SamplerV2`` on a qstore backend: PUBs bound through compiled templates."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from qiskit.primitives import BaseSamplerV2, PrimitiveJob, PrimitiveResult, SamplerPubResult
from qiskit.primitives.containers import BitArray, DataBin, SamplerPubLike
from qiskit.primitives.containers.sampler_pub import SamplerPub

from ._run import collect_run_garbage, job_ids, pack_bits, parameter_binds, shot_table, submit

if TYPE_CHECKING:  # pragma: no cover
    from ..providers.backend import QStoreBackend


class SamplerV2(BaseSamplerV2):
    """Qiskit's ``BaseSamplerV2`` on a :class:`~qstore_qiskit.QStoreBackend`.

    Each PUB ``(circuit, parameter_values, shots)`` may carry a ``BindingsArray`` of any
    shape. Its circuit is compiled once per structure through the backend's template
    cache (logical circuits) or analysed once as a template (circuits already
    transpiled for the backend, whose parameters sit in virtual ``rz``); every value set
    is then bound into a payload by the template's vectorised ``bind_many``: no bound
    ``QuantumCircuit`` is ever built. All PUBs of one :meth:`run` call with the same
    shot count go to the backend in one ``run`` (one submission, split at the service's
    circuit cap by the backend's submitter); PUBs with other shot counts are submitted
    alongside, before any result is awaited.

    Results are a :class:`~qiskit.primitives.PrimitiveResult` of
    :class:`~qiskit.primitives.SamplerPubResult`, one ``BitArray`` per classical
    register, of shape ``pub.shape`` with ``shots`` shots each. IonQ returns histograms,
    so the shots are the integer counts expanded and shuffled with a generator seeded by
    ``seed``: counts always match, the order carries no information (as on IonQ's
    service). Metadata carries the IonQ job ids: ``result.metadata["ionq_job_ids"]``
    and, per PUB, ``pub_result.metadata["ionq_job_ids"]``.

    Args:
        backend: The backend to run on.
        default_shots: Shots of PUBs that do not say.
        seed: Seed of the service's sampler (``sampler_seed``) and of the shot order;
            ``None`` for fresh entropy.
        options: Extra ``backend.run`` options for every call (e.g.
            ``{"noise_model": "aria-1", "optimization_level": 3}``).
    """

    def __init__(
        self,
        backend: "QStoreBackend",
        *,
        default_shots: int = 1024,
        seed: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self._backend = backend
        self._default_shots = int(default_shots)
        self._seed = seed
        self._run_options = dict(options or {})
        for reserved in ("shots", "parameter_binds", "memory", "sampler_seed"):
            if reserved in self._run_options:
                raise ValueError(f"option {reserved!r} is set by the sampler itself; pass it to run() or the constructor")

    @property
    def backend(self) -> "QStoreBackend":
        """The backend the sampler runs on."""
        return self._backend

    @property
    def default_shots(self) -> int:
        """Shots of PUBs that do not say."""
        return self._default_shots

    @property
    def seed(self) -> int | None:
        """Seed of the sampler and of the shot order."""
        return self._seed

    def run(
        self, pubs: Iterable[SamplerPubLike], *, shots: int | None = None
    ) -> PrimitiveJob[PrimitiveResult[SamplerPubResult]]:
        """Sample every PUB (see the class docstring).

        Raises:
            ValueError: a PUB is malformed (Qiskit's own coercion errors), or an option is
                bad; circuits IonQ cannot run raise the backend's clear errors.
        """
        if shots is None:
            shots = self._default_shots
        coerced = [SamplerPub.coerce(pub, shots) for pub in pubs]
        for i, pub in enumerate(coerced):
            if not pub.circuit.cregs:
                warnings.warn(
                    f"The {i}-th pub's circuit has no output classical registers and so the result "
                    "will be empty. Did you mean to add measurement instructions?",
                    UserWarning,
                    stacklevel=2,
                )
        job = PrimitiveJob(self._run, coerced)
        job._submit()
        return job

    def _run(self, pubs: list[SamplerPub]) -> PrimitiveResult[SamplerPubResult]:
        groups: dict[int, list[int]] = {}
        for i, pub in enumerate(pubs):
            groups.setdefault(pub.shots, []).append(i)
        # Submit every group before waiting for any.
        jobs = []
        sent = 0
        for shots, members in groups.items():
            circuits, binds = [], []
            for i in members:
                pub = pubs[i]
                if pub.circuit.parameters:
                    circuits.append(pub.circuit)
                    binds.append(parameter_binds(pub.circuit, pub.parameter_values))
                else:  # no parameters: one circuit per element of the (broadcast) shape
                    circuits.extend([pub.circuit] * max(pub.parameter_values.size, 1))
                    binds.extend([{}] * max(pub.parameter_values.size, 1))
            sent += sum(max(pubs[i].parameter_values.size, 1) for i in members)
            jobs.append((shots, members, submit(self._backend, circuits, binds, shots, self._seed, self._run_options)))
        results: list[SamplerPubResult | None] = [None] * len(pubs)
        all_ids: list[str] = []
        for shots, members, job in jobs:
            pairs = job.circuit_results()
            start = 0
            for i in members:
                pub = pubs[i]
                n = max(pub.parameter_values.size, 1)
                mine = pairs[start : start + n]
                start += n
                results[i] = self._pub_result(pub, mine, shots, i)
                all_ids.extend(x for x in job_ids(mine) if x not in all_ids)
        if jobs:  # the payloads and per-circuit results: freed here
            del pairs, mine, job
            jobs.clear()
        collect_run_garbage(sent)
        return PrimitiveResult(results, metadata={"version": 2, "ionq_job_ids": all_ids})

    def _pub_result(self, pub: SamplerPub, pairs: list, shots: int, position: int) -> SamplerPubResult:
        shape = pub.parameter_values.shape
        rng = np.random.default_rng(None if self._seed is None else [int(self._seed), position])
        circuit = pub.circuit
        registers = [(creg.name, [circuit.find_bit(bit).index for bit in creg]) for creg in circuit.cregs]
        # Expanded in the narrowest integer type that holds the clbits, then every row
        # shuffled in one call (the permutation drawn does not depend on the type).
        flat = rng.permuted(shot_table(pairs, shots, rng, _narrow(circuit.num_clbits)), axis=1)
        arrays = {name: pack_bits(flat, bits).reshape(shape + (shots, -1)) for name, bits in registers}
        data = {name: BitArray(arrays[name], len(bits)) for name, bits in registers}
        return SamplerPubResult(
            DataBin(**data, shape=shape),
            metadata={
                "shots": shots,
                "circuit_metadata": pub.circuit.metadata,
                "ionq_job_ids": job_ids(pairs),
            },
        )


def _narrow(num_clbits: int) -> type:
    """The narrowest unsigned type holding ``num_clbits`` bits (int64 past 32)."""
    for bits, dtype in ((8, np.uint8), (16, np.uint16), (32, np.uint32)):
        if num_clbits <= bits:
            return dtype
    return np.int64
