"""The static analyzer: its tools, in the order the catalog names them.

Every tool runs with the app folder as its working directory and the app's files as relative paths, so a
record's `command`, run again in that folder, reproduces the tool's output.
"""

from __future__ import annotations

from services.analyzers.base.analyzer import Analyzer
from services.analyzers.static.tools.bandit import Bandit
from services.analyzers.static.tools.detect_secrets import DetectSecrets
from services.analyzers.static.tools.eslint import Eslint
from services.analyzers.static.tools.mypy import Mypy
from services.analyzers.static.tools.npm_audit import NpmAudit
from services.analyzers.static.tools.pip_audit import PipAudit
from services.analyzers.static.tools.pylint import Pylint
from services.analyzers.static.tools.radon import Radon
from services.analyzers.static.tools.ruff import Ruff
from services.analyzers.static.tools.semgrep import Semgrep
from services.analyzers.static.tools.vulture import Vulture


def build_analyzer() -> Analyzer:
    """The static analyzer; it reads the app's source folder, so an unknown app is refused."""
    return Analyzer(
        service="static",
        tools=[
            Bandit(),
            Ruff(),
            Pylint(),
            Mypy(),
            Vulture(),
            Radon(),
            DetectSecrets(),
            Eslint(),
            Semgrep(),
            PipAudit(),
            NpmAudit(),
        ],
        needs_source=True,
    )
