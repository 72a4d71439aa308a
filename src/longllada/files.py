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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary file sits in the same directory, so os.replace is a rename on one filesystem.
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
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


def read_data_manifest(
    path: str | Path, needed: tuple[str, ...], error: type[Exception] = ValueError
) -> dict[str, Any]:
    """A benchmark data check's manifest; each `needed` file must still have the bytes it
    recorded (else `error`, naming the file: the check reruns and rebuilds what follows)."""
    manifest = json.loads(Path(path).read_text(encoding="utf-8"))
    directory = Path(manifest["dir"])
    for name in needed:
        if name not in manifest["files"]:
            raise error(f"{path}: the data check lists no {name}")
        file = directory / name
        if not file.is_file():
            raise error(f"{file}: missing (it was there when {path} was written)")
        if sha256_file(file) != manifest["files"][name]["sha256"]:
            raise error(
                f"{file} changed after the data check ({path}): rerun snakemake, which checks "
                "it again and rebuilds what depends on it"
            )
    return manifest
