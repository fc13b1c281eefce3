"""Open redirect (CWE-601): an input decides where the app redirects, and a URL of another site is followed as
given. Inputs whose name says so (`next`, `url`, `redirect` …) or whose value the ordinary answer's `Location`
repeats are sent an outside URL in several spellings (absolute, scheme-relative, backslash); the answer must be a
redirect whose `Location` leads to that site. Redirects are never followed."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

from services.analyzers.dynamic.attack_tool import PointCheck, Reach, first_hit
from services.analyzers.dynamic.attacker import Attacker, Sent
from services.analyzers.dynamic.attacks import Point, default_value
from services.analyzers.dynamic.expectations import HeaderContains
from services.analyzers.dynamic.proof import make_proof
from shared.results.findings import Finding

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


class OpenRedirect(PointCheck):
    name = "open-redirect"
    cwe = CWE
    locations = ("query", "form", "json")
    skip_auth = False  # a log-in route's `next` is the classic case

    async def probe(
        self, attacker: Attacker, reached: Reach, point: Point, *, in_path: bool = False
    ) -> Finding | None:
        location = reached.baseline.answer.header("location") or ""
        if not REDIRECT_NAMES.search(point.field.name) and default_value(point.field) not in location:
            return None
        hit = await first_hit(attacker, reached, point, list(PAYLOADS), leads_elsewhere)
        if hit is None:
            return None
        return self.point_finding(
            reached,
            point,
            rule_id="open-redirect",
            severity="medium",
            message=f"Open redirect through the {point.label}: {hit.payload!r} answers HTTP {hit.sent.status} to {hit.evidence}",
            proof=make_proof([hit.sent], hit.evidence, WHY),
            expectation=HeaderContains(exchange=0, header="location", text=ELSEWHERE),
            payload=hit.payload,
        )
