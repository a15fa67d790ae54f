"""IonQ's error mitigation (debiasing) emulated on the simulated QPUs, and its aggregations.

What IonQ documents (docs.ionq.com "Error Mitigation - Debiasing", "Using debiasing with
Qiskit", and the v0.4 OpenAPI document) and what is emulated here:

* **When.** Debiasing runs on QPU backends only ("not currently available for the IonQ
  Quantum Cloud simulator, including the simulator with noise model"), never with fewer
  than :data:`MIN_DEBIASING_SHOTS` shots ("automatically disabled and cannot be turned
  on"). With 500 or more shots it is on by default for ``qis`` jobs and off by default
  for ``native`` jobs; ``settings.error_mitigation.debiasing`` (a boolean, or the
  documented object form, which counts as ``true``) overrides the default.
* **Variants.** A debiased job runs "many symmetric variations" of each circuit:
  different qubit assignments (and decompositions) that "should be identical on a
  noiseless machine". Here each variant places the circuit on ``n`` distinct physical
  qubits of the QPU drawn at random (its documented ``qubit_map``), is simulated with the
  backend's noise model on that relabelled register, and its outcomes are mapped back to
  the circuit's qubits. The shots are split evenly over
  ``min(MAX_VARIANTS, shots // SHOTS_PER_VARIANT)`` variants. IonQ's documented noise
  model is the same on every qubit, so the variants are statistically identical here:
  the emulation reproduces the mechanics and the result formats, not the cancellation of
  per-qubit systematic errors.
* **Aggregation.** Results are "aggregated via averaging and via sharpening (plurality
  voting)": :func:`aggregate_variants` with ``sharpen=False`` averages the variants'
  distributions (the default for the results endpoints); with ``sharpen=True`` every
  variant votes for its most frequent outcome ("we counted only the highest-probability
  state from each circuit variant"; a tie splits the vote) and the votes, normalized,
  are the distribution. A job run without debiasing has one distribution, and
  ``sharpen`` changes nothing.

Interface for the HTTP layer: a debiased job (or child job) has ``job.variants``, an
ordered ``{variant_id: Variant}``, and ``job.sharpened_json``, the plurality-voted
aggregate as JSON text (``job.probabilities_json`` holds the averaged one);
:func:`job_probabilities` gives either aggregate as a map for ``?sharpen=``, :func:`variant_record` / :func:`debiasing_output` the documented
``output.error_mitigation.debiasing.variants`` entries, :func:`find_variant` a variant of a
job or of its children, and :func:`variant_shots` the ordered shots of one variant.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

MIN_DEBIASING_SHOTS = 500
SHOTS_PER_VARIANT = 100
MAX_VARIANTS = 10


@dataclass
class Variant:
    """One symmetrized execution of a circuit.

    What ``job.variants`` holds and the variants routes read (``jobs.Variant`` is this
    class).

    Attributes:
        id: The variant's UUID (``variant_id``).
        qubit_map: Physical qubit of each of the circuit's qubits.
        shots: Shots run in this variant.
        probabilities: The variant's frequencies ``{outcome: count / shots}``.
        histogram: ``{basis index: count}`` in the circuit's own qubit order.
        sample_seed: Seed for the order of :func:`variant_shots`.
    """

    id: str
    qubit_map: list[int]
    shots: int
    probabilities: dict[int, float]
    histogram: dict[int, int] | None = None
    sample_seed: Any = None

    @classmethod
    def from_histogram(cls, variant_id: str, qubit_map: list[int],
                       histogram: Mapping[int, int], sample_seed: Any = None) -> "Variant":
        """A variant from its shot counts (its ``shots`` and frequencies follow)."""
        counts = dict(sorted(histogram.items()))
        shots = sum(counts.values())
        return cls(variant_id, list(qubit_map), shots,
                   {k: v / shots for k, v in counts.items()} if shots else {}, counts,
                   sample_seed)


def debiasing_requested(settings: Any, gateset: str, shots: int, backend: str) -> bool:
    """Whether a job runs with debiasing (see the module docstring for the rules).

    Args:
        settings: The job's raw ``settings`` (``None``, or a dict that may hold
            ``{"error_mitigation": {"debiasing": bool | object}}``).
        gateset: ``"qis"`` or ``"native"`` (the job's top-level gateset).
        shots: The job's shots.
        backend: The backend name (debiasing only on ``qpu.*``).
    """
    if not backend.startswith("qpu") or shots < MIN_DEBIASING_SHOTS:
        return False
    choice = None
    if isinstance(settings, dict):
        mitigation = settings.get("error_mitigation")
        if isinstance(mitigation, dict) and "debiasing" in mitigation:
            choice = mitigation["debiasing"]
    if choice is None:
        return gateset == "qis"
    if isinstance(choice, dict):  # the documented object form (phi_chi_twirling ...)
        return True
    return bool(choice)


def num_variants(shots: int) -> int:
    """How many variants a debiased job of ``shots`` shots runs."""
    return max(1, min(MAX_VARIANTS, shots // SHOTS_PER_VARIANT))


def plan_variants(num_qubits: int, device_qubits: int, shots: int,
                  rng: np.random.Generator) -> list[tuple[str, list[int], list[int], int]]:
    """Draw the variants of one circuit.

    Returns:
        ``(variant_id, qubit_map, layout, shots)`` per variant: ``qubit_map`` the
        physical qubits (distinct, of ``device_qubits``), ``layout`` the simulated qubit of
        each logical one (the rank of its physical qubit among those used), and the
        variant's share of the shots (they sum to ``shots``).
    """
    count = num_variants(shots)
    base, extra = divmod(shots, count)
    device_qubits = max(device_qubits, num_qubits)
    out = []
    for index in range(count):
        physical = rng.choice(device_qubits, size=num_qubits, replace=False).tolist()
        layout = np.argsort(np.argsort(physical)).tolist()
        variant_id = str(uuid.UUID(bytes=rng.bytes(16), version=4))
        out.append((variant_id, [int(p) for p in physical], [int(q) for q in layout],
                    base + (1 if index < extra else 0)))
    return out


def aggregate_variants(variants: Iterable[Mapping[int, int] | Any], sharpen: bool
                       ) -> dict[int, float]:
    """Aggregate variant histograms into one distribution.

    Args:
        variants: Each variant's ``{outcome: count}`` (or a :class:`Variant`).
        sharpen: ``False``: the mean of the variants' normalized distributions;
            ``True``: plurality voting, each variant's vote to its most frequent
            outcome (split evenly on a tie), normalized over the variants.

    Returns:
        ``{outcome: probability}``, sorted by outcome; empty if there are no shots.
    """
    hists = [v if isinstance(v, Mapping) else v.histogram for v in variants]
    hists = [h for h in hists if h and sum(h.values()) > 0]
    if not hists:
        return {}
    out: dict[int, float] = {}
    for hist in hists:
        if sharpen:
            top = max(hist.values())
            winners = [k for k, c in hist.items() if c == top]
            for k in winners:
                out[k] = out.get(k, 0.0) + 1.0 / len(winners)
        else:
            total = sum(hist.values())
            for k, c in hist.items():
                out[k] = out.get(k, 0.0) + c / total
    return {k: v / len(hists) for k, v in sorted(out.items())}


def job_probabilities(job: Any, sharpen: bool) -> dict[int, float] | None:
    """The aggregated probabilities of a (child) job run with debiasing, or ``None`` if it
    ran without (then its stored ``probabilities_json`` is the answer either way)."""
    variants = getattr(job, "variants", None)
    if not variants:
        return None
    return aggregate_variants(variants.values(), sharpen)


def variant_record(job_id: str, variant: Variant, version: str = "v0.4") -> dict[str, Any]:
    """The documented ``output.error_mitigation.debiasing.variants[]`` entry."""
    base = f"/{version}/jobs/{job_id}/variants/{variant.id}/results"
    return {
        "variant_id": variant.id,
        "qubit_map": list(variant.qubit_map),
        "shots": variant.shots,
        "results": {fmt: {"url": f"{base}/{fmt}"}
                    for fmt in ("probabilities", "histogram", "shots")},
    }


def debiasing_output(job: Any, version: str = "v0.4") -> dict[str, Any] | None:
    """``{"error_mitigation": {"debiasing": {"variants": [...]}}}`` for a job's
    ``output``, or ``None`` if it ran without debiasing."""
    variants = getattr(job, "variants", None)
    if not variants:
        return None
    return {"error_mitigation": {"debiasing": {
        "variants": [variant_record(job.id, v, version) for v in variants.values()],
    }}}


def find_variant(job: Any, variant_id: str) -> Variant | None:
    """The variant ``variant_id`` of ``job`` or of one of its children, else ``None``."""
    for target in [job, *getattr(job, "children", [])]:
        variant = (getattr(target, "variants", None) or {}).get(variant_id)
        if variant is not None:
            return variant
    return None


def variant_shots(variant: Variant) -> list[int]:
    """The variant's shots in a seeded random order (decimal outcomes)."""
    histogram = variant.histogram or {}
    keys = np.fromiter(histogram.keys(), dtype=np.int64, count=len(histogram))
    counts = np.fromiter(histogram.values(), dtype=np.int64, count=len(histogram))
    rng = np.random.default_rng(variant.sample_seed)
    return [int(x) for x in rng.permutation(np.repeat(keys, counts))]


def merge_histograms(histograms: Sequence[Mapping[int, int]]) -> dict[int, int]:
    """The sum of several histograms (a debiased job's raw shot counts)."""
    out: dict[int, int] = {}
    for hist in histograms:
        for k, c in hist.items():
            out[k] = out.get(k, 0) + c
    return dict(sorted(out.items()))


__all__ = [
    "Variant",
    "MIN_DEBIASING_SHOTS",
    "SHOTS_PER_VARIANT",
    "MAX_VARIANTS",
    "debiasing_requested",
    "num_variants",
    "plan_variants",
    "aggregate_variants",
    "job_probabilities",
    "variant_record",
    "debiasing_output",
    "variant_shots",
    "find_variant",
    "merge_histograms",
]
