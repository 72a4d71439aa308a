"""Build NeedleBench "origin" prompts with OpenCompass's own NeedleBenchOriginDataset.

    python niah_prompts.py SPEC.json

SPEC: {"data_dir", "haystack", "needles", "length", "depths", "repeats", "length_buffer",
"out"}. Writes one JSON line per (depth, repeat): id, length, depth, repeat, prompt, gold,
keyword, cl100k_tokens. The arguments are the paper's (BENCHMARKS.md: stock 0.5.4 with
guide=False builds the string of the paper's patched origin.py). Before building, the data files
are checked (a missing key is named by file, line and key) and the haystack must hold enough
cl100k tokens for the length: OpenCompass would silently build a shorter prompt.
"""

import json
import sys
from pathlib import Path

import tiktoken
from opencompass.datasets.needlebench.origin import NeedleBenchOriginDataset

NEEDLE_KEYS = ("needle", "retrieval_question", "arg2", "language")


class DataError(ValueError):
    pass


def read_jsonl(path, keys):
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{n}: not a JSON line ({e.msg})") from None
            missing = [k for k in keys if not isinstance(row, dict) or k not in row]
            if missing:
                raise DataError(f"{path}:{n}: no key {missing[0]!r}")
            rows.append(row)
    if not rows:
        raise DataError(f"{path}: no records")
    return rows


def main(spec_path):
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    data_dir = Path(spec["data_dir"]).resolve()
    enc = tiktoken.encoding_for_model("gpt-4")
    haystack = read_jsonl(data_dir / spec["haystack"], ("text",))
    needles = [
        r for r in read_jsonl(data_dir / spec["needles"], NEEDLE_KEYS) if r["language"] == "English"
    ]
    if not needles:
        raise DataError(f"{data_dir / spec['needles']}: no English needle")
    length, buffer = spec["length"], spec["length_buffer"]
    available = sum(len(enc.encode(r["text"])) for r in haystack)
    longest_needle = max(len(enc.encode("\n" + r["needle"] + "\n")) for r in needles)
    needed = length - buffer - longest_needle
    if available < needed:
        raise DataError(
            f"{data_dir / spec['haystack']} holds {available} cl100k tokens; length {length} "
            f"needs {needed} (length - length_buffer {buffer} - the needle): add haystack text "
            "or drop the length"
        )
    out = []
    for depth in spec["depths"]:
        ds = NeedleBenchOriginDataset.load(
            path=str(data_dir),
            length=length,
            depth=depth,
            tokenizer_model="gpt-4",
            file_list=[spec["haystack"]],
            num_repeats_per_file=spec["repeats"],
            length_buffer=buffer,
            guide=False,
            language="English",
            needle_file_name=spec["needles"],
            position="End",
        )
        for repeat, (prompt, answer) in enumerate(zip(ds["prompt"], ds["answer"], strict=True)):
            # As the evaluator splits it: the needle, then the keyword.
            gold, keyword = answer.split("*")[0], answer.split("*")[1]
            out.append(
                {
                    "id": f"len{length}_depth{depth}_rep{repeat}",
                    "length": length,
                    "depth": depth,
                    "repeat": repeat,
                    "prompt": prompt,
                    "gold": gold,
                    "keyword": keyword,
                    "cl100k_tokens": len(enc.encode(prompt)),
                }
            )
    tmp = Path(spec["out"] + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in out:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(spec["out"])


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(3)
