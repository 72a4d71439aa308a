"""RULER (Tables 2 and 4): prompts and scoring through OpenCompass, and the paper's grouping.

Prompts are OpenCompass 0.5.4's own RULER generators with the parameters of its
ruler_{4k,8k,16k}_gen configs, read from the installed package at run time
(oc_side/ruler_prompts.py); the prompt is the dataset's `prompt` column verbatim (the paper
removed the answer round). Scoring is OpenCompass's RULER evaluators (oc_side/ruler_score.py):
string_match_all for the NIAH, VT, CWE and FWE tasks, string_match_part for QA, x 100. Table 2:
NIAH = the mean of the 8 niah tasks, AGG = of vt, cwe, fwe, QA = of squad and hotpotqa, Avg = the
mean of all 13 tasks (= (8 NIAH + 3 AGG + 2 QA) / 13).

Standard library only: this also runs in the OpenCompass environment.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from longllada import files, opencompass_env
from longllada.files import sha256_file, write_json
from longllada.jobs import join_shards, read_jsonl

OC_SIDE = Path(__file__).resolve().parents[1] / "oc_side"
PROMPTER = OC_SIDE / "ruler_prompts.py"
SCORER = OC_SIDE / "ruler_score.py"

TASKS = (
    "niah_single_1",
    "niah_single_2",
    "niah_single_3",
    "niah_multikey_1",
    "niah_multikey_2",
    "niah_multikey_3",
    "niah_multivalue",
    "niah_multiquery",
    "vt",
    "cwe",
    "fwe",
    "qa_squad",
    "qa_hotpotqa",
)
GROUPS = {"NIAH": TASKS[:8], "AGG": ("vt", "cwe", "fwe"), "QA": ("qa_squad", "qa_hotpotqa")}
LENGTHS = {"4k": 4096, "8k": 8192, "16k": 16384}  # the configs' max_seq_length
# The OpenCompass configs of the paper's lengths; another length takes the parameters of
# `opencompass_config` (the configs differ only in max_seq_length and the abbr suffix).
OWN_CONFIGS = {4096: "ruler_4k_gen", 8192: "ruler_8k_gen", 16384: "ruler_16k_gen"}
DEFAULT_CONFIG = "ruler_4k_gen"
PROMPT_TIMEOUT_S = 1800

# The file names OpenCompass's RULER configs expect under ./data/ruler (ruler_niah_gen.py's
# file_path, ruler_qa_gen.py's paths).
ESSAYS = "PaulGrahamEssays.jsonl"
SQUAD = "dev-v2.0.json"
HOTPOTQA = "hotpotqa.json"
DATA_FILES = (ESSAYS, SQUAD, HOTPOTQA)


class RulerDataError(ValueError):
    """RULER data that cannot make the prompts asked for (file, line or key in the message)."""


def context_label(length: int) -> str:
    """4096 -> '4k' (the configs' abbr suffix); a length not a multiple of 1024 as itself."""
    return f"{length // 1024}k" if length % 1024 == 0 else str(length)


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown RULER task {task!r}; known: {', '.join(TASKS)}")


def build_prompts(
    data_dir: str | Path,
    task: str,
    length: int,
    n_samples: int,
    out: str | Path,
    prepared: Mapping[str, Any],
    timeout: float = 3600,
    config: str | None = None,
) -> dict[str, Any]:
    """One (task, length) prompts JSONL by OpenCompass's RULER generator in one OpenCompass
    process; returns the generator's class and arguments (as read from the config).

    `config`: the OpenCompass config whose parameters to use (default: the length's own,
    ruler_4k_gen for 4096 etc.; a length without one, e.g. a test's 1024, must name one).
    Raises RulerDataError for bad data, TimeoutError when the generator runs past `timeout`
    (RulerQaDataset loops forever when its smallest haystack, 10 documents, cannot fit)."""
    _check_task(task)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ruler_prompts_") as tmp:
        spec = {
            "data_dir": str(Path(data_dir).resolve()),
            "task": task,
            "length": int(length),
            "n_samples": int(n_samples),
            "out": str(out.resolve()),
            "config": config,
            "params_out": str(Path(tmp) / "params.json"),
        }
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        try:
            res = opencompass_env.run_script(prepared, PROMPTER, spec_path, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(
                f"RULER {task} at length {length}: OpenCompass's generator ran past {timeout:g} s "
                "(RulerQaDataset loops forever when even its smallest haystack does not fit the "
                "length: shorter documents or a longer length)"
            ) from None
        if res.returncode == 3:
            raise RulerDataError(res.stderr.strip().splitlines()[-1].removeprefix("error: "))
        if res.returncode == 2:
            raise ValueError(res.stderr.strip().splitlines()[-1].removeprefix("error: "))
        if res.returncode != 0:
            raise RuntimeError(f"RULER prompts ({task}, {length}) failed: {res.stderr[-3000:]}")
        return json.loads(Path(spec["params_out"]).read_text(encoding="utf-8"))


def score_predictions(
    rows: Iterable[Mapping[str, Any]], prepared: Mapping[str, Any], timeout: float = 3600
) -> list[dict[str, Any]]:
    """Score rows (`id`, `task`, `prediction`, `answer`) in one OpenCompass process; returns
    per row id, task, score (0-100) and the evaluator's name, in the order given."""
    rows = [dict(r) for r in rows]
    for r in rows:
        _check_task(r["task"])
    return opencompass_env.score_rows(
        prepared, SCORER, rows, ("id", "task", "prediction", "answer"), "RULER", timeout
    )


def task_scores(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], float]:
    """{(task, context): mean sample score} of scored rows (`task`, `length`, `score`)."""
    samples: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in rows:
        samples[(r["task"], context_label(int(r["length"])))].append(float(r["score"]))
    return {key: sum(v) / len(v) for key, v in samples.items()}


def avg_of_groups(niah: float, agg: float, qa: float) -> float:
    """Avg from the group means: the mean of the 13 tasks, (8 NIAH + 3 AGG + 2 QA) / 13."""
    n = {name: len(tasks) for name, tasks in GROUPS.items()}
    return (n["NIAH"] * niah + n["AGG"] * agg + n["QA"] * qa) / len(TASKS)


def aggregate(task_scores: Mapping[tuple[str, str], float]) -> dict[str, dict[str, float]]:
    """Per context {"NIAH", "AGG", "QA", "Avg"}: the group means, Avg the mean of all 13 tasks.
    Every context must have all 13 tasks (the message names the missing ones)."""
    by_context: dict[str, dict[str, float]] = defaultdict(dict)
    for (task, context), score in task_scores.items():
        _check_task(task)
        by_context[context][task] = float(score)
    if not by_context:
        raise ValueError("no RULER task scores to aggregate")
    out = {}
    for context, scores in by_context.items():
        missing = [t for t in TASKS if t not in scores]
        if missing:
            raise ValueError(f"RULER {context}: no score for {', '.join(missing)}")
        row = {g: sum(scores[t] for t in tasks) / len(tasks) for g, tasks in GROUPS.items()}
        row["Avg"] = sum(scores[t] for t in TASKS) / len(TASKS)
        out[context] = row
    return out


# --- the rules' jobs (standard library only: these also run in the OpenCompass environment) ---


def prompt_timeout_s(settings: Mapping[str, Any]) -> int:
    """The time limit of one prompts job's generator (config prompt_timeout_s)."""
    return int(settings.get("prompt_timeout_s") or PROMPT_TIMEOUT_S)


def unit_name(context: str, task: str) -> str:
    """A (length, task) prompts file's name: 4k_vt."""
    return f"{context}_{task}"


def read_data_manifest(path: str | Path) -> dict[str, Any]:
    """The data check's manifest; its files must still have the bytes it recorded."""
    return files.read_data_manifest(path, DATA_FILES, RulerDataError)


def make_prompts(
    data_manifest: str | Path,
    context: str,
    length: int,
    task: str,
    settings: Mapping[str, Any],
    out: str | Path,
    meta_out: str | Path,
    prepared: Mapping[str, Any],
) -> dict[str, Any]:
    """The prompts rule: one (length, task) prompts file by OpenCompass's generator, and beside
    it what the samples depend on: the data files' sha256, the OpenCompass, wonderwords and
    tiktoken versions, the cl100k file, the generator's class and arguments. `settings`:
    samples, opencompass_config, prompt_timeout_s."""
    manifest = read_data_manifest(data_manifest)
    config = OWN_CONFIGS.get(int(length), settings.get("opencompass_config") or DEFAULT_CONFIG)
    timeout = prompt_timeout_s(settings)
    params = build_prompts(
        manifest["dir"], task, length, int(settings["samples"]), out, prepared, timeout, config
    )
    rows = list(read_jsonl(out))
    data_dir = str(manifest["dir"])
    kwargs = {  # the data directory differs between machines; the files' sha256 say it all
        k: (v.replace(data_dir, "<data>") if isinstance(v, str) else v)
        for k, v in params["kwargs"].items()
    }
    meta = {
        "benchmark": "ruler",
        "task": task,
        "context": context,
        "length": int(length),
        "samples": int(settings["samples"]),
        "rows": len(rows),
        "cl100k_tokens_max": max(r["cl100k_tokens"] for r in rows),
        "prompts_sha256": sha256_file(out),
        "generator": {
            "config": Path(params["config"]).name,
            "abbr": params["abbr"],
            "dataset": params["dataset"],
            "kwargs": kwargs,
        },
        "data": {"source": manifest["source"], "files": manifest["files"]},
        **opencompass_env.versions_record(prepared),
    }
    write_json(meta_out, meta)
    return meta


def join_predictions(
    prompt_files: Mapping[str, str | Path],
    prediction_files: Iterable[str | Path],
    limit: int | None,
) -> list[dict[str, Any]]:
    """The selected prompts of every (length, task) with their answers, in prompt order
    (`jobs.join_shards`: the shards of a unit must together answer exactly its prompts)."""
    return [
        {
            "id": prompt["id"],
            "context": unit.split("_", 1)[0],
            "length": prompt["length"],
            "task": prompt["task"],
            "index": prompt["index"],
            "answer": prompt["answer"],
            "prediction": pred["prediction"],
            "prompt_tokens": pred.get("prompt_tokens"),
            "cl100k_tokens": prompt.get("cl100k_tokens"),
        }
        for unit, prompt, pred in join_shards(prompt_files, prediction_files, limit)
    ]


def score_run(
    prompt_files: Iterable[str | Path],
    prediction_files: Iterable[str | Path],
    generation_records: Iterable[str | Path],
    output: str | Path,
    run_info: Mapping[str, Any],
    prepared: Mapping[str, Any],
) -> dict[str, Any]:
    """The score rule: every (length, task) of one run, scored in one OpenCompass process, with
    each sample's score and evaluator kept. `run_info`: model, setting, family, ntk_lambda,
    sampler, sample_limit."""
    prompt_files = list(prompt_files)
    prediction_files = list(prediction_files)
    by_unit = {Path(p).name.removesuffix(".jsonl"): p for p in prompt_files}
    limit = run_info.get("sample_limit")
    joined = join_predictions(by_unit, prediction_files, limit)
    scored = score_predictions(joined, prepared)
    for row, s in zip(joined, scored, strict=True):
        row["score"] = s["score"]
        row["detail"] = {k: v for k, v in s.items() if k not in ("id", "task", "score")}
    cells: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in joined:
        cells[(row["context"], row["task"])].append(row)
    n_full = sum(sum(1 for _ in read_jsonl(p)) for p in prompt_files)
    result = {
        "benchmark": "ruler",
        **{k: run_info[k] for k in ("model", "setting", "family", "ntk_lambda", "sampler")},
        "sample_limit": limit,
        "n_samples": len(joined),
        "n_full": n_full,
        "tasks": [
            {
                "context": context,
                "length": rows[0]["length"],
                "task": task,
                "score": sum(r["score"] for r in rows) / len(rows),
                "n": len(rows),
            }
            for (context, task), rows in cells.items()
        ],
        "samples": joined,
        "provenance": opencompass_env.score_provenance(
            "ruler_score",
            "opencompass RULER evaluators (string_match_all; QA string_match_part)",
            prepared,
            list(generation_records),
            [*prompt_files, *prediction_files],
        ),
    }
    write_json(output, result)
    return result


# --- demo data: the real file formats, real prose --------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_WORD = re.compile(r"\b[A-Za-z]{6,}\b")
# The essays lost some line breaks: "July 2010What ...", "die?The ...".
_GLUED = re.compile(r"[0-9a-z][A-Z]|[.?!:;,][A-Za-z]")


def _sentences(text: str) -> list[str]:
    """Clean sentences of an essay (8-30 words, plain ASCII, no brackets, quotes or words run
    together where the text lost a line break)."""
    flat = re.sub(r"\s+", " ", text).strip()
    out = []
    for s in _SENTENCE_END.split(flat):
        words = s.split()
        if (
            8 <= len(words) <= 30
            and s.isascii()
            and s[0].isupper()
            and re.search(r"[a-z]\.$", s)
            and not re.search(r"[\[\]()\"*_]", s)
            and not _GLUED.search(s)
            and _WORD.search(" ".join(words[1:]))
        ):
            out.append(s)
    return out


def _cloze(sentence: str) -> tuple[str, str, int]:
    """(question, answer, the answer's offset in the sentence): the sentence's longest word
    after the first, blanked out."""
    first = len(sentence.split()[0])
    matches = [m for m in _WORD.finditer(sentence) if m.start() > first]
    m = max(matches, key=lambda m: (len(m.group()), -m.start()))
    blanked = sentence[: m.start()] + "____" + sentence[m.end() :]
    return f'Which word fills the blank in "{blanked}"?', m.group(), m.start()


def write_demo_data(
    out_dir: str | Path, essays: Iterable[str], n_questions: int = 30, per_doc: int = 2
) -> Path:
    """RULER-format files for the demo and tests, from real prose (e.g. the Paul Graham essays
    of `longllada.prose`): PaulGrahamEssays.jsonl ({"text"} per essay), a SQuAD v2 dev-v2.0.json
    and a HotpotQA dev-distractor hotpotqa.json of `n_questions` answerable questions each, in
    the formats RulerQaDataset reads. A paragraph is `per_doc` consecutive clean sentences of an
    essay; a question asks for a word of one of them, the answer is that span of the paragraph.
    (RulerQaDataset needs at least as many answerable questions as samples.)"""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    essays = [e.strip() for e in essays if e.strip()]
    if not essays:
        raise ValueError("no essays to write RULER demo data from")
    with open(out_dir / ESSAYS, "w", encoding="utf-8") as f:
        for text in essays:
            f.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")

    # Paragraphs: runs of `per_doc` clean consecutive sentences, round-robin over the essays.
    pools = []
    for n, text in enumerate(essays):
        sents = _sentences(text)
        paras = [sents[i : i + per_doc] for i in range(0, len(sents) - per_doc + 1, per_doc)]
        pools.append([(n, p) for p in paras])
    paragraphs: list[tuple[int, list[str]]] = []
    while any(pools) and len(paragraphs) < 3 * n_questions + 1:
        for pool in pools:
            if pool:
                paragraphs.append(pool.pop(0))
    if len(paragraphs) < 2 * n_questions + 1:
        raise ValueError(f"the essays give {len(paragraphs)} paragraphs; {n_questions} need more")

    # SQuAD v2: articles of 3 paragraphs, one answerable question each, and per article one
    # unanswerable question (is_impossible, plausible_answers) as the real file has.
    articles = []
    for a in range(0, n_questions, 3):
        article = {"title": f"Essay_{a // 3 + 1}", "paragraphs": []}
        for q in range(a, min(a + 3, n_questions)):
            essay, sents = paragraphs[q]
            context = " ".join(sents)
            question, answer, offset = _cloze(sents[-1])
            start = len(" ".join(sents[:-1])) + (1 if len(sents) > 1 else 0) + offset
            assert context[start : start + len(answer)] == answer
            qas = [
                {
                    "question": question,
                    "id": f"{essay:02d}{q:04d}a",
                    "answers": [{"text": answer, "answer_start": start}],
                    "is_impossible": False,
                }
            ]
            if q == a:
                # A question about a sentence from elsewhere: no answer in this paragraph.
                elsewhere = _cloze(paragraphs[-1 - q][1][0])[0]
                qas.append(
                    {
                        "plausible_answers": [{"text": answer, "answer_start": start}],
                        "question": elsewhere,
                        "id": f"{essay:02d}{q:04d}b",
                        "answers": [],
                        "is_impossible": True,
                    }
                )
            article["paragraphs"].append({"qas": qas, "context": context})
        articles.append(article)
    squad = {"version": "v2.0", "data": articles}
    (out_dir / SQUAD).write_text(json.dumps(squad, ensure_ascii=False), encoding="utf-8")

    # HotpotQA dev distractor: per question the gold paragraph and 3 distractors, each
    # [title, [sentences]] with the sentences' leading spaces as in the real file.
    rest = paragraphs[n_questions:]
    hotpot = []
    for q in range(n_questions):
        essay, sents = paragraphs[q]
        question, answer, _offset = _cloze(sents[0])
        title = f"Essay {essay + 1}, part {q + 1}"
        docs = [[title, [sents[0]] + [" " + s for s in sents[1:]]]]
        for k in range(3):
            d_essay, d_sents = rest[(3 * q + k) % len(rest)]
            docs.append(
                [
                    f"Essay {d_essay + 1}, note {3 * q + k + 1}",
                    [d_sents[0]] + [" " + s for s in d_sents[1:]],
                ]
            )
        order = [docs[(q + i) % len(docs)] for i in range(len(docs))]  # gold not always first
        hotpot.append(
            {
                "_id": f"{q:024x}",
                "answer": answer,
                "question": question,
                "supporting_facts": [[title, 0]],
                "context": order,
                "type": "bridge",
                "level": "medium",
            }
        )
    (out_dir / HOTPOTQA).write_text(json.dumps(hotpot, ensure_ascii=False), encoding="utf-8")
    return out_dir
