"""The apps of a study benchmark: N apps made from the sample apps (generated/apps), each with variations of its
own, so that no two are identical and no tool run of one app could stand for another's.

App k is sample (k - 1) mod 3 with: a function named after k appended to its backend (one of four kinds, so the apps
differ in what the tools find: a shell call, an unused variable and a wide line, a type error, an eval), a constant
of its own, and a comment and a function of its own at the end of its frontend script.
"""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLES_DIR = REPO / "generated" / "apps"
STUDY_MODEL = "study-bench"

_BACKEND_VARIANTS = (
    "import subprocess\n\n\ndef archive_{k}(name):\n    return subprocess.call('tar czf ' + name, shell=True)\n",
    "def summary_{k}(items):\n    unused_{k} = len(items)\n"
    "    return ', '.join(str(item) for item in items) + ' ... and a rather long trailing remark number {k} "
    "that runs well past the line length limit'\n",
    "def count_{k}() -> int:\n    total: int = 'none'\n    return total\n",
    "def evaluate_{k}(expression):\n    return eval(expression)\n",
)


def samples() -> list[Path]:
    """The sample apps, in a fixed order."""
    return sorted(path for path in SAMPLES_DIR.glob("*/app*") if (path / "backend" / "app.py").is_file())


def vary(app: Path, k: int) -> None:
    """Give the copy `app` the variations of study app `k`."""
    backend = app / "backend" / "app.py"
    backend.write_text(
        backend.read_text()
        + f"\n\nSTUDY_VARIANT = {k}\n\n\n"
        + _BACKEND_VARIANTS[(k - 1) % len(_BACKEND_VARIANTS)].format(k=k)
    )
    script = app / "frontend" / "app.js"
    if script.is_file():
        script.write_text(
            script.read_text() + f"\n// study variant {k}\nfunction variant{k}() {{\n  return {k};\n}}\n"
        )


def make_study(apps_dir: Path, count: int) -> list[tuple[str, int]]:
    """`count` varied apps under `apps_dir/<STUDY_MODEL>/app<k>` (k from 1); their (model, app number)."""
    sources = samples()
    made = []
    for k in range(1, count + 1):
        target = apps_dir / STUDY_MODEL / f"app{k}"
        shutil.copytree(sources[(k - 1) % len(sources)], target)
        vary(target, k)
        made.append((STUDY_MODEL, k))
    return made
