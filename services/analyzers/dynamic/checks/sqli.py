"""SQL injection (CWE-89), three ways, as OWASP's testing guide describes them:

- **error-based**: a lone quote makes the answer carry a database error (signatures of SQLite, MySQL, PostgreSQL,
  SQL Server, Oracle and common drivers) that neither the ordinary value nor a doubled, balanced quote gives;
- **boolean**: two inputs that differ only in a condition (`' AND '1'='1` / `' AND '1'='2`, `OR`, numeric and
  commented forms) get answers that differ, each stable when sent again in either order (true, false, true, false,
  false, true): only the database evaluated the difference, not time (a record another request changes meanwhile);
- **time-based**, for blind injections whose answers never differ: a delay function of MySQL, PostgreSQL or SQL
  Server makes the answer late by the asked seconds, twice, while the same input asking for no delay does not.
  SQLite has no delay function, so the input asks it for work instead (a recursive count of `rows` rows, in a
  condition that stays false and so changes no row, or concatenated to the value as nothing), scaled from a first
  measurement and bounded by SQLITE_MAX_ROWS. Either delay is proven by alternating heavy and light inputs, so that a
  loaded machine cannot pass for an injection (services/analyzers/dynamic/timing.py).
"""

from __future__ import annotations

from typing import Any

import msgspec

from services.analyzers.dynamic.attack_tool import PointCheck, Reach
from services.analyzers.dynamic.attacker import Attacker, Sent
from services.analyzers.dynamic.attacks import Point
from services.analyzers.dynamic.checks.signatures import SQL_ERRORS, first_match
from services.analyzers.dynamic.expectations import Contains, Differs, similar
from services.analyzers.dynamic.proof import attack_finding, make_proof
from services.analyzers.dynamic.timing import DELAY_S, TIMEOUT_S, proven_delay
from shared.results.findings import Finding

CWE = "CWE-89"
QUOTES = ("'", '"', "')", "`")
# (true, false) pairs that differ in a condition only, {v} the ordinary value
CONDITIONS = (
    ("{v}' AND '1'='1", "{v}' AND '1'='2"),
    ("{v}' OR '1'='1", "{v}' OR '1'='2"),
    ("{v}' AND 1=1-- ", "{v}' AND 1=2-- "),
    ("{v}' OR 1=1-- ", "{v}' OR 1=2-- "),
    ('{v}" OR "1"="1', '{v}" OR "1"="2'),
    ("{v} AND 1=1", "{v} AND 1=2"),
    ("{v} OR 1=1", "{v} OR 1=2"),
)
HEAVY = "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<{n}) SELECT count(*) FROM c)"


class DelayForm(msgspec.Struct, frozen=True):
    """An input that asks a database for a delay: `{v}` the ordinary value, `{n}` the amount (seconds, or rows of
    work); `first` the amount asked first and `none` the amount that asks for no delay."""

    dbms: str
    form: str
    first: int
    none: int
    scaled: bool = False  # the amount is work, not seconds: scaled from the first measurement

    def payload(self, value: str, amount: int) -> str:
        return self.form.format(v=value, n=amount)


SQLITE_ROWS = 2_000_000  # the work asked first: about a second on a loaded 2-core machine
SQLITE_MAX_ROWS = (
    200_000_000  # the most asked after scaling (about 25 s on this quiet machine): bounds the work
)
DELAYS = (
    DelayForm("MySQL", "{v}' AND SLEEP({n})-- ", DELAY_S, 0),
    DelayForm("MySQL", "{v} AND SLEEP({n})", DELAY_S, 0),
    DelayForm("PostgreSQL", "{v}' AND 1=(SELECT 1 FROM pg_sleep({n}))-- ", DELAY_S, 0),
    DelayForm("PostgreSQL", "{v} AND 1=(SELECT 1 FROM pg_sleep({n}))", DELAY_S, 0),
    DelayForm("SQL Server", "{v}'; WAITFOR DELAY '0:0:{n}'-- ", DELAY_S, 0),
    DelayForm("SQL Server", "{v}; WAITFOR DELAY '0:0:{n}'", DELAY_S, 0),
    # SQLite evaluates `a AND b` lazily, so the work is asked with OR, in a condition that is false for every row
    DelayForm("SQLite", "{v}' OR " + HEAVY + "<0-- ", SQLITE_ROWS, 1, scaled=True),
    DelayForm("SQLite", "{v} OR " + HEAVY + "<0", SQLITE_ROWS, 1, scaled=True),
    DelayForm("SQLite", "{v}'||(SELECT substr(" + HEAVY + ",1,0))||'", SQLITE_ROWS, 1, scaled=True),
)
WHY_ERROR = "a lone quote in this input breaks the SQL statement the app builds from it, and the database's own error comes back; a balanced input does not"
WHY_BOOLEAN = "two inputs that differ only in a true and a false SQL condition get different answers, each repeatable: the input is evaluated as SQL"
WHY_DELAY = "an input asking the database for a delay (a sleep, or work) makes the answer late by about that long, each time, and later than every answer to the same input asking for none, sent in between: the input runs as SQL, though the answer never shows it"


