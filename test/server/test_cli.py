"""``python -m qstore_qiskit.server`` / ``qstore-qiskit serve``: URL first, counts on stop."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import unittest

from qstore_qiskit.server import cli

from .helpers import http


def _start(*args: str, **env_extra: str) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if k != "QSTORE_SERVER_API_KEY"}
    env.update(PYTHONUNBUFFERED="1", **env_extra)
    proc = subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env,
    )
    first = proc.stdout.readline().strip()
    return proc, first


class TestCli(unittest.TestCase):
    """The server as a process."""

    def _stop(self, proc: subprocess.Popen, sig: int) -> tuple[str, str]:
        proc.send_signal(sig)
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:  # pragma: no cover - only on a hang
            proc.kill()
            out, err = proc.communicate()
            self.fail(f"server did not stop on signal {sig}: {err}")
        return out, err

    def test_module_prints_url_first_and_counts_on_sigint(self):
        proc, url = _start("-m", "qstore_qiskit.server", "--port", "0", "--api-key",
                           "cli-secret", "--seed", "1", "--fault-rate", "0.0")
        try:
            self.assertRegex(url, r"^http://127\.0\.0\.1:\d+/v0\.4$")
            status, _, payload = http("GET", url + "/backends/simulator", key=None)
            self.assertEqual(status, 200)
            self.assertIn("qubits", payload)
            status, _, _ = http("GET", url + "/jobs", key="wrong")
            self.assertEqual(status, 401)
            status, _, _ = http("GET", url + "/jobs", key="cli-secret")
            self.assertEqual(status, 200)
        finally:
            out, err = self._stop(proc, signal.SIGINT)
        self.assertEqual(proc.returncode, 0, err)
        counts = json.loads(out.strip().splitlines()[-1])["fault_counts"]
        self.assertEqual(sum(counts.values()), 0)
        self.assertNotIn("cli-secret", out + err)

    def test_qstore_qiskit_serve_cloud_with_faults_sigterm(self):
        proc, url = _start("-m", "qstore_qiskit.cli", "serve", "--profile", "cloud",
                           "--fault-rate", "1.0", "--fault-weight", "http_503=1", "--seed", "7",
                           QSTORE_SERVER_API_KEY="env-secret")
        try:
            self.assertTrue(url.startswith("http://127.0.0.1:"), url)
            self.assertTrue(url.endswith("/v0.4"))
            status, _, _ = http("GET", url + "/jobs", key="any")
            self.assertEqual(status, 401)  # key taken from the environment
            status, _, payload = http("GET", url + "/jobs", key="env-secret")
            self.assertEqual(status, 503)
            self.assertEqual(payload["statusCode"], 503)
        finally:
            out, err = self._stop(proc, signal.SIGTERM)
        self.assertEqual(proc.returncode, 0, err)
        counts = json.loads(out.strip().splitlines()[-1])["fault_counts"]
        self.assertEqual(counts["http_503"], 1)

    def test_add_arguments(self):
        parser = argparse.ArgumentParser()
        cli.add_arguments(parser)
        args = parser.parse_args([])
        self.assertEqual((args.host, args.port, args.profile), ("127.0.0.1", 0, "instant"))
        self.assertIsNone(args.api_key)
        args = parser.parse_args(["--fault-weight", "drop_connection=2.5"])
        self.assertEqual(args.fault_weight, [("drop_connection", 2.5)])
        with self.assertRaises(SystemExit):
            parser.parse_args(["--fault-weight", "bogus=1"])
        with self.assertRaises(SystemExit):
            parser.parse_args(["--profile", "nope"])
        self.assertEqual(cli.main(parser.parse_args(["--fault-rate", "3"])), 2)
        args = parser.parse_args(["--set", "job_store_bytes=1e8", "--set", "max_job_work=null",
                                  "--set", "body_timeout=2.5"])
        self.assertEqual(args.settings, [("job_store_bytes", 100_000_000),
                                         ("max_job_work", None), ("body_timeout", 2.5)])
        with self.assertRaises(SystemExit):
            parser.parse_args(["--set", "no-equals-sign"])
        self.assertEqual(cli.main(parser.parse_args(["--set", "not_a_field=1"])), 2)
        self.assertEqual(cli.main(parser.parse_args(["--set", "max_job_work=0"])), 2)

    def test_limits_from_the_command_line(self):
        proc, url = _start("-m", "qstore_qiskit.server", "--set", "max_job_work=100")
        try:
            body = {"type": "ionq.circuit.v1", "backend": "simulator", "shots": 200,
                    "input": {"gateset": "qis", "qubits": 1,
                              "circuit": [{"gate": "h", "target": 0}]}}
            status, _, payload = http("POST", url + "/jobs", body=body)
            self.assertEqual(status, 413, payload)
            self.assertIn("at most 100", payload["message"])
        finally:
            self._stop(proc, signal.SIGTERM)


if __name__ == "__main__":
    unittest.main()
