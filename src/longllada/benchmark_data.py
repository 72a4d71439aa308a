"""Benchmark data files: fetched from a Hugging Face dataset repo at a pinned revision or from a
pinned zip archive, or checked in a local directory, and recorded in a deterministic manifest.

The NIAH, RULER and LongBench stages each read a few data files (NIAH: `needles.jsonl` and
`en_un_asr.jsonl`, from OpenCompass's `needlebench.zip` or the hub dataset
`opencompass/needlebench`). One rule on the submit host fetches them once; every later job reads
the manifest, which names the directory holding the files and the size and sha256 of each:

    {"source": {"hub_id": ..., "revision": <as requested>, "commit": <40-hex sha>}
               or {"archive": <url>, "md5": ..., "sha256": <of the archive>}
               or {"local_dir": <path>},
     "dir": <path of the directory holding the files>,
     "files": {name: {"sha256": ..., "size": ...}}}

No timestamp or host name enters it, so the same bytes give the same manifest (and digest).
Paths are relative to the project (the working directory) when they lie inside it, so a copied
or moved project reads its own files; absolute when they lie outside (`files.project_path`).

Errors the user can fix (unknown repo or revision, gated dataset, no network, a file the repo does
not have, a corrupt download, a missing local file) are raised as `DataError`, naming the file and
the repo/revision. The hub token is never written to the manifest, a log line or an error message.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import tempfile
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from longllada.files import canonical, digest, project_path, write_json
from longllada.hub import (
    _SHA1_RE,
    OFFLINE_ERRORS,
    _file_digest,
    _first_line,
    _git_blob_sha1,
    _scrub,
)

__all__ = [
    "DataError",
    "check_local_files",
    "fetch_archive_files",
    "fetch_hub_files",
    "local_files_state",
    "manifest_digest",
    "write_manifest",
]

_MAX_LISTED = 20  # repo files named in a "not in the repo" error


class DataError(ValueError):
    """Benchmark data could not be fetched or checked, for a reason the user can fix."""


# --------------------------------------------------------------------------- hub dataset


def fetch_hub_files(
    repo_id: str,
    revision: str,
    files: Sequence[str],
    out_dir: Path,
    token: str | None = None,
    *,
    data_key: str | None = None,
) -> dict[str, Any]:
    """Download `files` of the hub dataset `repo_id` at `revision` into `out_dir`, verify them
    against the hub's sizes and hashes and return their manifest.

    `revision` (a branch, tag or commit sha) is resolved to a commit once and every file is
    downloaded at that commit, so a branch that moves meanwhile cannot mix two commits. Files
    already in `out_dir` from an earlier fetch of the same commit are not downloaded again.
    `data_key` (e.g. "needlebench") only makes the error messages name the config entry.
    """
    names = _check_names(files)
    if not revision:
        raise DataError(f"dataset {repo_id}: no revision given; pin one (a branch or a commit).")
    # An explicit token wins; else HF_TOKEN. With neither, huggingface_hub may still use a token
    # stored by `hf auth login`, which is why None (not False) is passed on.
    if token is None:
        token = os.environ.get("HF_TOKEN") or None
    out_dir = Path(out_dir).expanduser().resolve()
    where = f"{repo_id}@{revision}"

    try:
        # A finite timeout: a firewalled hub must fail fast, not hang the rule.
        info = HfApi().dataset_info(
            repo_id,
            revision=revision,
            files_metadata=True,
            token=token,
            timeout=hf_constants.HF_HUB_DOWNLOAD_TIMEOUT,
        )
    except Exception as err:
        mapped = _map_hub_error(err, repo_id, revision, token, names, data_key, file=None)
        if mapped is None:
            raise
        raise mapped from err

    commit = (info.sha or "").lower()
    if not _SHA1_RE.match(commit):
        raise DataError(f"The hub reported no commit for dataset {where} (got {info.sha!r}).")
    siblings = {s.rfilename: s for s in info.siblings or []}
    missing = [name for name in names if name not in siblings]
    if missing:
        have = sorted(siblings)
        shown = ", ".join(have[:_MAX_LISTED]) + (
            f" and {len(have) - _MAX_LISTED} more" if len(have) > _MAX_LISTED else ""
        )
        raise DataError(
            f"dataset {repo_id}@{revision} (commit {commit[:12]}) has no "
            f"{', '.join(missing)}; it holds: {shown or 'no files'}."
        )

    out_dir.mkdir(parents=True, exist_ok=True)
    entries: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            # The commit just resolved, never `revision`: with a commit, hf_hub_download also
            # skips the network for a file its local_dir bookkeeping shows as fetched already.
            path = Path(
                hf_hub_download(
                    repo_id,
                    name,
                    repo_type="dataset",
                    revision=commit,
                    local_dir=out_dir,
                    token=token,
                )
            )
        except Exception as err:
            mapped = _map_hub_error(err, repo_id, revision, token, names, data_key, file=name)
            if mapped is None:
                raise
            raise mapped from err
        if path.resolve() != (out_dir / name).resolve():  # hf_hub_download keeps repo paths
            raise DataError(f"{name} of dataset {where} was saved to {path}, not {out_dir}.")
        entries[name] = _verify_against_hub(path, name, siblings[name], repo_id, commit)

    return {
        "source": {"hub_id": repo_id, "revision": revision, "commit": commit},
        "dir": project_path(out_dir),
        "files": entries,
    }


def _verify_against_hub(
    path: Path, name: str, sibling: Any, repo_id: str, commit: str
) -> dict[str, Any]:
    """Size and hash of a downloaded file against the hub's metadata; a bad copy is removed."""
    where = f"dataset {repo_id}@{commit[:12]}"
    size = path.stat().st_size
    sha256 = _file_digest(path, hashlib.sha256())
    problem = None
    if sibling.size is None:
        problem = "the hub listed no size for it, so it cannot be verified"
    elif size != sibling.size:
        problem = f"{size} bytes on disk, the hub lists {sibling.size}"
    elif sibling.lfs is not None and sibling.lfs.sha256:
        if sha256 != sibling.lfs.sha256.lower():
            problem = f"sha256 {sha256} does not match the hub's {sibling.lfs.sha256}"
    elif sibling.blob_id:
        # Kept in git, not LFS: the blob id is the sha1 of "blob <size>\0" + content.
        blob = _git_blob_sha1(path)
        if blob != sibling.blob_id.lower():
            problem = f"git blob sha1 {blob} does not match the hub's {sibling.blob_id}"
    else:
        problem = "the hub listed no sha256 or git blob id for it, so it cannot be verified"
    if problem is not None:
        # huggingface_hub would keep trusting its own bookkeeping: remove the bad copy so that
        # re-running downloads it again.
        path.unlink(missing_ok=True)
        raise DataError(
            f"{name} of {where}: {problem}. The bad copy was removed; re-run to download it again."
        )
    return {"sha256": sha256, "size": size}


