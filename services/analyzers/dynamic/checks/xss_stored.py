"""Stored cross-site scripting (CWE-79): an input an app keeps comes back, later and to other users, as markup a
browser runs. Each text field of each state-changing route is given its own marker inside markup; then every page
the app serves as HTML (its GET routes and the crawled pages) is read, and a marker found in an executable context
of the parsed page (an element or attribute it created, an event handler) names the route and field that stored
it."""

from __future__ import annotations

from typing import Any

from services.analyzers.dynamic.attack_tool import AttackTool, attackable, reach
from services.analyzers.dynamic.attacker import Attacker, Sent
from services.analyzers.dynamic.attacks import Point, build, points
from services.analyzers.dynamic.checks.xss_reflected import is_html, marker
from services.analyzers.dynamic.expectations import Executable
from services.analyzers.dynamic.html_context import executable_context
from services.analyzers.dynamic.proof import attack_finding, make_proof
from services.analyzers.dynamic.recon import Recon
from services.analyzers.dynamic.users import is_login, is_register
from shared.results.findings import Finding

CWE = "CWE-79"
FORM = "<{m} data-assay=1>"
WHY = "text stored through one route comes back in a page of the app as markup ({context}): every user who opens the page runs what the attacker stored"


class StoredXss(AttackTool):
    name = "xss-stored"
    cwe = CWE

    async def attack(
        self, recon: Recon, attacker: Attacker, findings: list[Finding], metrics: dict[str, Any]
    ) -> None:
        stored: dict[str, tuple[Point, Sent]] = {}
        for endpoint in attackable(recon):
            if endpoint.method not in ("POST", "PUT", "PATCH") or is_login(endpoint) or is_register(endpoint):
                continue
            reached = await reach(attacker, recon, endpoint)
            if reached is None:
                continue
            text = [p for p in points(endpoint, ("json", "form", "query")) if p.field.type == "string"]
            if not text:
                continue
            marks = {(p.field.name, p.field.location): marker() for p in text}
            sent = await attacker.send(
                reached.attack({key: FORM.format(m=mark) for key, mark in marks.items()})
            )
            if sent.status is None or sent.status >= 400:
                continue
            for p in text:
                stored[marks[(p.field.name, p.field.location)]] = (p, sent)
        metrics["stored"] = len(stored)
        if not stored:
            return
        reported: set[tuple[str, str]] = set()
        for page in await self.pages(recon, attacker):
            if not is_html(page):
                continue
            for mark, (point, store) in stored.items():
                context = executable_context(page.text, mark)
                key = (point.endpoint.path, point.field.name)
                if context is None or key in reported:
                    continue
                reported.add(key)
                findings.append(
                    attack_finding(
                        tool=self.name,
                        rule_id="xss-stored",
                        severity="high",
                        message=f"Stored XSS: the {point.label} comes back in {page.attack.method} {page.attack.path.split('?', 1)[0]} as {context}",
                        cwe=CWE,
                        endpoint=point.endpoint,
                        anchor=f"{point.field.location}:{point.field.name}",
                        proof=make_proof([store, page], mark, WHY.format(context=context)),
                        expectation=Executable(exchange=1, marker=mark),
                        extra={
                            "parameter": point.field.name,
                            "location": point.field.location,
                            "shown_at": page.attack.path,
                        },
                    )
                )

    async def pages(self, recon: Recon, attacker: Attacker) -> list[Sent]:
        """Every GET route of the surface (parameters at their plain values), anonymously and as user A."""
        pages = []
        sessions = [None, *recon.sessions[:1]]
        for endpoint in attackable(recon):
            if endpoint.method != "GET":
                continue
            for session in sessions:
                pages.append(
                    await attacker.send(
                        build(
                            endpoint,
                            headers=session.headers if session else None,
                            cookies=session.cookies if session else None,
                        )
                    )
                )
        return pages
