"""Re-run the load tool from the command line, as its tool run's `command` spells it:

python -m services.analyzers.performance.replay load --model M --app N --target URL --options JSON
"""

from __future__ import annotations

import sys

from services.analyzers.performance.analyzer import build_analyzer
from services.analyzers.running_app.replay import replay

if __name__ == "__main__":
    sys.exit(replay(build_analyzer()))
