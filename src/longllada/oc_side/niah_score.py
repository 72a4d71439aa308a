"""Score NeedleBench predictions with OpenCompass's own NeedleBenchOriginEvaluator.

    python niah_score.py IN.jsonl OUT.jsonl

IN: one JSON object a line with `id`, `prediction`, `gold` (the needle sentence) and `keyword`.
OUT: the same ids, each with `score` and the evaluator's details. The evaluator prints a line
per sample; that goes to stderr so stdout stays clean.
"""

import contextlib
import json
import sys

from opencompass.datasets.needlebench.origin import NeedleBenchOriginEvaluator


def main(src: str, dst: str) -> None:
    with open(src, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    evaluator = NeedleBenchOriginEvaluator()
    out = []
    with contextlib.redirect_stdout(sys.stderr):
        for row in rows:
            # OpenCompass keeps the keyword after a '*' in the reference ("needle*keyword").
            result = evaluator.score([row["prediction"]], [f"{row['gold']}*{row['keyword']}"])
            out.append({"id": row["id"], "score": result["score"], **result["details"][0]})
    with open(dst, "w", encoding="utf-8") as f:
        for row in out:
            f.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
