"""longllada.files: the atomic JSON writer."""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from longllada.files import read_json, write_json


@pytest.fixture
def umask() -> Iterator[object]:
    """Set the process umask for one test, restoring it afterwards."""
    old = os.umask(0o022)
    os.umask(old)

    def set_umask(mask: int) -> None:
        os.umask(mask)

    yield set_umask
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_file_honours_the_umask(tmp_path: Path, umask, mask: int, mode: int) -> None:
    umask(mask)
    out = tmp_path / "sub" / "result.json"
    write_json(out, {"a": 1})
    assert _mode(out) == mode
    # Rewriting an existing file gives the same mode (a new temporary file replaces it).
    write_json(out, {"a": 2})
    assert _mode(out) == mode
    assert read_json(out) == {"a": 2}
    assert os.umask(mask) == mask  # the writer left the umask alone


def test_roundtrip_and_no_temporary_left(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    write_json(out, {"b": [1, 2.5, None], "a": "ü"})
    assert read_json(out) == {"a": "ü", "b": [1, 2.5, None]}
    assert out.read_text(encoding="utf-8").endswith("\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_refused(tmp_path: Path, bad: float) -> None:
    out = tmp_path / "nan.json"
    write_json(out, {"ok": 1})
    with pytest.raises(ValueError, match=r"nan\.json") as info:
        write_json(out, {"nested": {"ppl": bad}})
    assert "NaN" in str(info.value) or "inf" in str(info.value)
    assert read_json(out) == {"ok": 1}  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.json"]


def test_unserialisable_object_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "obj.json"
    with pytest.raises(TypeError):
        write_json(out, {"x": object()})
    assert list(tmp_path.iterdir()) == []
