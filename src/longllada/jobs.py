"""The resumable per-sample job loop: prompts in, one JSONL line per finished sample out.

While a job runs, finished samples are appended to a partial file beside the output and flushed
one by one; the final file appears only by an atomic rename once every sample is done. A job
killed by SLURM (timeout, preemption, scancel) therefore leaves no output at all, and its rerun
skips the samples already in the partial file.

A partial file is named after its header, the fingerprint of everything its samples depend on
(`<output>.<hash>.partial`): a job under other settings or inputs writes a partial of its own
and never touches another's, so switching settings A -> B -> A loses nothing, and going back
to A resumes A's work. While a job runs it holds an exclusive lock on its output
(`<output>.lock`, naming the holder): a second writer, e.g. a rerun while an orphaned job of a
killed `snakemake` still runs, stops with a message that names the first.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from longllada.files import canonical, digest

log = logging.getLogger(__name__)

SETTINGS_KEY = "_settings"
PROGRESS_EVERY_S = 60.0  # a progress line at most this often (and at the first sample)


def header_digest(settings: dict[str, Any] | None) -> str:
    return digest(canonical(settings or {}))[:16]


def partial_path(output: str | Path, settings: dict[str, Any] | None = None) -> Path:
    """The partial file of `output` under `settings` (its header)."""
    output = Path(output)
    return output.with_name(f"{output.name}.{header_digest(settings)}.partial")


def partials(output: str | Path) -> list[Path]:
    """Every partial file of `output`, whatever settings wrote it."""
    output = Path(output)
    return sorted(output.parent.glob(f"{output.name}.*.partial"))


def lock_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(f"{output.name}.lock")


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    for _line, row in read_jsonl_lines(path):
        yield row


def read_jsonl_lines(path: str | Path) -> Iterator[tuple[int, Any]]:
    """(line number, value) of every non-blank line: for messages that name the line."""
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield n, json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{n}: not a JSON line ({e.msg})") from None


def dumps_strict(row: Any, where: str) -> str:
    """One JSON line; NaN or inf stop the job instead of reaching a file as `NaN`."""
    try:
        return json.dumps(row, ensure_ascii=False, sort_keys=True, allow_nan=False)
    except ValueError:
        raise ValueError(f"{where}: a non-finite number (NaN or inf) in {row!r}") from None


class OutputLocked(RuntimeError):
    """Another process is writing the same output."""


class OutputLock:
    """An exclusive, non-blocking lock on one output, held for a job's whole life.

    flock: on Linux NFS it is carried out as a lock on the server, so it holds across the
    nodes of a cluster (Lustre needs its `flock` mount option). The lock file names its holder
    (host, pid, SLURM job, start time) for the message a second writer gets.
    """

    def __init__(self, output: str | Path) -> None:
        self.output = Path(output)
        self.path = lock_path(output)
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno in (errno.EACCES, errno.EAGAIN, errno.EWOULDBLOCK):
                    raise OutputLocked(self._held_message()) from None
                if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    log.warning("%s: this file system has no locks (%s); not locked", self.path, e)
                    return
                raise
            # The holder before us may have removed the file between our open and our lock:
            # then we hold a lock on a deleted file, and must lock the one at the path.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        holder = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
            "since": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        self._fd = fd

    def _held_message(self) -> str:
        try:
            holder = json.loads(self.path.read_text())
            who = f"pid {holder['pid']} on {holder['host']}"
            if holder.get("slurm_job_id"):
                who += f" (SLURM job {holder['slurm_job_id']})"
            who += f", since {holder['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            who = "another process"
        return (
            f"{self.output} is being written by {who}: two jobs must not write one output. "
            "It is typically a job left running by a snakemake that was killed: wait for it to "
            "finish, or stop it (kill / scancel), then run snakemake again "
            f"(lock file: {self.path})"
        )

    def release(self) -> None:
        if self._fd is None:
            return
        # Unlink while still holding the lock: a newcomer then re-opens a fresh file.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class JsonlCheckpoint:
    """Append-only record of finished samples, keyed by a sample id.

    `settings` (anything that changes a sample's result: sampler, seed, dtype, the inputs'
    sha256...) heads the partial file and names it; partials of other settings are left alone.
    """

    def __init__(
        self, output: str | Path, key: str = "id", settings: dict[str, Any] | None = None
    ) -> None:
        self.output = Path(output)
        self.key = key
        self.settings = json.loads(json.dumps(settings or {}, sort_keys=True, allow_nan=False))
        self.partial = partial_path(output, self.settings)
        self.done: dict[Any, dict[str, Any]] = {}
        self._load()

    def _load(self) -> None:
        others = [p for p in partials(self.output) if p != self.partial]
        if others:
            log.info(
                "%s: keeping %d partial file(s) of other settings: %s",
                self.output,
                len(others),
                ", ".join(p.name for p in others),
            )
        if not self.partial.exists():
            return
        valid_bytes = 0
        header: dict[str, Any] | None = None
        with open(self.partial, "rb") as f:
            for line, raw in enumerate(f, 1):
                # A kill can cut the last line short: keep every complete line, drop the rest.
                # A bad line with lines after it is no torn end but a damaged file: stop and
                # keep it as it is.
                try:
                    row = json.loads(raw) if raw.endswith(b"\n") else None
                except json.JSONDecodeError:
                    row = None
                if row is None:
                    if f.read(1):
                        raise RuntimeError(
                            f"{self.partial}:{line}: not a JSON line, and lines follow it (a "
                            "damaged file, not a torn last line); move the file away to start "
                            "this job over, or repair that line"
                        )
                    break
                valid_bytes += len(raw)
                if isinstance(row, dict) and SETTINGS_KEY in row:
                    header = row[SETTINGS_KEY]
                    continue
                if not isinstance(row, dict) or self.key not in row:
                    raise RuntimeError(
                        f"{self.partial}:{line}: a row without {self.key!r} (a partial file "
                        "holds its header, then one object per finished sample); move the file "
                        "away to start this job over"
                    )
                self.done[row[self.key]] = row
        if valid_bytes and header != self.settings:
            # Same name, other header: a hash collision or a hand-edited file. Never mix.
            raise RuntimeError(
                f"{self.partial} has a header that does not match its name; move it away"
            )
        if valid_bytes != self.partial.stat().st_size:
            log.warning("dropping a torn last line of %s", self.partial)
            with open(self.partial, "r+b") as f:
                f.truncate(valid_bytes)
        if self.done:
            log.info("resuming %s: %d samples already done", self.output, len(self.done))

    def append(self, row: dict[str, Any]) -> None:
        line = dumps_strict(row, f"{self.output}: sample {row.get(self.key)!r}")
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        new = not self.partial.exists() or self.partial.stat().st_size == 0
        with open(self.partial, "a") as f:
            if new:
                f.write(json.dumps({SETTINGS_KEY: self.settings}, sort_keys=True) + "\n")
            f.write(line + "\n")
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
                f.write(dumps_strict(self.done[k], f"{self.output}: sample {k!r}") + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.output)
        self.partial.unlink(missing_ok=True)


class Progress:
    """done / total, rate and ETA in the job's log, at most once a minute."""

    def __init__(self, what: str, total: int, already: int) -> None:
        self.what, self.total, self.already = what, total, already
        self.t0 = time.monotonic()
        self.last = -float("inf")
        self.now_done = 0

    def step(self) -> None:
        self.now_done += 1
        t = time.monotonic()
        done = self.already + self.now_done
        if t - self.last < PROGRESS_EVERY_S and done < self.total and self.now_done > 1:
            return
        self.last = t
        rate = self.now_done / max(t - self.t0, 1e-9) * 60
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        log.info(
            "%s: %d/%d done, %.2f per minute, ETA %s",
            self.what,
            done,
            self.total,
            rate,
            f"{eta:.1f} min" if eta != float("inf") else "unknown",
        )


