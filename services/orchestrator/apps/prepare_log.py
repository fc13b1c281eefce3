"""The record of an app's preparation: every step's command, output and ending, kept whole for `app.json`, and the
requirement that made a failed step fail, named from pip's or npm's own words.

A log longer than PREPARE_LOG_MAX loses its middle, never its end: pip and npm say what went wrong last.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

PREPARE_LOG_MAX = 200_000
CUT_MARK = "\n[… {count} characters of the preparation's output left out here …]\n"

# pip's and npm's ways of naming what could not be installed, most specific first
_FAILING = (
    re.compile(r"No matching distribution found for (\S+)"),
    re.compile(r"Could not find a version that satisfies the requirement (\S+)"),
    re.compile(r"Failed (?:building wheel|to build) (?:for )?(\S+)"),
    re.compile(r"Building wheel for (\S+) \(.*\) did not run successfully"),
    re.compile(r"Getting requirements to build wheel did not run successfully[\s\S]*?Collecting (\S+)"),
    re.compile(r"npm (?:ERR!|error) 404 +'?([^' ]+@[^' ]+)'? is not in (?:the npm|this) registry"),
    re.compile(
        r"npm (?:ERR!|error) (?:notarget|code ETARGET)[\s\S]*?No matching version found for (\S+?)\.?\s"
    ),
)
_COLLECTING = re.compile(r"^Collecting (\S+)", re.MULTILINE)


def whole(log: str) -> str:
    """The log, its middle left out (and said so) past PREPARE_LOG_MAX characters."""
    if len(log) <= PREPARE_LOG_MAX:
        return log
    head = PREPARE_LOG_MAX // 4
    tail = PREPARE_LOG_MAX - head
    return log[:head] + CUT_MARK.format(count=len(log) - head - tail) + log[-tail:]


def failing_requirement(output: str) -> str | None:
    """The requirement pip or npm names as the one that failed, else the last one pip was collecting, else None."""
    for pattern in _FAILING:
        found = pattern.findall(output)
        if found:
            return str(found[-1]).rstrip(".,;:")
    collecting = _COLLECTING.findall(output)
    return str(collecting[-1]) if collecting else None


def whole_file(path: Path) -> str:
    """A step's output file kept as `whole` keeps a log: all of it, or its start and end with the middle left out;
    only those parts are read (the file may be as large as the largest-file limit)."""
    with path.open("rb") as output:
        size = output.seek(0, os.SEEK_END)
        output.seek(0)
        if size <= PREPARE_LOG_MAX:
            return output.read().decode(errors="replace")
        head = PREPARE_LOG_MAX // 4
        tail = PREPARE_LOG_MAX - head
        start = output.read(head)
        output.seek(size - tail)
        end = output.read(tail)
    cut = CUT_MARK.format(count=size - head - tail)
    return start.decode(errors="replace") + cut + end.decode(errors="replace")
