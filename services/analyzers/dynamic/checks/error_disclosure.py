"""Stack traces, database errors and debugger pages in answers (CWE-209; an interactive debugger CWE-489).

Each endpoint is sent inputs a careless handler does not expect (text where a number belongs, a lone quote, a
JSON body that does not parse, a list where an object belongs); an answer that shows a stack trace, a database
error or a debugger page the ordinary answer does not, is a finding with that answer as proof. A debugger page is
`high`: with its console it runs code on the server."""

from __future__ import annotations

from typing import Any

import msgspec

from services.analyzers.dynamic.attack_tool import AttackTool, Reach, attackable, reach
from services.analyzers.dynamic.attacker import Attacker, Sent
from services.analyzers.dynamic.attacks import Attack
from services.analyzers.dynamic.checks.signatures import DEBUGGERS, SQL_ERRORS, STACK_TRACES, first_match
from services.analyzers.dynamic.expectations import Contains
from services.analyzers.dynamic.proof import attack_finding, make_proof
from services.analyzers.dynamic.recon import Recon
from shared.results.findings import Finding, Severity

CWE = "CWE-209"
DEBUGGER_CWE = "CWE-489"
ODD_VALUES = ("assay'\"<>", "-1e309", "[]", "%")
ODD_BODIES = ('{"assay": ', "[1, 2]")
WHY = "the answer to an unexpected input shows the app's internals ({what}): file paths, code and queries an attacker uses to aim further attacks"
WHY_DEBUGGER = "the answer is an interactive debugger page ({what}): from its console anyone who reaches it runs code on the server"


def disclosure(text: str) -> tuple[str, str, str] | None:
    """(rule, what, matched text) for the worst thing an answer gives away."""
    for rule, signatures in (
        ("debugger-exposed", DEBUGGERS),
        ("stack-trace-disclosure", STACK_TRACES),
        ("sql-error-disclosure", SQL_ERRORS),
    ):
        found = first_match(text, signatures)
        if found:
            return rule, found[0], found[1]
    return None


def odd_requests(reached: Reach) -> list[Attack]:
    """The endpoint's request with each odd value in every field at once, and JSON bodies a handler does not
    expect (one that does not parse, a list where an object belongs)."""
    fields = {(f.name, f.location): "" for f in reached.endpoint.fields if f.location != "header"}
    attacks = [reached.attack({key: value for key in fields}) for value in ODD_VALUES] if fields else []
    if reached.endpoint.method in ("POST", "PUT", "PATCH"):
        plain = reached.attack()
        headers = {**plain.headers, "Content-Type": "application/json"}
        attacks += [msgspec.structs.replace(plain, headers=headers, body=body) for body in ODD_BODIES]
    return attacks


class ErrorDisclosure(AttackTool):
    name = "error-disclosure"
    cwe = CWE

    async def attack(
        self, recon: Recon, attacker: Attacker, findings: list[Finding], metrics: dict[str, Any]
    ) -> None:
        reported: set[str] = set()
        for endpoint in attackable(recon):
            reached = await reach(attacker, recon, endpoint)
            if reached is None:
                continue
            # the ordinary request may already be enough; else the odd ones, until one shows something
            for sent in [
                reached.baseline,
                *[await attacker.send(attack) for attack in odd_requests(reached)],
            ]:
                found = disclosure(sent.text)
                if found is None:
                    continue
                rule, what, text = found
                if rule not in reported or rule == "stack-trace-disclosure":  # stack traces are per route
                    reported.add(rule)
                    findings.append(self.finding(reached, sent, rule, what, text))
                break

    def finding(self, reached: Reach, sent: Sent, rule: str, what: str, text: str) -> Finding:
        debugger = rule == "debugger-exposed"
        severity: Severity = "high" if debugger else "medium"
        return attack_finding(
            tool=self.name,
            rule_id=rule,
            severity=severity,
            message=f"{reached.endpoint.method} {reached.endpoint.path} answers an unexpected input with {what} (HTTP {sent.status}): {text[:120]}",
            cwe=DEBUGGER_CWE if debugger else CWE,
            endpoint=reached.endpoint,
            anchor=rule,
            proof=make_proof([sent], text, (WHY_DEBUGGER if debugger else WHY).format(what=what)),
            expectation=Contains(exchange=0, text=text),
            extra={"disclosed": what},
        )