def run_resumable(
    samples: Iterable[dict[str, Any]],
    process: Callable[[dict[str, Any]], dict[str, Any]],
    output: str | Path,
    key: str = "id",
    settings: dict[str, Any] | None = None,
    on_resume: Callable[[dict[Any, dict[str, Any]]], None] | None = None,
) -> int:
    """Apply `process` to every sample not yet done; return how many were computed now.

    `settings`: what the results depend on; only a partial file written under the same
    settings is resumed. `on_resume`: called once, before the first sample, with the rows
    already done (id -> row), e.g. to restore a random generator's state. The output is
    locked for the whole call.
    """
    samples = list(samples)
    ids = [s[key] for s in samples]
    if len(set(ids)) != len(ids):
        raise ValueError(f"sample ids in {output} are not unique")
    with OutputLock(output):
        ckpt = JsonlCheckpoint(output, key, settings)
        todo = [s for s in samples if s[key] not in ckpt.done]
        if on_resume is not None:
            on_resume(dict(ckpt.done))
        progress = Progress(Path(output).name, len(samples), len(samples) - len(todo))
        for sample in todo:
            row = process(sample)
            row.setdefault(key, sample[key])
            ckpt.append(row)
            progress.step()
        ckpt.finalize(ids)
    return len(todo)


def select_samples(
    rows: list[dict[str, Any]], limit: int | None, spread_by: str | None = None
) -> list[dict[str, Any]]:
    """The rows a job computes, in the order it computes them.

    Without a limit: all, in file order. With one: the first `limit` rows after ordering by
    the index within each `spread_by` group (NIAH: one repeat of every depth before the next
    repeat), so a small budget still covers every depth; then back in file order, so the
    random stream of each dataset still runs through its samples in order.
    """
    if limit is None or limit >= len(rows):
        return list(rows)
    if spread_by is None:
        return list(rows[:limit])
    seen: dict[Any, int] = {}
    rank = []
    for pos, row in enumerate(rows):
        group = row.get(spread_by)
        k = seen.get(group, 0)
        seen[group] = k + 1
        rank.append((k, pos))
    keep = {pos for _, pos in sorted(rank)[:limit]}
    return [row for pos, row in enumerate(rows) if pos in keep]


