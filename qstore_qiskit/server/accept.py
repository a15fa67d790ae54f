"""A cheap accept front: connections reach aiohttp only once they send a request head.

aiohttp (through asyncio's ``start_server``) builds a request handler and a transport
for every connection it accepts, about 250 µs each, before :class:`.ConnectionLimiter`
can shed anything, and again about as much when the handler's timer closes it. The
kernel hands connections over in arrival order, so a health check that connects behind
1,000 connections that never send (or never finish their request head) waits for 1,000
of those handlers. :class:`AcceptFront` drains the listening socket itself (a
non-blocking ``accept`` is about 10 µs) into a bounded pool of raw pending sockets, each
watched for readability. A socket whose first bytes hold a complete request head (or
its end) is handed to aiohttp at once; one whose first bytes are an incomplete head
stays with the front, which reads the head's bytes (at most :data:`HEAD_LIMIT`) until it
is complete and then hands the socket over with those bytes. Guarantees:

* at most ``max_pending`` accepted sockets wait for their first byte; beyond it the
  oldest pending socket is closed (``evicted``);
* at most ``max_pending`` sockets with an incomplete request head are held, each with
  at most :data:`HEAD_LIMIT` bytes read; beyond it the oldest of them is closed
  (``shed_partial``). The front therefore holds at most ``2 * max_pending`` raw sockets
  and ``max_pending * HEAD_LIMIT`` bytes, whatever the rate of connections;
* a pending socket that sends nothing for ``first_byte_timeout`` seconds is closed
  (``expired``); a held socket whose head is not complete ``header_timeout`` seconds
  after its first byte is closed (``expired_partial``), as aiohttp's header timeout
  would have closed it;
* a head that grows to :data:`HEAD_LIMIT` bytes without ending is handed over as it is
  (aiohttp answers it, or keeps reading it under its own limits);
* every accepted socket is handed over, closed, or held under one of the bounds above;
  the bytes a held socket sent reach aiohttp first and in order;
* a socket handed over is subject to the existing limits (``max_connections``,
  ``header_timeout``, ``body_timeout``) exactly as before;
* no loop iteration accepts more than :data:`ACCEPT_BATCH` sockets or closes more than
  :data:`SWEEP_BATCH` expired ones, so health checks run in between.

It needs ``loop.add_reader`` (selector event loops: every loop on Linux and macOS);
:func:`supported` says whether the running loop has it, and the server falls back to
aiohttp's own accept path when it does not (Windows' proactor loop).
"""

from __future__ import annotations

import asyncio
import collections
import select
import socket
import time
from typing import Any, Callable

from aiohttp import web

# Most sockets accepted per readiness callback before the loop gets to run other
# callbacks (health checks among them); the listening socket stays readable, so the
# rest are taken on the next iteration. An accept with its registration costs about
# 20 µs, so a batch is about a millisecond and a half.
ACCEPT_BATCH = 64

# Most readable pending or held sockets read per loop iteration (with epoll).
READ_BATCH = 64

# Most bytes of an incomplete request head that the front reads and holds per socket;
# a head that reaches it without ending is handed to aiohttp as it is (aiohttp's own
# limit is 8190 bytes per line).
HEAD_LIMIT = 8192

# Expired sockets are closed at most this many per loop iteration: a flood that
# expires together is closed over several iterations, with other callbacks (health
# checks among them) running in between.
SWEEP_BATCH = 32

