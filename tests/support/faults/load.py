"""The fault suite's client: submits tasks at a steady pace from a thread of its own while the test breaks things,
and keeps the id of every task the gateway accepted (a 202).

A client that meets a fault retries, as a real one does: a refused connection (the gateway down), a 5xx (NATS
down), a timeout or a 409 (its first attempt still unanswered) is tried again with the same `Idempotency-Key` until its deadline. The key names one
submission, so once the gateway honours it a retry after an answer that got lost returns the same task.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

IN_FLIGHT = 8  # requests on the wire at once
RETRY_S = 0.25
REQUEST_TIMEOUT_S = 10.0
CONFLICT = 409  # the first attempt under this Idempotency-Key has not been answered yet: ask again


@dataclass
class Submission:
    """What the client got back: the accepted task ids in order, and how many attempts had to be retried."""

    accepted: list[str] = field(default_factory=list)
    retries: int = 0
    given_up: int = 0  # submissions that found no gateway before their deadline
    refused: list[str] = field(default_factory=list)  # 4xx answers: the request itself was wrong
    last_error: str = ""


class Submitter:
    """Submits `count` tasks with `body`, one every 1/`rate_per_s` s, `IN_FLIGHT` at most at once."""

    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        body: dict[str, Any],
        count: int,
        rate_per_s: float,
        deadline_s: float = 300.0,
    ) -> None:
        self.url = f"{url}/api/analysis/run"
        self.headers = headers
        self.body = body
        self.count = count
        self.rate_per_s = rate_per_s
        self.deadline_s = deadline_s
        self.submission = Submission()
        self.key_prefix = f"fault-{secrets.token_hex(6)}"
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(),), daemon=True)

    def start(self) -> Submitter:
        self._thread.start()
        return self

    def accepted(self) -> list[str]:
        """The ids accepted so far."""
        with self._lock:
            return list(self.submission.accepted)

    def wait_accepted(self, count: int, timeout_s: float = 120.0) -> None:
        """Until `count` tasks were accepted (the moment to break something: work is queued and in flight)."""
        deadline = time.monotonic() + timeout_s
        while len(self.accepted()) < count:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise TimeoutError(
                    f"{len(self.accepted())} of {count} tasks accepted after {timeout_s} s: "
                    f"{self.submission.last_error}"
                )
            time.sleep(0.05)

    def join(self) -> Submission:
        """Wait until every submission was accepted or given up; the result."""
        self._thread.join(self.deadline_s + REQUEST_TIMEOUT_S + 30)
        if self._thread.is_alive():
            raise TimeoutError(f"the submitter is still running after {self.deadline_s} s")
        return self.submission

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
        slots = asyncio.Semaphore(IN_FLIGHT)
        started = time.monotonic()
        async with httpx.AsyncClient(
            timeout=REQUEST_TIMEOUT_S, limits=limits, headers=self.headers, trust_env=False
        ) as client:
            sends = []
            for index in range(self.count):
                await asyncio.sleep(max(0.0, started + index / self.rate_per_s - time.monotonic()))
                await slots.acquire()
                sends.append(asyncio.create_task(self._submit(client, index, started, slots)))
            await asyncio.gather(*sends)

    async def _submit(
        self, client: httpx.AsyncClient, index: int, started: float, slots: asyncio.Semaphore
    ) -> None:
        headers = {"Idempotency-Key": f"{self.key_prefix}-{index}"}
        try:
            while time.monotonic() - started < self.deadline_s:
                try:
                    response = await client.post(self.url, json=self.body, headers=headers)
                except httpx.HTTPError as error:
                    self._retrying(f"{type(error).__name__}: {error}")
                else:
                    if response.status_code == 202:
                        with self._lock:
                            self.submission.accepted.append(response.json()["task_id"])
                        return
                    if response.status_code < 500 and response.status_code != CONFLICT:
                        with self._lock:
                            self.submission.refused.append(f"{response.status_code} {response.text[:200]}")
                        return
                    self._retrying(f"HTTP {response.status_code}: {response.text[:200]}")
                await asyncio.sleep(RETRY_S)
            with self._lock:
                self.submission.given_up += 1
        finally:
            slots.release()

    def _retrying(self, error: str) -> None:
        with self._lock:
            self.submission.retries += 1
            self.submission.last_error = error
