"""Pause Python's cyclic garbage collector while a pass builds large structures."""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

_F = TypeVar("_F", bound=Callable)


@contextmanager
def cyclic_gc_paused(pause: bool = True) -> Iterator[bool]:
    """Run the body with Python's cyclic garbage collector disabled, then restore it.

    Yields whether this call paused the collector (``False`` when ``pause`` is false or
    the collector was already disabled). A long loop inside may run the young-generation
    collection itself (``gc.collect(0)``) between blocks when it did, as the template
    binder and the backend's circuit preparation do: the pass the interpreter would
    make anyway, made while the block is still in the CPU cache, and never escalating
    to a full collection mid-build.

    The lowering passes allocate a few container objects per gate (entry lists, gate
    objects, DAG node handles), most of them dropped again within the pass. CPython
    counts every such allocation towards its collection thresholds, and every tenth
    young-generation collection can escalate to a *full* collection, which visits every
    container object of the process (about 170,000 with Qiskit imported, 40-100 ms: as
    much as lowering a 1,000-gate circuit). On the widest circuits of the benchmark suite
    that happened about once per compile (145 young and 1.2 full collections per compile
    of randomcircuit-25 on Aria, against 6 and 0 with the pause, counted over a loop of
    compiles, so including any collection the pause only postponed), and it made compile
    time grow faster with width than the work itself.

    Pausing defers no garbage that reference counting frees (everything the passes drop
    themselves); objects that survive the pass, and any reference cycle made meanwhile,
    are handled by the next collection after it. Mercurial's ``util.nogc`` does the same
    for the same reason. Nesting is safe, and a collector the caller disabled stays
    disabled. The collector is process-wide: another thread's cyclic garbage waits until
    the pass is done.
    """
    if not pause or not gc.isenabled():
        yield False
        return
    gc.disable()
    try:
        yield True
    finally:
        gc.enable()


def pauses_cyclic_gc(method: _F) -> _F:
    """Decorator: run ``method`` inside :func:`cyclic_gc_paused`."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        # cyclic_gc_paused() inlined: a generator-based context manager costs a few
        # microseconds per call, and the passes of a small circuit's compile take this
        # path several times.
        if not gc.isenabled():
            return method(*args, **kwargs)
        gc.disable()
        try:
            return method(*args, **kwargs)
        finally:
            gc.enable()

    return wrapper  # type: ignore[return-value]
