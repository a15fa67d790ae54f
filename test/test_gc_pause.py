# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""The lowering passes run with Python's cyclic collector paused, and restore it."""

from __future__ import annotations

import gc
import sys
import unittest

from qiskit import transpile
from qiskit.circuit.random import random_circuit
from qiskit.converters import circuit_to_dag
from qiskit.passmanager import PropertySet

from qstore_qiskit.transpiler import ionq_target
from qstore_qiskit.gc_pause import cyclic_gc_paused, pauses_cyclic_gc
from qstore_qiskit.transpiler.passes import (
    CommuteIntoTwoQubitBlocks,
    LowerAndResynthesize,
    LowerToIonQNative,
    ResynthesizeNativeBlocks,
)


def _collections_inside(body_code, call) -> list[int]:
    """Generations of the automatic collections that start while a frame of
    ``body_code`` is on the stack during ``call()`` (the young collection that follows
    right after the pause, of what survived it, is not inside)."""
    started: list[int] = []

    def record(phase, info):
        if phase != "start":
            return
        frame = sys._getframe(1)  # pylint: disable=protected-access
        while frame is not None:
            if frame.f_code is body_code:
                started.append(info["generation"])
                return
            frame = frame.f_back

    gc.callbacks.append(record)
    try:
        call()
    finally:
        gc.callbacks.remove(record)
    return started


class TestCyclicGcPaused(unittest.TestCase):
    """The context manager and decorator restore the collector's state."""

    def setUp(self):
        self.addCleanup(gc.enable if gc.isenabled() else gc.disable)

    def test_paused_inside_restored_after(self):
        gc.enable()
        with cyclic_gc_paused() as paused:
            self.assertTrue(paused)
            self.assertFalse(gc.isenabled())
            with cyclic_gc_paused() as inner:  # nested: the outer one restores it
                self.assertFalse(inner)
                self.assertFalse(gc.isenabled())
            self.assertFalse(gc.isenabled())
        self.assertTrue(gc.isenabled())

    def test_pause_false_leaves_the_collector_alone(self):
        gc.enable()
        with cyclic_gc_paused(False) as paused:
            self.assertFalse(paused)
            self.assertTrue(gc.isenabled())
        self.assertTrue(gc.isenabled())

    def test_restored_after_an_exception(self):
        gc.enable()
        with self.assertRaises(ZeroDivisionError):
            with cyclic_gc_paused():
                _ = 1 / 0
        self.assertTrue(gc.isenabled())

    def test_caller_disabled_stays_disabled(self):
        gc.disable()
        with cyclic_gc_paused():
            self.assertFalse(gc.isenabled())
        self.assertFalse(gc.isenabled())

    def test_decorator_keeps_name_and_result(self):
        @pauses_cyclic_gc
        def probe(x):
            """Doc."""
            return x, gc.isenabled()

        gc.enable()
        self.assertEqual(probe(3), (3, False))
        self.assertEqual((probe.__name__, probe.__doc__), ("probe", "Doc."))
        self.assertTrue(gc.isenabled())


class TestPassesRunWithoutCollections(unittest.TestCase):
    """No automatic collection happens inside the passes, however much they allocate,
    and the collector is on again after them."""

    @classmethod
    def setUpClass(cls):
        # About 2,000 gates: enough allocations for many young collections if unpaused.
        cls.circuit = random_circuit(12, 60, max_operands=2, seed=7)
        cls.target = ionq_target("aria-1")

    def setUp(self):
        self.addCleanup(gc.enable if gc.isenabled() else gc.disable)
        gc.enable()

    def check(self, pass_, dag):
        pass_.property_set = PropertySet()
        out = []
        body = type(pass_).run.__wrapped__.__code__
        self.assertEqual(_collections_inside(body, lambda: out.append(pass_.run(dag))), [], type(pass_).__name__)
        self.assertTrue(gc.isenabled())
        return out[0]

    def test_each_pass(self):
        dag = circuit_to_dag(transpile(self.circuit, basis_gates=["rz", "sx", "cx"], optimization_level=0))
        self.check(CommuteIntoTwoQubitBlocks(), dag)
        native = self.check(LowerToIonQNative(self.target), dag)
        self.check(ResynthesizeNativeBlocks(self.target), native)
        self.check(LowerAndResynthesize(self.target), dag)

    def test_unpaused_lowering_would_collect(self):
        """The control: the same lowering with the pause bypassed collects (so the
        test above can fail)."""
        dag = circuit_to_dag(transpile(self.circuit, basis_gates=["rz", "sx", "cx"], optimization_level=0))
        pass_ = LowerAndResynthesize(self.target)
        pass_.property_set = PropertySet()
        unpaused = LowerAndResynthesize.run.__wrapped__
        self.assertGreater(len(_collections_inside(unpaused.__code__, lambda: unpaused(pass_, dag))), 5)


if __name__ == "__main__":
    unittest.main()
