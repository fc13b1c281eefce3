"""Code injection (CWE-94, eval of input): an input evaluated as Python or JavaScript runs an expression only a
language's evaluator computes: a function call building a string from arithmetic (`str(a*b)+'tag'`,
`String(a*b)+'tag'`), plain and breaking out of a quoted string. A calculator that only parses arithmetic computes
none of these; the input itself holds neither the product nor the joined string."""

from __future__ import annotations

import secrets

from services.analyzers.dynamic.attack_tool import PointCheck, Reach, first_hit
from services.analyzers.dynamic.attacker import Attacker, Sent
from services.analyzers.dynamic.attacks import Point
from services.analyzers.dynamic.expectations import Contains
from services.analyzers.dynamic.proof import make_proof
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
        expected = f"{a * b}{tag}"

        def evidence(sent: Sent) -> str | None:
            return expected if expected in sent.text else None

        payloads = [form.format(a=a, b=b, t=tag) for form in FORMS]
        hit = await first_hit(attacker, reached, point, payloads, evidence)
        if hit is None:
            return None
        return self.point_finding(
            reached,
            point,
            rule_id="code-injection",
            severity="critical",
            message=f"Code injection in the {point.label}: {hit.payload!r} is evaluated to {expected}",
            proof=make_proof([reached.baseline, hit.sent], expected, WHY),
            expectation=Contains(exchange=1, text=expected, control=0),
            payload=hit.payload,
        )
