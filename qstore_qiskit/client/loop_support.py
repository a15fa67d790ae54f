"""Helpers of :class:`~qstore_qiskit.client.submitter.BatchSubmitter` around its loop
thread: the ``send_now()`` hook of a submission future, settling the ``jobs_created``
future with the submission, and stopping the loop (cancelling every task first)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .exceptions import IonQClientError
from .rest import IonQHttpClient

if TYPE_CHECKING:  # pragma: no cover
    from .submitter import BatchSubmitter


class _SendNow:
    """A submission future's ``send_now()``: asks the submitter's loop to cut the
    bucket of ``key`` now (see :meth:`Coalescer.hurry
    <qstore_qiskit.client.coalescer.Coalescer.hurry>`). Holds the submitter weakly: a
    future kept by a caller does not keep a closed submitter alive."""

    __slots__ = ("_sub", "_key")

    def __init__(self, sub: "BatchSubmitter", key: tuple) -> None:
        self._sub = weakref.ref(sub)
        self._key = key

    def __call__(self) -> None:
        sub = self._sub()
        if sub is None or sub._closed:
            return
        try:
            sub._loop.call_soon_threadsafe(sub._hurry, self._key)
        except RuntimeError:  # loop closed meanwhile
            pass


def _settle_created(created: concurrent.futures.Future):
    """Done-callback of a submission's future: a submission that failed or was cancelled
    before all its jobs existed fails its ``jobs_created`` future the same way (callers
    blocked on job ids are never left waiting). It holds only the small future."""

    def callback(fut: concurrent.futures.Future) -> None:
        if created.done():
            return
        try:
            if fut.cancelled():
                created.cancel()
                created.set_running_or_notify_cancel()  # wake waiters
            else:
                exc = fut.exception()
                created.set_exception(
                    exc if exc is not None else IonQClientError("results arrived without job ids")
                )
        except (concurrent.futures.InvalidStateError, RuntimeError):  # settled meanwhile
            pass

    return callback


async def _cancel_all(tasks: Iterable[asyncio.Task]) -> None:
    """Cancel tasks and wait until they have ended (none is left pending at exit)."""
    tasks = [t for t in list(tasks) if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)


async def _finalize(http: IonQHttpClient) -> None:
    await _cancel_all(asyncio.all_tasks())
    await http.close()


def _stop_loop(loop: asyncio.AbstractEventLoop, thread: threading.Thread, http: IonQHttpClient) -> None:
    """Finalizer of an unclosed submitter: close the session, stop the loop thread."""
    if loop.is_closed() or not thread.is_alive():
        return
    try:
        # Cancel and await every task first: a task still pending when the loop is
        # garbage-collected prints "Task was destroyed but it is pending!" at exit.
        asyncio.run_coroutine_threadsafe(_finalize(http), loop).result(2)
    except Exception:  # pylint: disable=broad-except  # best effort at exit
        pass
    loop.call_soon_threadsafe(loop.stop)
    thread.join(2)
    if not thread.is_alive():
        loop.close()
