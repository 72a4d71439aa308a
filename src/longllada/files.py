"""Writing result files so that a reader never sees half of one."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON via a temporary file and an atomic rename (a killed job leaves no torn file).

    The JSON is strict: NaN and inf raise ValueError (naming `path`) instead of reaching the file
    as the non-standard token NaN. The file gets the mode a plain open() would give it (0o666
    less the umask, or the directory's default ACL), so group members can read shared results.
    """
    path = Path(path)
    try:
        text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"
    except ValueError as err:
        raise ValueError(
            f"{path}: a non-finite number (NaN or inf) cannot be written as JSON: {err}"
        ) from None
    write_text(path, text)


def write_text(path: str | Path, text: str) -> None:
    """Write text via a temporary file and an atomic rename (see :func:`write_json`)."""
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write bytes via a temporary file and an atomic rename, with the mode open() would give
    (see :func:`write_json`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary file sits in the same directory, so os.replace is a rename on one filesystem.
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new, exclusively created file next to `path`, opened for writing.

    Unlike tempfile.mkstemp (always 0o600), the file is created with mode 0o666 and the kernel
    applies the process umask, exactly as for open(path, "w"); no umask is read or changed.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name next to {path}")


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def canonical(obj: Any) -> str:
    """Strict, sorted, compact JSON: equal content gives equal text (NaN and inf refused)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def project_path(path: str | Path, root: str | Path | None = None) -> str:
    """How a manifest records `path`: relative to the project (`root`, by default the working
    directory, where Snakemake runs) when it lies inside it, so that a copied or moved project
    reads its own files; absolute when it lies outside (a `local_dir` elsewhere, a shared data
    directory). Read back with :func:`from_project`."""
    base = Path(os.path.abspath(Path.cwd() if root is None else root))
    absolute = Path(os.path.abspath(Path(path).expanduser()))
    # As written first (a symlinked results/ stays relative), then with links resolved.
    for inner, outer in ((absolute, base), (absolute.resolve(), base.resolve())):
        try:
            return inner.relative_to(outer).as_posix() or "."
        except ValueError:
            continue
    return str(absolute.resolve())


def from_project(recorded: str | Path, root: str | Path | None = None) -> Path:
    """A path a manifest recorded (:func:`project_path`), absolute: a relative one is read from
    the project root (by default the working directory), an absolute one (outside the project,
    or from a manifest written before paths were relative) as it is."""
    path = Path(recorded).expanduser()
    if path.is_absolute():
        return path
    return Path(os.path.abspath((Path.cwd() if root is None else Path(root)) / path))


def data_remedy(manifest_path: str | Path, source: Any) -> str:
    """What to do about a data file that no longer has the bytes its data check recorded.

    A local directory is watched (size and mtime of each file): snakemake reruns the check,
    which records the new bytes, and what reads them. Fetched or generated files are not: the
    check would restore the pinned bytes, so a hand edit would never be used; say how to restore
    them, or how to run on edited data on purpose."""
    source = source if isinstance(source, dict) else {}
    if "local_dir" in source:
        return (
            "rerun snakemake: it checks the local directory again, records the new bytes and "
            "rebuilds what depends on them"
        )
    key = Path(manifest_path).parent.name
    if "archive" in source:
        made = f"fetched it from the pinned archive {source['archive']}"
    elif "hub_id" in source:
        made = f"fetched it from the hub dataset {source['hub_id']}@{source.get('commit')}"
    else:
        made = "generated it"
    return (
        f"the data check {made}, so a hand edit of it is never used. To restore those bytes, "
        f"delete {manifest_path} and run the check alone, `snakemake {manifest_path} "
        "[--configfile FILE]` (the same bytes give the same manifest, and nothing after it "
        "reruns); to run on edited data, "
        f"copy the directory, edit the copy and set data.{key} to it (a local directory: its "
        "edits rerun the check and what reads it)"
    )


def read_data_manifest(
    path: str | Path, needed: tuple[str, ...], error: type[Exception] = ValueError
) -> dict[str, Any]:
    """A benchmark data check's manifest, its directory made absolute (a relative one is read
    from the working directory: see :func:`project_path`); each `needed` file must still have
    the size and sha256 it recorded (else `error`, naming the file and what to do)."""
    manifest = json.loads(Path(path).read_text(encoding="utf-8"))
    directory = from_project(manifest["dir"])
    for name in needed:
        if name not in manifest["files"]:
            raise error(f"{path}: the data check lists no {name}")
        file = directory / name
        recorded = manifest["files"][name]
        remedy = data_remedy(path, manifest.get("source"))
        if not file.is_file():
            raise error(f"{file}: missing (it was there when {path} was written): {remedy}")
        if file.stat().st_size != recorded.get("size", file.stat().st_size) or (
            sha256_file(file) != recorded["sha256"]
        ):
            raise error(f"{file} changed after the data check ({path}): {remedy}")
    return {**manifest, "dir": str(directory)}


def dangling_link(path: Path) -> str | None:
    """What is wrong with `path` when it is a link whose file does not exist (None otherwise)."""
    if not path.is_symlink() or path.exists():
        return None
    target = os.readlink(path)
    return (
        f"{path} is a link to {target}, which does not exist "
        f"({os.path.normpath(path.parent / target)})"
    )
