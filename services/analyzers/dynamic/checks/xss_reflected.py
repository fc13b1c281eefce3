"""Reflected cross-site scripting (CWE-79): an input comes back in an HTML answer as markup a browser would run. A
unique marker is sent inside markup that opens an element, breaks out of a quoted attribute, or makes a
`javascript:` URL; only when the parsed answer has the marker in an executable context (an element or attribute it
created, an event handler, a `javascript:` URL) does it count, never as escaped or inert text. The not-found page
counts as an insertion point too."""

from __future__ import annotations

import secrets
import string
from urllib.parse import quote

from services.analyzers.dynamic.attack_tool import PointCheck, Reach, first_hit
from services.analyzers.dynamic.attacker import Attacker, Sent
from services.analyzers.dynamic.attacks import Point
from services.analyzers.dynamic.expectations import Executable
from services.analyzers.dynamic.html_context import executable_context
from services.analyzers.dynamic.proof import make_proof
from shared.results.findings import Finding

CWE = "CWE-79"
FORMS = ("'\"><{m}>", '" {m}="1', "' {m}='1", "<{m}>", "javascript:{m}()")
WHY = "the input came back as markup: the parsed HTML answer has the marker in {context}, where a browser runs what an attacker's link puts there"


def marker() -> str:
    """A marker that is a valid element and attribute name, and unlikely anywhere else: letters only."""
    return "xss" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(8))


def is_html(sent: Sent) -> bool:
    kind = sent.answer.content_type
    return kind in ("text/html", "application/xhtml+xml") or kind == "" and sent.text.lstrip().startswith("<")


class ReflectedXss(PointCheck):
    name = "xss-reflected"
    cwe = CWE
    not_found_page = True
    locations = ("query", "path", "form", "json", "header", "cookie")

    async def probe(
        self, attacker: Attacker, reached: Reach, point: Point, *, in_path: bool = False
    ) -> Finding | None:
        mark = marker()
        payloads = [form.format(m=mark) for form in FORMS]
        if in_path:
            payloads = ["/" + quote(p, safe="") for p in payloads[:2]]

        def evidence(sent: Sent) -> str | None:
            return executable_context(sent.text, mark) if is_html(sent) else None

        hit = await first_hit(attacker, reached, point, payloads, evidence, in_path=in_path)
        if hit is None:
            return None
        where = "path of a page the app does not route" if in_path else point.label
        return self.point_finding(
            reached,
            point,
            rule_id="xss-reflected",
            severity="high",
            message=f"Reflected XSS in the {where}: the marker lands in {hit.evidence}",
            proof=make_proof([hit.sent], mark, WHY.format(context=hit.evidence)),
            expectation=Executable(exchange=0, marker=mark),
            payload=hit.payload,
            in_path=in_path,
        )
