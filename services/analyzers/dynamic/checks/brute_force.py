"""Missing brute-force protection on log-in (CWE-307): a bounded run of failed log-ins for one account (Assay's
own, registered for this check) meets no refusal (HTTP 429), no lock-out and no growing delay, and the right
password still works right after. The number of attempts is small (ATTEMPTS) and the account is Assay's."""

from __future__ import annotations

from typing import Any

import msgspec

from services.analyzers.dynamic.attack_tool import AttackTool
from services.analyzers.dynamic.attacker import Attacker, Sent
from services.analyzers.dynamic.expectations import Accepted
from services.analyzers.dynamic.proof import attack_finding, make_proof
from services.analyzers.dynamic.recon import Recon
from services.analyzers.dynamic.users import ACCEPTED, auth_routes, new_account, submit
from shared.results.findings import Finding

CWE = "CWE-307"
ATTEMPTS = 12
SLOWER_S = 1.0  # a delay that grows by this much between the first and last failure counts as throttling
WHY = "{n} wrong passwords in a row for one account were each answered at once, without a refusal or lock-out, and the right password still worked right after: passwords can be guessed at the speed of the network"


class BruteForce(AttackTool):
    name = "brute-force"
    cwe = CWE

    async def attack(
        self, recon: Recon, attacker: Attacker, findings: list[Finding], metrics: dict[str, Any]
    ) -> None:
        register, login = auth_routes(recon.surface)
        metrics["login"] = f"POST {login.path}" if login else None
        if login is None or register is None:
            metrics["skipped"] = "no sign-up and log-in routes to test with an account of Assay's own"
            return
        account = new_account("c")
        signed_up = await submit(attacker, register, account)
        if signed_up.status not in ACCEPTED:
            metrics["skipped"] = f"signing up answered HTTP {signed_up.status}"
            return
        wrong = msgspec.structs.replace(account, password=account.password + "-wrong")
        failures: list[Sent] = []
        for _ in range(ATTEMPTS):
            sent = await submit(attacker, login, wrong)
            failures.append(sent)
            if sent.status == 429 or sent.answer.header("retry-after") is not None:
                metrics["throttled_after"] = len(failures)
                return
        right = await submit(attacker, login, account)
        slower = failures[-1].elapsed_s - failures[0].elapsed_s
        statuses = sorted({sent.status for sent in failures if sent.status is not None})
        if right.status not in ACCEPTED or slower >= SLOWER_S or not statuses:
            metrics["protected"] = {"final_login": right.status, "slowed_by_s": round(slower, 2)}
            return
        exchanges = [signed_up, *failures, right]
        findings.append(
            attack_finding(
                tool=self.name,
                rule_id="no-brute-force-protection",
                severity="medium",
                message=f"POST {login.path}: {ATTEMPTS} failed log-ins for one account met no refusal, lock-out or delay (answers {statuses}), and the right password worked after them",
                cwe=CWE,
                endpoint=login,
                anchor="login",
                proof=make_proof(exchanges, f"HTTP {right.status}", WHY.format(n=ATTEMPTS)),
                expectation=Accepted(
                    exchanges=list(range(1, len(exchanges))), statuses=[*statuses, *range(200, 400)]
                ),
                extra={"attempts": ATTEMPTS, "failure_statuses": statuses},
            )
        )
