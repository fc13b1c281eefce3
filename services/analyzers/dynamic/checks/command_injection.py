"""OS command injection (CWE-78): an input passed to a shell runs a command of its own. Two proofs, as OWASP's
testing guide describes: an echoed marker the shell had to compute (`echo X$((a+b))` answers `X<sum>`, which the
input does not contain), and, for commands whose output is not sent back, a `sleep` that delays the answer by the
asked seconds, each time, beyond every `sleep 0` sent in between (services/analyzers/dynamic/timing.py).
Separators `;`, `|`, `&&`, `||`, newline, backticks and `$( )`."""

from __future__ import annotations

import secrets

from services.analyzers.dynamic.attack_tool import PointCheck, Reach
from services.analyzers.dynamic.attacker import Attacker, Sent
from services.analyzers.dynamic.attacks import Point
from services.analyzers.dynamic.proof import make_proof
from services.analyzers.dynamic.timing import DELAY_S, TIMEOUT_S, proven_delay
from shared.results.findings import Finding

CWE = "CWE-78"
SEPARATORS = (";{c};", "|{c}", "&&{c}", "||{c}", "\n{c}\n", "`{c}`", "$({c})", "';{c};'", '";{c};"')
WHY_ECHO = "the answer holds the result of shell arithmetic the input asked for, which the input itself does not contain: the app ran the input as a shell command"
WHY_DELAY = "asking the shell to sleep delays the answer by that long, each time, beyond every answer to `sleep 0` sent in between: the app ran the input as a shell command"


class CommandInjection(PointCheck):
    name = "command-injection"
    cwe = CWE

    async def probe(
        self, attacker: Attacker, reached: Reach, point: Point, *, in_path: bool = False
    ) -> Finding | None:
        return await self.echoed(attacker, reached, point) or await self.delayed(attacker, reached, point)

    async def echoed(self, attacker: Attacker, reached: Reach, point: Point) -> Finding | None:
        a, b = 1000 + secrets.randbelow(8000), 1000 + secrets.randbelow(8000)
        tag = "cmd" + secrets.token_hex(3)
        value = reached.value(point)
        payloads = [value + form.format(c=f"echo {tag}$(({a}+{b}))") for form in SEPARATORS]
        return await self.computed_value(
            attacker,
            reached,
            point,
            payloads,
            f"{tag}{a + b}",
            rule_id="command-injection-echo",
            flaw="OS command injection",
            verb="answers",
            why=WHY_ECHO,
        )

    async def delayed(self, attacker: Attacker, reached: Reach, point: Point) -> Finding | None:
        key = (point.field.name, point.field.location)
        value = reached.value(point)
        for form in SEPARATORS[:3] + SEPARATORS[5:7]:

            async def send(seconds: int, form: str = form) -> Sent:
                command = value + form.format(c=f"sleep {seconds}")
                return await attacker.send(reached.attack({key: command}, timeout_s=TIMEOUT_S))

            delay = await proven_delay(send, DELAY_S, 0, baseline_s=reached.baseline.elapsed_s)
            if delay is None:
                continue
            slow_input = value + form.format(c=f"sleep {DELAY_S}")
            return self.point_finding(
                reached,
                point,
                rule_id="command-injection-time",
                severity="critical",
                message=f"OS command injection in the {point.label}: {slow_input!r} delays the answer by at least "
                f"{delay.late_s:.1f} s",
                proof=make_proof(delay.proof, f"{delay.slow.elapsed_s:.1f} s", WHY_DELAY),
                expectation=delay.expectation,
                payload=slow_input,
            )
        return None
