"""The persistence alone: CPU per task of the work both systems of the pipeline benchmark must do for each task,
without HTTP, a queue or a second process. One process records each no-op task as the Celery baseline's worker
does (`celery_worker.persist`, after the gateway's `record_request`): the pending row, `running`, the service run
with its tool row and 5 findings, then the result folder (every file and folder fsynced, renamed) and the terminal
row; one task after another, on a fresh SQLite file and results folder.

It is a floor for either system on this machine: whatever else a system does per task comes on top. Run on its own
(`python -m benchmarks.persistence_floor --tasks 500`) it prints its figures as JSON; the pipeline benchmark runs it
in a child process, so that the CPU counted is its own.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import msgspec

WARM_UP_TASKS = 20


class Floor(msgspec.Struct):
    """CPU (user, system) and wall milliseconds per task, over `tasks` tasks."""

    tasks: int
    user_ms: float
    system_ms: float
    wall_ms: float

    @property
    def cpu_ms(self) -> float:
        return self.user_ms + self.system_ms


async def _measure(tasks: int) -> Floor:
    # Imported here: the worker module reads its settings from the environment main() has set.
    from benchmarks import celery_worker
    from services.persister.database import record_request
    from shared.store.database import create_engine, migrate
    from shared.wire.messages import AnalysisRequest
    from shared.wire.tasks import TaskRef, new_task_id

    engine = create_engine(os.environ["ASSAY_DATABASE_URL"])
    await migrate(engine)
    await engine.dispose()
    state = celery_worker.worker_state()

    async def one() -> None:
        task = TaskRef(id=new_task_id(), model_slug="bench", app_number=1, analysis_type="static")
        request = AnalysisRequest(task=task, tools=["ruff"])
        await record_request(state.ctx.sessions, request, None)
        await celery_worker.persist(state, request)

    for _ in range(WARM_UP_TASKS):
        await one()
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(tasks):
        await one()
    after, wall_s = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - started
    per_task = 1000 / tasks
    return Floor(
        tasks=tasks,
        user_ms=(after.ru_utime - before.ru_utime) * per_task,
        system_ms=(after.ru_stime - before.ru_stime) * per_task,
        wall_ms=wall_s * per_task,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.persistence_floor", description=__doc__)
    parser.add_argument("--tasks", type=int, default=500, help="tasks measured, after 20 to warm up")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="assay-bench-floor-") as tmp:
        os.environ["ASSAY_DATABASE_URL"] = f"sqlite+aiosqlite:///{Path(tmp) / 'floor.db'}"
        os.environ["ASSAY_RESULTS_DIR"] = str(Path(tmp) / "results")
        floor = asyncio.run(_measure(args.tasks))
    sys.stdout.buffer.write(msgspec.json.encode(floor) + b"\n")
    return 0


async def measure_in_child(tasks: int) -> Floor:
    """Run the measurement in a child process and read its figures."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.persistence_floor",
        "--tasks",
        str(tasks),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"the persistence floor measurement exited with {child.returncode}")
    return msgspec.json.decode(out, type=Floor)


if __name__ == "__main__":
    sys.exit(main())