def _map_hub_error(
    err: Exception,
    repo_id: str,
    revision: str,
    token: str | None,
    names: Sequence[str],
    data_key: str | None,
    *,
    file: str | None,
) -> DataError | None:
    """Translate a huggingface_hub/httpx error into a one-line DataError; None if not ours."""
    what = f"{file} of dataset {repo_id}@{revision}" if file else f"dataset {repo_id}@{revision}"
    entry = f"data.{data_key}" if data_key else "the benchmark's `data:` entry"
    local = f"point {entry} at a local directory holding {', '.join(names)}"
    page = f"{hf_constants.ENDPOINT}/datasets/{repo_id}"
    reason = _scrub(_first_line(err), token)
    if isinstance(err, GatedRepoError):  # before RepositoryNotFoundError: it is a subclass
        note = (
            "a token was given but its account has no access yet"
            if token
            else "no token was given (HF_TOKEN is not set)"
        )
        msg = (
            f"{what}: the dataset is gated and {note}. Accept its terms on {page} while logged "
            f"in and export HF_TOKEN=<a read token of that account>, or {local}."
        )
    elif isinstance(err, RevisionNotFoundError):
        msg = (
            f"dataset {repo_id} has no revision {revision!r} on the hub: check the revision "
            f"pinned for it, or {local}."
        )
    elif isinstance(err, RepositoryNotFoundError):
        msg = (
            f"dataset {repo_id} was not found on the hub ({reason}). Check the repo id (a "
            "dataset repo, not a model); if it is private, export HF_TOKEN with a token that "
            f"can read it; or {local}."
        )
    elif isinstance(err, HFValidationError):
        msg = f"{repo_id!r} is not a valid hub dataset id ({reason})."
    elif isinstance(err, RemoteEntryNotFoundError):
        msg = f"{what}: the file vanished from the hub during download ({reason})."
    elif isinstance(err, OFFLINE_ERRORS):
        if hf_constants.is_offline_mode():
            msg = (
                f"HF_HUB_OFFLINE is set, so {what} cannot be fetched ({reason}): unset it on a "
                f"machine with hub access, or {local}."
            )
        else:
            msg = (
                f"The hub ({hf_constants.ENDPOINT}) was unreachable while fetching {what} "
                f"({reason}). On machines without internet, {local}."
            )
    elif isinstance(err, HfHubHTTPError):
        msg = f"The hub answered with an error while fetching {what}: {reason}"
    elif isinstance(err, OSError):  # size check of a download, disk full, permissions
        msg = f"Downloading {what} failed: {reason}"
        if "Consistency check failed" in reason:  # huggingface_hub's size check
            msg += " Nothing was kept; re-run to download it again."
    else:
        return None
    return DataError(_scrub(msg, token))


