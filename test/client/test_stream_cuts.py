"""Where a stream of separate ``submit`` calls is cut into jobs, on a fake clock.

The :class:`~qstore_qiskit.client.coalescer.Coalescer` is driven directly with a fake
event loop (its time moves only when the test says so) and a fake job runner that
records every cut and holds each job's slot until the test finishes it. The cut
points asserted here are derived by hand from the rules in
:meth:`Coalescer._hold_limit` and :meth:`Coalescer._due_time` (window 5 ms, hold at
least 10 ms, at most 100 ms, 8 job slots); no wall-clock time is measured.
"""

from __future__ import annotations

import concurrent.futures
import heapq
import itertools
import unittest

from qstore_qiskit.client.coalescer import Coalescer
from qstore_qiskit.client.records import Item, Request

MS = 0.001


class _Handle:
    def __init__(self, when: float, callback, args) -> None:
        self._when, self.callback, self.args, self.cancelled = when, callback, args, False

    def when(self) -> float:
        return self._when

    def cancel(self) -> None:
        self.cancelled = True


class _FakeLoop:
    """``time()`` and ``call_at()``; :meth:`advance` runs the due timers in order."""

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback, *args) -> _Handle:
        handle = _Handle(when, callback, args)
        heapq.heappush(self._heap, (when, next(self._seq), handle))
        return handle

    def advance(self, to: float) -> None:
        while self._heap and self._heap[0][0] <= to + 1e-12:
            when, _, handle = heapq.heappop(self._heap)
            if not handle.cancelled:
                self.now = max(self.now, when)
                handle.callback(*handle.args)
        self.now = max(self.now, to)


class _FakeRunner:
    """Records cuts; a job holds its slot until :meth:`finish`."""

    def __init__(self, loop: _FakeLoop) -> None:
        self._loop = loop
        self.active_jobs = 0
        self.cuts: list[tuple[float, list[int]]] = []  # (time in ms, circuit indices)
        self.waited: list[int] = []  # cuts made while every slot was taken
        self.holding: dict[int, float] = {}
        self.owner = None

    def start_job(self, settings, items, batch=0) -> None:
        if self.active_jobs >= self.owner.max_jobs_in_flight:
            self.waited.append(len(self.cuts))
        self.cuts.append((round(self._loop.now / MS, 2), [it.request.circuits[it.index]["i"] for it in items]))
        self.holding[len(self.cuts) - 1] = self._loop.now
        self.active_jobs += 1

    def oldest_cut(self):
        return min(self.holding.values(), default=None)

    def finish(self, job: int) -> None:
        del self.holding[job]
        self.active_jobs -= 1
        self.owner._coalescer.slot_freed()


class _FakeOwner:
    def __init__(self, slots: int = 8, window: float = 5 * MS, adaptive: bool = False) -> None:
        self._loop = _FakeLoop()
        self._http = None
        self._spawn = None
        self.batch_window = window
        self.max_circuits_per_job = 100
        self.max_jobs_in_flight = slots
        self.adaptive_batch_sizing = adaptive
        self._runner = _FakeRunner(self._loop)
        self._runner.owner = self
        self._coalescer = Coalescer(self)
        self.arrivals = 0  # circuits handed in so far (their indices)


def _request(i: int, backend: str) -> Request:
    settings = {"backend": backend, "shots": 1024}
    return Request(circuits=[{"qubits": 1, "circuit": [], "i": i}], key=(backend,), settings=settings,
                   future=concurrent.futures.Future(), name=None, metadata={}, submitted_at=0.0)


