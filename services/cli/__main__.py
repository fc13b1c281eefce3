"""`python -m services.cli …` is the same as the `assay` command."""

import sys

from services.cli.main import main

sys.exit(main())
