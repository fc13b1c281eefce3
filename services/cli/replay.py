"""`assay replay <task> <finding>`: send a dynamic finding's proof again and say whether the flaw still holds.

The finding is named by its fingerprint (or a unique prefix of it). Against `--target URL` (the backend first;
`name=URL` for another target) when given; otherwise Assay starts the task's app itself, in its sandbox, as an
analysis would (the apps root must be this machine's), and stops it afterwards. Exit status: 0 when the flaw still
holds, 1 when it no longer does (or the finding has no proof to send), 2 when the gateway or the app cannot be
reached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import msgspec

from services.analyzers.dynamic.canary import Canary
from services.analyzers.dynamic.expectations import Expectation
from services.analyzers.dynamic.resend import Replayed, resend
from services.analyzers.running_app.client import http_client
from services.analyzers.running_app.targets import Sites, target_sites
from services.cli.listing import MAX_PAGE, ask
from services.orchestrator.apps.errors import AppError
from services.orchestrator.apps.runner import AppRunner, AppSlot
from shared.operations.app_env import CANARY_PORT_KEY
from shared.operations.config import Settings
from shared.operations.target_policy import TargetPolicy, target_policy
from shared.results.findings import Proof
from shared.wire.messages import AnalysisRequest
from shared.wire.tasks import TaskRef


def _finding(settings: Settings, task_id: str, wanted: str) -> dict[str, Any]:
    page = ask(settings, lambda gateway: gateway.findings(task_id, {"limit": MAX_PAGE}))
    matching = [f for f in page["findings"] if f["fingerprint"].startswith(wanted)]
    if len(matching) != 1:
        found = "no finding" if not matching else f"{len(matching)} findings"
        raise SystemExit(f"assay: {found} of {task_id} with a fingerprint starting {wanted!r}")
    return dict(matching[0])


def _sites(targets: list[str]) -> Sites:
    named = dict(target.split("=", 1) for target in targets if "=" in target.split("://", 1)[0])
    plain = [target for target in targets if "=" not in target.split("://", 1)[0]]
    sites = target_sites(plain, {})
    return Sites({**sites.bases, **named})


async def _against(
    sites: Sites, policy: TargetPolicy, proof: Proof, expectation: Expectation, canary: Canary | None
) -> Replayed:
    async with http_client(policy, timeout_s=30.0) as client:
        return await resend(client, sites, proof, expectation, canary)


async def _with_app(
    settings: Settings, task: dict[str, Any], proof: Proof, expectation: Expectation
) -> Replayed:
    """Start the task's app as an analysis would, replay against it, stop it."""
    ref = TaskRef(
        id=task["task_id"],
        model_slug=task["model_slug"],
        app_number=task["app_number"],
        analysis_type="dynamic",
    )
    outcome: list[Replayed] = []

    async def replay(request: AnalysisRequest, ports: dict[str, int]) -> None:
        env = {key: str(port) for key, port in ports.items()}
        sites = target_sites(list(request.target_urls), env)
        canary = Canary(f"http://127.0.0.1:{ports[CANARY_PORT_KEY]}") if CANARY_PORT_KEY in ports else None
        outcome.append(await _against(sites, target_policy(settings, env), proof, expectation, canary))

    await AppRunner(settings).run(AnalysisRequest(task=ref), AppSlot(), replay)
    return outcome[0]


def replay_finding(settings: Settings, args: argparse.Namespace) -> int:
    finding = _finding(settings, args.task_id, args.finding)
    if not finding.get("proof") or "replay" not in finding.get("extra", {}):
        print(f"assay: {finding['tool']} {finding['rule_id']} has no proof to send again")
        return 1
    proof = msgspec.convert(finding["proof"], Proof)
    expectation = msgspec.convert(finding["extra"]["replay"], Expectation)
    try:
        if args.target:
            sites = _sites(args.target)
            policy = TargetPolicy(
                app_ports=frozenset(),
                allow=tuple(
                    sorted({url.split("://", 1)[1].split("/", 1)[0] for url in sites.bases.values()})
                ),
            )
            replayed = asyncio.run(_against(sites, policy, proof, expectation, None))
        else:
            task = ask(settings, lambda gateway: gateway.task(args.task_id))
            replayed = asyncio.run(_with_app(settings, task, proof, expectation))
    except AppError as error:
        print(f"assay: {error}")
        return 2
    verdict = "still holds" if replayed.holds else "no longer holds"
    if args.json:
        print(json.dumps({"finding": finding["fingerprint"], **msgspec.to_builtins(replayed)}, indent=2))
    else:
        print(
            f"{finding['tool']} {finding['rule_id']} ({finding['path']}:{finding.get('line') or ''}): {verdict}"
        )
        print(
            f"  answers: {', '.join(f'HTTP {s} in {t:.2f} s' for s, t in zip(replayed.statuses, replayed.elapsed_s, strict=True))}"
        )
    return 0 if replayed.holds else 1


def add_parser(commands: Any) -> None:
    replayed = commands.add_parser(
        "replay", help="send a dynamic finding's proof again: does the flaw still hold?"
    )
    replayed.add_argument("task_id")
    replayed.add_argument("finding", help="the finding's fingerprint (or a unique prefix of it)")
    replayed.add_argument(
        "--target",
        action="append",
        default=[],
        help="URL of a running instance (backend first, or name=URL); default: Assay starts the app",
    )
    replayed.add_argument("--json", action="store_true", help="print the outcome as JSON")
    replayed.set_defaults(handler=replay_finding)
