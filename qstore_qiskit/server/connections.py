"""Connection limits: a bounded number of open connections and a listening socket with a
deep accept queue.

aiohttp accepts every connection it is offered and keeps each one until its keep-alive
timer fires, so 1,500 connections that never finish their headers hold 1,500 handlers
(and stall the loop when they all time out together). :class:`LimitedTCPSite` serves an
:class:`aiohttp.web.AppRunner` like :class:`aiohttp.web.TCPSite`, but counts the open
connections: a connection beyond ``max_connections`` first closes the oldest one that is
not serving a request (an idle keep-alive connection, or one that has not sent a complete
request), and if every open connection is busy, is itself closed at once. A health check
therefore always finds room, however many idle sockets a client holds open.
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

    def factory(self, server: web.Server):
        """A protocol factory for ``loop.create_server`` that applies the limit."""

        def make() -> Any:
            handlers = server.connections  # oldest first, registered at connection_made
            refuse = len(handlers) >= self.max_connections and not self._make_room(handlers)
            handler = server()
            if refuse:
                # Every open connection is serving a request: close this one as soon as
                # it is connected (nothing is read from it).
                self.refused += 1
                asyncio.get_running_loop().call_soon(handler.force_close)
            return handler

        return make

    def _make_room(self, handlers: list) -> bool:
        """Close the oldest idle connections until one more fits; whether it does."""
        # A handler closed earlier in this accept burst still appears in the list until
        # its connection_lost runs; its transport is already None.
        live = [h for h in handlers if h.transport is not None]
        excess = len(live) - self.max_connections + 1
        for handler in live:
            if excess <= 0:
                break
            if handler in self._busy:
                continue
            handler.force_close()
            self.shed_idle += 1
            excess -= 1
        return excess <= 0

    def counts(self) -> dict[str, int]:
        """``{"shed_idle": ..., "refused": ...}`` so far."""
        return {"shed_idle": self.shed_idle, "refused": self.refused}


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
    """Give ``app`` its :class:`ConnectionLimiter` (``app[LIMITER]``, which
    :class:`LimitedTCPSite` applies) and the middleware that marks busy connections."""
    limiter = app[LIMITER] = ConnectionLimiter(max_connections)
    app.middlewares.insert(0, track_busy)
    return limiter


class LimitedTCPSite(web.BaseSite):
    """:class:`aiohttp.web.TCPSite` with a connection limit and an explicit backlog.

    Args:
        runner: A set-up :class:`aiohttp.web.AppRunner` whose application went through
            :func:`install` (its limiter is applied).
        host: Interface to bind.
        port: Port (0: any free one).
        backlog: The listening socket's accept queue length.
    """

    def __init__(self, runner: web.AppRunner, host: str, port: int, *, backlog: int) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port
        self.limiter = runner.app[LIMITER]

    @property
    def name(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    @property
    def sockets(self) -> list:
        """The listening sockets (to read the bound port)."""
        return list(getattr(self._server, "sockets", None) or [])

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None, "runner.setup() must run first"
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self.limiter.factory(server), self._host, self._port,
            backlog=self._backlog, reuse_address=True,
        )


__all__ = ["ConnectionLimiter", "LimitedTCPSite", "LIMITER", "install", "track_busy"]
