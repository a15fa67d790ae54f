"""End-to-end tests of the ``qstore-qiskit`` sub-commands ``demo``, ``bench`` and ``run``.

All run against the embedded local server (no network, no API key). ``run`` is tested
in-process through :func:`qstore_qiskit.cli.main` with stdout/stderr captured. ``demo``
and ``bench`` run in a subprocess: they transpile with qiskit-ionq's backends, which
registers qiskit-ionq's gate equivalences in Qiskit's process-global
``SessionEquivalenceLibrary``, and that must not leak into other tests.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

from qstore_qiskit import cli

BELL_QASM2 = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0], q[1];
measure q -> c;
"""

GHZ_QASM3 = """OPENQASM 3.0;
include "stdgates.inc";
qubit[3] q;
bit[3] c;
h q[0];
cx q[0], q[1];
cx q[1], q[2];
c = measure q;
"""

BAD_QASM2 = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
notagate q[0];
"""

HAS_QASM3 = importlib.util.find_spec("qiskit_qasm3_import") is not None
HAS_MPL = importlib.util.find_spec("matplotlib") is not None


def run_cli(*argv: str) -> tuple[int, str, str]:
    """``qstore-qiskit argv...`` in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(argv))
        except SystemExit as exc:  # argparse errors
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def run_cli_subprocess(*argv: str, timeout: float = 120) -> tuple[int, str, str]:
    """``qstore-qiskit argv...`` in a fresh interpreter: (exit code, stdout, stderr)."""
    proc = subprocess.run(
        [sys.executable, "-m", "qstore_qiskit.cli", *argv],
        capture_output=True, text=True, timeout=timeout, check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    return proc.returncode, proc.stdout, proc.stderr


class TestDemo(unittest.TestCase):
    """``qstore-qiskit demo --quick`` end to end."""

    @classmethod
    def setUpClass(cls):
        cls.code, cls.out, cls.err = run_cli_subprocess("demo", "--quick", "--seed", "3")

    def test_exit_code_and_no_errors(self):
        self.assertEqual(self.code, 0, self.out + self.err)
        self.assertNotIn("Traceback", self.out + self.err)
        self.assertNotIn("DISAGREE", self.out)
        self.assertIn("demo: OK", self.out)

    def test_features_on_is_faster(self):
        match = re.search(r"^wall time\s+([\d.]+) s\s+([\d.]+) s", self.out, re.MULTILINE)
        self.assertIsNotNone(match, self.out)
        plain, ours = float(match.group(1)), float(match.group(2))
        self.assertLess(ours, plain)
        prep = re.search(r"^circuit preparation\s+([\d.]+) s\s+([\d.]+) s", self.out, re.MULTILINE)
        self.assertLess(float(prep.group(2)), float(prep.group(1)))

    def test_results_agree(self):
        self.assertIn("Results agree:", self.out)
        ratio = re.search(r"\(ratio ([\d.]+)\)", self.out)
        self.assertIsNotNone(ratio, self.out)
        self.assertLess(float(ratio.group(1)), 1.5)

    def test_summary_has_every_number(self):
        for label in ("circuits/s", "API calls (server)", "2q gates / circuit", "1q gates / circuit",
                      "cache hit rate", "server execution (model)"):
            self.assertIn(label, self.out)
        self.assertIn("PERFORMANCE REPORT", self.out)
        # 30 bindings in 2 runs, 1 compile: every binding after the first is a template hit.
        self.assertIn("Template Hit Rate: 96.7%", self.out)
        self.assertIn("qstore-qiskit bench", self.out)  # where to go next
        self.assertIn("docs/getting_started.rst", self.out)

    def test_bad_arguments(self):
        code, _, err = run_cli("demo", "--circuits", "0")
        self.assertEqual(code, 2)
        self.assertIn("must be positive", err)


class TestBench(unittest.TestCase):
    """``qstore-qiskit bench`` with tiny settings."""

    def test_writes_markdown_json_and_plot(self):
        with tempfile.TemporaryDirectory() as tmp:
            code, out, err = run_cli_subprocess(
                "bench", "--profile", "instant", "--circuits", "2", "--repeat", "1",
                "--sizes", "1", "2", "--shots", "64", "--out", tmp,
            )
            self.assertEqual(code, 0, out + err)
            with open(os.path.join(tmp, "bench.md"), encoding="utf-8") as fh:
                md = fh.read()
            self.assertIn("| Batch time (2 circuits) |", md)
            for row in ("Circuits/second", "Circuit preparation", "Execution time (server model)", "API calls"):
                self.assertIn(f"| {row} |", md)
            self.assertIn("Definitions:", md)
            with open(os.path.join(tmp, "bench.json"), encoding="utf-8") as fh:
                data = json.load(fh)
            self.assertEqual(set(data["table"]), {"qiskit-ionq per-circuit", "qiskit-ionq batch", "qstore-qiskit"})
            for row in data["table"].values():
                self.assertEqual(row["n"], 2)
                self.assertGreater(row["batch_seconds"], 0)
                self.assertGreater(row["api_calls"], 0)
            self.assertEqual([r["n"] for r in data["sweep"]["qstore-qiskit"]], [1, 2])
            png = os.path.join(tmp, "bench.png")
            if HAS_MPL:
                self.assertTrue(os.path.getsize(png) > 0)
            else:
                self.assertIn("skipping the plot", out)
            self.assertIn("| Metric (2 circuits) |", out)

    def test_plot_skipped_without_matplotlib(self):
        from qstore_qiskit import bench

        with mock.patch.dict("sys.modules", {"matplotlib": None}):
            message = bench.write_plot({"sweep": {}, "config": {"profile": "x"}}, os.devnull)
        self.assertIn("matplotlib is not installed", message)


class TestRun(unittest.TestCase):
    """``qstore-qiskit run FILE.qasm``."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def write(self, name: str, text: str) -> str:
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        return path

    def test_qasm2_counts(self):
        path = self.write("bell.qasm", BELL_QASM2)
        code, out, err = run_cli("run", path, "--shots", "200", "--seed", "5")
        self.assertEqual(code, 0, out + err)
        self.assertIn("bell.qasm: 200 shots", out)
        counts = dict(re.findall(r"^\s+([01]{2})\s+(\d+)", out, re.MULTILINE))
        self.assertEqual(set(counts), {"00", "11"})
        self.assertEqual(sum(map(int, counts.values())), 200)

    @unittest.skipUnless(HAS_QASM3, "qiskit-qasm3-import not installed")
    def test_qasm3_and_qasm2_json(self):
        bell = self.write("bell.qasm", BELL_QASM2)
        ghz = self.write("ghz.qasm", GHZ_QASM3)
        code, out, err = run_cli("run", bell, ghz, "--shots", "100", "--json")
        self.assertEqual(code, 0, out + err)
        data = json.loads(out)
        self.assertEqual(set(data["files"][ghz]["counts"]), {"000", "111"})
        self.assertEqual(sum(data["files"][ghz]["counts"].values()), 100)
        self.assertEqual(set(data["files"][bell]["counts"]), {"00", "11"})

    def test_parse_error_names_file_and_line(self):
        path = self.write("bad.qasm", BAD_QASM2)
        code, out, err = run_cli("run", path)
        self.assertEqual(code, 2)
        self.assertIn(f"{path}:4:", err)
        self.assertIn("notagate", err)
        self.assertIn("nothing was run", err)
        self.assertEqual(out, "")

    @unittest.skipUnless(HAS_QASM3, "qiskit-qasm3-import not installed")
    def test_qasm3_parse_error_names_file_and_line(self):
        path = self.write("bad3.qasm", "OPENQASM 3.0;\nqubit[2] q;\n\nh q[0];\n")
        code, _, err = run_cli("run", path)
        self.assertEqual(code, 2)
        self.assertIn(f"{path}:4:", err)

    def test_missing_file(self):
        missing = os.path.join(self.tmp, "nope.qasm")
        code, _, err = run_cli("run", missing)
        self.assertEqual(code, 2)
        self.assertIn(f"{missing}: no such file", err)

    def test_qasm3_without_importer_says_so(self):
        path = self.write("ghz.qasm", GHZ_QASM3)
        real = importlib.util.find_spec

        def fake(name, *args, **kwargs):
            return None if name == "qiskit_qasm3_import" else real(name, *args, **kwargs)

        with mock.patch("importlib.util.find_spec", side_effect=fake):
            code, _, err = run_cli("run", path)
        self.assertEqual(code, 2)
        self.assertIn("qiskit-qasm3-import", err)
        self.assertIn(path, err)


if __name__ == "__main__":
    unittest.main()
