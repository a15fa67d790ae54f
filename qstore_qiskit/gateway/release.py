"""When the gateway's held calls go out, and how a release is cut into submissions.

The gateway (:class:`~qstore_qiskit.gateway.ray_gateway.QStoreGateway`) holds each call
until its release; this module decides when, from what the gateway observes: which
callers have a call held, which wait for results of a submission in flight, which were
served a moment ago (and will be back with their next call), and how many of the
gateway's submissions are in flight. Three policies (the gateway's ``release`` option):

* ``"round"``: when every active caller has a call in (callers waiting for results
  included), so workers running in lockstep share one round.
* ``"nagle"``: as soon as fewer than ``depth`` submissions are in flight and at least
  ``quorum`` calls are held; calls arriving meanwhile coalesce.
* ``"pipeline"``: the callers split into cohorts that take turns: a release waits for
  at most ``depth - 1`` submissions to be in flight and for ``ceil(active / depth)``
  calls (a cohort), or for every active caller that is not waiting for results. The
  first round is cut into ``depth`` cohorts, each its own submission whose callers get
  their results as soon as their own job is done: while one cohort's job executes,
  the next cohort's job is queued behind it and the other callers compute, so a
  machine that runs one job at a time (a QPU) never waits for the callers. Each
  release carries at least a cohort's calls, so the jobs stay ``active / depth``-fold
  fewer than the calls.

Guarantees: the functions here only decide; they hold no locks or timers and never
drop a call: every held call is in exactly one part of :func:`cohorts`, in its order.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Any

#: The values of the gateway's ``release`` option.
RELEASES = ("round", "nagle", "pipeline")
#: The gateway's default ``release``.
DEFAULT_RELEASE = "pipeline"
#: A newcomer's first call is held until no other new caller has arrived for this long
#: (seconds; at most ``gather_window``): the first calls of a sweep's workers, which start
#: together, go out as one round without waiting the whole window.
NEWCOMER_QUIET = 0.1


def pipeline_quorum(active: int, depth: int, least: int = 1) -> int:
    """Calls a ``"pipeline"`` release waits for: a cohort, ``ceil(active / depth)``
    (at least ``least``, the job budget's calls per submission)."""
    return max(least, math.ceil(max(active, 1) / max(depth, 1)))


def should_release(
    mode: str,
    *,
    held: Collection[str],
    busy: Collection[str],
    lingering: Collection[str],
    in_flight: int,
    depth: int,
    quorum: int,
    calls_held: int,
) -> bool:
    """Whether the held calls go out now.

    Args:
        mode: The gateway's ``release`` (:data:`RELEASES`).
        held: Callers with a call held.
        busy: Callers with a call inside the gateway (held, or waiting for its results).
        lingering: Callers served less than ``linger`` seconds ago, with no call in.
        in_flight: The gateway's submissions whose results are not back yet.
        depth: The gateway's ``round_jobs``: most submissions in flight (``"nagle"``,
            ``"pipeline"``).
        quorum: Least calls a ``"nagle"`` release carries (``1 / job_budget``).
        calls_held: Calls held (a caller may hold several).
    """
    missing_busy = any(client not in held for client in busy)
    missing_lingering = any(client not in held for client in lingering)
    if mode == "pipeline":
        if in_flight >= depth:
            return False  # the machine has work queued: coalesce until a slot frees
        active = len(set(busy) | set(lingering))
        # Callers waiting for results do not hold the cohort up: they are the other cohort.
        return calls_held >= pipeline_quorum(active, depth, quorum) or not missing_lingering
    if mode == "nagle" and in_flight < depth and calls_held >= quorum:
        return True
    return not missing_busy and not missing_lingering


def release_on_window_end(mode: str, *, quorum: int, calls_held: int) -> bool:
    """Whether the gather window's end (``gather_window`` after the first held call)
    releases the held calls: always in ``"round"`` mode; with ``"nagle"`` only if the
    quorum is held; with ``"pipeline"`` as :func:`should_release` says (a cohort is
    released whole: one that misses a caller waits for it, at most ``linger`` after
    that caller's last call returned)."""
    if mode == "round":
        return True
    return mode == "nagle" and calls_held >= quorum


__all__ = [
    "RELEASES",
    "DEFAULT_RELEASE",
    "NEWCOMER_QUIET",
    "pipeline_quorum",
    "should_release",
    "release_on_window_end",
]
