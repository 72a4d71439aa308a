"""The input files a config names, checked before anything runs (the Snakefile, when it loads the
config, and `longllada validate`).

Snakemake keeps an existing output whose input file vanished, unless that output itself is asked
for: a `published:` CSV or a `data.ppl_document` that no longer exists would leave the tables and
figures made from the old file in place, and the run would end well. So every file or directory
the config names must exist when the config is loaded:

- each target's `published:` CSVs;
- `data.ppl_document`, when a run reads it, unless `data.ppl_document_url` is set (the local rule
  `fetch_ppl_document` then makes it);
- a local data directory (a string under `data.<benchmark>`) of a benchmark a run uses;
- the `local_dir:` of a model a run uses.

And data that a data check fetched or generated must still have the bytes it recorded
(`data_sources.changed_files`): a hand edit of such a file would otherwise be neither used nor
noticed. Each problem is one line naming the config key (or the file) and the path; relative
paths are read from the working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from longllada import data_sources
from longllada.config import DATA_KEY, GENERATIVE

if TYPE_CHECKING:
    from longllada.config import Study

DOCUMENT_BENCHMARKS = ("ppl", "qk_states")


def problems(study: Study, root: str | Path, repo: str | Path | None = None) -> list[str]:
    """Every input problem of `study` in the working directory `root` ([] when there is none).

    `repo`: the repository root, for snakemake started elsewhere: a relative path missing in
    `root` but found in `repo` is left out here, as the Snakefile names it in its warning
    (invocation.paths_not_here: a copy of the workflow elsewhere is legitimate)."""
    root = Path(root)
    out: list[str] = []

    def _absent(key: str, value: str, kind: str = "file") -> list[str]:
        found = _missing(key, value, root, kind)
        if found and repo is not None and not _missing(key, value, Path(repo), kind):
            return []
        return found

    for name, target in study.targets.items():
        published = target.spec.get("published") or []
        if isinstance(published, str):
            out += _absent(f"targets.{name}.published", published, "file")
        else:
            for i, path in enumerate(published):
                out += _absent(f"targets.{name}.published[{i}]", path, "file")
    used = {r.benchmark for r in study.runs.values()}
    data = study.data
    reads_document = used & set(DOCUMENT_BENCHMARKS) and "ppl_document" in data
    if reads_document and "ppl_document_url" not in data:
        note = " (or set data.ppl_document_url: the rule fetch_ppl_document fetches it)"
        out += [p + note for p in _absent("data.ppl_document", data["ppl_document"])]
    for bench in GENERATIVE:
        if bench not in used:
            continue
        key = DATA_KEY[bench]
        spec = data.get(key)
        if isinstance(spec, str):
            out += _absent(f"data.{key}", spec, "directory")
        elif spec is not None:
            out += data_sources.changed_files(bench, spec, root)
    for key in sorted({r.model for r in study.runs.values()}):
        local_dir = study.models[key].local_dir
        if local_dir:
            out += _absent(f"models.{key}.local_dir", local_dir, "directory")
    return out


def _missing(key: str, value: str, root: Path, kind: str) -> list[str]:
    """[the problem] when the `kind` ("file" or "directory") config `key` names is not there."""
    path = Path(value).expanduser()
    where = path if path.is_absolute() else root / path
    if where.is_dir() if kind == "directory" else where.is_file():
        return []
    what = f"is not a {kind}" if where.exists() else "does not exist"
    relative = (
        ""
        if path.is_absolute()
        else f" (relative paths are read from the working directory {root})"
    )
    return [f"{key}: {value} {what}{relative}"]
