"""Every pair of the flaw corpus a pattern tool can see, scanned by the static analyzer's security tools for real:
each line of the flaw (flaw.json `static`) is covered by a finding of its weakness family (and of the named rule,
where one is named) on the vulnerable app, and the fixed twin has no finding of that family at all."""

from __future__ import annotations

import asyncio

import pytest

from shared.wire.protocol import ServiceResult
from tests.support.corpus import CORPUS, flaw, pairs
from tests.support.static_corpus import covers, missed, scan_all, twin_noise


@pytest.fixture(scope="module")
def scans() -> dict[tuple[str, int], ServiceResult]:
    """Every pair's two apps, scanned at once as a study's tasks are (each app's result is its own run's)."""
    return asyncio.run(scan_all(pairs("static")))


@pytest.mark.parametrize("pair", pairs("static"))
def test_each_statically_visible_flaw_is_found_and_its_twin_is_silent(
    pair: str, scans: dict[tuple[str, int], ServiceResult]
) -> None:
    spec = flaw(pair)
    vulnerable, fixed = scans[pair, 1], scans[pair, 2]

    assert missed(spec, vulnerable.findings) == [], [
        (f.tool, f.rule_id, f.cwe, f.path, f.line) for f in vulnerable.findings if f.category == "security"
    ]
    for sink in spec.static:
        if sink.rule:
            named = {f"{f.tool}:{f.rule_id}" for f in vulnerable.findings if covers(f, sink)}
            assert sink.rule in named, named
    assert [(f.tool, f.rule_id, f.path, f.line) for f in twin_noise(spec, fixed.findings)] == []


def test_static_only_pairs_exist_for_each_framework() -> None:
    static_only = [pair for pair in pairs() if flaw(pair).dynamic is None]
    assert {flaw(pair).framework for pair in static_only} >= {"flask", "fastapi", "express"}
    for pair in static_only:
        assert flaw(pair).static, pair
        assert (CORPUS / pair / "app1").is_dir() and (CORPUS / pair / "app2").is_dir()
