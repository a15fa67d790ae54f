"""A cheap accept front: connections reach aiohttp only once they send something.

aiohttp (through asyncio's ``start_server``) builds a request handler and a transport
for every connection it accepts, about 250 µs each, before :class:`.ConnectionLimiter`
can shed anything. The kernel hands connections over in arrival order, so a health
check that connects behind 1,000 connections that never send waits for 1,000 of those
handlers. :class:`AcceptFront` drains the listening socket itself (a non-blocking
``accept`` is about 10 µs) into a bounded pool of raw pending sockets, each watched
for readability; a socket is handed to aiohttp only when it has bytes to read (a
request, or its end). Guarantees:

* at most ``max_pending`` accepted sockets wait for their first byte; beyond it the
  oldest pending socket is closed (``evicted``);
* at most ``max_pending`` sockets whose first bytes are not a complete request head
  wait to be handed over (at most :data:`PARTIAL_BATCH` per loop iteration); beyond it
  the oldest of them is closed (``shed_partial``). The front therefore holds at most
  ``2 * max_pending`` raw sockets, whatever the rate of connections;
* a pending socket that sends nothing for ``first_byte_timeout`` seconds is closed
  (``expired``);
* a socket handed over is subject to the existing limits (``max_connections``,
  ``header_timeout``, ``body_timeout``) exactly as before.

It needs ``loop.add_reader`` (selector event loops: every loop on Linux and macOS);
:func:`supported` says whether the running loop has it, and the server falls back to
aiohttp's own accept path when it does not (Windows' proactor loop).
"""

from __future__ import annotations

import asyncio
import collections
import socket
import time
from typing import Callable

from aiohttp import web

# Most sockets accepted per readiness callback before the loop gets to run other
# callbacks (health checks among them); the listening socket stays readable, so the
# rest are taken on the next iteration.
ACCEPT_BATCH = 64

# Connections whose first bytes are not yet a complete request head (slow-loris, or a
# request split over packets) are handed to aiohttp at most this many per loop
# iteration, after those that sent a complete head: a burst of them cannot hold up a
# health check that arrives complete.
PARTIAL_BATCH = 16

# Silent sockets past their first-byte deadline are closed at most this many per loop
# iteration: a flood that expires together is closed over several iterations, with
# other callbacks (health checks among them) running in between.
SWEEP_BATCH = 32


