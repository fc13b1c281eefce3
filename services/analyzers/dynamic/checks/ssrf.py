"""Server-side request forgery (CWE-918): an input that names a URL makes the app request it. The URL given is the
marker listener's, with a token of its own; the listener (inside the app's sandbox, or on loopback for an app named
by URL) records the request, which only the app can have made. Inputs whose name or ordinary value says URL or host
are tried; nothing outside the sandbox is ever named."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from collections.abc import AsyncIterator
from typing import Any

from services.analyzers.dynamic.attack_tool import AttackTool, anchor
from services.analyzers.dynamic.attacker import Attacker
from services.analyzers.dynamic.attacks import NEUTRAL_URL
from services.analyzers.dynamic.canary import Canary, local_canary
from services.analyzers.dynamic.expectations import CanaryHit
from services.analyzers.dynamic.proof import attack_finding, make_proof
from services.analyzers.dynamic.recon import Recon
from shared.results.findings import Finding

CWE = "CWE-918"
URL_NAMES = re.compile(
    r"url|uri|link|href|src|source|image|img|avatar|feed|webhook|callback|endpoint|host|target|fetch|proxy|remote|site|domain|server|api",
    re.IGNORECASE,
)
SETTLE_S = 0.5  # time for an app that fetches in the background to reach the listener
WHY = "the marker listener inside the app's sandbox was asked for the token's path right after the input named it: the app itself requested a URL an attacker chose"


@contextlib.asynccontextmanager
async def listener(recon: Recon) -> AsyncIterator[Canary]:
    """The sandbox's listener when the app has one, else one of this process on loopback for the check's time."""
    if recon.canary is not None:
        yield recon.canary
        return
    async with local_canary() as canary:
        yield canary


class Ssrf(AttackTool):
    name = "ssrf"
    cwe = CWE

    async def attack(
        self, recon: Recon, attacker: Attacker, findings: list[Finding], metrics: dict[str, Any]
    ) -> None:
        async with listener(recon) as canary:
            metrics["listener"] = "sandbox" if canary is recon.canary else "loopback"
            async for reached, point in self.insertion_points(
                recon, attacker, ("query", "form", "json", "header")
            ):
                value = reached.value(point)
                if not (
                    URL_NAMES.search(point.field.name) or value == NEUTRAL_URL or value.startswith("http")
                ):
                    continue
                token = f"assay-ssrf-{secrets.token_hex(6)}"
                key = (point.field.name, point.field.location)
                sent = await attacker.send(reached.attack({key: canary.url(token)}))
                hits = await canary.hits(attacker.client)
                if token not in hits:
                    await asyncio.sleep(SETTLE_S)
                    hits = await canary.hits(attacker.client)
                if token not in hits:
                    continue
                echoed = "assay canary" in sent.text
                findings.append(
                    attack_finding(
                        tool=self.name,
                        rule_id="ssrf",
                        severity="high",
                        message=f"Server-side request forgery through the {point.label}: the app requested the URL it was given"
                        + (", and sent back what it got" if echoed else ""),
                        cwe=CWE,
                        endpoint=reached.endpoint,
                        anchor=anchor(point),
                        proof=make_proof([sent], "assay canary" if echoed else "", WHY),
                        expectation=CanaryHit(token=token),
                        extra={
                            "parameter": point.field.name,
                            "location": point.field.location,
                            "payload": canary.url(token),
                            "response_echoed": echoed,
                        },
                    )
                )
