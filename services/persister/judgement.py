"""A task's verdicts on its app, judged once where the task ends, from everything its services reported.

- **works**: the endpoints the app declares (requirements.json, else the OpenAPI document it ships or serves)
  answered as promised: `yes` when every one the endpoint check could judge did, `no` when one did not or the app
  never answered (it did not start, or nothing answered the endpoint check), `unknown` when the app declares none,
  none could be judged (each refused Assay's user, or addressed an object whose id Assay guessed), the check stopped
  before it called them all, or the task did not run it.
- **exploitable**: `yes` when the dynamic analyzer confirmed a flaw at `high` or worse with a proof (the exact
  exchanges); `no` when at least one of its active checks attacked the app (ended, had something to attack, sent a
  request) and none confirmed one; `unknown` when none did (the task did not attack the app, nothing answered, or
  only tools ran that could not have confirmed a flaw: those that merely observe, and those that report without
  proof).
- **flagged**: `yes` when a finding without proof, about the app's own code (origin `app`), is at `high` or worse
  and names a weakness (a security category, or a CWE: a high type error is a bug, not a flaw); `no` when the
  task's analyzers reported and none is; `unknown` when none reported.

Waived rules (shared/results/waivers.py, declared by the task's batch) count in no verdict. Each verdict names the findings
behind it by fingerprint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from services.persister.document import Ending
from services.persister.lookups import TaskSnapshot
from services.persister.staging import StagedService
from shared.results.findings import COMPLETED_STATUSES, Finding, ToolRun
from shared.results.verdicts import Answer, Verdict, Verdicts
from shared.results.waivers import Waivers
from shared.wire.catalog import OBSERVING_TOOLS, UNPROVEN_TOOLS
from shared.wire.protocol import ServiceResult

SEVERE = frozenset({"critical", "high"})
# The tool that calls each endpoint the app declares and records, per endpoint, whether it answered as promised
# (its metrics: total = passed + failed, unverified apart, document, stopped_by, results with each `outcome`).
ENDPOINT_TOOLS = ("endpoints",)
ATTACKER = "dynamic"  # the analyzer whose proven findings make an app exploitable
UNREACHABLE = "targets_unreachable"
# Categories of findings that name a weakness an attacker could use (any finding with a CWE counts too).
# Not `http`: it says how a finding was found (an answer of the running app), not that it is a weakness; the HTTP
# tools' weaknesses carry a CWE, and an unreachable app is not one.
WEAKNESS_CATEGORIES = frozenset({"security", "secrets", "dependency"})
LISTED = 5  # findings a reason names before it says "and N more"


def judge(task: TaskSnapshot, ending: Ending, services: list[StagedService]) -> Verdicts:
    """The three verdicts of a task that has ended, as `ending` says, with these services' outcomes."""
    waivers = Waivers.of(task.waived_rules)
    return Verdicts(
        works=works(ending, services),
        exploitable=exploitable(services, waivers),
        flagged=flagged(services, waivers),
    )


def _verdict(answer: Answer, reason: str, findings: Iterable[Finding] = ()) -> Verdict:
    return Verdict(answer=answer, reason=reason, findings=[finding.fingerprint for finding in findings])


def _listed(findings: list[Finding]) -> str:
    named = [f"{f.tool}:{f.rule_id} at {f.path or '?'}{f':{f.line}' if f.line else ''}" for f in findings]
    more = len(named) - LISTED
    return "; ".join(named[:LISTED]) + (f"; and {more} more" if more > 0 else "")


def _endpoint_run(services: list[StagedService]) -> tuple[ToolRun, dict[str, Any], list[Finding]] | None:
    for staged in services:
        if staged.result is None:
            continue
        for run in staged.result.tools:
            if run.tool in ENDPOINT_TOOLS:
                findings = [f for f in staged.result.findings if f.tool == run.tool]
                return run, dict(staged.result.metrics.get(run.tool) or {}), findings
    return None


def _called(results: list[dict[str, Any]]) -> str:
    """`GET /api/x: expected 200, got 500` for each of the first LISTED results."""
    return "; ".join(
        f"{r.get('method')} {r.get('path')}: expected {' or '.join(map(str, r.get('expected') or []))}, got "
        f"{r.get('actual_status') if r.get('actual_status') is not None else r.get('error') or 'no answer'}"
        + (f" ({r['note']})" if r.get("note") else "")
        for r in results[:LISTED]
    )


