"""Server-side template injection (CWE-1336): an input rendered as a template evaluates an arithmetic expression in
the syntax of the common engines (Jinja2/Twig/Nunjucks `{{ }}`, Mako/FreeMarker/template literals `${ }`, EJS/ERB
`<% %>`, Pug `#{ }`, Thymeleaf `*{ }`): the product of two random numbers comes back, which neither the ordinary
value nor the literal input holds. Confirmed with a second pair of numbers. The not-found page counts as an
insertion point too (`GET /{{…}}`)."""

from __future__ import annotations

import secrets
from urllib.parse import quote

from services.analyzers.dynamic.attack_tool import PointCheck, Reach, first_hit
from services.analyzers.dynamic.attacker import Attacker, Sent
from services.analyzers.dynamic.attacks import Point
from services.analyzers.dynamic.expectations import Contains
from services.analyzers.dynamic.proof import make_proof
from shared.results.findings import Finding

CWE = "CWE-1336"
SYNTAXES = ("{{%s}}", "${%s}", "<%%= %s %%>", "#{%s}", "*{%s}", "{{= %s}}", "{%s}")
WHY = "the app evaluated the arithmetic in the input as a template expression and sent back its result, which the input itself does not contain: a template engine runs what users send (code execution on the server)"


def _numbers() -> tuple[int, int]:
    return 1000 + secrets.randbelow(8000), 1000 + secrets.randbelow(8000)


class TemplateInjection(PointCheck):
    name = "ssti"
    cwe = CWE
    not_found_page = True

    async def probe(
        self, attacker: Attacker, reached: Reach, point: Point, *, in_path: bool = False
    ) -> Finding | None:
        a, b = _numbers()
        product = str(a * b)
        payloads = [syntax % f"{a}*{b}" for syntax in SYNTAXES]
        if in_path:
            payloads = ["/assay" + quote(p, safe="") for p in payloads]

        def evidence(sent: Sent) -> str | None:
            return product if product in sent.text else None

        hit = await first_hit(attacker, reached, point, payloads, evidence, in_path=in_path)
        if hit is None:
            return None
        c, d = _numbers()
        syntax = SYNTAXES[payloads.index(hit.payload)]
        second = syntax % f"{c}*{d}"
        key = (point.field.name, point.field.location)
        again = await attacker.send(
            reached.attack(None, raw_path="/assay" + quote(second, safe=""))
            if in_path
            else reached.attack({key: second})
        )
        if str(c * d) not in again.text:
            return None
        where = "path of a page the app does not route" if in_path else point.label
        return self.point_finding(
            reached,
            point,
            rule_id="ssti",
            severity="critical",
            message=f"Server-side template injection in the {where}: {second!r} comes back as {c * d}",
            proof=make_proof([reached.baseline, again], str(c * d), WHY),
            expectation=Contains(exchange=1, text=str(c * d), control=0),
            payload=second,
            in_path=in_path,
        )
