"""Fetch model checkpoints from the Hugging Face hub (or use a local copy) and verify them.

Every run of the study starts from a checkpoint whose exact bytes are recorded: the resolved
commit sha, and the size and sha256 of every weight and config file. The checks here only read
safetensors *headers*, never the tensors, so verifying an 8B checkpoint costs one streaming hash
pass and no GPU or large RAM.

Errors the user can fix (gated model, wrong repo id or revision, no network, a corrupt or
incomplete checkpoint) are raised as `DownloadError` with a message that names the model or the
file. The hub token is never written to a file, a return value, a log line or an error message.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

try:  # huggingface_hub 2 speaks httpx2; 1.x (e.g. a GPU node's own stack) httpx
    import httpx2 as http_client
except ImportError:  # pragma: no cover - depends on the installed huggingface_hub
    import httpx as http_client
from huggingface_hub import HfApi, snapshot_download
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import filter_repo_objects

from longllada.files import dangling_link, project_path, write_json

# The hub cannot be reached (no network, offline mode, nothing cached).
OFFLINE_ERRORS = (http_client.TransportError, OfflineModeIsEnabled, LocalEntryNotFoundError)

__all__ = [
    "DEFAULT_IGNORE_PATTERNS",
    "DEFAULT_PATTERNS",
    "DownloadError",
    "check_verified_files",
    "fetch_snapshot",
    "use_local_dir",
    "verify_checkpoint",
]

log = logging.getLogger(__name__)

# What a run needs: configs and index (*.json), safetensors weights, tokenizer files (incl.
# sentencepiece *.model, tiktoken, merges/vocab *.txt) and the model's own hub code (*.py), which
# is kept for a later check that our implementation matches it.
DEFAULT_PATTERNS: tuple[str, ...] = (
    "*.json",
    "*.safetensors",
    "tokenizer*",
    "*.model",
    "*.tiktoken",
    "*.txt",
    "*.py",
)

# Pickled/duplicate weight formats are never fetched: they double the download and pickles can
# run code. `original/` holds Meta's consolidated checkpoint (its *.json/*.model would otherwise
# match above), `consolidated*` Mistral's single-file copy next to the HF shards.
DEFAULT_IGNORE_PATTERNS: tuple[str, ...] = (
    "*.bin",
    "*.pt",
    "*.pth",
    "*.gguf",
    "original/*",
    "consolidated*.safetensors",
)

SINGLE_WEIGHTS = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")
# JSON files that loaders (ours, transformers, tokenizers) read as objects: anything else in
# them is as broken as a syntax error. Every *.json verified is parsed; these must be objects.
_JSON_OBJECT_FILES = frozenset(
    {
        "config.json",
        INDEX_FILE,
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "preprocessor_config.json",
    }
)

# Where fetch_snapshot keeps the hub metadata it verified against, so that a later run with
# HF_HUB_OFFLINE=1 can still check hashes and report the commit. Inside local_dir/.cache, next to
# huggingface_hub's own bookkeeping, and skipped when files are listed.
_SIDECAR = Path(".cache") / "longllada" / "hub_metadata.json"

_HASH_CHUNK = 1 << 20  # 1 MiB: bounded memory while hashing multi-GB shards
# A job loading a checkpoint hashes the files up to this size again (configs, tokenizer, index,
# code, a tiny model's shards); larger shards are checked by size and safetensors header.
HASHED_AT_LOAD = 256 * 1024 * 1024
_MAX_HEADER_BYTES = 100 * 1024 * 1024  # a real safetensors header is a few MB at most
_SHA1_RE = re.compile(r"^[0-9a-f]{40}$")

# Bytes per element of the safetensors dtypes whose size is a whole number of bytes; packed
# sub-byte dtypes are left out and skip the shape-vs-bytes check.
_DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "F8_E8M0": 1,
    "U16": 2,
    "I16": 2,
    "F16": 2,
    "BF16": 2,
    "U32": 4,
    "I32": 4,
    "F32": 4,
    "U64": 8,
    "I64": 8,
    "F64": 8,
    "C64": 8,
}


class DownloadError(RuntimeError):
    """A checkpoint could not be fetched or failed verification, for a reason the user can fix.

    `path` is the offending local file when there is one (a hash or size mismatch).
    """

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


# --------------------------------------------------------------------------- hub download


def fetch_snapshot(
    repo_id: str,
    revision: str,
    local_dir: Path,
    allow_patterns: Sequence[str] = DEFAULT_PATTERNS,
    token: str | None = None,
    *,
    ignore_patterns: Sequence[str] = DEFAULT_IGNORE_PATTERNS,
) -> dict[str, Any]:
    """Download `repo_id` at `revision` into `local_dir`, verify it and return its manifest.

    Re-running resumes: files already present for the same commit are not fetched again.
    With HF_HUB_OFFLINE=1 an already filled `local_dir` is verified and used as is.
    """
    # An explicit token wins; else HF_TOKEN. With neither, huggingface_hub may still use a token
    # stored by `hf auth login`, which is why None (not False) is passed on.
    if token is None:
        token = os.environ.get("HF_TOKEN") or None
    local_dir = Path(local_dir).expanduser().resolve()
    allow = list(allow_patterns)
    ignore = list(ignore_patterns)

    if hf_constants.is_offline_mode():
        return _fetch_offline(repo_id, revision, local_dir, allow, ignore, token)

    try:
        # A finite timeout: a firewalled hub must fail fast, not hang the rule.
        info = HfApi().model_info(
            repo_id,
            revision=revision,
            files_metadata=True,
            token=token,
            timeout=hf_constants.HF_HUB_DOWNLOAD_TIMEOUT,
        )
        commit = info.sha
        if not commit:
            raise DownloadError(f"The hub did not report a commit for {repo_id}@{revision}.")
        expected = _expected_from_siblings(info.siblings or [], allow, ignore)
        local_dir.mkdir(parents=True, exist_ok=True)
        _write_sidecar(local_dir, repo_id, revision, commit, expected)
        # Download the commit just resolved rather than `revision`: a branch that moves between
        # the two calls must not mix files of two commits.
        snapshot_download(
            repo_id=repo_id,
            revision=commit,
            local_dir=local_dir,
            allow_patterns=allow,
            ignore_patterns=ignore,
            token=token,
        )
    except DownloadError:
        raise
    except Exception as err:
        mapped = _map_hub_error(err, repo_id, revision, token, local_dir)
        if mapped is None:
            raise
        raise mapped from err

    _check_complete(local_dir, expected, repo_id, commit)
    verification = _verify_downloaded(local_dir, expected, allow, repo_id)
    return _manifest("hub", repo_id, revision, commit, local_dir, allow, ignore, verification)


def _fetch_offline(
    repo_id: str,
    revision: str,
    local_dir: Path,
    allow: list[str],
    ignore: list[str],
    token: str | None,
) -> dict[str, Any]:
    """HF_HUB_OFFLINE=1: use what a previous (online) fetch left in `local_dir`."""
    try:
        # Offline, snapshot_download only checks the folder (completely so when it knows the
        # commit) and raises if there is nothing usable.
        snapshot_download(
            repo_id=repo_id,
            revision=revision,
            local_dir=local_dir,
            allow_patterns=allow,
            ignore_patterns=ignore,
            token=token,
        )
    except Exception as err:
        mapped = _map_hub_error(err, repo_id, revision, token, local_dir)
        if mapped is None:
            raise
        raise mapped from err
    if not local_dir.is_dir():
        raise DownloadError(
            f"HF_HUB_OFFLINE is set and {local_dir} does not exist: fetch {repo_id} on a machine "
            "with hub access first, or point the model's `local_dir:` at a copy."
        )

    sidecar = _read_sidecar(local_dir)
    commit: str | None = None
    expected: dict[str, dict[str, Any]] | None = None
    if sidecar.get("repo_id") == repo_id and revision in (
        sidecar.get("requested_revision"),
        sidecar.get("commit_sha"),
    ):
        commit = sidecar.get("commit_sha")
        expected = sidecar.get("files")
    elif _SHA1_RE.match(revision):
        commit = revision
    if commit is None:
        log.warning(
            "HF_HUB_OFFLINE: no record of which commit of %s@%s is in %s; verifying it without "
            "hub checksums.",
            repo_id,
            revision,
            local_dir,
        )
    if expected is not None and commit is not None:
        _check_complete(local_dir, expected, repo_id, commit)
    verification = _verify_downloaded(local_dir, expected, allow, repo_id)
    return _manifest("hub", repo_id, revision, commit, local_dir, allow, ignore, verification)


def _check_complete(
    local_dir: Path, expected: Mapping[str, Any], repo_id: str, commit: str
) -> None:
    missing = sorted(name for name in expected if not (local_dir / name).is_file())
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DownloadError(
            f"{repo_id}@{commit[:12]}: {', '.join(missing[:5])}{more} listed on the hub but "
            f"missing from {local_dir}; re-run with hub access to resume the download."
        )


def _verify_downloaded(
    local_dir: Path,
    expected: dict[str, dict[str, Any]] | None,
    allow: list[str],
    repo_id: str,
) -> dict[str, Any]:
    try:
        return verify_checkpoint(local_dir, expected, patterns=allow)
    except DownloadError as err:
        if err.path is None:
            raise
        # A file that does not match the hub's checksum would otherwise be kept forever
        # (huggingface_hub trusts its own bookkeeping on resume): remove it so that re-running
        # fetches it again. Only done for hub downloads, never for a user's local_dir.
        err.path.unlink(missing_ok=True)
        raise DownloadError(
            f"{repo_id}: {err} The bad copy was removed; re-run to download it again.",
            path=err.path,
        ) from err


def _expected_from_siblings(
    siblings: Iterable[Any], allow: list[str], ignore: list[str]
) -> dict[str, dict[str, Any]]:
    """Hub metadata (size, LFS sha256, git blob sha1) of the files the patterns select."""
    expected: dict[str, dict[str, Any]] = {}
    for sib in filter_repo_objects(
        siblings, allow_patterns=allow, ignore_patterns=ignore, key=lambda s: s.rfilename
    ):
        entry: dict[str, Any] = {"size": sib.size, "sha256": sib.lfs.sha256 if sib.lfs else None}
        # For files kept in git (not LFS) the blob id is a content hash too; for LFS files it
        # hashes the pointer, so it is only recorded for the former.
        if sib.lfs is None and sib.blob_id:
            entry["git_sha1"] = sib.blob_id
        expected[sib.rfilename] = entry
    return expected


def _map_hub_error(
    err: Exception, repo_id: str, revision: str, token: str | None, local_dir: Path
) -> DownloadError | None:
    """Translate a huggingface_hub/httpx error into a DownloadError; None if it is not ours."""
    page = f"{hf_constants.ENDPOINT}/{repo_id}"
    token_note = (
        "A token was given but its account has no access yet"
        if token
        else "No token was given (HF_TOKEN is not set)"
    )
    reason = _scrub(_first_line(err), token)
    if isinstance(err, GatedRepoError):  # before RepositoryNotFoundError: it is a subclass
        msg = (
            f"{repo_id} is a gated model. {token_note}. Accept its license on {page} while "
            "logged in, then export HF_TOKEN=<a read token of that account> and re-run."
        )
    elif isinstance(err, RevisionNotFoundError):
        msg = f"{repo_id} has no revision {revision!r} on the hub: check `revision:` in the config."
    elif isinstance(err, RepositoryNotFoundError):
        msg = (
            f"{repo_id} was not found on the hub ({reason}). Check `hub_id:` in the config; if "
            "the repo is private, export HF_TOKEN with a token that can read it."
        )
    elif isinstance(err, HFValidationError):
        msg = f"{repo_id!r} is not a valid hub repo id ({reason})."
    elif isinstance(err, RemoteEntryNotFoundError):
        msg = f"A file of {repo_id}@{revision} vanished from the hub during download ({reason})."
    elif isinstance(err, OFFLINE_ERRORS):
        if hf_constants.is_offline_mode():
            msg = (
                f"HF_HUB_OFFLINE is set and {local_dir} holds no usable copy of "
                f"{repo_id}@{revision} ({reason}). Fetch it once with hub access, or point the "
                "model's `local_dir:` at a copy."
            )
        else:
            msg = (
                f"The hub ({hf_constants.ENDPOINT}) was unreachable while fetching "
                f"{repo_id}@{revision} ({reason}). On machines without internet, set the model's "
                "`local_dir:` in the config to a downloaded checkpoint, or run with "
                "HF_HUB_OFFLINE=1 and a pre-filled checkpoint directory."
            )
    elif isinstance(err, HfHubHTTPError):
        msg = f"The hub answered with an error while fetching {repo_id}@{revision}: {reason}"
    elif isinstance(err, OSError):  # size check of a download, disk full, permissions
        msg = f"Downloading {repo_id}@{revision} failed: {reason}"
    else:
        return None
    return DownloadError(_scrub(msg, token))


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def _scrub(text: str, token: str | None) -> str:
    """Belt and braces: no message built from a server or library error may carry the token."""
    return text.replace(token, "***") if token else text


def _write_sidecar(
    local_dir: Path,
    repo_id: str,
    revision: str,
    commit: str,
    expected: dict[str, dict[str, Any]],
) -> None:
    record = {
        "repo_id": repo_id,
        "requested_revision": revision,
        "commit_sha": commit,
        "files": expected,
    }
    if _read_sidecar(local_dir) == record:
        return  # a re-run leaves the directory untouched
    write_json(local_dir / _SIDECAR, record)


def _read_sidecar(local_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((local_dir / _SIDECAR).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# --------------------------------------------------------------------------- local copies


def use_local_dir(path: Path) -> dict[str, Any]:
    """Use a checkpoint directory in place (no copy, no network) after verifying it."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise DownloadError(f"local_dir {root} does not exist or is not a directory.")
    verification = verify_checkpoint(root, None, patterns=DEFAULT_PATTERNS)
    return _manifest("local", None, None, None, root, list(DEFAULT_PATTERNS), [], verification)


