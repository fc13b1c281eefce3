"""Open redirect (CWE-601): an input decides where the app redirects, and a URL of another site is followed as
given. Inputs whose name says so (`next`, `url`, `redirect` …) or whose value the ordinary answer's `Location`
repeats are sent an outside URL in several spellings (absolute, scheme-relative, backslash); the answer must be a
redirect whose `Location` leads to that site. Redirects are never followed."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin, urlsplit

from services.analyzers.dynamic.attack_tool import AttackTool, anchor, first_hit
from services.analyzers.dynamic.attacker import Attacker, Sent
from services.analyzers.dynamic.attacks import default_value
from services.analyzers.dynamic.expectations import HeaderContains
from services.analyzers.dynamic.proof import attack_finding, make_proof
from services.analyzers.dynamic.recon import Recon
from shared.findings import Finding

CWE = "CWE-601"
ELSEWHERE = "assay-redirect.invalid"
PAYLOADS = (
    f"https://{ELSEWHERE}/x",
    f"//{ELSEWHERE}/x",
    f"/\\{ELSEWHERE}/x",
    f"https:{ELSEWHERE}/x",
    f"/%2f{ELSEWHERE}/x",
)
REDIRECT_NAMES = re.compile(
    r"next|url|uri|redirect|return|continue|dest|destination|goto|target|to$|^r$|^u$|callback|forward|back|location|link",
    re.IGNORECASE,
)
WHY = "the app answered with a redirect to the other site named in the input: a link on the app's own address sends its users wherever an attacker wants"


def leads_elsewhere(sent: Sent) -> str | None:
    """The Location of a redirect answer when it leads to ELSEWHERE (as a browser resolves it)."""
    location = sent.answer.header("location")
    if location is None or sent.status is None or not 300 <= sent.status < 400:
        return None
    resolved = urljoin(sent.answer.url, location.replace("\\", "/"))
    return location if (urlsplit(resolved).hostname or "") == ELSEWHERE else None


class OpenRedirect(AttackTool):
    name = "open-redirect"
    cwe = CWE

    async def attack(
        self, recon: Recon, attacker: Attacker, findings: list[Finding], metrics: dict[str, Any]
    ) -> None:
        async for reached, point in self.insertion_points(
            recon, attacker, ("query", "form", "json"), skip_auth=False
        ):
            location = reached.baseline.answer.header("location") or ""
            if not REDIRECT_NAMES.search(point.field.name) and default_value(point.field) not in location:
                continue
            hit = await first_hit(attacker, reached, point, list(PAYLOADS), leads_elsewhere)
            if hit is None:
                continue
            findings.append(
                attack_finding(
                    tool=self.name,
                    rule_id="open-redirect",
                    severity="medium",
                    message=f"Open redirect through the {point.label}: {hit.payload!r} answers HTTP {hit.sent.status} to {hit.evidence}",
                    cwe=CWE,
                    endpoint=reached.endpoint,
                    anchor=anchor(point),
                    proof=make_proof([hit.sent], hit.evidence, WHY),
                    expectation=HeaderContains(exchange=0, header="location", text=ELSEWHERE),
                    extra={
                        "parameter": point.field.name,
                        "location": point.field.location,
                        "payload": hit.payload,
                    },
                )
            )
