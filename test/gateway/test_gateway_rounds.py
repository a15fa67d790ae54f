"""The gateway's round gathering and request handling, in process (no Ray needed).

:class:`QStoreGateway` is a plain class that Ray turns into an actor; here its async
methods run on a private event loop against the real local server.
"""

from __future__ import annotations

import asyncio

import pytest

from qstore_qiskit.gateway.identity import key_fingerprint
from qstore_qiskit.gateway.ray_gateway import QStoreGateway
from qstore_qiskit.server import LocalServer

from .payloads import SETTINGS, body, rid

KEY = "rounds-test-key-" + "c0ffee" * 5


@pytest.fixture
def gateway(monkeypatch, tmp_path):
    server = LocalServer(profile="instant", api_key=KEY, seed=1)
    server.start()
    monkeypatch.setenv("IONQ_API_KEY", KEY)  # the gateway's own environment
    # round_jobs=1: one job per round, so that job counts are round counts here (rounds
    # spread over concurrent jobs: see the round_jobs tests below). release="round": these
    # tests are about rounds (the pipeline release: see test_pipeline_release.py).
    gw = QStoreGateway(
        server.url, key_fingerprint(server.url, KEY), str(tmp_path), {"batch_window": 0.005}, 0.5, 5.0, round_jobs=1,
        release="round",
    )
    try:
        yield gw, server
    finally:
        gw._sub.close()
        server.stop()


def test_a_round_waits_for_callers_that_were_just_served(gateway):
    gw, server = gateway

    async def scenario():
        first = await asyncio.gather(
            gw.submit(rid(), [body(1)], SETTINGS, "A"), gw.submit(rid(), [body(2)], SETTINGS, "B")
        )
        jobs = server.stats()["jobs_created"]
        # A is back first: B was served a moment ago, so A's call waits for B's.
        a = asyncio.ensure_future(gw.submit(rid(), [body(3), body(4)], SETTINGS, "A"))
        await asyncio.sleep(0.2)
        assert not a.done()
        b = await gw.submit(rid(), [body(5)], SETTINGS, "B")
        return first, jobs, await a, b

    first, jobs, a, b = asyncio.run(scenario())
    assert server.stats()["jobs_created"] == jobs + 1  # one job for the round
    assert [r.get_counts() for r in first[0] + first[1]] == [{"0001": 16}, {"0010": 16}]
    assert [(r.name, r.circuit_index, r.get_counts()) for r in a] == [("v3", 0, {"0011": 16}), ("v4", 1, {"0100": 16})]
    assert [(r.name, r.circuit_index, r.get_counts()) for r in b] == [("v5", 0, {"0101": 16})]


def test_a_round_is_released_after_gather_window_without_stragglers(gateway):
    gw, server = gateway

    async def scenario():
        await asyncio.gather(gw.submit(rid(), [body(1)], SETTINGS, "A"), gw.submit(rid(), [body(2)], SETTINGS, "B"))
        # B never comes back: A's call goes out when the gather window (0.5 s) ends.
        return await asyncio.wait_for(gw.submit(rid(), [body(6)], SETTINGS, "A"), 30)

    (result,) = asyncio.run(scenario())
    assert result.get_counts() == {"0110": 16}
    stats = asyncio.run(gw.stats())["gateway"]
    assert stats["requests"] == 3 and stats["requests_in_flight"] == 0 and stats["requests_failed"] == 0


def test_bad_calls_are_refused_with_a_clear_error(gateway):
    gw, _ = gateway
    with pytest.raises(ValueError, match="request_id must be a random string"):
        asyncio.run(gw.submit("guessable", [body(1)], SETTINGS, "A"))
    with pytest.raises(ValueError, match="unknown submit setting"):
        asyncio.run(gw.submit(rid(), [body(1)], {**SETTINGS, "token": "x"}, "A"))


def test_the_gateway_needs_its_own_key(monkeypatch, tmp_path):
    monkeypatch.delenv("IONQ_API_KEY", raising=False)
    with pytest.raises(ValueError, match="found no IONQ_API_KEY"):
        QStoreGateway("http://127.0.0.1:9/v0.4", "env", str(tmp_path))
    monkeypatch.setenv("IONQ_API_KEY", KEY)
    with pytest.raises(ValueError, match="is not the key this worker uses") as info:
        QStoreGateway("http://127.0.0.1:9/v0.4", key_fingerprint("http://127.0.0.1:9/v0.4", "other" * 8), str(tmp_path))
    assert KEY not in str(info.value)
    with pytest.raises(ValueError, match="refuses to send the API key"):
        QStoreGateway("https://evil.example/v0.4", "env", str(tmp_path))


