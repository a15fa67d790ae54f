"""The records of the gateway's rounds (see :meth:`QStoreGateway._gate
<qstore_qiskit.gateway.ray_gateway.QStoreGateway>`): a held call, one submitter call made
for a round's calls of equal settings, and each caller's slice of it.

Guarantees: a caller gets exactly its own slice of its round's results, in its own
order; one caller's cancellation never cancels the others' results (the circuits not yet
sent are dropped only when every caller of the submission gave up).
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..client.results import CircuitResult


class Held:
    """One call held for its round."""

    __slots__ = ("client", "digest", "circuits", "settings", "indices", "gate", "new")

    def __init__(self, client, digest, circuits, settings, indices, gate, new) -> None:  # noqa: ANN001
        self.client, self.digest, self.circuits = client, digest, circuits
        self.settings, self.indices, self.gate, self.new = settings, indices, gate, new


class Submission:
    """One submitter call made for several callers' circuits (one round, equal settings)."""

    def __init__(self, future: Any, members: int) -> None:
        self.future = future
        self.waiting = members
        self._wrapped: asyncio.Future | None = None

    def wrapped(self) -> asyncio.Future:
        if self._wrapped is None:
            self._wrapped = asyncio.wrap_future(self.future)
        return self._wrapped

    def drop_member(self) -> None:
        self.waiting -= 1
        if self.waiting <= 0:  # every caller gave up: drop the circuits not yet sent
            self.future.cancel()


class Share:
    """A caller's slice ``[offset, offset + count)`` of a :class:`Submission`."""

    def __init__(self, submission: Submission, offset: int, count: int) -> None:
        self.submission, self.offset, self.count = submission, offset, count

    async def results(self) -> list[CircuitResult]:
        try:
            # Shielded: one caller's cancellation must not cancel the others' results.
            results = await asyncio.shield(self.submission.wrapped())
        except asyncio.CancelledError:
            self.cancel()
            raise
        return list(results[self.offset : self.offset + self.count])

    def cancel(self) -> None:
        self.submission.drop_member()


__all__ = ["Held", "Submission", "Share"]
