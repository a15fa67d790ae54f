"""Results of completed jobs: probabilities, histogram, shots, artifacts, variants.

Results of a job that is not completed answer 404 (as IonQ's document has it; both
official clients only fetch results once the job reads ``completed``), with a message
naming the job's status. Results of an evicted job answer 410.
"""

from __future__ import annotations

import numpy as np
from aiohttp import web

from ..errors import ApiError, bad_request
from ..jobs import Job, Variant
from ..state import json_response, state_of


def _completed(request: web.Request) -> Job:
    job = state_of(request).store.get(request.match_info["job_id"])
    if job.status != "completed":
        raise ApiError(404, f"job '{job.id}' is {job.status}; its results are not available"
                            + (" yet" if job.status not in ("canceled", "failed") else ""))
    if job.spec.dry_run:
        raise ApiError(404, f"job '{job.id}' was a dry run and has no results")
    return job


def _sharpen(request: web.Request) -> bool:
    raw = request.query.get("sharpen", "false").lower()
    if raw not in ("true", "false"):
        raise bad_request("'sharpen' must be true or false", keys=["sharpen"], source="query")
    return raw == "true"


async def get_probabilities(request: web.Request) -> web.Response:
    """``GET /jobs/{id}/results/probabilities[?sharpen=]``: ``{state: p}``, or for a
    multicircuit parent ``{child_id: {state: p}}`` in submission order.

    ``sharpen=true`` on a debiased job returns the plurality-voted aggregate of its
    variants (``Job.sharpened_json``, stored by the simulation when it runs variants);
    otherwise the averaged distribution is the answer either way.
    """
    job = _completed(request)
    sharpen = _sharpen(request)

    def text_of(j: Job) -> str:
        if sharpen and j.sharpened_json is not None:
            return j.sharpened_json
        return j.probabilities_json or "{}"

    if job.children:
        text = "{" + ",".join(f'"{c.id}":{text_of(c)}' for c in job.children) + "}"
    else:
        text = text_of(job)
    return web.Response(text=text, content_type="application/json")


get_results = get_probabilities  # v0.3 ``/jobs/{id}/results`` has the same shape


def _histogram_of(counts: dict[int, int]) -> dict[str, int]:
    return {str(k): v for k, v in sorted(counts.items())}


async def get_histogram(request: web.Request) -> web.Response:
    """``GET /jobs/{id}/results/histogram``: sampled shot counts (seeded)."""
    job = _completed(request)
    targets = job.children or [job]
    if any(t.histogram is None for t in targets):
        raise ApiError(404, f"job '{job.id}' has no histogram")
    hists = {t.id: _histogram_of(t.histogram) for t in targets}  # type: ignore[arg-type]
    return json_response(hists if job.children else hists[job.id])


def expand_shots(histogram: dict[int, int], seed) -> list[int]:
    """Per-shot outcomes of ``histogram`` in a seeded random order."""
    rng = np.random.default_rng(seed)
    outcomes = np.repeat(
        np.fromiter(histogram.keys(), dtype=np.int64, count=len(histogram)),
        np.fromiter(histogram.values(), dtype=np.int64, count=len(histogram)),
    )
    return [int(x) for x in rng.permutation(outcomes)]


async def get_shots(request: web.Request) -> web.Response:
    """``GET /jobs/{id}/results/shots``: ordered per-shot outcomes (decimal ints)."""
    job = _completed(request)
    targets = job.children or [job]
    if any(t.histogram is None for t in targets):
        raise ApiError(404, f"job '{job.id}' has no per-shot data")
    if job.children:
        return json_response({t.id: expand_shots(t.histogram, t.sample_seed)  # type: ignore
                              for t in targets})
    return json_response(expand_shots(job.histogram, job.sample_seed))  # type: ignore[arg-type]


async def get_artifact(request: web.Request) -> web.Response:
    """``GET /jobs/{id}/artifacts/{artifact_id}``."""
    job = _completed(request)
    payload = job.artifact_payloads.get(request.match_info["artifact_id"])
    if payload is None:
        raise ApiError(404, f"artifact '{request.match_info['artifact_id']}' not found")
    return json_response(payload)


def _variant(request: web.Request) -> Variant:
    job = _completed(request)
    variant = job.variants.get(request.match_info["variant_id"])
    if variant is None:
        raise ApiError(404, f"job '{job.id}' has no variant "
                            f"'{request.match_info['variant_id']}'")
    return variant


async def get_variant_probabilities(request: web.Request) -> web.Response:
    """``GET /jobs/{id}/variants/{variant_id}/results/probabilities``."""
    variant = _variant(request)
    return json_response({str(k): v for k, v in sorted(variant.probabilities.items())})


async def get_variant_histogram(request: web.Request) -> web.Response:
    """``GET /jobs/{id}/variants/{variant_id}/results/histogram``: ``{state: count}``."""
    variant = _variant(request)
    if variant.histogram is None:
        raise ApiError(404, f"variant '{variant.id}' has no histogram")
    return json_response(_histogram_of(variant.histogram))


async def get_variant_shots(request: web.Request) -> web.Response:
    """``GET /jobs/{id}/variants/{variant_id}/results/shots``.

    IonQ's document types every variant result as an object of numbers, so the shots
    come as ``{shot index: outcome}`` (decimal strings to decimal ints), in shot order.
    """
    variant = _variant(request)
    if variant.histogram is None:
        raise ApiError(404, f"variant '{variant.id}' has no per-shot data")
    shots = expand_shots(variant.histogram, variant.sample_seed)
    return json_response({str(i): outcome for i, outcome in enumerate(shots)})


__all__ = ["get_probabilities", "get_results", "get_histogram", "get_shots", "get_artifact",
           "get_variant_probabilities", "get_variant_histogram", "get_variant_shots",
           "expand_shots"]