def _manifest(
    source: str,
    repo_id: str | None,
    revision: str | None,
    commit: str | None,
    snapshot_dir: Path,
    patterns: list[str],
    ignore: list[str],
    verification: dict[str, Any],
) -> dict[str, Any]:
    return {
        "source": source,
        "repo_id": repo_id,
        "requested_revision": revision,
        "commit_sha": commit,
        # Relative to the project when inside it (a copied project loads its own files),
        # absolute outside it (a local_dir elsewhere): files.project_path.
        "snapshot_dir": project_path(snapshot_dir),
        "patterns": patterns,
        "ignore_patterns": ignore,
        "verification": verification,
    }


# --------------------------------------------------------------------------- verification


def verify_checkpoint(
    snapshot_dir: Path,
    expected: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    patterns: Sequence[str] = DEFAULT_PATTERNS,
) -> dict[str, Any]:
    """Check that `snapshot_dir` holds a complete, self-consistent safetensors checkpoint.

    `expected` maps file names to hub metadata {"size": int, "sha256": str | None} (optionally
    "git_sha1" for non-LFS files); files listed there but absent locally are skipped. Returns
    {"files": [{"name", "size", "sha256"}], "n_tensors", "total_bytes", "shards"} where `files`
    are those matching `patterns` (weights, configs, tokenizer, code).
    """
    root = Path(snapshot_dir)
    if not root.is_dir():
        raise DownloadError(f"Checkpoint directory {root} does not exist.")
    hashes: dict[str, str] = {}  # each file is hashed at most once per call

    def sha256_of(name: str) -> str:
        if name not in hashes:
            hashes[name] = _file_digest(root / name, hashlib.sha256())
        return hashes[name]

    # Hub checksums first: a corrupt download is the root cause of any later structural error.
    for name, meta in sorted((expected or {}).items()):
        path = root / name
        if not path.is_file():
            continue
        size = path.stat().st_size
        if meta.get("size") is not None and size != meta["size"]:
            raise DownloadError(
                f"{name}: {size} bytes on disk, the hub lists {meta['size']}.", path=path
            )
        want = meta.get("sha256")
        if want and sha256_of(name) != want.lower():
            raise DownloadError(
                f"{name}: sha256 {hashes[name]} does not match the hub's {want}.", path=path
            )
        blob = meta.get("git_sha1")
        if blob and _git_blob_sha1(path) != blob.lower():
            raise DownloadError(
                f"{name}: content does not match the hub's git blob {blob}.", path=path
            )

    config_path = root / "config.json"
    if not config_path.is_file():
        raise DownloadError(f"config.json is missing from {root}.")
    _read_json_file(root, "config.json")

    shards, n_tensors, total_bytes = _verify_weights(root)

    if not any((root / name).is_file() for name in TOKENIZER_FILES) and not any(
        root.glob("*.tiktoken")
    ):
        raise DownloadError(
            f"No tokenizer in {root}: expected {' or '.join(TOKENIZER_FILES)} (or a *.tiktoken)."
        )

    listed = listed_files(root, patterns)
    # Every JSON file a loader may read later (tokenizer_config.json, generation_config.json,
    # ...) is parsed now, so that a torn one fails here, by name, and not in a GPU job.
    for name in listed:
        if name.endswith(".json") and name not in ("config.json", INDEX_FILE):
            _read_json_file(root, name)
    _check_tokenizer(root)

    files = [
        {"name": name, "size": (root / name).stat().st_size, "sha256": sha256_of(name)}
        for name in listed
    ]
    return {"files": files, "n_tensors": n_tensors, "total_bytes": total_bytes, "shards": shards}


