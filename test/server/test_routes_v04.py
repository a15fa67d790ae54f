"""The IonQ v0.4 routes and shapes: sessions, whoami, cost, variants, calibrations,
paging, cancel and the documented record fields (issue #14)."""

from __future__ import annotations

import datetime
import math
import unittest

from qstore_qiskit.server import LocalServer
from qstore_qiskit.server import pricing
from qstore_qiskit.server.jobs import Variant

from .helpers import http

KEY = "routes-key"


def bell(**extra):
    body = {"type": "ionq.circuit.v1", "backend": "simulator", "shots": 100,
            "input": {"gateset": "qis", "qubits": 2, "circuit": [
                {"gate": "h", "target": 0}, {"gate": "cnot", "control": 0, "target": 1}]}}
    body.update(extra)
    return body


def iso(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


class V04Case(unittest.TestCase):
    """A server per class, with helpers."""

    server_args: dict = {}

    @classmethod
    def setUpClass(cls):
        cls.srv = LocalServer(api_key=KEY, seed=11, **cls.server_args).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def call(self, method, path, body=None, key=KEY, expect=None, **kw):
        status, headers, payload = http(method, self.srv.url + path, body=body, key=key, **kw)
        if expect is not None:
            self.assertEqual(status, expect, payload)
        return status, payload

    def create(self, body, expect=201):
        return self.call("POST", "/jobs", body, expect=expect)[1]


class TestSessions(V04Case):
    def test_lifecycle_and_limits(self):
        _, sess = self.call("POST", "/sessions", {
            "backend": "qpu.aria-1",
            "settings": {"job_count_limit": 2, "duration_limit_min": 30,
                         "cost_limit": {"unit": "usd", "value": 1000}}}, expect=201)
        self.assertEqual(sess["status"], "created")
        self.assertTrue(sess["active"])
        self.assertIsNone(sess["started_at"])
        self.assertEqual(sess["settings"]["job_count_limit"], 2)
        expires = iso(sess["settings"]["expires_at"]) - iso(sess["created_at"])
        self.assertAlmostEqual(expires.total_seconds(), 1800, delta=1)
        sid = sess["id"]
        qpu_bell = bell(backend="qpu.aria-1", session_id=sid)
        created = self.create(qpu_bell)
        self.assertEqual(created["session_id"], sid)
        self.assertEqual(self.call("GET", f"/jobs/{created['id']}")[1]["session_id"], sid)
        _, now = self.call("GET", f"/sessions/{sid}", expect=200)
        self.assertEqual(now["status"], "started")
        self.assertIsNotNone(now["started_at"])
        # a job for another backend is refused, and not counted
        _, err = self.call("POST", "/jobs", bell(session_id=sid), expect=400)
        self.assertIn("qpu.aria-1", err["message"])
        self.assertIn("session_id", err["validation"]["keys"])
        self.create(qpu_bell)
        _, err = self.call("POST", "/jobs", qpu_bell, expect=400)  # third job: limit 2
        self.assertIn("job_count_limit", err["message"])
        # the session's jobs, by path and by filter
        _, listing = self.call("GET", f"/sessions/{sid}/jobs", expect=200)
        self.assertEqual(len(listing["jobs"]), 2)
        _, listing = self.call("GET", f"/jobs?session_id={sid}", expect=200)
        self.assertEqual(len(listing["jobs"]), 2)
        _, ended = self.call("POST", f"/sessions/{sid}/end", expect=200)
        self.assertEqual((ended["status"], ended["active"]), ("ended", False))
        self.assertIsNotNone(ended["ended_at"])
        self.call("POST", f"/sessions/{sid}/end", expect=200)  # idempotent
        _, err = self.call("POST", "/jobs", bell(backend="qpu.aria-1", session_id=sid),
                           expect=400)
        self.assertIn("ended", err["message"])
        _, listing = self.call("GET", "/sessions?active=false", expect=200)
        self.assertIn(sid, [s["id"] for s in listing["sessions"]])
        _, listing = self.call("GET", "/sessions?active=true", expect=200)
        self.assertNotIn(sid, [s["id"] for s in listing["sessions"]])
        self.assertEqual(listing["organization_id"], "local-organization")

    def test_cost_limit(self):
        _, sess = self.call("POST", "/sessions", {
            "backend": "qpu.aria-1", "settings": {"cost_limit": {"unit": "usd",
                                                                 "value": 20}}}, expect=201)
        job = bell(backend="qpu.aria-1", session_id=sess["id"])  # minimum 12.42 usd each
        self.create(job)
        _, err = self.call("POST", "/jobs", job, expect=400)
        self.assertIn("cost_limit", err["message"])

    def test_bad_requests(self):
        for body, key in [
            ({}, "backend"),
            ({"backend": "qpu.nowhere"}, "backend"),
            ({"backend": "simulator", "extra": 1}, "extra"),
            ({"backend": "simulator", "settings": {"job_count_limit": 0}},
             "settings.job_count_limit"),
            ({"backend": "simulator", "settings": {"cost_limit": {"unit": "eur", "value": 1}}},
             "settings.cost_limit"),
            ({"backend": "simulator", "settings": {"bogus": 1}}, "settings.bogus"),
        ]:
            with self.subTest(body=body):
                _, err = self.call("POST", "/sessions", body, expect=400)
                self.assertIn(key, err["validation"]["keys"])
        self.call("GET", "/sessions/unknown", expect=404)
        self.call("POST", "/sessions/unknown/end", expect=404)
        _, err = self.call("POST", "/jobs", bell(session_id="unknown"), expect=400)
        self.assertIn("not found", err["message"])
        self.call("GET", "/sessions?active=maybe", expect=400)

    def test_duration_limit_alias_and_expiry(self):
        _, sess = self.call("POST", "/sessions", {
            "backend": "simulator", "settings": {"duration_limit": 1}}, expect=201)
        self.assertEqual(sess["settings"]["duration_limit_min"], 1)
        state = self.srv._state  # pylint: disable=protected-access
        state.sessions.get(sess["id"]).created -= 61  # one minute and a bit later
        _, now = self.call("GET", f"/sessions/{sess['id']}", expect=200)
        self.assertEqual(now["status"], "ended")
        self.call("POST", "/jobs", bell(session_id=sess["id"]), expect=400)


class TestAccountCostEstimate(V04Case):
    def test_whoami(self):
        _, me = self.call("GET", "/whoami", expect=200)
        self.assertEqual(set(me), {"key_id", "key_name", "project_id"})
        self.assertNotIn(KEY, str(me))
        self.call("GET", "/whoami", key="wrong", expect=401)

    def test_estimate_defaults_and_rates(self):
        _, est = self.call("GET", "/jobs/estimate?backend=qpu.aria-1", expect=200)
        self.assertEqual(est["input_values"], {
            "backend": "qpu.aria-1", "type": "ionq.circuit.v1", "qubits": 25, "shots": 1000,
            "1q_gates": 0, "2q_gates": 0, "error_mitigation": False, "session": False})
        rates = est["rate_information"]
        self.assertEqual(set(rates), {"job_cost_minimum", "cost_1q_gate", "cost_2q_gate",
                                      "organization"})
        self.assertEqual(est["estimated_cost"], rates["job_cost_minimum"])
        _, big = self.call("GET", "/jobs/estimate?backend=qpu.aria-1&1q_gates=100&"
                                  "2q_gates=50&shots=10000&error_mitigation=true", expect=200)
        expected = 10000 * (100 * big["rate_information"]["cost_1q_gate"]
                            + 50 * big["rate_information"]["cost_2q_gate"])
        self.assertAlmostEqual(big["estimated_cost"], round(expected, 2))
        _, sim = self.call("GET", "/jobs/estimate?backend=simulator&shots=5", expect=200)
        self.assertEqual(sim["estimated_cost"], 0.0)
        iso(est["estimated_at"])

    def test_estimate_never_500(self):
        """#12 defect 7: huge numbers and negative counts are 400s, never 500."""
        for query in ("shots=1" + "0" * 400, "1q_gates=-1", "2q_gates=-5", "shots=-3",
                      "qubits=" + "9" * 50, "2q_gates=" + "9" * 30, "shots=1e9",
                      "error_mitigation=perhaps", "shots=2000000", "backend=qpu.nowhere"):
            with self.subTest(query=query):
                q = query if query.startswith("backend=") else "backend=qpu.aria-1&" + query
                status, body = self.call("GET", "/jobs/estimate?" + q)
                self.assertEqual(status, 400, body)
                self.assertTrue(body["validation"]["keys"])
        self.call("GET", "/jobs/estimate", expect=400)  # backend is required
        self.assertEqual(self.srv.stats()["by_status"].get(500, 0), 0)

    def test_job_cost_matches_estimate(self):
        body = bell(backend="qpu.forte-1", shots=600)
        body["input"]["circuit"] = [{"gate": "h", "target": 0}] * 30 + [
            {"gate": "cnot", "control": 0, "target": 1}] * 20
        job = self.create(body)
        _, cost = self.call("GET", f"/jobs/{job['id']}/cost", expect=200)
        _, est = self.call("GET", "/jobs/estimate?backend=qpu.forte-1&1q_gates=30&"
                                  "2q_gates=20&shots=600", expect=200)
        self.assertEqual(cost["estimated_cost"], {"value": est["estimated_cost"],
                                                  "unit": "usd"})
        self.assertEqual(cost["cost"], cost["estimated_cost"])  # completed: billed
        self.assertFalse(cost["dry_run"])
        self.assertEqual(pricing.cost_of("qpu.forte-1", 30, 20, 600),
                         est["estimated_cost"])
        dry = self.create(bell(backend="qpu.aria-1", dry_run=True))
        _, cost = self.call("GET", f"/jobs/{dry['id']}/cost", expect=200)
        self.assertTrue(cost["dry_run"])
        self.assertEqual(cost["cost"]["value"], 0.0)
        self.call("GET", "/jobs/unknown/cost", expect=404)


class TestJobsWire(V04Case):
    def test_record_fields(self):
        job = self.create(bell(noise={"model": "aria-1"}, metadata={"k": "v"}))
        self.assertEqual(set(job), {"id", "status", "session_id"})
        _, rec = self.call("GET", f"/jobs/{job['id']}", expect=200)
        self.assertEqual(rec["cost_model"], "quantum_compute_time")
        # the seed used is always stated (drawn at creation when not given)
        self.assertIsInstance(rec["noise"]["seed"], int)
        self.assertEqual(rec["noise"]["model"], "aria-1")
        stats = rec["stats"]
        self.assertEqual(stats["gate_counts"], {"1q": 1, "2q": 1})
        self.assertIsInstance(stats["predicted_quantum_compute_time_us"], int)
        self.assertIsInstance(stats["billed_quantum_compute_time_us"], int)
        self.assertIsNone(rec["failure"])
        self.assertEqual(rec["output"], {})
        seeded = self.create(bell(noise={"model": "aria-1", "seed": 77}))
        _, rec = self.call("GET", f"/jobs/{seeded['id']}", expect=200)
        self.assertEqual(rec["noise"], {"model": "aria-1", "seed": 77})
        qpu = self.create(bell(backend="qpu.aria-2"))
        _, rec = self.call("GET", f"/jobs/{qpu['id']}", expect=200)
        self.assertNotIn("noise", rec)  # documented: only on simulator jobs

    def test_paging_omits_next_and_reads_body_limit(self):
        with LocalServer() as srv:
            status, _, page = http("GET", srv.url + "/jobs")
            self.assertEqual((status, page), (200, {"jobs": []}))  # no "next": null
            ids = [http("POST", srv.url + "/jobs", body=bell())[2]["id"] for _ in range(5)]
            # cirq-ionq sends limit in a JSON body on GET
            _, _, page = http("GET", srv.url + "/jobs", body={"limit": 2})
            self.assertEqual([j["id"] for j in page["jobs"]], ids[::-1][:2])
            self.assertEqual(page["next"], ids[3])
            _, _, page = http("GET", srv.url + f"/jobs?next={page['next']}", body={"limit": 2})
            _, _, last = http("GET", srv.url + f"/jobs?next={page['next']}", body={"limit": 2})
            self.assertEqual([j["id"] for j in last["jobs"]], [ids[0]])
            self.assertNotIn("next", last)
            _, _, page = http("GET", srv.url + "/jobs?limit=1", body={"limit": 3})
            self.assertEqual(len(page["jobs"]), 1)  # the query wins
            self.assertEqual(http("GET", srv.url + "/jobs", body={"limit": 0})[0], 400)

    def test_target_list_filter(self):
        a = self.create(bell(backend="qpu.aria-1", metadata={"t": "target-list"}))["id"]
        f = self.create(bell(backend="qpu.forte-1", metadata={"t": "target-list"}))["id"]
        s = self.create(bell(metadata={"t": "target-list"}))["id"]
        _, page = self.call("GET", "/jobs?metadata.t=target-list&target=qpu.aria-1,qpu.forte-1",
                            expect=200)
        self.assertEqual({j["id"] for j in page["jobs"]}, {a, f})
        _, page = self.call("GET", "/jobs?metadata.t=target-list&target=simulator", expect=200)
        self.assertEqual({j["id"] for j in page["jobs"]}, {s})

    def test_cancel_shapes(self):
        done = self.create(bell())["id"]
        _, resp = self.call("PUT", f"/jobs/{done}/status/cancel", expect=200)
        self.assertEqual(resp, {"id": done, "status": "canceled"})
        _, rec = self.call("GET", f"/jobs/{done}", expect=200)
        self.assertEqual(rec["status"], "canceled")
        self.assertEqual(rec["failure"]["code"], "SystemCancel")
        self.assertIsNone(rec["results"])
        self.call("GET", f"/jobs/{done}/results/probabilities", expect=404)
        ids = [self.create(bell())["id"] for _ in range(2)]
        _, resp = self.call("PUT", "/jobs/status/cancel", {"ids": ids}, expect=200)
        self.assertEqual(resp, {"ids": ids, "status": "canceled"})
        self.call("PUT", "/jobs/status/cancel", {"ids": ids, "more": 1}, expect=400)
        _, resp = self.call("DELETE", "/jobs", {"ids": ids}, expect=200)
        self.assertEqual(resp, {"ids": ids, "status": "deleted"})

    def test_backends_public_and_iso_last_updated(self):
        status, _, backends = http("GET", self.srv.url + "/backends", key=None)
        self.assertEqual(status, 200)
        by_name = {b["backend"]: b for b in backends}
        self.assertEqual(by_name["simulator"]["qubits"], 29)
        self.assertEqual(by_name["qpu.aria-1"]["qubits"], 25)
        self.assertEqual(by_name["qpu.forte-1"]["qubits"], 36)
        for record in backends:
            iso(record["last_updated"])
        self.assertIn("harmony-2", by_name["simulator"]["noise_models"])


class TestCharacterizationsAndCalibrations(V04Case):
    def test_characterization_paging(self):
        path = "/backends/qpu.aria-1/characterizations"
        status, _, first = http("GET", self.srv.url + path, key=None)
        self.assertEqual(status, 200)
        self.assertEqual(len(first["characterizations"]), 10)
        self.assertEqual(first["pages"], 3)
        _, second = self.call("GET", path + "?page=2&limit=10", expect=200)
        dates = [iso(c["date"]) for c in first["characterizations"]
                 + second["characterizations"]]
        self.assertEqual(dates, sorted(dates, reverse=True))  # newest first, no overlap
        self.assertEqual(len(set(dates)), 20)
        newest = dates[0]
        start = (newest - datetime.timedelta(days=2, hours=1)).date().isoformat()
        _, recent = self.call("GET", f"{path}?start={start}&limit=5", expect=200)
        self.assertTrue(all(iso(c["date"]) >= iso(start + "T00:00:00Z")
                            for c in recent["characterizations"]))
        self.assertLessEqual(len(recent["characterizations"]), 4)
        for query in ("limit=11", "limit=0", "page=0", "start=yesterday"):
            self.call("GET", f"{path}?{query}", expect=400)
        _, one = self.call("GET", f"{path}/{first['characterizations'][3]['id']}", expect=200)
        self.assertEqual(one, first["characterizations"][3])
        _, sim = self.call("GET", "/backends/simulator/characterizations", expect=200)
        self.assertEqual(sim["characterizations"], [])

    def test_calibrations_answer(self):
        _, current = self.call("GET", "/calibrations/current", expect=200)
        self.assertEqual(current["target"], "qpu")
        self.assertEqual(current["qubits"], 25)
        _, page = self.call("GET", "/calibrations?limit=25", expect=200)
        self.assertEqual(len(page["calibrations"]), 25)
        _, rest = self.call("GET", f"/calibrations?limit=25&next={page['next']}", expect=200)
        self.assertEqual(len(rest["calibrations"]), 5)
        self.assertNotIn("next", rest)


class TestVariantRoutes(V04Case):
    """The variant routes serve what the simulation stored for a debiased job."""

    def test_variant_results(self):
        job_id = self.create(bell(backend="qpu.aria-1", shots=600, settings={
            "error_mitigation": {"debiasing": True}}))["id"]
        state = self.srv._state  # pylint: disable=protected-access
        job = state.store.get(job_id)
        if not job.variants:  # the simulation may not run variants: give it two
            job.variants = {
                "v1": Variant("v1", [1, 0], 300, {0: 0.5, 3: 0.5}, {0: 140, 3: 160}, 5),
                "v2": Variant("v2", [0, 1], 300, {0: 0.25, 3: 0.75}, None),
            }
        _, rec = self.call("GET", f"/jobs/{job_id}", expect=200)
        variants = rec["output"]["error_mitigation"]["debiasing"]["variants"]
        self.assertEqual({v["variant_id"] for v in variants}, set(job.variants))
        for entry in variants:
            variant = job.variants[entry["variant_id"]]
            self.assertEqual(entry["qubit_map"], list(variant.qubit_map))
            _, probs = self.call("GET", entry["results"]["probabilities"]["url"][5:],
                                 expect=200)
            self.assertAlmostEqual(math.fsum(probs.values()), 1.0)
            if variant.histogram is None:
                self.assertNotIn("histogram", entry["results"])
                continue
            _, hist = self.call("GET", entry["results"]["histogram"]["url"][5:], expect=200)
            self.assertEqual(sum(hist.values()), variant.shots)
            _, shots = self.call("GET", entry["results"]["shots"]["url"][5:], expect=200)
            self.assertEqual(list(shots), [str(i) for i in range(variant.shots)])
            self.assertEqual({str(v) for v in shots.values()}, set(hist))
        self.call("GET", f"/jobs/{job_id}/variants/nope/results/histogram", expect=404)


if __name__ == "__main__":
    unittest.main()
