"""Runs of an unchanged app agree: three dynamic analyses of one corpus app, each on a fresh start of the app by the
app runner (new ports every time), give the same fingerprints, so a diff of two of them is 0 new, 0 fixed. And a
finding's proof, sent again to a fresh start of the app, still holds, while on the fixed twin it does not."""

from __future__ import annotations

from collections import Counter

import msgspec
import pytest

from services.analyzers.dynamic.canary import Canary
from services.analyzers.dynamic.expectations import Expectation
from services.analyzers.dynamic.resend import Replayed, resend
from services.analyzers.running_app.client import http_client
from services.analyzers.running_app.targets import target_sites
from shared.operations.app_env import CANARY_PORT_KEY
from shared.operations.config import Settings
from shared.operations.target_policy import target_policy
from shared.results.findings import Finding
from shared.wire.catalog import TOOLS_BY_SERVICE
from tests.support.apps import needs_bwrap
from tests.support.corpus import analyze, with_running

pytestmark = needs_bwrap
# Every dynamic tool but wapiti (its own test) and endpoints (the corpus pair ships no requirements.json).
TOOLS = [tool for tool in TOOLS_BY_SERVICE["dynamic"] if tool not in ("wapiti", "endpoints")]


async def test_three_runs_of_an_unchanged_app_give_identical_fingerprints(
    corpus_analyzer: str, corpus_settings: Settings
) -> None:
    runs = [await analyze(corpus_analyzer, corpus_settings, "idor-fastapi", 1, TOOLS) for _ in range(3)]
    prints = [Counter(f.fingerprint for f in run.findings) for run in runs]
    assert all(run.status == "success" for run in runs), [
        [(t.tool, t.status, t.reason) for t in r.tools if t.status != "success"] for r in runs
    ]
    differing = {fp for fp in set().union(*prints) if len({p[fp] for p in prints}) > 1}
    assert prints[0] and not differing, [
        sorted((f.tool, f.rule_id, f.message) for f in run.findings if f.fingerprint in differing)
        for run in runs
    ]
    new, fixed = (
        prints[1] - prints[0],
        prints[0] - prints[1],
    )  # the diff's multisets (services/gateway/api/tasks/diffs.py)
    assert (sum(new.values()), sum(fixed.values())) == (0, 0)
    assert {f.tool for f in runs[0].findings} >= {"idor", "brute-force", "security-headers"}
    assert {f.rule_id: f.severity for f in runs[0].findings if f.tool == "idor"} == {"idor-read": "high"}


async def _replayed(settings: Settings, pair: str, app: int, finding: Finding) -> Replayed:
    assert finding.proof is not None
    expectation = msgspec.convert(finding.extra["replay"], Expectation)

    async def work(urls: list[str], ports: dict[str, int]) -> Replayed:
        env = {key: str(port) for key, port in ports.items()}
        canary = Canary(f"http://127.0.0.1:{ports[CANARY_PORT_KEY]}") if CANARY_PORT_KEY in ports else None
        async with http_client(target_policy(settings, env), timeout_s=30.0) as client:
            return await resend(client, target_sites(urls, env), finding.proof, expectation, canary)  # type: ignore[arg-type]

    result: Replayed = await with_running(settings, pair, app, work)
    return result


@pytest.mark.parametrize(
    ("pair", "tool"), [("sqli-flask", "sqli"), ("idor-fastapi", "idor"), ("ssrf-fastapi", "ssrf")]
)
async def test_a_proof_sent_again_holds_on_the_app_and_not_on_its_fix(
    corpus_analyzer: str, corpus_settings: Settings, pair: str, tool: str
) -> None:
    result = await analyze(corpus_analyzer, corpus_settings, pair, 1, ["surface", tool])
    (finding,) = [f for f in result.findings if f.tool == tool]
    again = await _replayed(corpus_settings, pair, 1, finding)
    assert again.holds, again
    assert len(again.statuses) == len(finding.proof.exchanges)  # type: ignore[union-attr]
    assert not (await _replayed(corpus_settings, pair, 2, finding)).holds
