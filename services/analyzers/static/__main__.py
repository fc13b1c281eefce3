"""Start the static analyzer: `python -m services.analyzers.static [--host H] [--port P]`."""

from services.analyzers.base.main import run_analyzer
from services.analyzers.static.analyzer import build_analyzer

if __name__ == "__main__":
    run_analyzer(build_analyzer())