def supported(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop`` can watch raw file descriptors (``add_reader``)."""
    probe_r, probe_w = socket.socketpair()
    try:
        loop.add_reader(probe_r.fileno(), lambda: None)
    except NotImplementedError:
        return False
    else:
        loop.remove_reader(probe_r.fileno())
        return True
    finally:
        probe_r.close()
        probe_w.close()


class AcceptFront:
    """Accepts connections from ``listener`` and hands each to ``protocol_factory``
    once it is readable.

    Args:
        loop: The running event loop (must support ``add_reader``).
        listener: A bound, listening socket (made non-blocking here).
        protocol_factory: Builds the protocol of a handed-over connection
            (``AppRunner.server``).
        max_pending: Most accepted sockets waiting for their first byte, and most
            sockets with a partial request head waiting to be handed over.
        first_byte_timeout: Seconds a pending socket may stay silent.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, listener: socket.socket,
                 protocol_factory: Callable[[], asyncio.Protocol], max_pending: int,
                 first_byte_timeout: float) -> None:
        self.loop = loop
        self.listener = listener
        self.protocol_factory = protocol_factory
        self.max_pending = max_pending
        self.first_byte_timeout = first_byte_timeout
        # fd -> (socket, deadline), oldest first (every socket gets the same timeout,
        # so the deadlines are in order too).
        self._pending: collections.OrderedDict[int, tuple[socket.socket, float]] = (
            collections.OrderedDict())
        self._handoffs: set[asyncio.Task] = set()
        self._partial: collections.deque[socket.socket] = collections.deque()
        self._draining = False
        # Descriptors handed over with a complete request head: the connection limit
        # must not shed them before aiohttp has parsed that request (see connections).
        self.complete_heads: set[int] = set()
        self._sweeper: asyncio.Handle | None = None
        self._closed = False
        self.accepted = 0  # sockets taken from the accept queue
        self.handed_over = 0  # sockets given to aiohttp (they sent bytes)
        self.evicted = 0  # pending sockets closed because the pool was full
        self.expired = 0  # pending sockets closed after first_byte_timeout of silence
        self.shed_partial = 0  # partial-head sockets closed because their queue was full
        self.partial_peak = 0  # most partial-head sockets queued at once
        self.accept_errors = 0  # accept() failures other than "nothing to accept"

    def start(self) -> None:
        """Start accepting."""
        self.listener.setblocking(False)
        self.loop.add_reader(self.listener.fileno(), self._on_listener)
        self._schedule_sweep()

    def _on_listener(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # ECONNABORTED (the client left), EMFILE/ENFILE (out of descriptors):
                # free one and try again on the next iteration.
                self.accept_errors += 1
                if self._pending:
                    self._close_oldest()
                    self.evicted += 1
                return
            self.accepted += 1
            conn.setblocking(False)
            if len(self._pending) >= self.max_pending:
                self._close_oldest()
                self.evicted += 1
            fd = conn.fileno()
            self._pending[fd] = (conn, time.monotonic() + self.first_byte_timeout)
            self.loop.add_reader(fd, self._on_readable, fd)

    def _close_oldest(self) -> None:
        fd, (conn, _) = self._pending.popitem(last=False)
        self.loop.remove_reader(fd)
        conn.close()

    def _on_readable(self, fd: int) -> None:
        entry = self._pending.pop(fd, None)
        self.loop.remove_reader(fd)
        if entry is None:
            return
        conn = entry[0]
        try:
            head = conn.recv(8192, socket.MSG_PEEK)
        except OSError:
            head = b""  # reset: aiohttp sees the error at once
        if head and b"\r\n\r\n" not in head:
            if len(self._partial) >= self.max_pending:
                self._partial.popleft().close()  # the oldest: it has waited longest
                self.shed_partial += 1
            self._partial.append(conn)
            self.partial_peak = max(self.partial_peak, len(self._partial))
            if not self._draining:
                self._draining = True
                self.loop.call_soon(self._drain_partial)
            return
        if head:
            self.complete_heads.add(conn.fileno())
        self._hand_over(conn)

    def _drain_partial(self) -> None:
        for _ in range(min(PARTIAL_BATCH, len(self._partial))):
            self._hand_over(self._partial.popleft())
        if self._partial and not self._closed:
            self.loop.call_soon(self._drain_partial)
        else:
            self._draining = False

    def _hand_over(self, conn: socket.socket) -> None:
        self.handed_over += 1
        task = self.loop.create_task(
            self.loop.connect_accepted_socket(self.protocol_factory, conn))
        self._handoffs.add(task)
        task.add_done_callback(self._handed_off)

    def _handed_off(self, task: asyncio.Task) -> None:
        self._handoffs.discard(task)
        if not task.cancelled():
            task.exception()  # a socket the client reset meanwhile: nothing to serve

    def _schedule_sweep(self) -> None:
        if not self._closed:
            self._sweeper = self.loop.call_later(
                max(0.05, self.first_byte_timeout / 4), self._sweep)

    def _sweep(self) -> None:
        now = time.monotonic()
        for _ in range(SWEEP_BATCH):
            if not self._pending:
                break
            fd, (conn, deadline) = next(iter(self._pending.items()))
            if deadline > now:
                break
            del self._pending[fd]
            self.loop.remove_reader(fd)
            conn.close()
            self.expired += 1
        else:
            # More have expired: close them in later loop iterations, so that a burst
            # of expiries (a flood of silent connections) never holds the loop at once.
            if self._pending and not self._closed:
                self._sweeper = self.loop.call_soon(self._sweep)
                return
        self._schedule_sweep()

    @property
    def pending(self) -> int:
        """Sockets waiting for their first byte now."""
        return len(self._pending)

    def counts(self) -> dict[str, int]:
        """Accepted, handed-over, evicted, expired and pending sockets; partial-head
        sockets queued now, at most at once, and shed."""
        return {"accepted": self.accepted, "handed_over": self.handed_over,
                "evicted_pending": self.evicted, "expired_pending": self.expired,
                "pending": len(self._pending), "accept_errors": self.accept_errors,
                "partial": len(self._partial), "partial_peak": self.partial_peak,
                "shed_partial": self.shed_partial}

    async def close(self) -> None:
        """Stop accepting; close the listening socket and every pending socket."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        self.loop.remove_reader(self.listener.fileno())
        self.listener.close()
        while self._pending:
            self._close_oldest()
        while self._partial:
            self._partial.popleft().close()
        if self._handoffs:
            await asyncio.gather(*self._handoffs, return_exceptions=True)


class _Listening:
    """What :class:`FrontSite` shows aiohttp in place of an ``asyncio.Server``."""

    def __init__(self, listener: socket.socket) -> None:
        self.sockets = [listener]

    def close(self) -> None:  # the front closes the socket (AcceptFront.close)
        pass


class FrontSite(web.BaseSite):
    """Registers an :class:`AcceptFront` with its runner as a site, so that
    ``AppRunner.addresses`` lists the listening address as for aiohttp's own sites."""

    __slots__ = ("_front",)

    def __init__(self, runner: web.BaseRunner, front: AcceptFront) -> None:
        super().__init__(runner)
        self._front = front

    @property
    def name(self) -> str:  # noqa: D102
        host, port = self._front.listener.getsockname()[:2]
        return f"http://{host}:{port}"

    async def start(self) -> None:  # noqa: D102
        await super().start()
        self._front.start()
        self._server = _Listening(self._front.listener)  # type: ignore[assignment]


__all__ = ["AcceptFront", "FrontSite", "ACCEPT_BATCH", "supported"]