def works(ending: Ending, services: list[StagedService]) -> Verdict:
    if ending.app is not None and ending.app.error:
        return _verdict("no", ending.app.error)
    found = _endpoint_run(services)
    if found is None:
        ran_app = any(staged.service == ATTACKER for staged in services) or ending.app is not None
        reason = "the endpoint check did not run" if ran_app else "the task did not run the app"
        return _verdict("unknown", reason)
    run, metrics, findings = found
    if run.status == "skipped" and (run.reason or "").startswith(UNREACHABLE):
        return _verdict("no", f"the app did not answer: {run.reason}")
    results = [r for r in metrics.get("results") or [] if isinstance(r, dict)]
    failed = [r for r in results if r.get("outcome") == "failed"]
    unverified = [r for r in results if r.get("outcome") == "unverified"]
    total = int(metrics.get("total") or 0)
    source = f" ({metrics['document']})" if metrics.get("document") else ""
    if failed:
        why = f"{len(failed)} of {total} declared endpoints{source} did not answer as promised: {_called(failed)}"
        return _verdict("no", why, findings)
    if run.status != "success":
        return _verdict("unknown", f"the endpoint check was {run.status}: {run.reason or 'no reason given'}")
    if total == 0:
        if unverified:
            why = f"none of the {len(unverified)} declared endpoints could be verified: {_called(unverified)}"
            return _verdict("unknown", why)
        return _verdict("unknown", "the endpoint check called no endpoint")
    if metrics.get("stopped_by"):
        return _verdict(
            "unknown",
            f"the endpoint check stopped before it called every declared endpoint ({metrics['stopped_by']}); "
            f"the {total} it called answered as promised",
        )
    reason = f"all {total} declared endpoints answered as promised{source}"
    if unverified:
        reason += f"; {len(unverified)} could not be verified: {_called(unverified)}"
    return _verdict("yes", reason)


def _severe(
    results: list[ServiceResult], waivers: Waivers, wanted: Callable[[Finding], bool]
) -> list[Finding]:
    """The findings of `results` at `high` or worse that are `wanted` and not waived."""
    return [
        finding
        for result in results
        for finding in result.findings
        if finding.severity in SEVERE
        and wanted(finding)
        and not waivers.covers(finding.tool, finding.rule_id, finding.cwe)
    ]


def _attacked(run: ToolRun, metrics: dict[str, Any]) -> bool:
    """Whether an active check really attacked the app: it ended, was not left without anything to attack
    (`metrics.skipped`: no users, no log-in route …) and sent at least one request."""
    return run.status == "success" and not metrics.get("skipped") and int(metrics.get("requests", 1) or 0) > 0


def _idle(run: ToolRun, metrics: dict[str, Any]) -> str:
    """Why an active check did not attack the app."""
    if run.status != "success":
        return f"{run.status}: {run.reason}" if run.reason else run.status
    return str(metrics.get("skipped") or "sent no request")


def exploitable(services: list[StagedService], waivers: Waivers) -> Verdict:
    attacks = [s.result for s in services if s.service == ATTACKER and s.result is not None]
    if not attacks:
        return _verdict("unknown", "the task did not attack the running app")
    proven = _severe(attacks, waivers, lambda finding: finding.proof is not None)
    if proven:
        return _verdict("yes", f"{len(proven)} flaw(s) at high or worse confirmed by attack: {_listed(proven)}",
                        proven)  # fmt: skip
    checks = [
        (run, dict(result.metrics.get(run.tool) or {}))
        for result in attacks
        for run in result.tools
        if run.tool not in OBSERVING_TOOLS | UNPROVEN_TOOLS
    ]
    ran = sorted(run.tool for run, metrics in checks if _attacked(run, metrics))
    idle = sorted(
        f"{run.tool} ({_idle(run, metrics)})" for run, metrics in checks if not _attacked(run, metrics)
    )
    if not ran:
        why = "; ".join(idle[:LISTED]) or "none was run: only tools that observe or report without proof"
        return _verdict("unknown", f"no active check attacked the app ({why})")
    reason = f"{len(ran)} active check(s) attacked the app ({', '.join(ran)}); none confirmed a flaw at high or worse"
    if idle:
        reason += f"; {len(idle)} did not attack: {'; '.join(idle[:LISTED])}"
    return _verdict("no", reason)


def _names_weakness(finding: Finding) -> bool:
    return finding.category in WEAKNESS_CATEGORIES or bool(finding.cwe)


def flagged(services: list[StagedService], waivers: Waivers) -> Verdict:
    results = [s.result for s in services if s.result is not None]
    if not results:
        return _verdict("unknown", "no analyzer reported on the app")
    severe = _severe(results, waivers, lambda f: f.proof is None and f.origin == "app" and _names_weakness(f))
    if severe:
        return _verdict(
            "yes", f"{len(severe)} unconfirmed finding(s) at high or worse: {_listed(severe)}", severe
        )
    ran = sorted({run.tool for result in results for run in result.tools if run.status in COMPLETED_STATUSES})
    if not ran:
        return _verdict("unknown", "no tool of the task's analyzers ran to the end")
    return _verdict("no", f"no unconfirmed finding at high or worse in the app's code ({', '.join(ran)} ran)")
