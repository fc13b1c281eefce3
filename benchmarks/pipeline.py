"""Pipeline: Assay against Celery + Redis on identical no-op work, then Assay's scale and growth.

Both systems do the same per task: HTTP accept → queue → an analysis returning 5 fixed findings → task row, tool
row, findings and an fsynced result folder with manifest, written by the persister's code (see celery_worker.py,
noop_analyzer.py). One load generator (load.py) drives both; a task counts as persisted when its row is terminal
and names its folder, at that row's `updated_at` (persisted.py). Every wait is bounded: a system that does not
finish is reported with how far it got. Options (`python -m benchmarks pipeline --help`) scale it down.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks.assay_system import AssaySystem
from benchmarks.celery_system import CelerySystem
from benchmarks.common import Row
from benchmarks.cpu import cpu_snapshot, cpu_spent
from benchmarks.load import at_rate, body, burst, paced
from benchmarks.persisted import persisted_counter
from benchmarks.persistence_floor import measure_in_child
from benchmarks.rss import PeakRss
from benchmarks.static_pipeline import static_rows
from benchmarks.systems import Systems, run_load
from benchmarks.trial import Trial
from shared.wire.messages import PRIORITIES

PARTS = ("saturation", "latency", "replicas", "growth", "static")
MB = 1024 * 1024
# The growth run's queue: accepted and not yet persisted, at most (about 10 s of work at the rates seen here).
GROWTH_AHEAD = 1_000


@dataclass(frozen=True)
class Options:
    tasks: int
    rates: list[float]
    rate_seconds: float
    replicas: list[int]
    growth_tasks: int
    parts: list[str]
    priorities: list[str]
    timeout_s: float
    growth_timeout_s: float
    stall_s: float
    in_flight: int


def parse_options(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(prog="python -m benchmarks pipeline", description=__doc__)
    parser.add_argument("--tasks", type=int, default=2000, help="tasks per saturation run (default 2000)")
    parser.add_argument("--rates", default="25,50,100", help="offered loads, tasks/s (default 25,50,100)")
    parser.add_argument(
        "--rate-seconds", type=float, default=10, help="seconds at each offered load (default 10)"
    )
    parser.add_argument("--replicas", default="1,2,4", help="orchestrator replica counts (default 1,2,4)")
    parser.add_argument(
        "--growth-tasks", type=int, default=100_000, help="tasks of the growth run (default 100000)"
    )
    parser.add_argument("--skip-100k", action="store_true", help="leave out the growth run")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"which parts to run (default {','.join(PARTS)})"
    )
    parser.add_argument(
        "--priorities",
        default=",".join(PRIORITIES),
        help=f"priorities of the saturation part (default {','.join(PRIORITIES)})",
    )
    parser.add_argument("--timeout", type=float, default=600, help="bound of one load run, s (default 600)")
    parser.add_argument(
        "--growth-timeout", type=float, default=3600, help="bound of the growth run, s (default 3600)"
    )
    parser.add_argument(
        "--stall", type=float, default=120, help="end a wait when nothing persisted for this long, s"
    )
    parser.add_argument(
        "--in-flight", type=int, default=32, help="requests in flight at saturation (default 32)"
    )
    args = parser.parse_args(argv)
    parts = [part for part in args.parts.split(",") if part]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts: {', '.join(unknown)}; known: {', '.join(PARTS)}")
    if args.skip_100k and "growth" in parts:
        parts.remove("growth")
    priorities = [priority for priority in args.priorities.split(",") if priority]
    if not priorities or set(priorities) - set(PRIORITIES):
        parser.error(f"--priorities takes some of {', '.join(PRIORITIES)}")
    return Options(
        tasks=args.tasks,
        rates=[float(rate) for rate in args.rates.split(",") if rate],
        rate_seconds=args.rate_seconds,
        replicas=[int(count) for count in args.replicas.split(",") if count],
        growth_tasks=args.growth_tasks,
        parts=parts,
        priorities=priorities,
        timeout_s=args.timeout,
        growth_timeout_s=args.growth_timeout,
        stall_s=args.stall,
        in_flight=args.in_flight,
    )


def _apps_dir(root: Path) -> Path:
    """An apps root holding the (empty) app every no-op request names: the gateway checks the folder exists."""
    apps = root / "apps"
    (apps / "bench" / "app1").mkdir(parents=True, exist_ok=True)
    return apps


class Pipeline:
    """The load runs of one benchmark run, against systems kept by `Systems`."""

    def __init__(self, options: Options, systems: Systems, apps_dir: Path) -> None:
        self.options = options
        self.systems = systems
        self.apps_dir = apps_dir

    async def saturate(self, name: str, priority: str, count: int, timeout_s: float) -> Trial:
        system = await self.systems.get(name)
        load = burst(
            system.submit_url, system.headers, body(priority), count, self.options.in_flight, timeout_s
        )
        before = cpu_snapshot(system.roles())
        trial = await run_load(system, load, timeout_s, self.options.stall_s)
        trial = replace(trial, cpu_s=cpu_spent(before, cpu_snapshot(system.roles())))
        return await self._settle(name, f"saturation at {priority}", count, trial)

    async def paced(self, name: str, count: int, timeout_s: float) -> Trial:
        """Saturation with a bounded queue (`load.paced`): the growth run's start and end under the same load."""
        system = await self.systems.get(name)
        async with persisted_counter(system.database_url) as persisted:
            already = await persisted()

            async def mine() -> int:
                return await persisted() - already

            load = paced(
                system.submit_url,
                system.headers,
                body("normal"),
                count,
                mine,
                GROWTH_AHEAD,
                self.options.in_flight,
                timeout_s,
            )
            trial = await run_load(system, load, timeout_s, self.options.stall_s)
        return await self._settle(name, f"paced growth, at most {GROWTH_AHEAD:,} queued", count, trial)

    async def offered(self, name: str, rate: float) -> Trial:
        system = await self.systems.get(name)
        load = at_rate(system.submit_url, system.headers, body("normal"), rate, self.options.rate_seconds)
        bound = self.options.rate_seconds + self.options.timeout_s
        trial = await run_load(system, load, bound, self.options.stall_s)
        return await self._settle(name, f"{rate:g}/s offered", round(rate * self.options.rate_seconds), trial)

    async def _settle(self, name: str, what: str, wanted: int, trial: Trial) -> Trial:
        """Say how the run went (on stderr: the table comes at the end); restart a system that did not finish."""
        rate = trial.throughput()
        done = f"{len(trial.persisted):,}/{wanted:,} persisted in {trial.waited_s:.0f} s"
        print(
            f"  {name}, {what}: {done}" + (f", {rate:.1f} tasks/s" if rate else ""),
            file=sys.stderr,
            flush=True,
        )
        if not trial.complete:
            await self.systems.discard(name)
        return trial

    async def saturation_rows(self) -> tuple[list[Row], dict[str, Trial]]:
        rows: list[Row] = []
        by_priority: dict[str, Trial] = {}
        celery_trials: list[Trial] = []
        count = self.options.tasks
        for priority in self.options.priorities:
            celery = await self.saturate("celery", priority, count, self.options.timeout_s)
            assay = await self.saturate("assay", priority, count, self.options.timeout_s)
            by_priority[priority] = assay
            celery_trials.append(celery)
            notes = [
                f"Assay {assay.note(count)}" if assay.note(count) else "",
                f"Celery {celery.note(count)}" if celery.note(count) else "",
            ]
            rows.append(
                Row(
                    f"saturation, {count:,} tasks at {priority}",
                    "tasks/s",
                    celery.throughput(),
                    assay.throughput(),
                    higher_is_better=True,
                    note="; ".join(note for note in notes if note),
                )
            )
        rows += cpu_rows(celery_trials, list(by_priority.values()))
        return rows, by_priority

    async def latency_rows(self) -> list[Row]:
        rows = []
        for rate in self.options.rates:
            celery = await self.offered("celery", rate)
            assay = await self.offered("assay", rate)
            wanted = round(rate * self.options.rate_seconds)
            for share in (50, 90, 99):
                note = ""
                if share == 50:
                    note = f"persisted: Assay {len(assay.persisted):,}/{wanted:,}, Celery {len(celery.persisted):,}/{wanted:,}"
                rows.append(
                    Row(
                        f"accept → persisted p{share} at {rate:g}/s for {self.options.rate_seconds:g} s",
                        "s",
                        celery.percentile(share),
                        assay.percentile(share),
                        note=note,
                    )
                )
        return rows

    async def replica_rows(self, normal: Trial | None, celery_normal: float | None) -> list[Row]:
        rows = []
        count = self.options.tasks
        for replicas in self.options.replicas:
            if replicas == 1 and normal is not None:
                trial = normal  # the saturation run at `normal` above is this run
            else:
                name = f"assay-{replicas}-replicas"
                self.systems.factories[name] = _assay_factory(self.apps_dir, replicas)
                trial = await self.saturate(name, "normal", count, self.options.timeout_s)
                await self.systems.discard(name)
            rows.append(
                Row(
                    f"saturation, {count:,} at normal, {replicas} orchestrator(s)",
                    "tasks/s",
                    celery_normal,
                    trial.throughput(),
                    higher_is_better=True,
                    note=trial.note(count)
                    or ("baseline: Celery's figure at normal above" if celery_normal else ""),
                )
            )
        return rows

    async def growth_rows(self, peaks: dict[str, int]) -> list[Row]:
        count, window = self.options.growth_tasks, min(10_000, self.options.growth_tasks // 2)
        name = "assay-growth"
        self.systems.factories[name] = _assay_factory(self.apps_dir, 1)
        trial = await self.paced(name, count, self.options.growth_timeout_s)
        await self.systems.discard(name)
        times = sorted(trial.persisted.values())
        first_accept = trial.submission.first_accept
        first = last = None
        if first_accept is not None and len(times) > window > 0:  # windows overlap when some never persisted
            first = window / max(1e-6, times[window - 1] - first_accept)
            last = window / max(1e-6, times[-1] - times[-window - 1])
        rss = peaks.get(f"{name} persister")
        note = trial.note(count)
        return [
            Row(
                f"growth: first {window:,} of {count:,}",
                "tasks/s",
                None,
                first,
                higher_is_better=True,
                note=note,
            ),
            Row(
                f"growth: last {window:,} of {count:,}",
                "tasks/s",
                None,
                last,
                higher_is_better=True,
                note=f"last/first {last / first:.2f}" if first and last else "",
            ),
            Row(f"growth: persister peak RSS over {count:,}", "MB", None, rss / MB if rss else None),
        ]


def _assay_factory(apps_dir: Path, replicas: int) -> Callable[[Path], AssaySystem]:
    def make(folder: Path) -> AssaySystem:
        return AssaySystem(folder, apps_dir, replicas=replicas)

    return make


_PAIRS = (
    ("HTTP endpoint: gateway / Litestar", ["gateway"], ["http"]),
    ("queue: nats-server / redis-server", ["nats-server"], ["redis-server"]),
    (
        "work: orchestrator+analyzer+persister / worker (2 processes)",
        ["orchestrator", "analyzer", "persister"],
        ["worker"],
    ),
)


def rss_rows(peaks: dict[str, int]) -> list[Row]:
    """Peak RSS of each role of the headline systems, Assay's against its Celery counterpart."""

    def total(system: str, roles: list[str]) -> float | None:
        values = [peaks[f"{system} {role}"] for role in roles if f"{system} {role}" in peaks]
        return sum(values) / MB if values else None

    rows = [
        Row(f"peak RSS, {case}", "MB", total("celery", celery), total("assay", assay))
        for case, assay, celery in _PAIRS
    ]
    rows += [
        Row(f"peak RSS, Assay {role}", "MB", None, total("assay", [role]))
        for role in ("orchestrator", "analyzer", "persister")
    ]
    everything = [role for _case, assay, _celery in _PAIRS for role in assay]
    every_celery = [role for _case, _assay, celery in _PAIRS for role in celery]
    rows.append(
        Row("peak RSS, all processes", "MB", total("celery", every_celery), total("assay", everything))
    )
    return rows


def _cpu_ms_per_task(trials: list[Trial], roles: list[str]) -> float | None:
    """CPU milliseconds per persisted task of `roles` together, over all `trials`."""
    spent = [trial.cpu_s[role] for trial in trials for role in roles if role in trial.cpu_s]
    persisted = sum(len(trial.persisted) for trial in trials)
    return 1000 * sum(spent) / persisted if spent and persisted else None


def cpu_rows(celery: list[Trial], assay: list[Trial]) -> list[Row]:
    """CPU per persisted task over the saturation runs, by role: meaningful even on a busy machine."""
    rows = [
        Row(f"CPU per task, {case}", "ms", _cpu_ms_per_task(celery, c), _cpu_ms_per_task(assay, a))
        for case, a, c in _PAIRS
    ]
    rows += [
        Row(f"CPU per task, Assay {role}", "ms", None, _cpu_ms_per_task(assay, [role]))
        for role in ("gateway", "nats-server", "orchestrator", "analyzer", "persister")
    ]
    everything = [role for _case, a, _c in _PAIRS for role in a]
    every_celery = [role for _case, _a, c in _PAIRS for role in c]
    rows.append(
        Row(
            "CPU per task, all processes",
            "ms",
            _cpu_ms_per_task(celery, every_celery),
            _cpu_ms_per_task(assay, everything),
        )
    )
    return rows


async def floor_rows(tasks: int, celery_normal: float | None) -> list[Row]:
    """The persistence alone (`benchmarks/persistence_floor.py`) against the CPU per task that three times Celery's
    throughput at `normal` would leave for everything a task costs, on this machine's CPUs."""
    floor = await measure_in_child(min(tasks, 1000))
    cpus = os.cpu_count() or 1
    note = f"user {floor.user_ms:.1f} + system {floor.system_ms:.1f} ms"
    rows = [
        Row(
            "CPU per task, the persistence alone, one process, one task after another",
            "ms",
            None,
            floor.cpu_ms,
            note=note,
        )
    ]
    if celery_normal:
        budget = 1000 * cpus / (3 * celery_normal)
        note = f"{cpus} CPUs / (3 × Celery's {celery_normal:.1f} tasks/s at normal)"
        rows.append(
            Row(
                "CPU per task that 3× Celery's throughput would leave for all of it",
                "ms",
                None,
                budget,
                note=note,
            )
        )
    return rows


async def _run(options: Options) -> list[Row]:
    main = asyncio.current_task()
    assert main is not None
    for signum in (signal.SIGINT, signal.SIGTERM):  # stop the systems' processes on the way out
        asyncio.get_running_loop().add_signal_handler(signum, main.cancel)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="assay-bench-pipeline-") as tmp:
        root = Path(tmp)
        apps = _apps_dir(root)
        systems = Systems(
            root,
            {
                "assay": _assay_factory(apps, 1),
                "celery": lambda folder: CelerySystem(folder, apps),
            },
        )
        pipeline = Pipeline(options, systems, apps)
        with PeakRss(systems.roles) as peaks:
            try:
                by_priority: dict[str, Trial] = {}
                celery_normal: float | None = None
                if "saturation" in options.parts:
                    saturation, by_priority = await pipeline.saturation_rows()
                    rows += saturation
                    celery_normal = next(
                        (row.baseline for row in saturation if row.case.endswith("normal")), None
                    )
                    rows += await floor_rows(options.tasks, celery_normal)
                if "latency" in options.parts:
                    rows += await pipeline.latency_rows()
                if "saturation" in options.parts or "latency" in options.parts:
                    rows += rss_rows(dict(peaks))
                await systems.stop_all()
                if "replicas" in options.parts:
                    rows += await pipeline.replica_rows(by_priority.get("normal"), celery_normal)
                if "growth" in options.parts:
                    rows += await pipeline.growth_rows(peaks)
            finally:
                await systems.stop_all()
        if "static" in options.parts:
            rows += await static_rows(root / "static", options.timeout_s)
    return rows


def run(argv: list[str] | None = None) -> list[Row]:
    """The pipeline benchmark's rows; `argv` are its options (see `parse_options`)."""
    return asyncio.run(_run(parse_options(argv or [])))
