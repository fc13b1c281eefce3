"""Start the AI analyzer: `python -m services.analyzers.ai [--host H] [--port P]`."""

from services.analyzers.ai.analyzer import build_analyzer
from services.analyzers.base.main import run_analyzer

if __name__ == "__main__":
    run_analyzer(build_analyzer())