def check_verified_files(
    root: Path,
    files: Sequence[Mapping[str, Any]],
    where: str,
    *,
    skip: Iterable[str] = (),
) -> None:
    """Before a job loads the checkpoint in `root`: are its files the ones the download check
    verified? `files`: the manifest's `verification.files` (name, size, sha256), `where`: the
    manifest, named in the message. Each file must be there (a link whose file is gone is
    named as such) with its recorded size; files up to HASHED_AT_LOAD bytes also with their
    sha256; larger shards are checked by their safetensors headers against the index (tensor
    names, byte ranges, total_size), as the download check did. DownloadError otherwise,
    naming the file."""
    root = Path(root)
    skipped = set(skip)
    again = (
        f"rerun the download check alone (`snakemake --forcerun download -- {where}`), then the job"
    )
    for entry in files:
        name = entry["name"]
        if name in skipped:
            continue
        path = root / name
        if dangling_link(path):
            raise DownloadError(f"{dangling_link(path)}; {where} verified it: {again}", path=path)
        if not path.is_file():
            raise DownloadError(f"{path} is missing; {where} verified it: {again}", path=path)
        size = path.stat().st_size
        if size != entry["size"]:
            raise DownloadError(
                f"{path} has {size} bytes, but {where} verified {entry['size']}: the file "
                f"changed after the download check; {again}",
                path=path,
            )
        if size <= HASHED_AT_LOAD and _file_digest(path, hashlib.sha256()) != entry["sha256"]:
            raise DownloadError(
                f"{path}: its sha256 is not the one {where} verified ({entry['sha256'][:12]}...): "
                f"the file changed after the download check; {again}",
                path=path,
            )
    try:
        _verify_weights(root)
    except DownloadError as err:
        message = f"{err} ({where} verified it otherwise: {again})"
        raise DownloadError(message, path=err.path) from err


