"""The gateway's ``release="pipeline"`` policy: cohorts take turns (no Ray needed).

The decision function is checked case by case; the gateway itself runs on a private
event loop against the real local server. Counts and order only, never times.
"""

from __future__ import annotations

import asyncio

import pytest

from qstore_qiskit.gateway.identity import key_fingerprint
from qstore_qiskit.gateway.ray_gateway import QStoreGateway
from qstore_qiskit.gateway.release import DEFAULT_RELEASE, RELEASES, pipeline_groups, pipeline_quorum, should_release
from qstore_qiskit.server import LocalServer

from .payloads import SETTINGS, body, rid

KEY = "pipeline-test-key-" + "5eed" * 8


def decide(held, flying=(), lingering=(), in_flight=0, depth=2, quorum=1, back=(), mode="pipeline") -> bool:
    """Whether held calls of one settings group go out. ``flying``: callers waiting for
    results; ``back``: callers whose results are back, still inside the gateway."""
    busy = set(flying) | set(held) | set(back)
    if mode != "pipeline":
        return should_release(mode, held=set(held), busy=busy, lingering=set(lingering), in_flight=in_flight,
                              depth=depth, quorum=quorum, calls_held=len(held))
    ready = pipeline_groups({"k": list(held)}, busy=busy, lingering=set(lingering), flying=set(flying),
                            in_flight=in_flight, depth=depth, quorum=quorum)
    return ready == ["k"]


def test_pipeline_is_the_default_and_a_cohort_is_a_share_of_the_active_callers():
    assert DEFAULT_RELEASE == "pipeline" and DEFAULT_RELEASE in RELEASES
    assert [pipeline_quorum(n, 2) for n in (1, 2, 3, 7, 8, 9)] == [1, 1, 2, 4, 4, 5]
    assert pipeline_quorum(8, 4) == 2 and pipeline_quorum(8, 1) == 8
    assert pipeline_quorum(8, 4, least=4) == 4  # a job budget's calls per submission


def test_pipeline_decisions():
    other = ["E", "F", "G", "H"]  # the other cohort, waiting for its results
    # A whole cohort while the other cohort's job runs: go (queued behind it).
    assert decide("ABCD", flying=other, in_flight=1)
    # Round mode waits for the callers in flight as well.
    assert not decide("ABCD", flying=other, in_flight=1, mode="round")
    # Three of the cohort, the fourth computing (served lately): wait for it...
    assert not decide("ABC", flying=other, lingering="D", in_flight=1)
    # ...but not once every caller that is not waiting for results is in.
    assert decide("ABC", flying=other, in_flight=1)
    # Depth reached: nothing goes, even everyone's calls (the machine has work queued).
    assert not decide("ABCD", flying=other, in_flight=2)
    assert not decide("ABCDEFGH", in_flight=2)
    # Nobody in flight and everybody in: one release for all of them.
    assert decide("ABCDEFGH", in_flight=0)
    # The other cohort came back and is computing: a cohort still goes without it.
    assert decide("ABCD", lingering=other, in_flight=0)
    assert not decide("ABC", lingering=["D", *other], in_flight=0)
    # Results back but the callers not out of the gateway yet: they are waited for too.
    assert not decide("A", back="BCDEF", in_flight=0)
    assert decide("ABC", back="DEF", in_flight=0)
    # A job budget of 1/5 per call: a release waits for 5 calls.
    assert not decide("ABCD", flying=other, in_flight=1, quorum=5, lingering="I")
    # nagle: the quorum alone, while a slot is free.
    assert decide("A", flying="BC", in_flight=1, mode="nagle")
    assert not decide("A", flying="BC", in_flight=2, mode="nagle")


def test_pipeline_releases_groups_of_equal_settings_that_hold_a_cohort():
    # Two cohorts in different phases of their work (e.g. forward and gradient calls,
    # which cannot share a job) are back at once: each group goes when it holds a
    # cohort, largest first, at most the free slots; a group short of its cohort waits.
    groups = {"forward": ["A", "B", "C", "D"], "gradient": ["E", "F", "G"]}
    common = {"busy": set("ABCDEFGH"), "lingering": set(), "flying": set()}
    assert pipeline_groups(groups, in_flight=0, depth=2, **common) == ["forward"]
    # I is computing: 9 active callers, cohorts of 3 with depth 3.
    common["lingering"] = {"I"}
    assert pipeline_groups(groups, in_flight=2, depth=3, **common) == ["forward"]
    assert pipeline_groups(groups, in_flight=1, depth=3, **common) == ["forward", "gradient"]
    assert pipeline_groups(groups, in_flight=3, depth=3, **common) == []
    # Everybody in: every group goes, whatever its size.
    assert sorted(pipeline_groups({"x": ["A"], "y": ["B", "C"]}, busy={"A", "B", "C"}, lingering=(), flying=(),
                                  in_flight=1, depth=2)) == ["x", "y"]


