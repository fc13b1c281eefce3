"""Analyzer outages: while no replica of an analyzer is healthy, runs that need it wait instead of failing.

An outage of a service begins when a choice of its replica finds none healthy (none answered, or every one that
answered is draining). From then on one prober asks its replicas every `probe_s`; every run that needs the service
waits for the outage to end, and the first healthy answer ends it for all of them at once. An outage older than
`limit_s` (ASSAY_ANALYZER_OUTAGE_S) fails the runs that wait for it, and any that need the service meanwhile, with
the reason; the next healthy answer ends it like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from services.orchestrator.replicas import NoHealthyReplica, ReplicaChooser
from shared.operations.errors import AssayError

log = logging.getLogger(__name__)

PROBE_S = 1.0


class AnalyzerOutage(AssayError):
    """No replica of an analyzer became healthy within ASSAY_ANALYZER_OUTAGE_S; the message says since when."""


@dataclass
class _Outage:
    since: float  # loop time the outage was noticed
    why: str  # the last failed choice's reason
    over: asyncio.Event = field(default_factory=asyncio.Event)
    prober: asyncio.Task[None] | None = None


class Outages:
    """Chooses replicas through `chooser`, waiting out outages of up to `limit_s`; one per orchestrator replica."""

    def __init__(self, chooser: ReplicaChooser, limit_s: float, probe_s: float = PROBE_S) -> None:
        self.chooser = chooser
        self.limit_s = limit_s
        self.probe_s = probe_s
        self._outages: dict[str, _Outage] = {}

    def down(self, service: str) -> bool:
        """Whether an outage of `service` is going on now."""
        return service in self._outages

    async def replica(self, service: str, urls: Sequence[str], avoid: Sequence[str] = ()) -> str:
        """A healthy replica of `service` (preferring those not in `avoid`), after waiting out an outage;
        AnalyzerOutage when it lasts longer than the limit."""
        while True:
            outage = self._outages.get(service)
            if outage is None:
                try:
                    return await self.chooser.choose(service, urls, avoid)
                except NoHealthyReplica as error:
                    outage = self._begin(service, urls, str(error))
            await self._wait(service, outage)

    async def available(self, services: Sequence[str]) -> None:
        """Return once none of `services` is in an outage (at once when none is); AnalyzerOutage past the limit.

        Only outages already noticed are waited for: a service not known to be down is not asked here (its run's
        choice of a replica will be)."""
        for service in services:
            outage = self._outages.get(service)
            if outage is not None:
                await self._wait(service, outage)

    async def close(self) -> None:
        """Stop the probers (the orchestrator is stopping)."""
        probers = [outage.prober for outage in self._outages.values() if outage.prober is not None]
        for prober in probers:
            prober.cancel()
        await asyncio.gather(*probers, return_exceptions=True)

    def _begin(self, service: str, urls: Sequence[str], why: str) -> _Outage:
        outage = self._outages.get(service)
        if outage is None:
            log.warning(
                "no healthy %s analyzer (%s): runs that need it wait up to %g s",
                service,
                why,
                self.limit_s,
                extra={"analyzer": service},
            )
            outage = _Outage(since=asyncio.get_running_loop().time(), why=why)
            self._outages[service] = outage
            outage.prober = asyncio.create_task(
                self._probe(service, list(urls), outage), name=f"probe {service}"
            )
        return outage

    async def _wait(self, service: str, outage: _Outage) -> None:
        left = outage.since + self.limit_s - asyncio.get_running_loop().time()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, left)):
                await outage.over.wait()
                return
        raise AnalyzerOutage(
            f"{outage.why}; none became healthy within {self.limit_s:g} s (ASSAY_ANALYZER_OUTAGE_S)"
        )

    async def _probe(self, service: str, urls: list[str], outage: _Outage) -> None:
        """Ask the replicas until one is healthy; then the outage is over for every run waiting on it."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.probe_s)
            try:
                await self.chooser.choose(service, urls)
            except NoHealthyReplica as error:
                outage.why = str(error)
                continue
            break
        log.info(
            "%s analyzer healthy again after %.1f s",
            service,
            loop.time() - outage.since,
            extra={"analyzer": service},
        )
        self._outages.pop(service, None)
        outage.over.set()
