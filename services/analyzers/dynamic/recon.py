"""Reconnaissance, once per run and shared by every active check of it: which targets answer, the app's surface,
and the sessions of the users the checks act as.

The dynamic analyzer holds one `ReconCache`; the first check of a run to ask starts the reconnaissance, the others
wait for the same result. A run's entry is dropped once its deadline has passed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import msgspec

from services.analyzers.base.job import Job
from services.analyzers.base.tool import SkipTool
from services.analyzers.dynamic.attacker import Attacker, TaskBudget
from services.analyzers.dynamic.canary import Canary
from services.analyzers.dynamic.users import Session, sign_in
from services.analyzers.running_app.client import Fetched, http_client
from services.analyzers.running_app.surface.discover import discover
from services.analyzers.running_app.surface.model import Surface
from services.analyzers.running_app.targets import Sites, check_targets, job_policy, job_sites
from shared.operations.app_env import canary_port
from shared.wire.options import SurfaceOptions

SIGN_IN_REQUESTS = 40
SIGN_IN_S = 30.0


@dataclass
class Recon:
    """What every active check of one run starts from."""

    sites: Sites  # the targets that answered, by name
    surface: Surface
    sessions: list[Session]
    auth: dict[str, Any]
    budget: TaskBudget
    canary: Canary | None
    exchanges: list[Fetched] = field(default_factory=list)

    def session(self, name: str) -> Session | None:
        return next((s for s in self.sessions if s.name == name), None)


async def reconnoitre(job: Job) -> Recon:
    """Targets, surface and sessions of `job`'s app; SkipTool when no target answers."""
    sites = job_sites(job)
    options = msgspec.convert(job.tool_options("surface"), SurfaceOptions)
    async with http_client(job_policy(job)) as client:
        report = await check_targets(client, list(sites.bases.values()))
        if not report.reachable:
            raise SkipTool(report.reason())
        answered = {probe.url for probe in report.reachable}
        live = Sites({name: url for name, url in sites.bases.items() if url in answered})
        surface = await discover(client, job.app_dir, live.bases, max_pages=job.settings.crawl_max_pages)
        budget = TaskBudget(job.settings.attack_task_max_requests)
        attacker = Attacker(client, live, max_requests=SIGN_IN_REQUESTS, max_s=SIGN_IN_S, task_budget=budget)
        given = [msgspec.to_builtins(account) for account in options.users]
        sessions, auth = await sign_in(attacker, surface, given)
    port = canary_port(job.app_env)
    canary = Canary(f"http://127.0.0.1:{port}") if port is not None else None
    return Recon(
        sites=live,
        surface=surface,
        sessions=sessions,
        auth=auth,
        budget=budget,
        canary=canary,
        exchanges=list(report.probes) + attacker.exchanges,
    )


class ReconCache:
    """One reconnaissance per run (request id and targets), started by the first check that asks."""

    def __init__(self) -> None:
        self._runs: dict[tuple[str, tuple[str, ...]], tuple[float, asyncio.Task[Recon]]] = {}

    async def of(self, job: Job) -> Recon:
        now = time.monotonic()
        for key, (deadline, _) in list(self._runs.items()):
            if deadline < now:
                del self._runs[key]
        key = (job.request_id, tuple(job.target_urls))
        entry = self._runs.get(key)
        if entry is None:
            entry = (job.deadline, asyncio.create_task(reconnoitre(job), name=f"recon {job.request_id}"))
            self._runs[key] = entry
        # shielded: a check cancelled (its timeout) must not cancel the reconnaissance its siblings wait for
        return await asyncio.shield(entry[1])
