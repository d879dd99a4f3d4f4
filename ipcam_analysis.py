#!/usr/bin/env python3
"""Drop-in entry point for people who ran the original as ./ipcam_analysis.py -c config.yaml."""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = HERE / "src" / "ipcam_analysis"
VENV_PYTHON = HERE / ".venv" / "bin" / "python"

if __name__ == "__main__":
    # `make install` puts the dependencies in .venv: use its Python when started with another.
    if VENV_PYTHON.exists() and Path(sys.prefix).resolve() != VENV_PYTHON.parent.parent.resolve():
        os.execv(VENV_PYTHON, [str(VENV_PYTHON), __file__, *sys.argv[1:]])
    sys.path.insert(0, str(PACKAGE.parent))
    from ipcam_analysis.cli import main

    sys.exit(main())
else:
    # Imported as `ipcam_analysis` because this folder is on sys.path ahead of the package
    # (python -m / -c from the repository root): act as the package itself.
    __path__ = [str(PACKAGE)]
    exec(compile((PACKAGE / "__init__.py").read_text(), str(PACKAGE / "__init__.py"), "exec"))
