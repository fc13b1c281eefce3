"""Start the performance analyzer: `python -m services.analyzers.performance [--host H] [--port P]`."""

from services.analyzers.base.main import run_analyzer
from services.analyzers.performance.analyzer import build_analyzer

if __name__ == "__main__":
    run_analyzer(build_analyzer())