class TestStreamCuts(unittest.TestCase):
    """Cut points and job counts of streams of one-circuit calls."""

    def stream(self, owner: _FakeOwner, times_ms: list[float], backend: str = "simulator") -> None:
        for t in times_ms:
            owner._loop.advance(t * MS)
            req = _request(owner.arrivals, backend)
            owner.arrivals += 1
            owner._coalescer.add(req, [Item(req, 0)])

    def test_simulator_stream_paced_by_free_slots(self) -> None:
        """20 calls 4 ms apart: cut every 2 windows from each bucket's first circuit
        while the age of the oldest job over the free slots less one is smaller; with
        4 jobs in flight the hold grows to 38/3 ms, with 5 to 54/2 ms."""
        owner = _FakeOwner()
        self.stream(owner, [4 * i for i in range(20)])
        owner._loop.advance(0.2)
        self.assertEqual(owner._runner.cuts, [
            (10.0, [0, 1, 2]),
            (22.0, [3, 4, 5]),
            (34.0, [6, 7, 8]),
            (46.0, [9, 10, 11]),
            (60.67, [12, 13, 14, 15]),  # bucket from 48 ms: 4 slots taken, oldest cut 38 ms ago
            (87.67, [16, 17, 18, 19]),  # from 64 ms: 5 taken, 54 ms: 27 ms after the last cut
        ])
        self.assertEqual(owner._runner.waited, [])  # no job ever waited for a slot

    def test_caller_waiting_sends_the_tail_at_once(self) -> None:
        """``hurry`` (a caller blocks on results) cuts the waiting circuits right away."""
        owner = _FakeOwner()
        self.stream(owner, [4 * i for i in range(20)])
        owner._loop.advance(77 * MS)
        owner._coalescer.hurry(("simulator",))
        self.assertEqual(owner._runner.cuts[-1], (77.0, [16, 17, 18, 19]))
        owner._loop.advance(0.2)
        self.assertEqual(len(owner._runner.cuts), 6)  # the cancelled timer cuts nothing more

    def test_slow_stream_does_not_take_every_slot(self) -> None:
        """Calls 8 ms apart (farther than the window): before, every call became its own
        job, the ninth waited for a slot and the tail a whole job's life. Now the
        window's cuts are paced too: 20 calls make 7 jobs and none waits for a slot.
        With no job finished, the last free slot but one waits 75 ms (the oldest job's
        age), so the tail job here carries 10 circuits."""
        owner = _FakeOwner()
        self.stream(owner, [8 * i for i in range(20)])
        owner._loop.advance(0.3)
        self.assertEqual(owner._runner.cuts, [
            (5.0, [0]), (15.0, [1]), (26.0, [2, 3]), (37.0, [4]), (51.67, [5, 6]), (77.17, [7, 8, 9]),
            (155.0, list(range(10, 20))),
        ])
        self.assertEqual(owner._runner.waited, [])

    def test_no_cut_while_every_slot_is_taken(self) -> None:
        """With both slots held, a due bucket is kept and later arrivals join it; the
        first slot to free carries all of them in one job."""
        owner = _FakeOwner(slots=2)
        self.stream(owner, [0, 20, 40, 60, 80, 100])  # 1 slot left after the first cut: hold 100 ms
        owner._loop.advance(105 * MS)
        self.assertEqual(owner._runner.cuts, [(5.0, [0]), (105.0, [1, 2, 3, 4, 5])])
        self.stream(owner, [110, 130, 220])  # due at 205 ms with no slot free: kept
        owner._loop.advance(250 * MS)
        self.assertEqual(len(owner._runner.cuts), 2)
        owner._runner.finish(0)
        self.assertEqual(owner._runner.cuts[2], (250.0, [6, 7, 8]))
        self.assertEqual(owner._runner.waited, [])
        owner._loop.advance(0.5)
        self.assertEqual(len(owner._runner.cuts), 3)

    def test_slot_freed_shortens_the_hold(self) -> None:
        """A bucket held long because one slot was left cuts at the paced time once a
        slot frees (not at the 100 ms limit)."""
        owner = _FakeOwner(slots=2)
        self.stream(owner, [0])
        owner._loop.advance(10 * MS)
        self.stream(owner, [10, 12, 14, 16])  # 1 slot free: hold 100 ms, windows paced by it
        owner._loop.advance(30 * MS)
        self.assertEqual(len(owner._runner.cuts), 1)
        owner._runner.finish(0)  # 2 free, none in flight: 10 ms hold from the bucket's start
        owner._loop.advance(100 * MS)
        self.assertEqual(owner._runner.cuts[1], (30.0, [1, 2, 3, 4]))

    def test_qpu_stream_is_one_job(self) -> None:
        """A QPU keeps coalescing a stream for up to 20 windows, and a waiting caller does
        not cut it early (each QPU job has a minimum charge)."""
        owner = _FakeOwner()
        self.stream(owner, [4 * i for i in range(20)], backend="qpu.aria-1")
        owner._coalescer.hurry(("qpu.aria-1",))
        owner._loop.advance(0.3)
        self.assertEqual(owner._runner.cuts, [(81.0, list(range(20)))])

    def test_qpu_stream_past_the_hold_limit(self) -> None:
        """A QPU stream longer than 20 windows is cut at the hold limit, as before."""
        owner = _FakeOwner()
        self.stream(owner, [4 * i for i in range(40)], backend="qpu.aria-1")
        owner._loop.advance(0.5)
        self.assertEqual([(t, len(c)) for t, c in owner._runner.cuts], [(100.0, 25), (161.0, 15)])

    def test_single_call_cut_at_the_window(self) -> None:
        """One call alone goes out one window after it arrived, a caller waiting sooner."""
        owner = _FakeOwner()
        self.stream(owner, [0])
        owner._loop.advance(1.0)
        self.stream(owner, [1000])
        owner._loop.advance(1.001)
        owner._coalescer.hurry(("simulator",))
        self.assertEqual(owner._runner.cuts, [(5.0, [0]), (1001.0, [1])])


if __name__ == "__main__":
    unittest.main()
