"""Start the dynamic analyzer: `python -m services.analyzers.dynamic [--host H] [--port P]`."""

from services.analyzers.base.main import run_analyzer
from services.analyzers.dynamic.analyzer import build_analyzer

if __name__ == "__main__":
    run_analyzer(build_analyzer())
