"""What both differential tests share: the repository, the forms CI runs
them over, and the `mpaka` binary they run."""

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The forms written here (tests/forms, pyxform's CSV and markdown layouts)
# and the shipped examples; the public corpus is measured apart (see
# docs/benchmarks.md, "XLSForm compatibility").
CI_CORPUS = (
    sorted((ROOT / "tests" / "forms").glob("*.csv"))
    + sorted((ROOT / "tests" / "forms").glob("*.md"))
    + sorted((ROOT / "examples" / "forms").glob("*.xlsx"))
)


def mpaka_binary():
    """MPAKA_BIN, or the debug build in cargo's target directory."""
    path = os.environ.get("MPAKA_BIN")
    if path:
        return path
    meta = json.loads(subprocess.check_output(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=ROOT))
    return str(Path(meta["target_directory"]) / "debug" / "mpaka")


MPAKA = mpaka_binary()