def test_a_malformed_call_fails_alone_and_its_round_mates_get_their_results(gateway):
    gw, server = gateway

    async def scenario():
        await asyncio.gather(gw.submit(rid(), [body(1)], SETTINGS, "A"), gw.submit(rid(), [body(2)], SETTINGS, "B"))
        good = asyncio.ensure_future(gw.submit(rid(), [body(7)], SETTINGS, "A"))
        bad = asyncio.ensure_future(gw.submit(rid(), [{"qubits": 2, "circuit": "not a list"}], SETTINGS, "B"))
        return await asyncio.gather(good, bad, return_exceptions=True)

    good, bad = asyncio.run(scenario())
    assert [r.get_counts() for r in good] == [{"0111": 16}]
    assert isinstance(bad, ValueError)


def test_calls_of_one_round_share_one_submission_and_keep_their_own_results(gateway):
    gw, server = gateway

    async def scenario():
        await asyncio.gather(*(gw.submit(rid(), [body(1)], SETTINGS, c) for c in "ABC"))
        created = server.stats()["circuits_created"], server.stats()["jobs_created"]
        calls = [gw.submit(rid(), [body(8 + 2 * i), body(9 + 2 * i)], SETTINGS, c) for i, c in enumerate("ABC")]
        return created, await asyncio.gather(*calls)

    (circuits, jobs), outs = asyncio.run(scenario())
    assert server.stats()["jobs_created"] == jobs + 1
    assert server.stats()["circuits_created"] == circuits + 6
    for i, out in enumerate(outs):
        assert [(r.circuit_index, r.get_counts()) for r in out] == [
            (0, {format(8 + 2 * i, "04b"): 16}),
            (1, {format(9 + 2 * i, "04b"): 16}),
        ]


def test_a_cancelled_call_leaves_its_round_mates_their_results(gateway):
    gw, server = gateway

    async def scenario():
        await asyncio.gather(gw.submit(rid(), [body(1)], SETTINGS, "A"), gw.submit(rid(), [body(2)], SETTINGS, "B"))
        a = asyncio.ensure_future(gw.submit(rid(), [body(3)], SETTINGS, "A"))
        b = asyncio.ensure_future(gw.submit(rid(), [body(4)], SETTINGS, "B"))
        await asyncio.sleep(0)  # both are in the round now
        await asyncio.sleep(0.001)
        a.cancel()
        return await asyncio.gather(a, b, return_exceptions=True)

    a, b = asyncio.run(scenario())
    assert isinstance(a, asyncio.CancelledError)
    assert [r.get_counts() for r in b] == [{"0100": 16}]
    stats = asyncio.run(gw.stats())["gateway"]
    assert stats["requests_cancelled"] == 1 and stats["requests_failed"] == 0


def test_first_calls_of_callers_starting_together_go_out_without_waiting_the_window(monkeypatch, tmp_path):
    server = LocalServer(profile="instant", api_key=KEY, seed=1)
    server.start()
    monkeypatch.setenv("IONQ_API_KEY", KEY)
    # A 10 s window: the round must go out once no new caller has come for NEWCOMER_QUIET.
    gw = QStoreGateway(server.url, key_fingerprint(server.url, KEY), False, {"batch_window": 0.005}, 10.0, 5.0,
                       round_jobs=1, release="round")

    async def scenario():
        async def late():  # joins while the first two are held: same round
            await asyncio.sleep(0.02)
            return await gw.submit(rid(), [body(3)], SETTINGS, "C")

        return await asyncio.wait_for(
            asyncio.gather(gw.submit(rid(), [body(1)], SETTINGS, "A"), gw.submit(rid(), [body(2)], SETTINGS, "B"), late()),
            8,  # well under the window
        )

    try:
        a, b, c = asyncio.run(scenario())
        assert [r[0].get_counts() for r in (a, b, c)] == [{"0001": 16}, {"0010": 16}, {"0011": 16}]
        assert server.stats()["jobs_created"] == 1
        assert asyncio.run(gw.stats())["gateway"]["rounds"] == 1
    finally:
        gw._sub.close()
        server.stop()


def _round_gateway(tmp_path, monkeypatch, server, **kwargs):
    monkeypatch.setenv("IONQ_API_KEY", KEY)
    kwargs.setdefault("release", "round")
    return QStoreGateway(server.url, key_fingerprint(server.url, KEY), str(tmp_path), {"batch_window": 0.005},
                         0.5, 5.0, **kwargs)


