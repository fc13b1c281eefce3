"""Cross-site request forgery (CWE-352): a state-changing request that a logged-in user's browser would send from
another site is accepted. The session must ride on a cookie without `SameSite=Lax/Strict` (else no browser sends
it cross-site), the endpoint must refuse the same request without the cookie (so the cookie is what authorizes it),
and the request is one a foreign page can send without a preflight: a form body (or `text/plain`), `Origin` and
`Referer` of another site, no token, no custom header."""

from __future__ import annotations

from typing import Any

import msgspec

from services.analyzers.dynamic.attack_tool import AttackTool, attackable
from services.analyzers.dynamic.attacker import Attacker
from services.analyzers.dynamic.attacks import Attack, build
from services.analyzers.dynamic.expectations import Accepted
from services.analyzers.dynamic.proof import attack_finding, make_proof
from services.analyzers.dynamic.recon import Recon
from services.analyzers.dynamic.users import Session, is_login, is_register
from shared.results.findings import Finding

CWE = "CWE-352"
OTHER_SITE = "https://evil.example"
TOKEN_NAMES = ("csrf", "xsrf", "_token", "authenticity")
WHY = "with only the user's cookie, and the Origin of another site, the app accepted a state-changing request it refuses without the cookie; the cookie has no SameSite limit, so any page the user visits can send it"


def cross_site_cookies(session: Session) -> dict[str, str]:
    """The session's cookies a browser would send on a cross-site POST: those set without SameSite Lax/Strict."""
    sent: dict[str, str] = {}
    for exchange in session.made_by:
        for header in exchange.answer.header_list("set-cookie"):
            name = header.split("=", 1)[0].strip()
            attributes = header.lower().replace(" ", "")
            if (
                name in session.cookies
                and "samesite=lax" not in attributes
                and "samesite=strict" not in attributes
            ):
                sent[name] = session.cookies[name]
    return sent


def forged(attack: Attack, cookies: dict[str, str], body_type: str) -> Attack:
    """`attack` as another site's page would send it: the cookies, a simple body, that site's Origin and Referer."""
    headers = {"Origin": OTHER_SITE, "Referer": OTHER_SITE + "/", "Content-Type": body_type}
    if cookies:
        headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    return msgspec.structs.replace(attack, headers=headers)


class Csrf(AttackTool):
    name = "csrf"
    cwe = CWE

    async def attack(
        self, recon: Recon, attacker: Attacker, findings: list[Finding], metrics: dict[str, Any]
    ) -> None:
        session = next((s for s in recon.sessions if s.cookies), None)
        if session is None:
            metrics["skipped"] = "no user session held in a cookie: nothing for another site to ride on"
            return
        cookies = cross_site_cookies(session)
        metrics["cross_site_cookies"] = sorted(cookies)
        if not cookies:
            return
        for endpoint in attackable(recon):
            if (
                endpoint.method == "GET"
                or is_login(endpoint)
                or is_register(endpoint)
                or endpoint.target != "backend"
            ):
                continue
            if any(token in f.name.lower() for f in endpoint.fields for token in TOKEN_NAMES):
                continue
            for body_type in ("application/x-www-form-urlencoded", "text/plain"):
                plain = build(endpoint, body_kind="form" if body_type != "text/plain" else "json")
                anonymous = await attacker.send(forged(plain, {}, body_type))
                if anonymous.status not in (401, 403) and not (
                    anonymous.status in (301, 302, 303)
                    and "login" in (anonymous.answer.header("location") or "")
                ):
                    break  # the endpoint does not depend on the cookie (or refuses this body anyway)
                riding = await attacker.send(forged(plain, cookies, body_type))
                if (
                    riding.status is None
                    or not 200 <= riding.status < 400
                    or riding.status in (301, 302, 303)
                    and "login" in (riding.answer.header("location") or "")
                ):
                    continue
                findings.append(
                    attack_finding(
                        tool=self.name,
                        rule_id="csrf",
                        severity="medium",
                        message=f"{endpoint.method} {endpoint.path} accepts a cross-site {body_type} request riding on the session cookie (HTTP {riding.status}; HTTP {anonymous.status} without it), with no token and no SameSite",
                        cwe=CWE,
                        endpoint=endpoint,
                        anchor="csrf",
                        proof=make_proof([*session.made_by, anonymous, riding], f"HTTP {riding.status}", WHY),
                        expectation=Accepted(
                            exchanges=[len(session.made_by) + 1], statuses=list(range(200, 300))
                        ),
                        extra={"cookies": sorted(cookies), "content_type": body_type},
                    )
                )
                break
