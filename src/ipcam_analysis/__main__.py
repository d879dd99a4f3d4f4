"""`python -m ipcam_analysis`: the same command line as the `ipcam-analysis` console script."""

import sys

from ipcam_analysis.cli import main

sys.exit(main())
