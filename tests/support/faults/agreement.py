"""Database against folders, after the fact: `assay fsck --json` on the stack's database and results folder (every
finished task row has its whole folder, manifest and sha256 right, finding counts equal; every folder its row),
its differences grouped by task (an orphan folder without a task id by its folder)."""

from __future__ import annotations

import json
from collections import defaultdict

from tests.support.stack import Stack, run_assay

FOUND_DIFFERENCES = 1  # fsck's exit code when it found a difference (2: it could not read)


def differences(stack: Stack) -> dict[str, list[str]]:
    """Each task whose rows and folder disagree, with what `assay fsck` says of it."""
    done = run_assay(stack, "fsck", "--json")
    assert done.returncode in (0, FOUND_DIFFERENCES), f"assay fsck failed: {done.stderr}"
    found: dict[str, list[str]] = defaultdict(list)
    for problem in json.loads(done.stdout)["problems"]:
        found[problem["task_id"] or problem["result_dir"]].append(f"{problem['kind']}: {problem['detail']}")
    return dict(found)