def shard_unit(prediction_file: str | Path) -> str:
    """The unit of a shard's predictions file (4k_vt.samples0-50.predictions.jsonl -> 4k_vt)."""
    name = Path(prediction_file).name.removesuffix(".predictions.jsonl")
    return name.split(".samples", 1)[0]


def join_shards(
    prompt_files: Mapping[str, str | Path],
    prediction_files: Iterable[str | Path],
    limit: int | None,
) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(unit, prompt row, answer row) for the selected prompts of every unit, in prompt order.
    `prompt_files`: unit -> its prompts file. The shards of a unit must together answer exactly
    its selected prompts (the message names what is off)."""
    shards: dict[str, list[Path]] = {}
    for p in prediction_files:
        unit = shard_unit(p)
        if unit not in prompt_files:
            raise ValueError(f"{p}: no prompts file of {unit} among the inputs")
        shards.setdefault(unit, []).append(Path(p))
    joined = []
    for unit, prompts_path in prompt_files.items():
        wanted = select_samples(list(read_jsonl(prompts_path)), limit, None)
        answers = read_answers(
            [r["id"] for r in wanted], shards.get(unit, []), prompts_path, limit, unit
        )
        joined.extend((unit, prompt, answers[prompt["id"]]) for prompt in wanted)
    return joined


JSON_KINDS = (
    (bool, "a boolean"),
    (int | float, "a number"),
    (list, "an array"),
    (dict, "an object"),
)


def prediction_problem(row: Mapping[str, Any]) -> str | None:
    """What is wrong with a predictions row's `prediction` (None: it is a string)."""
    if "prediction" not in row:
        return "no 'prediction'"
    value = row["prediction"]
    if isinstance(value, str):
        return None
    kind = next((k for t, k in JSON_KINDS if isinstance(value, t)), type(value).__name__)
    kind = "null" if value is None else kind
    shown = "" if value is None else f" ({json.dumps(value)[:80]})"
    return f"the prediction is {kind}{shown}, not a string"


def read_answers(
    wanted: Sequence[Any],
    prediction_files: Sequence[str | Path],
    prompts_file: str | Path,
    limit: int | None,
    unit: str | None = None,
    key: str = "id",
) -> dict[Any, dict[str, Any]]:
    """The answers (id -> predictions row) of `prediction_files` to the `wanted` sample ids of
    `prompts_file`: the one check by which every score rule joins predictions to prompts.

    Refused, the message naming the files, lines and ids at fault: a row that is no object or
    has no `key`, a sample answered twice (in one file, or by two shards), a `prediction` that
    is not a string (it would reach OpenCompass's scorer), a wanted sample without an answer,
    an answer to a sample not wanted (another sample limit, another prompts file)."""
    files = [Path(p) for p in prediction_files]
    answers: dict[Any, dict[str, Any]] = {}
    where: dict[Any, tuple[Path, int]] = {}
    problems: list[str] = []
    for path in files:
        for line, row in read_jsonl_lines(path):
            if not isinstance(row, dict) or not isinstance(row.get(key), str | int):
                problems.append(f"{path}:{line}: a row without {key!r} (a string or integer)")
                continue
            sample = row[key]
            if sample in where:
                first, first_line = where[sample]
                problems.append(
                    f"{path}: sample {sample} appears twice (lines {first_line} and {line})"
                    if first == path
                    else f"{sample} is answered by two shards ({first}:{first_line} and "
                    f"{path}:{line})"
                )
                continue
            wrong = prediction_problem(row)
            if wrong:
                problems.append(f"{path}:{line}: sample {sample}: {wrong}")
            answers[sample] = row
            where[sample] = (path, line)
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ValueError(
            "; ".join(problems[:5]) + more + "; delete the predictions file(s) to regenerate"
        )
    selected = set(wanted)
    missing = [i for i in wanted if i not in answers]
    unknown = [i for i in answers if i not in selected]
    if missing or unknown:
        named = ", ".join(str(p) for p in files)
        what = f"the predictions of {unit} ({named})" if unit else named
        raise ValueError(
            f"{what} do{'es' if not unit and len(files) == 1 else ''} not match {prompts_file} "
            f"(sample limit {limit}): {len(missing)} prompt(s) without an answer "
            f"(e.g. {missing[:3]}), {len(unknown)} answer(s) to no selected prompt "
            f"(e.g. {unknown[:3]}); delete the predictions file(s) to regenerate"
        )
    return answers
