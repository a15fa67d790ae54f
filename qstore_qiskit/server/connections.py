"""Connection limits: a bounded number of open connections.

aiohttp accepts every connection it is offered and keeps each one until its keep-alive
timer fires, so 1,500 connections that never finish their headers hold 1,500 handlers
(and stall the loop when they all time out together). :class:`ConnectionLimiter` counts
the open connections of an :class:`aiohttp.web.AppRunner`'s server: a connection beyond
``max_connections`` closes the oldest one that is not serving a request (an idle
keep-alive connection, or one that has not sent a complete request), and if every open
connection is busy, is itself closed at once. A health check therefore always finds
room, however many idle sockets a client holds open. (The listening socket's accept
queue, ``ServerConfig.listen_backlog``, is set where the site is created.)
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web




class ConnectionLimiter:
    """Counts and sheds connections of one :class:`aiohttp.web.Server`.

    Args:
        max_connections: Most open connections.
    """

    def __init__(self, max_connections: int) -> None:
        self.max_connections = max_connections
        # Protocols serving a request (aiohttp's handlers take no weak references; the
        # middleware removes each in a ``finally``).
        self._busy: set[Any] = set()
        self.shed_idle = 0  # idle or half-open connections closed to admit a new one
        self.refused = 0  # new connections closed because every open one was busy
        # The server's :class:`~.accept.AcceptFront` (``None`` on the fallback path):
        # its counts are reported with these.
        self.front: Any = None

    def attach(self, server: web.Server) -> None:
        """Apply the limit to ``server`` (``AppRunner.server``, after ``setup()``).

        aiohttp's handlers report each new connection to their server's
        ``connection_made``; the limit is checked there, so the count is exact even
        when the loop accepts a burst of connections at once.
        """
        registered = server.connection_made
        registered_lost = server.connection_lost

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            registered(handler, transport)
            front = self.front
            if front is not None and front.complete_heads:
                sock = transport.get_extra_info("socket")
                if sock is not None and sock.fileno() in front.complete_heads:
                    # It sent a complete request head: busy until that request is
                    # served (the middleware's ``finally``) or the connection is lost.
                    front.complete_heads.discard(sock.fileno())
                    self._busy.add(handler)
            handlers = server.connections  # oldest first, this one last
            if len(handlers) > self.max_connections and not self._make_room(handlers):
                # Every other connection is serving a request: close this one (nothing
                # has been read from it).
                self.refused += 1
                handler.force_close()

        def connection_lost(handler: Any, exc: BaseException | None) -> None:
            self._busy.discard(handler)
            registered_lost(handler, exc)

        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]

    def _make_room(self, handlers: list) -> bool:
        """Close the oldest idle connections until the newest fits; whether it does."""
        # A handler closed earlier (its connection_lost not run yet) has no transport.
        live = [h for h in handlers if h.transport is not None]
        excess = len(live) - self.max_connections
        for handler in live[:-1]:
            if excess <= 0:
                break
            if handler in self._busy:
                continue
            handler.force_close()
            self.shed_idle += 1
            excess -= 1
        return excess <= 0

    def counts(self) -> dict[str, int]:
        """Connections shed and refused so far, and those serving a request now; with
        an accept front, also its ``accepted``, ``handed_over``, ``evicted_pending``,
        ``expired_pending``, ``pending``, ``accept_errors``, ``partial``,
        ``partial_peak`` and ``shed_partial`` counts."""
        counts = {"shed_idle": self.shed_idle, "refused": self.refused,
                  "busy": len(self._busy)}
        if self.front is not None:
            counts.update(self.front.counts())
        return counts


LIMITER: web.AppKey[ConnectionLimiter] = web.AppKey("qstore_connection_limiter",
                                                    ConnectionLimiter)


@web.middleware
async def track_busy(request: web.Request, handler) -> web.StreamResponse:
    """Mark ``request``'s connection busy while its handler runs (outermost middleware),
    so that :class:`ConnectionLimiter` never closes a connection mid-request."""
    busy = request.app[LIMITER]._busy  # pylint: disable=protected-access
    protocol = request.protocol
    busy.add(protocol)
    try:
        return await handler(request)
    finally:
        busy.discard(protocol)


def install(app: web.Application, max_connections: int) -> ConnectionLimiter:
    """Give ``app`` its :class:`ConnectionLimiter` (``app[LIMITER]``; attach it to the
    runner's server with :meth:`ConnectionLimiter.attach`) and the middleware that marks
    busy connections."""
    limiter = app[LIMITER] = ConnectionLimiter(max_connections)
    app.middlewares.insert(0, track_busy)
    return limiter


__all__ = ["ConnectionLimiter", "LIMITER", "install", "track_busy"]