# --------------------------------------------------------------------------- zip archive

ARCHIVE_RECORD = ".archive.json"  # beside the extracted files: which archive they came from


def fetch_archive_files(
    url: str,
    files: Sequence[str],
    out_dir: Path,
    md5: str | None = None,
    sha256: str | None = None,
    *,
    data_key: str | None = None,
    timeout: float = 120,
) -> dict[str, Any]:
    """Download the zip archive at `url` (OpenCompass's own `needlebench.zip`, `ruler.zip`,
    `Longbench.zip`), check it against the pinned `md5` (OpenCompass pins archives by md5) and/or
    `sha256`, extract `files` (found by their base name anywhere in the archive, exactly once
    each: OpenCompass's zips hold them under a top folder, e.g. `needlebench/needles.jsonl`)
    into `out_dir`, and return their manifest. An `out_dir` that already holds the files of this
    very archive (its record `.archive.json` and the files' sha256 agree) is not downloaded
    again."""
    names = _check_names(files)
    if not (md5 or sha256):
        raise DataError(f"archive {url}: pin it with md5 or sha256 (data.{data_key or '...'}).")
    out_dir = Path(out_dir).expanduser().resolve()
    pinned = {"archive": url, "md5": md5, "sha256": sha256}
    record = out_dir / ARCHIVE_RECORD
    # A missing or stale record: download again.
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        known = json.loads(record.read_text(encoding="utf-8"))
        if _pins_agree(known["source"], pinned) and all(
            (out_dir / n).is_file()
            and _file_digest(out_dir / n, hashlib.sha256()) == known["files"][n]["sha256"]
            for n in names
        ):
            return {
                "source": known["source"],
                "dir": project_path(out_dir),
                "files": known["files"],
            }
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".download-") as tmp:
        archive = Path(tmp) / "archive.zip"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(archive, "wb") as f:
                shutil.copyfileobj(response, f, 1 << 20)
        except OSError as err:
            where = f"data.{data_key}" if data_key else "the config"
            raise DataError(
                f"could not download {url} ({_first_line(err)}); the submit host needs the "
                f"network, or point {where} at a local directory holding {', '.join(names)}."
            ) from None
        got = {
            "md5": _file_digest(archive, hashlib.md5()),
            "sha256": _file_digest(archive, hashlib.sha256()),
        }
        for algo in ("md5", "sha256"):
            if pinned[algo] and got[algo] != pinned[algo].lower():
                where = f" in data.{data_key}" if data_key else ""
                raise DataError(
                    f"{url}: {algo} {got[algo]} is not the pinned {pinned[algo]}{where} (a "
                    "changed or corrupt archive; nothing was extracted)."
                )
        try:
            with zipfile.ZipFile(archive) as zf:
                members = [m for m in zf.infolist() if not m.is_dir()]
                for name in names:
                    base = PurePosixPath(name).name
                    hits = [m for m in members if PurePosixPath(m.filename).name == base]
                    if len(hits) != 1:
                        listed = ", ".join(m.filename for m in members[:_MAX_LISTED])
                        raise DataError(
                            f"{url}: {len(hits)} members named {base} (need exactly one); "
                            f"it holds: {listed}."
                        )
                    target = out_dir / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    part = target.with_name(f".{target.name}.part")
                    with zf.open(hits[0]) as src, open(part, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    os.replace(part, target)
        except zipfile.BadZipFile:
            raise DataError(f"{url}: not a zip archive.") from None
    manifest = check_local_files(out_dir, names)
    manifest["source"] = {"archive": url, **got}
    write_json(record, {"source": manifest["source"], "files": manifest["files"]})
    return manifest


def _pins_agree(source: dict[str, Any], pinned: dict[str, Any]) -> bool:
    return source.get("archive") == pinned["archive"] and all(
        not pinned[a] or source.get(a) == pinned[a].lower() for a in ("md5", "sha256")
    )


# --------------------------------------------------------------------------- local directory


def check_local_files(directory: Path, files: Sequence[str]) -> dict[str, Any]:
    """Check that `directory` holds each of `files` as a non-empty regular file (symlinks to one
    are fine) and return their manifest. The files are used in place, never copied."""
    names = _check_names(files)
    root = Path(directory).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"Data directory {root} does not exist or is not a directory.")
    entries: dict[str, dict[str, Any]] = {}
    for name in names:
        path = root / name
        try:
            st = path.stat()
        except FileNotFoundError:
            raise DataError(f"{path} is missing (the benchmark needs {name}).") from None
        except OSError as err:
            raise DataError(f"{path} cannot be read: {_first_line(err)}") from err
        if not stat.S_ISREG(st.st_mode):
            raise DataError(f"{path} is not a regular file.")
        if st.st_size == 0:
            raise DataError(f"{path} is empty.")
        try:
            sha256 = _file_digest(path, hashlib.sha256())
        except OSError as err:
            raise DataError(f"{path} cannot be read: {_first_line(err)}") from err
        entries[name] = {"sha256": sha256, "size": st.st_size}
    where = project_path(root)
    return {"source": {"local_dir": where}, "dir": where, "files": entries}