# Expiry timers are set no closer together than this (seconds): sockets whose
# deadlines fall within it are closed by one sweep.
SWEEP_GRANULARITY = 0.01


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
    once it has sent a complete request head (or its end).

    Args:
        loop: The running event loop (must support ``add_reader``).
        listener: A bound, listening socket (made non-blocking here).
        protocol_factory: Builds the protocol of a handed-over connection
            (``AppRunner.server``).
        max_pending: Most accepted sockets waiting for their first byte, and most
            sockets with an incomplete request head held by the front.
        first_byte_timeout: Seconds a pending socket may stay silent.
        header_timeout: Seconds after its first byte within which a held socket must
            complete its request head (``None``: ``first_byte_timeout``).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, listener: socket.socket,
                 protocol_factory: Callable[[], asyncio.Protocol], max_pending: int,
                 first_byte_timeout: float, header_timeout: float | None = None) -> None:
        self.loop = loop
        self.listener = listener
        self.protocol_factory = protocol_factory
        self.max_pending = max_pending
        self.first_byte_timeout = first_byte_timeout
        self.header_timeout = first_byte_timeout if header_timeout is None else header_timeout
        # fd -> (socket, deadline), oldest first. Every socket of a pool gets the same
        # timeout, so each pool's deadlines are in order too.
        self._pending: collections.OrderedDict[int, tuple[socket.socket, float]] = (
            collections.OrderedDict())
        # fd -> (socket, deadline, the head's bytes read so far), oldest first.
        self._partial: collections.OrderedDict[
            int, tuple[socket.socket, float, bytearray]] = collections.OrderedDict()
        self._handoffs: set[asyncio.Task] = set()
        # Descriptors handed over with a complete request head: the connection limit
        # must not shed them before aiohttp has parsed that request (see connections).
        self.complete_heads: set[int] = set()
        self._sweeper: asyncio.Handle | None = None
        self._sweep_at = float("inf")  # when the sweeper runs next (monotonic)
        self._closed = False
        self.accepted = 0  # sockets taken from the accept queue
        self.handed_over = 0  # sockets given to aiohttp (they sent a head, or left)
        self.evicted = 0  # pending sockets closed because the pool was full
        self.expired = 0  # pending sockets closed after first_byte_timeout of silence
        self.shed_partial = 0  # held partial-head sockets closed because the pool was full
        self.expired_partial = 0  # held sockets closed at their header deadline
        self.left_partial = 0  # held sockets whose client closed or reset them
        self.partial_peak = 0  # most partial-head sockets held at once
        self.accept_errors = 0  # accept() failures other than "nothing to accept"
        # The raw sockets are watched by an epoll of the front's own, itself watched by
        # the loop: registering a socket there is one system call (about 1 µs), where
        # ``loop.add_reader`` also builds a handle and a selector key per socket (about
        # 10 µs of Python), which is most of what a flood of connections costs. Loops
        # without epoll (macOS, BSD) watch each socket with ``add_reader``.
        self._epoll = select.epoll() if hasattr(select, "epoll") else None

    def start(self) -> None:
        """Start accepting."""
        self.listener.setblocking(False)
        self.loop.add_reader(self.listener.fileno(), self._on_listener)
        if self._epoll is not None:
            self.loop.add_reader(self._epoll.fileno(), self._on_events)

    def _watch(self, fd: int) -> None:
        if self._epoll is not None:
            self._epoll.register(fd, select.EPOLLIN)
        else:
            self.loop.add_reader(fd, self._on_readable, fd)

    def _unwatch(self, fd: int) -> None:
        if self._epoll is not None:
            try:
                self._epoll.unregister(fd)
            except OSError:  # pragma: no cover - not registered
                pass
        else:
            self.loop.remove_reader(fd)

    def _drop(self, fd: int, conn: socket.socket) -> None:
        """Stop watching ``conn`` and close it."""
        if self._epoll is None:
            self.loop.remove_reader(fd)
        # Closing the socket's only descriptor takes it out of the epoll set as well.
        conn.close()

    def _on_events(self) -> None:
        # Level-triggered: sockets beyond the batch are reported again next iteration.
        for fd, _ in self._epoll.poll(0, READ_BATCH):  # type: ignore[union-attr]
            self._on_readable(fd)

    # -- accepting ---------------------------------------------------------------------

    def _on_listener(self) -> None:
        pending, watch = self._pending, self._watch
        deadline = time.monotonic() + self.first_byte_timeout
        accepted = self.accepted
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                # ECONNABORTED (the client left), EMFILE/ENFILE (out of descriptors):
                # free one and try again on the next iteration.
                self.accept_errors += 1
                if pending:
                    self._close_oldest(pending)
                    self.evicted += 1
                break
            self.accepted += 1
            conn.setblocking(False)
            if len(pending) >= self.max_pending:
                self._close_oldest(pending)
                self.evicted += 1
            fd = conn.fileno()
            pending[fd] = (conn, deadline)
            watch(fd)
        if self.accepted != accepted:
            self._arm_sweeper(deadline)

    def _close_oldest(self, pool: collections.OrderedDict) -> None:
        fd, entry = pool.popitem(last=False)
        self._drop(fd, entry[0])

    # -- reading heads -----------------------------------------------------------------

    def _on_readable(self, fd: int) -> None:
        entry = self._pending.pop(fd, None)
        if entry is None:
            self._on_more(fd)
            return
        conn = entry[0]
        try:
            head = conn.recv(HEAD_LIMIT, socket.MSG_PEEK)
        except OSError:
            head = b""  # reset: aiohttp sees the error at once
        if not head or b"\r\n\r\n" in head or len(head) >= HEAD_LIMIT:
            # A complete head (or its end, or a head too long to hold): aiohttp reads it
            # from the socket itself.
            self._unwatch(fd)
            if head and b"\r\n\r\n" in head:
                self.complete_heads.add(fd)
            self._hand_over(conn, b"")
            return
        # An incomplete head: take its bytes out of the socket (so that the socket is
        # readable again only when more arrive) and hold it until the head is complete.
        try:
            data = conn.recv(len(head))
        except OSError:
            data = b""
        if not data:
            self._drop(fd, conn)
            self.left_partial += 1
            return
        partial = self._partial
        if len(partial) >= self.max_pending:
            self._close_oldest(partial)  # the oldest: it has had the longest
            self.shed_partial += 1
        deadline = time.monotonic() + self.header_timeout
        partial[fd] = (conn, deadline, bytearray(data))
        if len(partial) > self.partial_peak:
            self.partial_peak = len(partial)
        self._arm_sweeper(deadline)

    def _on_more(self, fd: int) -> None:
        """More bytes of a held socket's head (or its end)."""
        entry = self._partial.get(fd)
        if entry is None:  # closed meanwhile
            self._unwatch(fd)
            return
        conn, _, head = entry
        try:
            data = conn.recv(HEAD_LIMIT - len(head))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client closed or reset it: nothing to answer
            del self._partial[fd]
            self._drop(fd, conn)
            self.left_partial += 1
            return
        searched = max(0, len(head) - 3)
        head += data
        complete = head.find(b"\r\n\r\n", searched) >= 0
        if complete or len(head) >= HEAD_LIMIT:
            del self._partial[fd]
            self._unwatch(fd)
            if complete:
                self.complete_heads.add(fd)
            self._hand_over(conn, bytes(head))

    # -- handing over ------------------------------------------------------------------

    def _hand_over(self, conn: socket.socket, head: bytes) -> None:
        self.handed_over += 1
        task = self.loop.create_task(self._connect(conn, head))
        self._handoffs.add(task)
        task.add_done_callback(self._handed_off)

    async def _connect(self, conn: socket.socket, head: bytes) -> None:
        _, protocol = await self.loop.connect_accepted_socket(self.protocol_factory, conn)
        if head:
            # The bytes the front read, before any the transport reads: the transport
            # registers its reader in the callback batch that resolves this await, so
            # its first read runs after this task step (asyncio runs callbacks in order).
            protocol.data_received(head)  # type: ignore[attr-defined]

    def _handed_off(self, task: asyncio.Task) -> None:
        self._handoffs.discard(task)
        if not task.cancelled():
            task.exception()  # a socket the client reset meanwhile: nothing to serve

    # -- expiring ----------------------------------------------------------------------

    def _arm_sweeper(self, deadline: float) -> None:
        """Make sure the sweeper runs by ``deadline`` (+ the granularity)."""
        if self._closed or deadline + SWEEP_GRANULARITY >= self._sweep_at:
            return
        if self._sweeper is not None:
            self._sweeper.cancel()
        self._sweep_at = deadline + SWEEP_GRANULARITY
        self._sweeper = self.loop.call_later(
            max(0.0, self._sweep_at - time.monotonic()), self._sweep)

    def _sweep(self) -> None:
        self._sweeper, self._sweep_at = None, float("inf")
        now = time.monotonic()
        budget = SWEEP_BATCH
        pools: tuple[collections.OrderedDict[int, tuple[Any, ...]], ...] = (
            self._pending, self._partial)  # type: ignore[assignment]
        for pool in pools:
            while budget and pool:
                fd, entry = next(iter(pool.items()))
                if entry[1] > now:
                    break
                del pool[fd]
                self._drop(fd, entry[0])
                budget -= 1
                if pool is self._pending:
                    self.expired += 1
                else:
                    self.expired_partial += 1
        if self._closed:
            return
        if not budget:
            # More may have expired: close them in later loop iterations, so that a
            # burst of expiries (a flood of silent connections) never holds the loop.
            self._sweep_at = now
            self._sweeper = self.loop.call_soon(self._sweep)
            return
        nexts = [next(iter(pool.values()))[1] for pool in pools if pool]
        if nexts:
            self._arm_sweeper(min(nexts))

    # -- state -------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Sockets waiting for their first byte now."""
        return len(self._pending)

    def counts(self) -> dict[str, int]:
        """Accepted, handed-over, evicted, expired and pending sockets; partial-head
        sockets held now, at most at once, shed, expired and closed by their client."""
        return {"accepted": self.accepted, "handed_over": self.handed_over,
                "evicted_pending": self.evicted, "expired_pending": self.expired,
                "pending": len(self._pending), "accept_errors": self.accept_errors,
                "partial": len(self._partial), "partial_peak": self.partial_peak,
                "shed_partial": self.shed_partial, "expired_partial": self.expired_partial,
                "left_partial": self.left_partial}

    async def close(self) -> None:
        """Stop accepting; close the listening socket and every pending or held
        socket."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        self.loop.remove_reader(self.listener.fileno())
        self.listener.close()
        while self._pending:
            self._close_oldest(self._pending)
        while self._partial:
            self._close_oldest(self._partial)
        if self._epoll is not None:
            self.loop.remove_reader(self._epoll.fileno())
            self._epoll.close()
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


__all__ = ["AcceptFront", "FrontSite", "ACCEPT_BATCH", "HEAD_LIMIT", "supported"]
