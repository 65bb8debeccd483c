"""Where things live: the shared input root and the repository root."""

from __future__ import annotations

import os
from pathlib import Path

SHARED_ENV = "REASONGEN_SHARED"


def repo_root() -> Path:
    """The project checkout (the folder holding dvc.yaml), found from the working directory upwards."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").exists():
            return folder
    return here


def shared_root() -> Path:
    """The one configurable root for read-only inputs: $REASONGEN_SHARED, else ../shared beside the repo."""
    configured = os.environ.get(SHARED_ENV)
    return Path(configured).expanduser().resolve() if configured else (repo_root().parent / "shared").resolve()


def resource(name: str) -> Path:
    """A file shipped inside the package (lexicons, word lists)."""
    return Path(__file__).parent / "resources" / name
