"""Job-level options: sessions, job settings, noise only on simulators (#14)."""

from __future__ import annotations

import unittest

from qstore_qiskit.client import BatchSubmitter

from .mini_server import MiniServer


def x_circuit(bits: int, qubits: int = 3) -> dict:
    return {"qubits": qubits, "circuit": [{"gate": "x", "target": q} for q in range(qubits) if bits >> q & 1]}


class TestJobOptions(unittest.TestCase):
    """What goes into the job body, and what keeps circuits in separate jobs."""

    def setUp(self) -> None:
        self.srv = MiniServer().__enter__()

    def tearDown(self) -> None:
        self.srv.__exit__(None, None, None)

    def bodies(self) -> list[dict]:
        return [j["body"] for j in self.srv.jobs.values()]

    def test_session_and_settings_are_top_level_fields(self) -> None:
        mitigation = {"error_mitigation": {"debiasing": True}}
        with BatchSubmitter("k", self.srv.url) as sub:
            res = sub.submit([x_circuit(1), x_circuit(2)], backend="qpu.aria-1", session_id="sess-1",
                             job_settings=mitigation).result(30)
        self.assertEqual([r.probabilities for r in res], [{1: 1.0}, {2: 1.0}])
        (body,) = self.bodies()
        self.assertEqual(body["session_id"], "sess-1")
        self.assertEqual(body["settings"], mitigation)
        self.assertNotIn("noise", body)  # noise models are a simulator feature

    def test_no_settings_or_session_unless_asked(self) -> None:
        with BatchSubmitter("k", self.srv.url) as sub:
            sub.submit([x_circuit(1)]).result(30)
            sub.submit([x_circuit(1)], backend="qpu.forte-1").result(30)
        sim, qpu = sorted(self.bodies(), key=lambda b: b["backend"])[::-1]
        self.assertEqual(sim["noise"], {"model": "ideal"})
        for body in (sim, qpu):
            self.assertNotIn("settings", body)
            self.assertNotIn("session_id", body)
        self.assertNotIn("noise", qpu)

    def test_different_sessions_or_settings_never_share_a_job(self) -> None:
        variants = [
            {}, {"session_id": "a"}, {"session_id": "b"},
            {"job_settings": {"error_mitigation": {"debiasing": True}}},
            {"job_settings": {"error_mitigation": {"debiasing": False}}},
            {"session_id": "a", "job_settings": {"error_mitigation": {"debiasing": True}}},
        ]
        with BatchSubmitter("k", self.srv.url, batch_window=0.2) as sub:
            futs = [sub.submit([x_circuit(i % 8), x_circuit(7 - i % 8)], backend="qpu.aria-1", **kw)
                    for i, kw in enumerate(variants + variants)]
            for f in futs:
                f.result(30)
        bodies = self.bodies()
        self.assertEqual(len(bodies), len(variants))  # equal options coalesce, others do not
        seen = {(b.get("session_id"), repr(b.get("settings"))) for b in bodies}
        self.assertEqual(len(seen), len(variants))
        for body in bodies:
            self.assertEqual(len(body["input"]["circuits"]), 4)

    def test_exclusive_calls_never_share_a_job(self) -> None:
        # Four calls within one batch window: the two plain ones coalesce, each exclusive
        # one gets a job of its own (and its own results).
        with BatchSubmitter("k", self.srv.url, batch_window=0.2) as sub:
            futs = [sub.submit([x_circuit(2 * i), x_circuit(2 * i + 1)], backend="qpu.aria-1", exclusive=i >= 2)
                    for i in range(4)]
            outs = [f.result(30) for f in futs]
        self.assertEqual([[r.probabilities for r in out] for out in outs],
                         [[{2 * i: 1.0}, {2 * i + 1: 1.0}] for i in range(4)])
        sizes = sorted(len(b["input"]["circuits"]) for b in self.bodies())
        self.assertEqual(sizes, [2, 2, 4])
        self.assertEqual(len({r.job_id for r in outs[2] + outs[3]}), 2)
        self.assertEqual(len({r.job_id for r in outs[0] + outs[1]}), 1)

    def test_failure_message_is_read_as_documented(self) -> None:
        from qstore_qiskit.client import IonQJobFailedError  # pylint: disable=import-outside-toplevel

        self.srv.mode = "job_failed"
        for failure, shown in (({"code": "SimulationError", "message": "documented", "error": "old"}, "documented"),
                               ({"code": "SimulationError", "error": "older servers"}, "older servers")):
            self.srv.failure = failure
            with BatchSubmitter("k", self.srv.url) as sub:
                with self.assertRaises(IonQJobFailedError) as ctx:
                    sub.submit([x_circuit(1)]).result(30)
            self.assertEqual(ctx.exception.error, shown)
            self.assertEqual(ctx.exception.code, "SimulationError")

    def test_idempotency_lookup_filters_client_side(self) -> None:
        # The server ignores the (undocumented) metadata.submission_id filter and lists
        # every job: the ambiguous create is still adopted as the right job, once.
        with BatchSubmitter("k", self.srv.url) as sub:
            for b in range(8):
                sub.submit([x_circuit(b)]).result(30)
            self.srv.mode = "bad_create"
            res = sub.submit([x_circuit(5), x_circuit(6)]).result(30)
            stats = sub.stats()
        self.assertEqual(stats["jobs_adopted"], 1)
        self.assertEqual(len(self.srv.jobs), 9)
        self.assertEqual([r.probabilities for r in res], [{5: 1.0}, {6: 1.0}])

    def test_circuit_cap_from_the_backend_record(self) -> None:
        self.srv.backend_extra = {"max_circuits_per_job": 3}
        with BatchSubmitter("k", self.srv.url) as sub:
            sub.submit([x_circuit(1)]).result(30)  # the cap is asked for on first use
            res = sub.submit([x_circuit(b) for b in range(7)]).result(30)
        self.assertEqual([r.probabilities for r in res], [{b: 1.0} for b in range(7)])
        sizes = sorted(len(b["input"].get("circuits", [None])) for b in self.bodies()[1:])
        self.assertEqual(sizes, [2, 2, 3])

    def test_bad_options_are_clear_errors(self) -> None:
        with BatchSubmitter("k", self.srv.url) as sub:
            with self.assertRaisesRegex(ValueError, "simulator"):
                sub.submit([x_circuit(1)], backend="qpu.aria-1", noise={"model": "aria-1"})
            with self.assertRaisesRegex(ValueError, "job_settings"):
                sub.submit([x_circuit(1)], job_settings=["debiasing"])
            with self.assertRaisesRegex(ValueError, "JSON"):
                sub.submit([x_circuit(1)], job_settings={"x": object()})
            with self.assertRaisesRegex(ValueError, "session_id"):
                sub.submit([x_circuit(1)], session_id="")


if __name__ == "__main__":
    unittest.main()
