"""Where each gateway request's circuits run, known before their results.

The gateway answers :meth:`~qstore_qiskit.gateway.ray_gateway.QStoreGateway.created`
from a :class:`PlacementBoard`: one future per request digest, resolved with one
``(IonQ job id, position, job size)`` per circuit as soon as the submitter has created
every circuit's job, failed or cancelled with the request, and ``None`` when the gateway
cannot tell (a request answered from the journal: its results name its jobs). Entries
are keyed by the digest of the caller's random request id, so only its holder can ask.
Everything runs on the actor's event loop except the submitter's callbacks, which are
handed over with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any, Callable

#: Seconds the placements of a request stay answerable (a ``created`` call may arrive
#: after its ``submit`` call ended), and the longest a ``created`` call waits for a
#: ``submit`` call that never arrives (it then answers ``None``).
CREATED_KEEP = 120.0


class PlacementBoard:
    """Placements futures by request digest (bounded: each expires ``CREATED_KEEP``
    seconds after it was made, or later while ``running(digest)`` says its call runs).

    Args:
        running: whether the request with this digest is still in the gateway.
    """

    def __init__(self, running: Callable[[str], bool]) -> None:
        self._running = running
        self._entries: dict[str, asyncio.Future] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, digest: str) -> asyncio.Future:
        """The placements future of ``digest``, made (and its expiry scheduled) if absent."""
        entry = self._entries.get(digest)
        if entry is None:
            loop = asyncio.get_running_loop()
            entry = self._entries[digest] = loop.create_future()
            loop.call_later(CREATED_KEEP, self._expire, digest, entry)
        return entry

    def fresh(self, digest: str) -> asyncio.Future:
        """:meth:`entry` for a request starting now: a settled entry (an earlier call
        with the same id that already finished) is replaced."""
        entry = self.entry(digest)
        if entry.done():
            del self._entries[digest]
            entry = self.entry(digest)
        return entry

    def _expire(self, digest: str, entry: asyncio.Future) -> None:
        if self._running(digest):  # still running: keep it
            asyncio.get_running_loop().call_later(CREATED_KEEP, self._expire, digest, entry)
            return
        if self._entries.get(digest) is entry:
            del self._entries[digest]
        if not entry.done():  # no submit call came: the caller falls back to the results
            entry.set_result(None)

    def forward(
        self,
        digest: str,
        source: concurrent.futures.Future | None,
        offset: int,
        count: int,
        indices: list[int],
        total: int,
    ) -> None:
        """Resolve ``digest``'s placements from slice ``[offset, offset + count)`` of a
        submitter's ``jobs_created`` future ``source`` (circuit ``k`` of the slice is the
        request's circuit ``indices[k]`` of ``total``) once it resolves, failing or
        cancelling them with it."""
        entry = self._entries.get(digest)
        if entry is None or entry.done():
            return
        if source is None or len(indices) != total:  # partly recovered: results tell
            entry.set_result(None)
            return
        loop = asyncio.get_running_loop()

        def settle(fut: concurrent.futures.Future) -> None:
            if entry.done():
                return
            if fut.cancelled():
                entry.cancel()
                return
            exc = fut.exception()
            if exc is not None:
                entry.set_exception(exc)
                entry.exception()  # retrieved: the caller may never ask
                return
            placed: list[Any] = [None] * total
            for index, p in zip(indices, fut.result()[offset : offset + count]):
                placed[index] = (str(p.job_id), int(p.position), int(p.size))
            entry.set_result(placed)

        def hand_over(fut: concurrent.futures.Future) -> None:
            try:
                loop.call_soon_threadsafe(settle, fut)
            except RuntimeError:  # the actor's loop is closed: nobody waits any more
                pass

        source.add_done_callback(hand_over)


__all__ = ["CREATED_KEEP", "PlacementBoard"]
