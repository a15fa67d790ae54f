"""When the gateway's held calls go out: the release policies and the :class:`Gatherer`.

The gateway (:class:`~qstore_qiskit.gateway.ray_gateway.QStoreGateway`) holds each call
in a :class:`Gatherer` until its release, decided from what the gateway observes: which
callers have a call held, which wait for results of a submission in flight, which were
served a moment ago (and will be back with their next call), and how many of the
gateway's submissions are in flight. Three policies (the gateway's ``release`` option):

* ``"round"``: when every active caller has a call in (callers waiting for results
  included), so workers running in lockstep share one round.
* ``"nagle"``: as soon as fewer than ``depth`` submissions are in flight and at least
  ``quorum`` calls are held; calls arriving meanwhile coalesce.
* ``"pipeline"``: the callers split into cohorts that take turns: a release waits
  until fewer than ``depth`` submissions are in flight, and for ``ceil(active / depth)``
  calls (a cohort; callers waiting for results are not waited for) or for every active
  caller that is not waiting for results. Each release is one job of its own (the
  gateway submits it ``exclusive``), whose callers get their results as soon as it is
  done: while one cohort's job executes, the next cohort's job is queued behind it and
  the other callers compute, so a machine that runs one job at a time (a QPU) does not
  wait for the callers. The cohorts form by themselves: when all callers come back
  together, the first ``ceil(active / depth)`` to call are released first.

Guarantees: every held call is released exactly once (a release keeps the calls' arrival
order), or dropped when its caller cancels it; a held call waits at most until every
active caller is in or has stopped being active (``linger`` after its last call
returned), or, in ``"round"`` mode, ``gather_window`` after the first held call, and
with ``"pipeline"`` also until fewer than ``depth`` submissions are in flight; with ``"pipeline"`` every release but those that take every active caller
(e.g. the first and the last calls of a sweep) carries a cohort.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence

from .rounds import Held

#: The values of the gateway's ``release`` option.
RELEASES = ("round", "nagle", "pipeline")
#: The gateway's default ``release``.
DEFAULT_RELEASE = "pipeline"
#: A newcomer's first call is held until no other new caller has arrived for this long
#: (seconds; at most ``gather_window``): the first calls of a sweep's workers, which start
#: together, go out as one round without waiting the whole window. 0.3 s, not less: on a
#: loaded 2-core machine the first calls of 8 trials (each compiling its first circuit)
#: arrived more than 0.1 s apart, and a first call released alone costs a job.
NEWCOMER_QUIET = 0.3


def settings_key(settings: Mapping[str, object]) -> str:
    """Calls whose settings have equal keys may share a job."""
    return json.dumps(settings, sort_keys=True, default=str)


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
    """Whether the held calls go out now (``"round"``, ``"nagle"``; ``"pipeline"``:
    :func:`pipeline_groups`).

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
    if mode == "nagle" and in_flight < depth and calls_held >= quorum:
        return True
    return not missing_busy and not missing_lingering


def pipeline_groups(
    groups: Mapping[Hashable, Sequence[str]],
    *,
    busy: Collection[str],
    lingering: Collection[str],
    flying: Collection[str],
    in_flight: int,
    depth: int,
    quorum: int = 1,
) -> list[Hashable]:
    """The held groups to release now with ``release="pipeline"``.

    A group is the held calls of equal settings (only those may share a job; callers in
    different phases of their work, e.g. a forward and a gradient call, usually differ).

    Args:
        groups: ``{settings key: [caller of each held call, ...]}``.
        busy: Callers with a call inside the gateway (held, submitted, or answered but
            not yet returned).
        lingering: Callers served less than ``linger`` seconds ago, with no call in.
        flying: Callers with a call in a submission whose results are not back yet:
            the other cohort, not waited for.
        in_flight: The gateway's submissions whose results are not back yet.
        depth: Most submissions in flight (``round_jobs``).
        quorum: Least calls per release (``1 / job_budget``).

    Returns:
        Nothing while ``depth`` submissions are in flight (the machine has work queued:
        calls coalesce until a slot frees); every group once every active caller that is
        not waiting for results has a call held; else the groups holding a cohort
        (:func:`pipeline_quorum` calls), largest first, at most the free slots.
    """
    if in_flight >= depth or not groups:
        return []
    held = {client for members in groups.values() for client in members}
    active = set(busy) | set(lingering) | held
    if not any(client not in held and client not in flying for client in active):
        return list(groups)
    cohort = pipeline_quorum(len(active), depth, quorum)
    ready = sorted((key for key, members in groups.items() if len(members) >= cohort),
                   key=lambda key: -len(groups[key]))
    return ready[: depth - in_flight]