def local_files_state(directory: Path, files: Sequence[str]) -> dict[str, list[int] | None]:
    """[size, mtime_ns] of each file in a directory outside the DAG (None if it is missing or
    not a regular file), for a Snakemake params fingerprint: editing a file reruns the check."""
    root = Path(directory).expanduser()
    state: dict[str, list[int] | None] = {}
    for name in files:
        try:
            st = (root / name).stat()
        except OSError:
            state[name] = None
            continue
        state[name] = [st.st_size, st.st_mtime_ns] if stat.S_ISREG(st.st_mode) else None
    return state


# --------------------------------------------------------------------------- manifest


def manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 of the manifest's canonical JSON: equal content, equal digest."""
    return digest(canonical(manifest))


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest atomically, as sorted, strict JSON."""
    write_json(path, manifest)


def _check_names(files: Sequence[str]) -> list[str]:
    """The requested names, each a relative path inside the directory, in the given order."""
    if isinstance(files, str):
        raise DataError(f"files must be a list of file names, not the string {files!r}.")
    names = list(files)
    if not names:
        raise DataError("No data files were requested.")
    for name in names:
        parts = PurePosixPath(name).parts if isinstance(name, str) else ()
        if (
            not parts
            or name.startswith("/")
            or "\\" in name
            or any(part in ("", ".", "..") for part in name.split("/"))
            or parts[0] == ".cache"  # huggingface_hub's bookkeeping in a local_dir
        ):
            raise DataError(f"{name!r} is not a relative file name inside the data directory.")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DataError(f"Data files requested twice: {', '.join(duplicates)}.")
    return names
