"""Start an orchestrator replica: `python -m services.orchestrator` (settings from the environment, see
shared/operations/config.py). SIGINT/SIGTERM stop it cleanly: running tasks are cancelled, their analyzers told to stop and
their requests handed back to JetStream for another replica."""

from __future__ import annotations

import sys

from services.orchestrator.service import serve
from shared.jetstream.lifecycle import run_service

if __name__ == "__main__":
    sys.exit(run_service("orchestrator", serve, database=False))
