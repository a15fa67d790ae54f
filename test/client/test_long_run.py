"""Scaled-down long run (``benchmarks/long_run.py``): client memory stays flat.

20,000 circuits (bindings of three templates and 1,000 distinct circuits, 8 threads)
through one backend against ``ServerProcess(profile="instant")``. Asserts counts and a
slope, never a time: after a 5,000-circuit warm-up the client's RSS grows by less than
5 MB per 10,000 circuits (keeping every job, as before issue #12 item 1 was fixed,
grows it by tens of MB per 10,000 circuits), and no circuit is lost, duplicated or
given another circuit's result. The server's job store stays within its budget and the
server's RSS within its baseline plus ``ServerConfig.memory_budget()``.

Robust under load: nothing is timed (a loaded machine only makes the run longer), the
slope is a least-squares fit over 16 samples, so one noisy sample does not decide it,
and its threshold is a ninth of the slope of the leak it guards against.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import unittest

_LONG_RUN = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "long_run.py"


def _load():
    if "qstore_long_run" in sys.modules:
        return sys.modules["qstore_long_run"]
    spec = importlib.util.spec_from_file_location("qstore_long_run", _LONG_RUN)
    module = importlib.util.module_from_spec(spec)
    sys.modules["qstore_long_run"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class TestLongRun(unittest.TestCase):
    """One 20,000-circuit run shared by the assertions."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.lr = _load()
        cls.out = cls.lr.run_long(20_000, threads=8, batch=50, shots=100, sample=1_000)
        rows = cls.out["rows"]
        print("\n circuits | client MB | server MB | store MB")
        for done, cli, srv, store in rows:
            print(f"{done:>9,d} | {cli:9.1f} | {srv:9.1f} | {store:8.1f}")

    def test_no_circuit_lost_duplicated_or_mismatched(self) -> None:
        self.assertEqual(self.out["errors"], [])
        self.assertEqual(self.out["done"], 20_000)
        self.assertEqual((self.out["lost"], self.out["duplicated"], self.out["mismatched"]), (0, 0, 0))

    def test_client_rss_is_flat_after_warmup(self) -> None:
        grown, slope = self.lr.growth(self.out["rows"], 5_000, column=1)
        self.assertLess(slope, 5.0, f"client RSS grows {slope:.2f} MB per 10k circuits")
        self.assertLess(grown, 15.0, f"client RSS grew {grown:.1f} MB after warm-up")

    def test_server_within_its_memory_budget(self) -> None:
        rows = self.out["rows"]
        budget_mb = self.out["memory_budget"] / 2**20
        store_mb = self.out["job_store_bytes"] / 2**20
        self.assertGreater(max(r[3] for r in rows), 0.0)  # the store was charged
        self.assertLessEqual(max(r[3] for r in rows), store_mb)
        self.assertLessEqual(max(r[2] for r in rows), rows[0][2] + budget_mb)


if __name__ == "__main__":
    unittest.main()
