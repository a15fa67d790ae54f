"""The ``fair_share`` queue model: one machine per backend, fair share across organizations.

IonQ documents its QPU queue (https://docs.ionq.com/user-manual/platform-systems, "Queue
Manager") as "a fair-share style, weighted scheduling system. When a job is submitted,
queue manager places it in the appropriate allocation group based on its parent
organization. As jobs are pulled from the queue to be sent to the QPU, the queue manager
cycles through each of those groups over a set duration for each", and a job as
``ready`` while "waiting in the queue for its target system to be available"
(https://docs.ionq.com/user-manual/jobs). A QPU executes one job at a time.

:class:`Machine` models that for one backend: at most one job executes at a time; the
jobs waiting for it are queued per organization (here: per API key), and whenever the
machine frees up it serves the next organization, in cyclic order after the one served
last, that has a job waiting (a turn is one job: IonQ does not publish its "set
duration", and one job is the finest fair share). Within an organization, jobs run in
the order they became ready. An organization alone on the machine therefore runs its
jobs strictly one after another, each paying its own per-job time; two organizations
alternate.

Guarantees: never two holders at once; a waiter that is cancelled (a cancelled job)
leaves its queue, and a grant it can no longer take is passed on, so the machine never
stalls; ``counts()`` reports, per backend, how many jobs ran, the most that ever ran at
once (1) and the order in which organizations were served (the latest
:data:`ORDER_KEEP`).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import os
from typing import Any

#: How many of the latest grants each machine remembers (for ``counts()``).
ORDER_KEEP = 256
#: Most distinct organizations (API keys) a server tells apart; keys beyond share one
#: label (a server without a configured key accepts any key, so this bounds memory).
MAX_ORGANIZATIONS = 4096
#: The label of requests without a key, and of keys beyond :data:`MAX_ORGANIZATIONS`.
ANONYMOUS = "org-0"


class Organizations:
    """Maps an ``Authorization`` token to a stable label ``org-1``, ``org-2``, ...

    The key itself is never stored: only a keyed hash (HMAC-SHA-256 under a random
    per-server secret), so neither the labels nor the table reveal a key.
    """

    def __init__(self) -> None:
        self._secret = os.urandom(32)
        self._labels: dict[bytes, str] = {}

    def label(self, token: str | None) -> str:
        """The organization label of ``token`` (the key a request sent; ``None``: none)."""
        if not token:
            return ANONYMOUS
        digest = hmac.new(self._secret, token.encode(), hashlib.sha256).digest()
        label = self._labels.get(digest)
        if label is None:
            if len(self._labels) >= MAX_ORGANIZATIONS:
                return ANONYMOUS
            label = f"org-{len(self._labels) + 1}"
            self._labels[digest] = label
        return label


class Machine:
    """One backend's machine: one job at a time, round-robin over organizations."""

    def __init__(self) -> None:
        self._queues: dict[str, collections.deque[asyncio.Future]] = {}
        self._last: str | None = None  # the organization served last
        self._busy = False
        self.running = 0
        self.max_running = 0
        self.executed = 0
        self.order: collections.deque[str] = collections.deque(maxlen=ORDER_KEEP)

    async def acquire(self, org: str) -> None:
        """Wait until the machine is this job's; the caller must :meth:`release` it."""
        if not self._busy and not any(self._queues.values()):
            self._grant(org)
            return
        waiter = asyncio.get_running_loop().create_future()
        self._queues.setdefault(org, collections.deque()).append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted just as it was cancelled: pass the machine on
            else:
                queue = self._queues.get(org)
                if queue is not None and waiter in queue:
                    queue.remove(waiter)
            raise

    def _grant(self, org: str) -> None:
        self._busy = True
        self._last = org
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        self.executed += 1
        self.order.append(org)

    def release(self) -> None:
        """The holder is done: hand the machine to the next organization's next job."""
        self.running -= 1
        self._busy = False
        orgs = [o for o, q in self._queues.items() if q]
        if not orgs:
            return
        # Cyclic order over organizations in order of first arrival, after the last one.
        names = list(self._queues)
        start = names.index(self._last) + 1 if self._last in self._queues else 0
        for org in names[start:] + names[:start]:
            queue = self._queues[org]
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    self._grant(org)
                    waiter.set_result(None)
                    return


class Machines:
    """The machines of a server, one per backend (created on first use)."""

    def __init__(self) -> None:
        self._machines: dict[str, Machine] = {}

    def get(self, backend: str) -> Machine:
        """The machine of ``backend``."""
        machine = self._machines.get(backend)
        if machine is None:
            machine = self._machines[backend] = Machine()
        return machine

    def counts(self) -> dict[str, Any]:
        """Per backend: jobs ``executed``, ``max_running`` at once, ``running`` now,
        ``queued`` now, and the ``order`` in which organizations were served (latest
        :data:`ORDER_KEEP`)."""
        return {
            name: {"executed": m.executed, "max_running": m.max_running, "running": m.running,
                   "queued": sum(len(q) for q in m._queues.values()),  # pylint: disable=protected-access
                   "order": list(m.order)}
            for name, m in list(self._machines.items())
        }


__all__ = ["Machine", "Machines", "Organizations", "ANONYMOUS", "ORDER_KEEP", "MAX_ORGANIZATIONS"]
