"""What docs/results.md leaves out of a result set: every dimension and variable should have a row there."""

import re
from pathlib import Path

DOC = Path(__file__).parent.parent / "docs" / "results.md"


def undocumented(ds, skip=()) -> list[str]:
    """Names of ``ds``'s dimensions and variables that no row of docs/results.md names in backticks."""
    named = set(re.findall(r"`([A-Za-z_0-9]+)`", DOC.read_text()))
    names = set(map(str, ds.dims)) | set(map(str, ds.variables))
    return sorted(n for n in names - set(skip) if n not in named)