def _verify_weights(root: Path) -> tuple[list[str], int, int]:
    """Check the safetensors layout; return (shard names, tensor count, tensor bytes)."""
    single = root / SINGLE_WEIGHTS
    index_path = root / INDEX_FILE
    if single.is_file():
        # transformers loads model.safetensors first when both layouts are present, so do we.
        tensors = _read_safetensors_header(single, SINGLE_WEIGHTS)
        return [SINGLE_WEIGHTS], len(tensors), sum(tensors.values())
    if not index_path.is_file():
        for path in (index_path, single):  # a link whose file is gone: a copied view, say
            if dangling_link(path):
                raise DownloadError(f"No weights in {root}: {dangling_link(path)}.", path=path)
        raise DownloadError(f"No weights in {root}: expected {SINGLE_WEIGHTS} or {INDEX_FILE}.")

    index = _read_json_file(root, INDEX_FILE)
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise DownloadError(f"{INDEX_FILE} has no weight_map.")
    for tensor, shard in weight_map.items():
        if not isinstance(shard, str) or not _is_safe_relative(shard):
            raise DownloadError(
                f"{INDEX_FILE}: tensor {tensor} maps to an invalid shard {shard!r}."
            )

    shard_names = sorted(set(weight_map.values()))
    for shard in shard_names:
        if dangling_link(root / shard):
            raise DownloadError(
                f"Shard {shard} named in {INDEX_FILE}: {dangling_link(root / shard)}.",
                path=root / shard,
            )
        if not (root / shard).is_file():
            needed = next(t for t, s in weight_map.items() if s == shard)
            raise DownloadError(
                f"Shard {shard} named in {INDEX_FILE} is missing from {root} "
                f"(it should hold e.g. {needed})."
            )
    headers = {shard: _read_safetensors_header(root / shard, shard) for shard in shard_names}

    for tensor, shard in weight_map.items():
        if tensor not in headers[shard]:
            raise DownloadError(
                f"Tensor {tensor}: {INDEX_FILE} puts it in {shard}, which lacks it."
            )
    for shard, tensors in headers.items():
        extra = sorted(t for t in tensors if weight_map.get(t) != shard)
        if extra:
            raise DownloadError(
                f"Shard {shard} holds tensor(s) {INDEX_FILE} does not list there: "
                f"{', '.join(extra[:5])}{' ...' if len(extra) > 5 else ''}."
            )

    n_tensors = sum(len(t) for t in headers.values())
    total_bytes = sum(sum(t.values()) for t in headers.values())
    metadata = index.get("metadata") or {}
    if isinstance(metadata, dict) and metadata.get("total_size") is not None:
        try:
            declared = int(metadata["total_size"])
        except (TypeError, ValueError) as err:
            raise DownloadError(f"{INDEX_FILE}: metadata.total_size is not a number.") from err
        if declared != total_bytes:
            raise DownloadError(
                f"{INDEX_FILE}: metadata.total_size is {declared} but the shards hold "
                f"{total_bytes} bytes of tensors."
            )

    stray = sorted(
        p.name
        for p in root.glob("*.safetensors")
        if p.name not in headers and p.name != SINGLE_WEIGHTS
    )
    if stray:
        # Typically shards of an older revision left in a re-used local_dir; loaders ignore them.
        log.warning("%s: safetensors files not in %s: %s", root, INDEX_FILE, ", ".join(stray))
    return shard_names, n_tensors, total_bytes


