"""Checks of how `snakemake` was started, made by the Snakefile before it reads the config.

Two mistakes that otherwise end in an error that does not say what happened:

* ``--configfile`` takes every word after it as a config file, so in
  ``snakemake -n --configfile FILE implemented`` the target is read as a config file. A word
  that names no file ends in Snakemake's own traceback before the Snakefile runs (the README
  says how to write the command); one that names a file (a result JSON, say) reaches us, and
  is recognised by its place (``results/``, ``paper_figures/``, ...) or its suffix.
* snakemake started outside the repository root: the default config (``config/paper.yaml``)
  and every relative path of a config (``config/published/...``) are read from the working
  directory. Without ``--configfile`` that stops the run; with one (running the workflow on
  a copy of the files elsewhere is legitimate) the paths found in the repository but not here
  are named in a warning.

Standard library only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = "config/paper.yaml"
CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
OUTPUT_DIRS = ("results", "paper_figures", "logs", "benchmarks")  # where targets live


class InvocationError(Exception):
    """snakemake was started in a way the workflow cannot run as meant (the message says how)."""


def _shown(path: str | Path, cwd: Path) -> str:
    """`path` as the user most likely typed it: relative to the working directory if inside."""
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(Path(os.path.abspath(cwd))))
    except ValueError:
        return str(path)


def _looks_like_target(shown: str) -> bool:
    parts = Path(shown).parts
    return Path(shown).suffix.lower() not in CONFIG_SUFFIXES or (
        len(parts) > 1 and parts[0] in OUTPUT_DIRS
    )


def check_command_line(
    cwd: str | Path, repo: str | Path, configfiles: Sequence[str | Path]
) -> None:
    """Raise InvocationError for a target eaten by ``--configfile`` (``configfiles``: the
    files Snakemake read, absolute), or for no ``--configfile`` and no default config in the
    working directory ``cwd`` (``repo``: the Snakefile's directory)."""
    cwd, repo = Path(cwd), Path(repo)
    shown = [_shown(f, cwd) for f in configfiles]
    eaten = [s for s in shown if _looks_like_target(s)]
    if eaten:
        configs = " ".join(s for s in shown if s not in eaten) or "FILE"
        targets = " ".join(eaten)
        raise InvocationError(
            f"{', '.join(eaten)}: read as config file(s), but named like target(s): "
            "--configfile takes every word after it as a config file. Put the targets first "
            f"(snakemake [options] {targets} --configfile {configs}) or end the file list "
            f"with -- (snakemake [options] --configfile {configs} -- {targets})"
        )
    if not configfiles and not (cwd / DEFAULT_CONFIG).is_file():
        raise InvocationError(
            f"snakemake runs in {cwd}, not in the repository root {repo}: the default config "
            f"{DEFAULT_CONFIG} and every path of a config are read from the working directory, "
            f"and {cwd / DEFAULT_CONFIG} does not exist. Run snakemake from the repository "
            f"root (cd {repo}) or pass --directory {repo}"
        )


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def paths_not_here(cwd: str | Path, repo: str | Path, config: Mapping[str, Any]) -> str | None:
    """A warning when snakemake runs outside the repository root and relative paths of the
    config exist in the repository but not in the working directory (None otherwise)."""
    cwd, repo = Path(cwd), Path(repo)
    if os.path.abspath(cwd) == os.path.abspath(repo):
        return None
    missing = []
    for text in dict.fromkeys(_strings(config)):
        if "/" not in text or "://" in text or os.path.isabs(text) or "\n" in text:
            continue
        if (repo / text).exists() and not (cwd / text).exists():
            missing.append(text)
    if not missing:
        return None
    more = f", and {len(missing) - 3} more" if len(missing) > 3 else ""
    return (
        f"snakemake runs in {cwd}, not in the repository root {repo}: the config's paths are "
        f"read from the working directory, and {len(missing)} of them that exist in the "
        f"repository are not here ({', '.join(missing[:3])}{more}); jobs that need them will "
        f"miss their input. Run snakemake from the repository root (cd {repo}) or pass "
        f"--directory {repo}"
    )
