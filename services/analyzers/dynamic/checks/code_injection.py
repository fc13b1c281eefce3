"""Code injection (CWE-94, eval of input): an input evaluated as Python or JavaScript runs an expression only a
language's evaluator computes: a function call building a string from arithmetic (`str(a*b)+'tag'`,
`String(a*b)+'tag'`), plain and breaking out of a quoted string. A calculator that only parses arithmetic computes
none of these; the input itself holds neither the product nor the joined string."""

from __future__ import annotations

import secrets

from services.analyzers.dynamic.attack_tool import PointCheck, Reach
from services.analyzers.dynamic.attacker import Attacker
from services.analyzers.dynamic.attacks import Point
from shared.results.findings import Finding

CWE = "CWE-94"
FORMS = (
    "str({a}*{b})+'{t}'",
    "String({a}*{b})+'{t}'",
    "'+str({a}*{b})+'{t}'+'",
    "'+String({a}*{b})+'{t}'+'",
    '"+str({a}*{b})+"{t}"+"',
    '"+String({a}*{b})+"{t}"+"',
)
WHY = "the answer holds the value of a call and an arithmetic expression the input wrote, which the input itself does not contain: the app evaluated the input as code"


class CodeInjection(PointCheck):
    name = "code-injection"
    cwe = CWE

    async def probe(
        self, attacker: Attacker, reached: Reach, point: Point, *, in_path: bool = False
    ) -> Finding | None:
        a, b = 1000 + secrets.randbelow(8000), 1000 + secrets.randbelow(8000)
        tag = "code" + secrets.token_hex(3)
        payloads = [form.format(a=a, b=b, t=tag) for form in FORMS]
        return await self.computed_value(
            attacker,
            reached,
            point,
            payloads,
            f"{a * b}{tag}",
            rule_id="code-injection",
            flaw="Code injection",
            verb="is evaluated to",
            why=WHY,
        )
