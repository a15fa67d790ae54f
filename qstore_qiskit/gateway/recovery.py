"""The gateway's recovery after a restart: which request owns which journaled results.

The submitter journals every job (which circuits, by request tag and index, and, once
fetched, where its results are); the gateway journals which request owns which circuits
of a round's submission (:func:`~qstore_qiskit.gateway.rounds.unclaimed_owners`).
:func:`recover_requests` joins the two: the results of journaled jobs, fetched from the
service again (no job is sent twice), indexed by the digest of the request that owns
them, in that request's circuit order.

Guarantees: reads two journal generations (the current one and ``*.prev``), then starts
a new generation (the current files become ``*.prev``), so a crash during recovery or
right after it loses nothing and the files stay bounded; circuits whose job never
reached the service are left out (the gateway submits them when their request is retried).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from .rounds import unclaimed_owners


async def recover_requests(submitter: Any, journal: str, requests_path: str) -> dict[str, list[Any]]:
    """Results of journaled, undelivered jobs, by request digest.

    Args:
        submitter: The gateway's :class:`~qstore_qiskit.client.BatchSubmitter` (its
            :meth:`~qstore_qiskit.client.BatchSubmitter.recover` fetches the results).
        journal: The submitter's journal path.
        requests_path: The gateway's request journal path.

    Returns:
        ``{request digest: [result or None or exception, ...]}`` in request order
        (``None``: a circuit that must be submitted again).
    """
    recovered: dict[str, list[Any]] = {}
    owners = unclaimed_owners(requests_path)
    loop = asyncio.get_running_loop()
    by_tag: dict[str, dict[int, Any]] = {}
    for path in (journal + ".prev", journal):
        if not owners or not os.path.exists(path):
            continue
        entries = await loop.run_in_executor(None, submitter.recover, path)
        for entry in entries.values():
            values = entry.get("results")
            if values is None:  # never reached the service: resubmitted on demand
                continue
            for position, (tag, index) in enumerate(entry.get("circuits") or []):
                if isinstance(values, BaseException):
                    value: Any = values
                else:
                    value = values[position] if position < len(values) else None
                by_tag.setdefault(tag, {})[int(index)] = value
    for tag, offset, digest, indices in owners:
        got = by_tag.get(tag)
        if not got:
            continue
        slot = recovered.setdefault(digest, [])
        for sub_index, request_index in enumerate(indices):
            value = got.get(offset + sub_index)
            if value is None:
                continue
            slot.extend([None] * (request_index + 1 - len(slot)))
            slot[request_index] = value
    for path in (journal, requests_path):
        if os.path.exists(path):
            os.replace(path, path + ".prev")
    return recovered


__all__ = ["recover_requests"]