@pytest.mark.parametrize("round_jobs", [1, 3])
def test_a_round_split_into_concurrent_jobs_gives_every_caller_its_own_circuits(monkeypatch, tmp_path, round_jobs):
    server = LocalServer(profile="instant", api_key=KEY, seed=1)
    server.start()
    gw = _round_gateway(tmp_path, monkeypatch, server, round_jobs=round_jobs)

    async def scenario():
        # One round (the callers start together): 4 callers x 12 circuits, each circuit a
        # distinct basis state. No job has finished yet, so no execution model limits
        # the split: round_jobs decides (48 circuits allow 3 jobs of >= 16).
        calls = [
            gw.submit(rid(), [body(12 * i + j, 6) for j in range(12)], SETTINGS, c) for i, c in enumerate("ABCD")
        ]
        return server.stats(), await asyncio.gather(*calls)

    try:
        before, outs = asyncio.run(scenario())
        after = server.stats()
        assert before["jobs_created"] == 0
        assert after["circuits_created"] == 48
        # round_jobs=1: the fewest jobs (one, under the cap); 3: spread over 3 concurrent jobs.
        assert after["jobs_created"] == round_jobs
        assert sorted(j["circuits"] for j in server.jobs()) == [48 // round_jobs] * round_jobs
        for i, out in enumerate(outs):
            assert [(r.name, r.circuit_index, r.get_counts()) for r in out] == [
                (f"v{12 * i + j}", j, {format(12 * i + j, "06b"): 16}) for j in range(12)
            ]
        jobs = {r.job_id for out in outs for r in out}
        assert len(jobs) == round_jobs  # the callers' circuits share the round's jobs
        stats = asyncio.run(gw.stats())
        assert stats["gateway"]["rounds"] == 1 and stats["gateway"]["requests_failed"] == 0
    finally:
        gw._sub.close()
        server.stop()


def test_round_jobs_is_checked_and_leaves_explicit_submitter_options_alone(monkeypatch, tmp_path):
    server = LocalServer(profile="instant", api_key=KEY, seed=1)
    server.start()
    try:
        for bad in (0, 65, 1.5, True, "2"):
            with pytest.raises(ValueError, match="round_jobs must be an integer"):
                _round_gateway(tmp_path, monkeypatch, server, round_jobs=bad)
        gw = _round_gateway(tmp_path, monkeypatch, server, round_jobs=4)
        assert gw._sub.adaptive_batch_sizing
        # At most round_jobs, one per call, one per ROUND_JOB_MIN_CIRCUITS (16) circuits.
        assert [gw._split(8, 128), gw._split(3, 128), gw._split(8, 40), gw._split(8, 8)] == [
            {"max_jobs": 4}, {"max_jobs": 3}, {"max_jobs": 2}, {"max_jobs": 1}
        ]
        gw._sub.close()
        monkeypatch.setenv("IONQ_API_KEY", KEY)
        gw = QStoreGateway(server.url, key_fingerprint(server.url, KEY), str(tmp_path),
                           {"adaptive_batch_sizing": False}, 0.5, 5.0, round_jobs=4)
        assert not gw._sub.adaptive_batch_sizing
        gw._sub.close()
        gw = QStoreGateway(server.url, key_fingerprint(server.url, KEY), str(tmp_path), None, 0.0, 5.0, round_jobs=4)
        assert not gw._sub.adaptive_batch_sizing  # no rounds: every call is its own submission
        gw._sub.close()
    finally:
        server.stop()


def test_job_budget_splits_rounds_only_as_far_as_the_calls_have_earned(monkeypatch, tmp_path):
    server = LocalServer(profile="instant", api_key=KEY, seed=1)
    server.start()
    try:
        for bad in (0, -1, 65.0):
            with pytest.raises(ValueError, match="job_budget must be"):
                _round_gateway(tmp_path, monkeypatch, server, round_jobs=4, job_budget=bad)
        gw = _round_gateway(tmp_path, monkeypatch, server, round_jobs=4, job_budget=0.25)
        # 8 calls earn 2 jobs; a small round (8 circuits) uses 1 and leaves 1 to the next
        # large one (3 of its 4); a 1-call submission still makes its one job (credit
        # goes below zero and later rounds pay it back).
        caps = [gw._split(calls, circuits)["max_jobs"]
                for calls, circuits in [(8, 8), (8, 128), (8, 128), (1, 64), (8, 128)]]
        assert caps == [1, 3, 2, 1, 1]
        gw._sub.close()
        # Whatever the rounds, with >= 4 calls each: never more jobs than calls / 4.
        gw = _round_gateway(tmp_path, monkeypatch, server, round_jobs=4, job_budget=0.25)
        rng = __import__("random").Random(7)
        rounds = [(rng.randint(4, 12), rng.choice([4, 16, 48, 128, 400])) for _ in range(200)]
        jobs = sum(gw._split(calls, circuits)["max_jobs"] for calls, circuits in rounds)
        assert jobs <= sum(calls for calls, _ in rounds) / 4
        assert jobs > len(rounds)  # and it does split
        gw._sub.close()
    finally:
        server.stop()


def test_nagle_release_sends_at_once_while_few_submissions_are_in_flight(monkeypatch, tmp_path):
    # Jobs stay queued 1 s, so submissions stay in flight while the later calls arrive.
    server = LocalServer(profile="instant", api_key=KEY, seed=1, queue_wait=1.0, inline_execution=False)
    server.start()
    with pytest.raises(ValueError, match="release must be one of"):
        _round_gateway(tmp_path, monkeypatch, server, release="timer")
    gw = _round_gateway(tmp_path, monkeypatch, server, round_jobs=2, release="nagle")

    async def scenario():
        # The callers' first calls (one round: they start together).
        await asyncio.gather(*(gw.submit(rid(), [body(1)], SETTINGS, c) for c in "ABCD"))
        jobs = server.stats()["jobs_created"]
        # A and B go out at once, one submission each (fewer than 2 in flight); C and D
        # arrive while 2 are in flight: held, then sent together when one finishes.
        a = asyncio.ensure_future(gw.submit(rid(), [body(2)], SETTINGS, "A"))
        await asyncio.sleep(0.05)
        b = asyncio.ensure_future(gw.submit(rid(), [body(3)], SETTINGS, "B"))
        await asyncio.sleep(0.05)
        c = asyncio.ensure_future(gw.submit(rid(), [body(4)], SETTINGS, "C"))
        d = asyncio.ensure_future(gw.submit(rid(), [body(5)], SETTINGS, "D"))
        return jobs, await asyncio.gather(a, b, c, d)

    try:
        jobs, outs = asyncio.run(scenario())
        assert jobs == 1
        # (The submitter's own batch window may still put A and B in one job on a slow
        # machine: the gateway's releases are what is asserted.)
        assert server.stats()["jobs_created"] in (3, 4)
        assert [[r.get_counts() for r in out] for out in outs] == [
            [{format(v, "04b"): 16}] for v in (2, 3, 4, 5)
        ]
        assert outs[2][0].job_id == outs[3][0].job_id != outs[0][0].job_id
        stats = asyncio.run(gw.stats())["gateway"]
        assert stats["rounds"] == 4 and stats["requests_failed"] == 0
    finally:
        gw._sub.close()
        server.stop()


def test_nagle_with_a_job_budget_waits_for_enough_calls_per_submission(monkeypatch, tmp_path):
    server = LocalServer(profile="instant", api_key=KEY, seed=1, queue_wait=0.3, inline_execution=False)
    server.start()
    # job_budget=0.5: a submission waits for 2 calls (each earns half a job).
    gw = _round_gateway(tmp_path, monkeypatch, server, round_jobs=2, release="nagle", job_budget=0.5)

    async def scenario():
        await asyncio.gather(*(gw.submit(rid(), [body(1)], SETTINGS, c) for c in "ABCD"))
        rounds = (await gw.stats())["gateway"]["rounds"]
        a = asyncio.ensure_future(gw.submit(rid(), [body(2)], SETTINGS, "A"))
        await asyncio.sleep(0.1)
        held = not a.done() and gw._in_flight == 0  # nothing in flight, yet A waits for a mate
        b = asyncio.ensure_future(gw.submit(rid(), [body(3)], SETTINGS, "B"))
        c = asyncio.ensure_future(gw.submit(rid(), [body(4)], SETTINGS, "C"))
        d = asyncio.ensure_future(gw.submit(rid(), [body(5)], SETTINGS, "D"))
        return rounds, held, await asyncio.gather(a, b, c, d), (await gw.stats())["gateway"]["rounds"]

    try:
        before, held, outs, after = asyncio.run(scenario())
        assert held
        assert before == 1 and after - before == 2  # A+B, then C+D
        # (A+B and C+D are two releases; the submitter's batch window may put them in
        # one job.)
        assert outs[0][0].job_id == outs[1][0].job_id and outs[2][0].job_id == outs[3][0].job_id
        assert [[r.get_counts() for r in out] for out in outs] == [[{format(v, "04b"): 16}] for v in (2, 3, 4, 5)]
    finally:
        gw._sub.close()
        server.stop()