@pytest.fixture
def pipeline(monkeypatch, tmp_path):
    def make(profile: str = "instant", **kwargs) -> tuple[QStoreGateway, LocalServer]:
        server = LocalServer(profile=profile, api_key=KEY, seed=1)
        server.start()
        made.append((server, None))
        monkeypatch.setenv("IONQ_API_KEY", KEY)
        options = {"round_jobs": 2, "release": "pipeline", **kwargs}
        gw = QStoreGateway(server.url, key_fingerprint(server.url, KEY), str(tmp_path), None, 0.5, 5.0, **options)
        made[-1] = (server, gw)
        return gw, server

    made: list = []
    try:
        yield make
    finally:
        for server, gw in made:
            if gw is not None:
                gw._sub.close()
            server.stop()


def test_a_cohort_goes_without_waiting_for_the_callers_just_served(pipeline):
    gw, server = pipeline()

    async def scenario():
        first = await asyncio.gather(*(gw.submit(rid(), [body(i)], SETTINGS, c) for i, c in enumerate("ABCD")))
        jobs = server.stats()["jobs_created"]
        # A and B are back at once, C and D (served as long ago, linger 5 s) are still
        # computing: A and B are a cohort (4 callers / round_jobs 2) and go alone, where
        # release="round" would hold them for C and D.
        ab = await asyncio.wait_for(
            asyncio.gather(gw.submit(rid(), [body(5), body(6)], SETTINGS, "A"), gw.submit(rid(), [body(7)], SETTINGS, "B")),
            30,
        )
        jobs_ab = server.stats()["jobs_created"]
        cd = await asyncio.gather(gw.submit(rid(), [body(8)], SETTINGS, "C"), gw.submit(rid(), [body(9)], SETTINGS, "D"))
        return first, jobs, ab, jobs_ab, cd

    first, jobs, ab, jobs_ab, cd = asyncio.run(scenario())
    assert jobs == 1  # the four callers' first calls: one round, one job
    assert jobs_ab == 2 and server.stats()["jobs_created"] == 3  # then a job per cohort
    assert [[r.get_counts() for r in out] for out in first] == [[{format(i, "04b"): 16}] for i in range(4)]
    assert [[(r.name, r.circuit_index) for r in out] for out in ab] == [[("v5", 0), ("v6", 1)], [("v7", 0)]]
    assert [[r.get_counts() for r in out] for out in cd] == [[{"1000": 16}], [{"1001": 16}]]
    stats = asyncio.run(gw.stats())["gateway"]
    assert stats["rounds"] == 3 and stats["requests_failed"] == 0


def test_cohorts_take_turns_with_at_most_round_jobs_submissions_in_flight(pipeline):
    # The qpu profile: one job at a time on the machine, so jobs stay in flight long
    # enough for the callers to meet a full pipeline.
    gw, server = pipeline("qpu")
    callers, calls = "ABCDEF", 4

    async def caller(index: int, client: str) -> list:
        outs = []
        for k in range(calls):
            value = (index * calls + k) % 16
            outs.append(await gw.submit(rid(), [body(value), body(15 - value)], SETTINGS, client))
        return outs

    async def scenario():
        return await asyncio.wait_for(asyncio.gather(*(caller(i, c) for i, c in enumerate(callers))), 120)

    outs = asyncio.run(scenario())
    for i, per_caller in enumerate(outs):
        for k, out in enumerate(per_caller):
            value = (i * calls + k) % 16
            assert [r.get_counts() for r in out] == [{format(value, "04b"): 16}, {format(15 - value, "04b"): 16}]
    stats = asyncio.run(gw.stats())["gateway"]
    requests = len(callers) * calls
    assert stats["requests"] == requests and stats["requests_failed"] == 0
    assert 1 <= stats["most_in_flight"] <= 2  # round_jobs = 2: one job running, one queued
    jobs = server.jobs()
    # Each release is one job of its own, carrying a cohort: 6 callers / 2 = 3 calls, 6
    # circuits (the last calls of the sweep may go with fewer).
    assert len(jobs) == stats["rounds"]
    assert sum(j["circuits"] for j in jobs) == 2 * requests
    assert len(jobs) <= requests // 3 + 1
    assert sum(j["circuits"] >= 6 for j in jobs) >= len(jobs) - 1
    machine = server.stats()["machines"]["simulator"]
    assert machine["executed"] == len(jobs) and machine["max_running"] == 1


def test_without_rounds_the_submitter_still_coalesces_pipeline_calls(monkeypatch, tmp_path):
    # gather_window=0: no rounds, every call goes to the submitter at once, and calls
    # within its batch window share a job (pipeline releases are exclusive only when the
    # gateway gathers them itself).
    server = LocalServer(profile="instant", api_key=KEY, seed=1)
    server.start()
    monkeypatch.setenv("IONQ_API_KEY", KEY)
    gw = QStoreGateway(server.url, key_fingerprint(server.url, KEY), str(tmp_path), {"batch_window": 0.2}, 0.0, 5.0,
                       release="pipeline")
    try:
        async def scenario():
            return await asyncio.gather(*(gw.submit(rid(), [body(i)], SETTINGS, c) for i, c in enumerate("AB")))

        outs = asyncio.run(scenario())
        assert [[r.get_counts() for r in out] for out in outs] == [[{"0000": 16}], [{"0001": 16}]]
        assert server.stats()["jobs_created"] == 1
    finally:
        gw._sub.close()
        server.stop()
