"""Run every benchmark and print one table each: case, baseline figure, Assay figure, ratio.

`ratio` is how many times better Assay's figure is (above 1: Assay is ahead), whichever way the unit points.
Pass module names (e.g. `event_codec`) to run only those; options after the names go to the benchmarks that take
them (`python -m benchmarks pipeline --tasks 500 --skip-100k`; `python -m benchmarks pipeline --help`).
"""

from __future__ import annotations

import importlib
import inspect
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import cast

from benchmarks.common import Row, format_table

BENCHMARKS = (
    "event_codec",
    "finding_writes",
    "static_concurrency",
    "pipeline",
    "model_report",
    "dynamic_corpus",
    "static_corpus",
    "study",
)


def main(args: list[str]) -> int:
    first_option = next((index for index, arg in enumerate(args) if arg.startswith("-")), len(args))
    names, options = args[:first_option], args[first_option:]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        print(f"unknown benchmarks: {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    started = time.perf_counter()
    for name in names or BENCHMARKS:
        module = importlib.import_module(f"benchmarks.{name}")
        title = (module.__doc__ or name).strip().splitlines()[0]
        run = cast(Callable[..., list[Row]], module.run)
        began = time.perf_counter()
        rows = run(options) if "argv" in inspect.signature(run).parameters else run()
        print(f"\n== {title}  ({time.perf_counter() - began:.1f} s)\n{format_table(rows)}", flush=True)
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