def _read_json_file(root: Path, name: str) -> Any:
    """Parse root/name as strict UTF-8 JSON; DownloadError naming the file if it is not."""
    path = root / name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:  # includes UnicodeDecodeError
        raise DownloadError(f"{name} in {root} is not valid JSON: {err}") from err
    except OSError as err:
        raise DownloadError(f"{name} in {root} cannot be read: {err}") from err
    if Path(name).name in _JSON_OBJECT_FILES and not isinstance(data, dict):
        raise DownloadError(f"{name} in {root} is not a JSON object.")
    return data


def _check_tokenizer(root: Path) -> None:
    """Load tokenizer.json with the `tokenizers` library, as transformers will in the jobs."""
    path = root / "tokenizer.json"
    if not path.is_file():
        return
    from tokenizers import Tokenizer  # only needed here; a transformers dependency

    try:
        Tokenizer.from_file(str(path))
    except Exception as err:  # tokenizers raises a bare Exception for a bad file
        raise DownloadError(
            f"tokenizer.json in {root} cannot be loaded by the tokenizers library: "
            f"{_first_line(err)}"
        ) from err


def _read_safetensors_header(path: Path, name: str) -> dict[str, int]:
    """Parse a safetensors header (8-byte little-endian length + JSON); return tensor -> bytes.

    Also checks that the tensors' byte ranges tile the data section exactly, which catches
    truncated or padded files without reading the tensors.
    """
    file_size = path.stat().st_size
    with path.open("rb") as f:
        raw_len = f.read(8)
        if len(raw_len) < 8:
            raise DownloadError(
                f"{name} is too short to be a safetensors file ({file_size} bytes)."
            )
        (header_len,) = struct.unpack("<Q", raw_len)
        if header_len > min(file_size - 8, _MAX_HEADER_BYTES):
            raise DownloadError(f"{name}: invalid safetensors header length {header_len}.")
        raw_header = f.read(header_len)
    try:
        header = json.loads(raw_header)
    except (ValueError, UnicodeDecodeError) as err:
        raise DownloadError(f"{name}: safetensors header is not valid JSON: {err}") from err
    if not isinstance(header, dict):
        raise DownloadError(f"{name}: safetensors header is not a JSON object.")
    header.pop("__metadata__", None)

    data_len = file_size - 8 - header_len
    tensors: dict[str, int] = {}
    spans: list[tuple[int, int, str]] = []
    for tensor, info in header.items():
        try:
            start, end = (int(x) for x in info["data_offsets"])
            shape = [int(d) for d in info["shape"]]
            dtype = str(info["dtype"])
        except (KeyError, TypeError, ValueError) as err:
            raise DownloadError(f"{name}: malformed header entry for tensor {tensor}.") from err
        if not 0 <= start <= end:
            raise DownloadError(f"{name}: tensor {tensor} has invalid offsets [{start}, {end}].")
        itemsize = _DTYPE_BYTES.get(dtype)
        if itemsize is not None and math.prod(shape) * itemsize != end - start:
            raise DownloadError(
                f"{name}: tensor {tensor} ({dtype}{shape}) should take "
                f"{math.prod(shape) * itemsize} bytes, its offsets span {end - start}."
            )
        tensors[tensor] = end - start
        spans.append((start, end, tensor))

    position = 0
    for start, end, tensor in sorted(spans):
        if start != position:
            raise DownloadError(f"{name}: tensor {tensor} does not start where the previous ends.")
        position = end
    if position != data_len:
        raise DownloadError(
            f"{name} is truncated or has trailing bytes: tensors cover {position} bytes, "
            f"the file holds {data_len} after the header."
        )
    return tensors


def listed_files(root: Path, patterns: Sequence[str]) -> list[str]:
    """Files under root matching the patterns, skipping hidden dirs (.cache bookkeeping)."""
    names = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        names.append(rel.as_posix())
    return sorted(filter_repo_objects(names, allow_patterns=list(patterns)))


def _is_safe_relative(name: str) -> bool:
    parts = Path(name).parts
    return bool(parts) and not Path(name).is_absolute() and ".." not in parts


def _file_digest(path: Path, hasher: Any) -> str:
    with path.open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def _git_blob_sha1(path: Path) -> str:
    hasher = hashlib.sha1(usedforsecurity=False)
    hasher.update(b"blob %d\0" % path.stat().st_size)
    return _file_digest(path, hasher)