class SqlInjection(PointCheck):
    name = "sqli"
    cwe = CWE

    async def probe(
        self, attacker: Attacker, reached: Reach, point: Point, *, in_path: bool = False
    ) -> Finding | None:
        found = await error_based(attacker, reached, point) or await boolean_based(attacker, reached, point)
        if found is None and point.field.location != "header":
            found = await time_based(attacker, reached, point)
        return found


def _finding(
    reached: Reach,
    point: Point,
    rule: str,
    message: str,
    proof_sents: list[Sent],
    evidence: str,
    why: str,
    expectation: Any,
    extra: dict[str, Any],
) -> Finding:
    return attack_finding(
        tool="sqli",
        rule_id=rule,
        severity="critical",
        message=f"SQL injection in the {point.label}: {message}",
        cwe=CWE,
        endpoint=reached.endpoint,
        anchor=f"{point.field.location}:{point.field.name}",
        proof=make_proof(proof_sents, evidence, why),
        expectation=expectation,
        extra={
            "parameter": point.field.name,
            "location": point.field.location,
            "as_user": reached.session.name if reached.session else None,
            **extra,
        },
    )


async def error_based(attacker: Attacker, reached: Reach, point: Point) -> Finding | None:
    if first_match(reached.baseline.text, SQL_ERRORS):
        return None  # the ordinary answer already shows an error: nothing to tell apart
    key = (point.field.name, point.field.location)
    value = reached.value(point)
    for quote in QUOTES:
        broken = await attacker.send(reached.attack({key: value + quote}))
        error = first_match(broken.text, SQL_ERRORS)
        if error is None:
            continue
        balanced = await attacker.send(reached.attack({key: value + quote[0] * 2 + quote[1:]}))
        if first_match(balanced.text, SQL_ERRORS):
            continue
        dbms, text = error
        return _finding(
            reached,
            point,
            "sqli-error",
            f"{quote!r} gives a {dbms} error ({text[:120]})",
            [reached.baseline, broken, balanced],
            text,
            WHY_ERROR,
            Contains(exchange=1, text=text, control=2),
            {"technique": "error", "dbms": dbms, "payload": value + quote},
        )
    return None


async def boolean_based(attacker: Attacker, reached: Reach, point: Point) -> Finding | None:
    key = (point.field.name, point.field.location)
    value = reached.value(point)
    for true_form, false_form in CONDITIONS:
        inputs = [true_form.format(v=value), false_form.format(v=value)]
        true = await attacker.send(reached.attack({key: inputs[0]}))
        false = await attacker.send(reached.attack({key: inputs[1]}))
        if true.status is None or false.status is None or similar(true, false, inputs):
            continue
        # Each again, then once more in the other order: an answer that changes with time, not with the condition
        # (another check writing the record between our requests, turn about), disagrees with itself somewhere.
        again = [await attacker.send(reached.attack({key: text})) for text in (*inputs, *reversed(inputs))]
        firsts = (true, false, false, true)
        if not all(similar(first, later, inputs) for first, later in zip(firsts, again, strict=True)):
            continue
        return _finding(
            reached,
            point,
            "sqli-boolean",
            f"{inputs[0]!r} and {inputs[1]!r} get different answers (HTTP {true.status}, "
            f"{len(true.answer.body)} bytes / HTTP {false.status}, {len(false.answer.body)} bytes)",
            [true, false, again[0]],
            "",
            WHY_BOOLEAN,
            Differs(baseline=2, true=0, false=1, strip=inputs),
            {"technique": "boolean", "payload_true": inputs[0], "payload_false": inputs[1]},
        )
    return None


async def time_based(attacker: Attacker, reached: Reach, point: Point) -> Finding | None:
    key = (point.field.name, point.field.location)
    value = reached.value(point)
    for form in DELAYS:

        async def send(amount: int, form: DelayForm = form) -> Sent:
            return await attacker.send(
                reached.attack({key: form.payload(value, amount)}, timeout_s=TIMEOUT_S)
            )

        most = SQLITE_MAX_ROWS if form.scaled else None
        delay = await proven_delay(
            send, form.first, form.none, baseline_s=reached.baseline.elapsed_s, most=most
        )
        if delay is None:
            continue
        asked = f"to count {delay.amount} rows" if form.scaled else f"to sleep {delay.amount} s"
        return _finding(
            reached,
            point,
            "sqli-time",
            f"asking {form.dbms} {asked} delays the answer by at least {delay.late_s:.1f} s, each time",
            delay.proof,
            f"{delay.slow.elapsed_s:.1f} s",
            WHY_DELAY,
            delay.expectation,
            {"technique": "time", "dbms": form.dbms, "payload": form.payload(value, delay.amount)},
        )
    return None
