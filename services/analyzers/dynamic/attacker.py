"""Sending attacks within a check's budget: at most so many requests and so much time per check, every request
through the targets policy's client (nothing leaves the app's targets), and each exchange kept for the proof."""

from __future__ import annotations

import time

import httpx
import msgspec

from services.analyzers.dynamic.attacks import Attack
from services.analyzers.running_app.client import Fetched, fetch
from services.analyzers.running_app.targets import Sites
from shared.operations.errors import ToolError


class BudgetSpent(ToolError):
    """A check used up its requests or its time; what it found so far stands."""


class Sent(msgspec.Struct, frozen=True, kw_only=True):
    """An attack and what came back."""

    attack: Attack
    answer: Fetched

    @property
    def text(self) -> str:
        return self.answer.body.decode("utf-8", errors="replace")

    @property
    def status(self) -> int | None:
        return self.answer.status

    @property
    def elapsed_s(self) -> float:
        return self.answer.elapsed_ms / 1000.0

    def header(self, name: str) -> str | None:
        return self.answer.header(name)

    def header_list(self, name: str) -> list[str]:
        return self.answer.header_list(name)


class TaskBudget:
    """The requests every check of one task may send together (ASSAY_ATTACK_TASK_MAX_REQUESTS)."""

    def __init__(self, max_requests: int) -> None:
        self.max_requests = max_requests
        self.sent = 0

    def take(self) -> None:
        if self.sent >= self.max_requests:
            raise BudgetSpent(f"the task's {self.max_requests} requests were spent")
        self.sent += 1


class Attacker:
    """One check's sender: its client, the job's targets, and its budget of requests and seconds (within the
    task's)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        sites: Sites,
        *,
        max_requests: int,
        max_s: float,
        task_budget: TaskBudget | None = None,
    ) -> None:
        self.client = client
        self.sites = sites
        self.max_requests = max_requests
        self.max_s = max_s
        self.deadline = time.monotonic() + max_s
        self.task_budget = task_budget
        self.sent = 0
        self.exchanges: list[Fetched] = []

    async def send(self, attack: Attack) -> Sent:
        """Send `attack`; BudgetSpent once the check's (or the task's) requests or time are used up."""
        if self.sent >= self.max_requests:
            raise BudgetSpent(f"its {self.max_requests} requests were spent")
        if time.monotonic() >= self.deadline:
            raise BudgetSpent(f"its {self.max_s:g} s ran out after {self.sent} requests")
        if self.task_budget is not None:
            self.task_budget.take()
        self.sent += 1
        self.client.cookies.clear()  # a check's requests carry exactly the cookies it sets, nothing left over
        answer = await fetch(
            self.client,
            attack.method,
            self.sites.url(attack.target, attack.path),
            headers=attack.headers,
            content=attack.body.encode() if attack.body is not None else None,
            timeout_s=attack.timeout_s,
        )
        self.exchanges.append(answer)
        return Sent(attack=attack, answer=answer)
