"""The resumable per-sample job loop: prompts in, one JSONL line per finished sample out.

While a job runs, finished samples are appended to `<output>.partial` and flushed one by one;
the final file appears only by an atomic rename once every sample is done. A job killed by
SLURM (timeout, preemption, scancel) therefore leaves no output at all, and its rerun skips
the samples already in the partial file.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def partial_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name + ".partial")


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{n}: not a JSON line ({e.msg})") from None


SETTINGS_KEY = "_settings"


class JsonlCheckpoint:
    """Append-only record of finished samples, keyed by a sample id.

    `settings` (anything that changes a sample's result: sampler, seed, dtype, model commit...)
    heads the partial file; a partial written under other settings is set aside as
    `<partial>.stale`, never mixed into the new run.
    """

    def __init__(
        self, output: str | Path, key: str = "id", settings: dict[str, Any] | None = None
    ) -> None:
        self.output = Path(output)
        self.partial = partial_path(output)
        self.key = key
        self.settings = json.loads(json.dumps(settings or {}, sort_keys=True))
        self.done: dict[Any, dict[str, Any]] = {}
        self._load()

    def _load(self) -> None:
        if not self.partial.exists():
            return
        valid_bytes = 0
        header: dict[str, Any] | None = None
        with open(self.partial, "rb") as f:
            for raw in f:
                # A kill can cut the last line short: keep every complete line, drop the rest.
                if not raw.endswith(b"\n"):
                    break
                try:
                    row = json.loads(raw)
                except json.JSONDecodeError:
                    break
                valid_bytes += len(raw)
                if SETTINGS_KEY in row:
                    header = row[SETTINGS_KEY]
                    continue
                self.done[row[self.key]] = row
        if valid_bytes and header != self.settings:
            stale = self.partial.with_name(self.partial.name + ".stale")
            log.warning(
                "%s was written under other settings (%s, now %s): moved to %s, starting over",
                self.partial,
                header,
                self.settings,
                stale,
            )
            os.replace(self.partial, stale)
            self.done = {}
            return
        if valid_bytes != self.partial.stat().st_size:
            log.warning("dropping a torn last line of %s", self.partial)
            with open(self.partial, "r+b") as f:
                f.truncate(valid_bytes)
        if self.done:
            log.info("resuming %s: %d samples already done", self.output, len(self.done))

    def append(self, row: dict[str, Any]) -> None:
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        new = not self.partial.exists() or self.partial.stat().st_size == 0
        with open(self.partial, "a") as f:
            if new:
                f.write(json.dumps({SETTINGS_KEY: self.settings}, sort_keys=True) + "\n")
            f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.done[row[self.key]] = row

    def finalize(self, order: list[Any]) -> None:
        """Write the rows in the prompts' order to the final path, atomically."""
        missing = [k for k in order if k not in self.done]
        if missing:
            raise RuntimeError(f"{len(missing)} samples not done, e.g. {missing[:3]}")
        tmp = self.output.with_name(f".{self.output.name}.tmp")
        with open(tmp, "w") as f:
            for k in order:
                f.write(json.dumps(self.done[k], ensure_ascii=False, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.output)
        self.partial.unlink()


def run_resumable(
    samples: Iterable[dict[str, Any]],
    process: Callable[[dict[str, Any]], dict[str, Any]],
    output: str | Path,
    key: str = "id",
    settings: dict[str, Any] | None = None,
) -> int:
    """Apply `process` to every sample not yet done; return how many were computed now.

    `settings`: what the results depend on; a partial file from other settings is not reused.
    """
    samples = list(samples)
    ids = [s[key] for s in samples]
    if len(set(ids)) != len(ids):
        raise ValueError(f"sample ids in {output} are not unique")
    ckpt = JsonlCheckpoint(output, key, settings)
    computed = 0
    for sample in samples:
        if sample[key] in ckpt.done:
            continue
        row = process(sample)
        row.setdefault(key, sample[key])
        ckpt.append(row)
        computed += 1
    ckpt.finalize(ids)
    return computed
