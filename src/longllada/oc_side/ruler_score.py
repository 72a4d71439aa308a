"""Score RULER predictions with OpenCompass's own RULER evaluators, in one process.

    python ruler_score.py IN.jsonl OUT.jsonl

IN: one JSON object a line with `id`, `task`, `prediction` and `answer` (the references list of
the prompts file). OUT: the same ids in the same order, each with `task`, `score` (0-100) and
`evaluator`. A task's evaluator is the one its dataset entry names in OpenCompass's RULER
config (eval_cfg.evaluator): RulerNiahEvaluator, RulerVtEvaluator, RulerCweEvaluator and
RulerFweEvaluator are string_match_all (the fraction of references found in the prediction,
case-insensitive), RulerQaEvaluator string_match_part (any reference found).

A sample's score is the evaluator called on that one sample. The evaluator rounds its score to
2 decimals, so per task the mean of the samples' scores is checked against the evaluator's
score on the task's whole list within 0.01 (each side rounded by at most 0.005): exit code 1
if they differ by more.
"""

import json
import sys
from collections import defaultdict
from pathlib import Path

import opencompass
from mmengine.config import Config

CONFIG = (
    Path(opencompass.__file__).resolve().parent / "configs/datasets/ruler/ruler_4k_gen.py"
)  # the evaluators do not depend on the length
TOLERANCE = 0.01 + 1e-9


def evaluators():
    """{task: (evaluator class, its other config arguments)} from the RULER config."""
    out = {}
    for entry in Config.fromfile(str(CONFIG))["ruler_datasets"]:
        task = entry["abbr"].removeprefix("ruler_").removesuffix("_4k")
        evaluator = dict(entry["eval_cfg"]["evaluator"])
        cls = evaluator.pop("type")
        out[task] = (cls, evaluator)
    return out


def main(src, dst):
    with open(src, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    known = evaluators()
    unknown = sorted({r["task"] for r in rows} - set(known))
    if unknown:
        raise SystemExit(f"error: unknown RULER task(s) {unknown}; known: {', '.join(known)}")
    instances = {task: cls(**kwargs) for task, (cls, kwargs) in known.items()}
    out, by_task = [], defaultdict(list)
    for row in rows:
        answer = row["answer"]
        if not isinstance(answer, list) or not answer:
            raise SystemExit(f"error: {row['id']}: 'answer' must be a non-empty list")
        evaluator = instances[row["task"]]
        score = evaluator.score([row["prediction"]], [answer])["score"]
        out.append(
            {
                "id": row["id"],
                "task": row["task"],
                "score": score,
                "evaluator": type(evaluator).__name__,
            }
        )
        by_task[row["task"]].append((row["prediction"], answer, score))
    for task, items in by_task.items():
        whole = instances[task].score([p for p, _, _ in items], [a for _, a, _ in items])["score"]
        mean = sum(s for _, _, s in items) / len(items)
        if abs(mean - whole) > TOLERANCE:
            raise SystemExit(
                f"error: {task}: the mean of the per-sample scores {mean} is not the "
                f"evaluator's score on the whole list {whole}"
            )
    with open(dst, "w", encoding="utf-8") as f:
        for row in out:
            f.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