def release_on_window_end(mode: str, *, quorum: int, calls_held: int) -> bool:
    """Whether the gather window's end (``gather_window`` after the first held call)
    releases the held calls: always in ``"round"`` mode; with ``"nagle"`` only if the
    quorum is held; with ``"pipeline"`` as :func:`should_release` says (a cohort is
    released whole: one that misses a caller waits for it, at most ``linger`` after
    that caller's last call returned)."""
    if mode == "round":
        return True
    return mode == "nagle" and calls_held >= quorum


class Gatherer:
    """The held calls of a gateway and the callers' state (one event loop only).

    Args:
        mode: The release policy (:data:`RELEASES`).
        gather_window: Longest hold (s) in ``"round"`` mode (see
            :func:`release_on_window_end`); 0 releases every call at once.
        linger: A caller whose last call returned less than this ago is expected back.
        depth: Most of the gateway's submissions in flight (``round_jobs``).
        quorum: Least calls a ``"nagle"`` or ``"pipeline"`` release carries (``1 / job_budget``).
        newcomer_quiet: A newcomer's first call waits until no other new caller has
            arrived for this long (at most ``gather_window``).
        release: Called with the released calls (in arrival order).
        in_flight: Returns the gateway's submissions in flight.
    """

    def __init__(
        self, mode: str, gather_window: float, linger: float, depth: int, quorum: int, newcomer_quiet: float,
        release: Callable[[list[Held]], None], in_flight: Callable[[], int],
    ) -> None:
        self.mode, self.gather_window, self.linger = mode, gather_window, linger
        self.depth, self.quorum, self.newcomer_quiet = depth, quorum, newcomer_quiet
        self._release_cb, self._in_flight = release, in_flight
        self.busy: dict[str, int] = {}  # callers with calls in the gateway (held or submitted)
        self.last_done: dict[str, float] = {}  # callers served lately, when their last call left
        self.held: list[Held] = []
        self.flying: dict[str, int] = {}  # callers with calls in submissions not done yet
        self._known: dict[str, None] = {}  # callers seen before (insertion-ordered, bounded)
        self._new_arrival = 0.0  # when the last newcomer's first call arrived
        self._window_timer: asyncio.TimerHandle | None = None
        self._recheck_timer: asyncio.TimerHandle | None = None

    def hold(self, call: Held) -> asyncio.Future:
        """Hold ``call`` (its ``gate`` and ``new`` are set here); returns its gate, which
        gets the call's :class:`~.rounds.Share` on release."""
        loop = asyncio.get_running_loop()
        call.gate = loop.create_future()
        call.new = call.client not in self._known
        self.busy[call.client] = self.busy.get(call.client, 0) + 1
        if call.new:
            self._new_arrival = time.monotonic()
        self.held.append(call)
        if self.gather_window <= 0:
            self.release()
        else:
            if self._window_timer is None:
                self._window_timer = loop.call_later(self.gather_window, self._window_ended)
            self.maybe_release()
        return call.gate

    def drop(self, gate: asyncio.Future) -> None:
        """A held call was cancelled: forget it."""
        self.held = [h for h in self.held if h.gate is not gate]

    def left(self, client: str) -> None:
        """A call of ``client`` is over (answered, failed or cancelled)."""
        left = self.busy.get(client, 0) - 1
        if left > 0:
            self.busy[client] = left
        else:
            self.busy.pop(client, None)
            self.last_done[client] = time.monotonic()
        if self.held:
            self.maybe_release()

    def took_off(self, clients: list[str]) -> None:
        """A submission carrying calls of ``clients`` was made."""
        for client in clients:
            self.flying[client] = self.flying.get(client, 0) + 1

    def landed(self, clients: list[str]) -> None:
        """The submission carrying calls of ``clients`` is done: its callers are back soon
        (``"nagle"``, ``"pipeline"`` waited for a free slot)."""
        for client in clients:
            left = self.flying.get(client, 0) - 1
            if left > 0:
                self.flying[client] = left
            else:
                self.flying.pop(client, None)
        if self.held and self.mode != "round":
            self.maybe_release()

    def maybe_release(self) -> None:
        """Release the held calls if the policy says so; else re-check when it may."""
        now = time.monotonic()
        for client, done in list(self.last_done.items()):
            if now - done >= self.linger or client in self.busy:
                del self.last_done[client]
        if any(h.new for h in self.held):
            # A newcomer's first call: the workers of a sweep start together, so wait for
            # the others' first calls (once per caller) rather than release it alone and
            # leave it a call ahead of them for the whole sweep: until no new caller has
            # arrived for newcomer_quiet seconds (or the window ends), then as usual.
            quiet_until = self._new_arrival + min(self.newcomer_quiet, self.gather_window)
            if now < quiet_until:
                self._recheck_at(quiet_until - now)
                return
        held = {h.client for h in self.held}
        if self.mode == "pipeline":
            groups: dict[str, list[Held]] = {}
            for h in self.held:
                groups.setdefault(settings_key(h.settings), []).append(h)
            ready = pipeline_groups({key: [h.client for h in members] for key, members in groups.items()},
                                    busy=self.busy, lingering=self.last_done, flying=self.flying,
                                    in_flight=self._in_flight(), depth=self.depth, quorum=self.quorum)
            if len(ready) == len(groups):
                self.release()
                return
            for key in ready:  # these go; the other groups wait for their cohorts
                self.release(groups[key])
        elif should_release(self.mode, held=held, busy=self.busy, lingering=self.last_done,
                            in_flight=self._in_flight(), depth=self.depth, quorum=self.quorum,
                            calls_held=len(self.held)):
            self.release()
            return
        lingering = [done for client, done in self.last_done.items() if client not in held]
        if lingering:  # re-check when the first lingering caller stops being expected
            self._recheck_at(max(min(lingering) + self.linger - now, 0.0))

    def _window_ended(self) -> None:
        self._window_timer = None
        if self.mode == "pipeline":  # a cohort is released only whole (see maybe_release)
            self.maybe_release()
        elif release_on_window_end(self.mode, quorum=self.quorum, calls_held=len(self.held)):
            self.release()

    def _recheck_at(self, delay: float) -> None:
        if self._recheck_timer is not None:
            self._recheck_timer.cancel()
        self._recheck_timer = asyncio.get_running_loop().call_later(delay, self.maybe_release)

    def release(self, some: list[Held] | None = None) -> None:
        """Hand the held calls ``some`` (``None``: every held call) to the gateway now."""
        if some is None or len(some) == len(self.held):
            for timer in (self._window_timer, self._recheck_timer):
                if timer is not None:
                    timer.cancel()
            self._window_timer = self._recheck_timer = None
            held, self.held = self.held, []
        else:
            gates = {id(h.gate) for h in some}
            held = [h for h in self.held if id(h.gate) in gates]
            self.held = [h for h in self.held if id(h.gate) not in gates]
        if not held:
            return
        for h in held:
            self._known[h.client] = None
        while len(self._known) > 100_000:
            self._known.pop(next(iter(self._known)))
        self._release_cb(held)


__all__ = [
    "Gatherer",
    "RELEASES",
    "DEFAULT_RELEASE",
    "NEWCOMER_QUIET",
    "pipeline_quorum",
    "should_release",
    "pipeline_groups",
    "settings_key",
    "release_on_window_end",
]
