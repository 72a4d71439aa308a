"""Score LongBench predictions with OpenCompass's own LongBench evaluators, in one process.

    python longbench_score.py IN.jsonl OUT.jsonl

IN: one JSON object a line with `id`, `subset`, `prediction`, `answers` (the LongBench jsonl's
list of references) and `all_classes` (the jsonl's list of labels; used by trec and lsht, null
elsewhere). OUT: the same ids in the same order, each with `subset`, `score` (0-100),
`evaluator` (class name) and `postprocessed` (the prediction the evaluator saw).

Each subset's evaluator (class and arguments, e.g. language='zh') and prediction postprocessor
are the ones its entry in OpenCompass's LongBench configs names (eval_cfg.evaluator and
eval_cfg.pred_postprocessor of longbench.py's entries, read as longbench_facts.py reads them);
the postprocessor is applied as OpenCompass's eval task applies it, to each prediction before
the evaluator. The classification evaluator's reference is {"answers", "all_classes"}, as the
trec and lsht dataset classes build their `all_labels` column; the others get `answers`.

A sample's score is the evaluator called on that one sample: the evaluators sum per-sample
scores and multiply the mean by 100 with no rounding, so per subset the mean of the samples'
scores is checked against the evaluator's score on the whole list (exit code 1 if they differ).
An unknown subset or a malformed row exits with code 2, before OpenCompass's datasets load.
"""

import json
import sys
from collections import defaultdict

# This script's directory is sys.path[0] when it runs: the facts script beside it reads the
# same configs the same way.
from longbench_facts import SUBSETS, ConfigError, load_entries

CLASSIFICATION = "LongBenchClassificationEvaluator"
TOLERANCE = 1e-9  # relative: float sums in a different grouping


class RowError(ValueError):
    """Exit code 2: a row this script cannot score."""


def read_rows(src):
    rows = []
    with open(src, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            for key in ("id", "subset", "prediction", "answers"):
                if key not in row:
                    raise RowError(f"{src}:{n}: no key {key!r}")
            rows.append(row)
    unknown = sorted({r["subset"] for r in rows} - set(SUBSETS))
    if unknown:
        raise RowError(f"unknown LongBench subset(s) {unknown}; known: {', '.join(SUBSETS)}")
    for row in rows:
        answers = row["answers"]
        if not isinstance(answers, list) or not answers:
            raise RowError(f"{row['id']}: 'answers' must be a non-empty list")
        if not isinstance(row["prediction"], str):
            raise RowError(f"{row['id']}: 'prediction' must be a string")
    return rows


def scorers(entries):
    """{subset: (evaluator instance, postprocessor or None, its kwargs)} from the configs."""
    out = {}
    for name, entry in entries.items():
        evaluator = dict(entry["eval_cfg"]["evaluator"])
        cls = evaluator.pop("type")
        post = dict(entry["eval_cfg"].get("pred_postprocessor") or {})
        fn = post.pop("type", None)
        out[name] = (cls(**evaluator), fn, post)
    return out


def reference(row, evaluator):
    if type(evaluator).__name__ == CLASSIFICATION:
        classes = row.get("all_classes")
        if not isinstance(classes, list) or not classes:
            raise RowError(f"{row['id']}: {row['subset']} needs a non-empty 'all_classes' list")
        return {"answers": row["answers"], "all_classes": classes}
    return row["answers"]


def main(src, dst):
    rows = read_rows(src)
    _aggregate, entries = load_entries()  # imports opencompass.datasets: ~7 s
    known = scorers(entries)
    out, by_subset = [], defaultdict(list)
    for row in rows:
        evaluator, post, post_kwargs = known[row["subset"]]
        prediction = row["prediction"]
        if post is not None:
            prediction = post(prediction, **post_kwargs)
        ref = reference(row, evaluator)
        score = evaluator.score([prediction], [ref])["score"]
        out.append(
            {
                "id": row["id"],
                "subset": row["subset"],
                "score": score,
                "evaluator": type(evaluator).__name__,
                "postprocessed": prediction,
            }
        )
        by_subset[row["subset"]].append((prediction, ref, score))
    for subset, items in by_subset.items():
        evaluator = known[subset][0]
        whole = evaluator.score([p for p, _, _ in items], [r for _, r, _ in items])["score"]
        mean = sum(s for _, _, s in items) / len(items)
        if abs(mean - whole) > TOLERANCE * max(1.0, abs(whole)):
            raise SystemExit(
                f"error: {subset}: the mean of the per-sample scores {mean} is not the "
                f"evaluator's score on the whole list {whole}"
            )
    with open(dst, "w", encoding="utf-8") as f:
        for row in out:
            f.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")


if __name__ == "__main__":
    try:
        main(sys.argv[1], sys.argv[2])
    except (RowError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
