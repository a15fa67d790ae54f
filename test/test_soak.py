"""Reduced soak (``benchmarks/soak.py``): 600 circuits from 8 threads under faults.

Every circuit ends in a result or a clear error (none lost), no submission id is
created twice on the server, results match exact probabilities (G-test, Bonferroni),
and a bounded TemplateCache holds its limits under thousands of distinct templates.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import unittest

_SOAK = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "soak.py"


def _load_soak():
    if "qstore_soak" in sys.modules:
        return sys.modules["qstore_soak"]
    spec = importlib.util.spec_from_file_location("qstore_soak", _SOAK)
    module = importlib.util.module_from_spec(spec)
    sys.modules["qstore_soak"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class TestSoak(unittest.TestCase):
    """One reduced soak run shared by the assertions."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.soak = _load_soak()
        cls.report = cls.soak.run_soak(
            circuits=600, threads=8, seed=7, fault_rate=0.12, profile="cloud",
            cancel_rate=0.05, server_cancels=2, result_timeout=120.0,
        )
        cls.cache = cls.soak.run_cache_phase(2_000, max_templates=150, max_bound=200, max_bytes=512 * 1024)
        print("\n" + cls.soak.format_table(cls.report, cls.cache))

    def test_nothing_lost(self) -> None:
        r = self.report
        self.assertEqual(r["submitted"], 600)
        self.assertEqual(r["lost"], 0, r["lost_examples"])
        self.assertEqual(r["received"] + r["clear_errors"] + r["cancelled_by_caller"], r["submitted"])
        # Most circuits get results; failed/cancelled jobs are the exception.
        self.assertGreater(r["received"], r["submitted"] // 2)

    def test_no_duplicate_jobs(self) -> None:
        self.assertEqual(self.report["duplicate_submission_ids"], 0)

    def test_results_match_exact_probabilities(self) -> None:
        r = self.report
        self.assertEqual(r["g_tests"], r["received"])
        self.assertLessEqual(r["mismatched"], 1, "beyond the expected false-positive rate")

    def test_faults_were_injected_and_retried(self) -> None:
        faults = self.report["faults"]
        self.assertGreaterEqual(sum(1 for v in faults.values() if v), 4, faults)
        self.assertTrue(self.report["retries"], "the client retried nothing")

    def test_errors_are_clear(self) -> None:
        for kind in self.report["error_kinds"]:
            self.assertTrue(kind.startswith(("IonQ", "cancel too late", "JobError")), kind)

    def test_both_gatesets_ran(self) -> None:
        self.assertEqual(self.report["qis_gateset"], "ok")
        self.assertEqual(set(self.report["received_by_gateset"]), {"native", "qis"})

    def test_cache_within_limits(self) -> None:
        c = self.cache
        self.assertTrue(c["within_limits"], c)
        self.assertEqual(c["compiles"], 2_000)
        self.assertLessEqual(c["final"]["templates"], 150)
        self.assertLessEqual(c["final"]["bytes"], 512 * 1024)
        self.assertGreater(c["evictions"]["templates"], 0)
        self.assertLess(c["rss_growth_mb_after_10pct"], 64)

    def test_report_table(self) -> None:
        table = self.soak.format_table(self.report, self.cache)
        for row in ("LOST", "duplicate jobs", "mismatched results", "retries by cause",
                    "faults injected", "peak RSS", "throughput", "within limits"):
            self.assertIn(row, table)
        self.assertEqual(self.soak.failures(self.report, self.cache), [])


class TestGTest(unittest.TestCase):
    """The statistic the soak relies on."""

    def test_g_test(self) -> None:
        import numpy as np

        soak = _load_soak()
        probs = np.array([0.5, 0.5, 0.0, 0.0])
        self.assertGreater(soak.g_test_pvalue({0: 510, 1: 490}, probs, 1000)[0], 0.1)
        self.assertLess(soak.g_test_pvalue({0: 700, 1: 300}, probs, 1000)[0], 1e-9)
        self.assertEqual(soak.g_test_pvalue({0: 500, 2: 500}, probs, 1000)[0], 0.0)  # impossible outcome
        self.assertEqual(soak.g_test_pvalue({0: 500}, probs, 1000)[0], 0.0)  # shots missing
        self.assertEqual(soak.g_test_pvalue({0: 1000}, np.array([1.0, 0.0]), 1000)[0], 1.0)


if __name__ == "__main__":
    unittest.main()
