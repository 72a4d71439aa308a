"""Build one RULER (task, length) prompts file with OpenCompass's own RULER generators.

    python ruler_prompts.py SPEC.json

SPEC: {"data_dir", "task", "length", "n_samples", "out"} and optionally "config" (the name of
an OpenCompass RULER config, e.g. "ruler_4k_gen"; by default the one of the length: 4096 ->
ruler_4k_gen, 8192 -> ruler_8k_gen, 16384 -> ruler_16k_gen) and "params_out" (where to write
the generator's class and arguments as JSON).

The generator's arguments are read from the installed OpenCompass's config file
(opencompass/configs/datasets/ruler/ruler_*_gen.py, loaded with mmengine's Config.fromfile, which
follows its read_base imports of ruler_{niah,vt,cwe,fwe,qa}_gen.py); only these are set here:
num_samples, random_seed 42 (the generators' default, which the configs keep),
max_seq_length = the length, tokenizer_model 'gpt-4' (cl100k), and the data paths, pointed at
data_dir (absolute paths pass through OpenCompass's get_data_path unchanged). The paper's change
to the configs: the prompt is the dataset's `prompt` column verbatim, with no answer round.

Writes one JSON line per sample: id (e.g. "4k_vt_0042"), task, length, index, prompt, answer (the
references as the dataset gives them), cl100k_tokens. Data problems (a missing file, a malformed
JSON file or line, a missing key, too little data) exit with code 3 and "error: ..." on stderr; an
unknown task or config exits with code 2.
"""

import contextlib
import json
import sys
from pathlib import Path

import opencompass
import tiktoken
from mmengine.config import Config

CONFIG_DIR = Path(opencompass.__file__).resolve().parent / "configs" / "datasets" / "ruler"
DEFAULT_CONFIGS = {4096: "ruler_4k_gen", 8192: "ruler_8k_gen", 16384: "ruler_16k_gen"}
NOT_ARGUMENTS = ("abbr", "type", "reader_cfg", "infer_cfg", "eval_cfg")
SEED = 42


class DataError(ValueError):
    """Exit code 3: the data cannot make the prompts asked for."""


class UsageError(ValueError):
    """Exit code 2: a task or config that does not exist."""


def length_label(length):
    return f"{length // 1024}k" if length % 1024 == 0 else str(length)


def config_name(spec):
    if spec.get("config"):
        return spec["config"]
    length = int(spec["length"])
    if length not in DEFAULT_CONFIGS:
        raise UsageError(
            f"length {length} has no OpenCompass RULER config of its own "
            f"({sorted(DEFAULT_CONFIGS)}): name one in the spec's 'config'"
        )
    return DEFAULT_CONFIGS[length]


def load_tasks(name):
    """{task: the config's dataset entry} of one RULER config, tasks named by their abbr
    without the 'ruler_' prefix and the length suffix (ruler_niah_single_1_4k -> niah_single_1)."""
    path = CONFIG_DIR / f"{name}.py"
    if not path.is_file():
        known = sorted(p.stem for p in CONFIG_DIR.glob("ruler_*_gen.py"))
        raise UsageError(f"no OpenCompass config {path}; known: {', '.join(known)}")
    cfg = Config.fromfile(str(path))
    suffix = "_" + name.removeprefix("ruler_").removesuffix("_gen")
    tasks = {}
    for entry in cfg["ruler_datasets"]:
        abbr = entry["abbr"]
        if not abbr.startswith("ruler_") or not abbr.endswith(suffix):
            raise UsageError(f"{path}: unexpected dataset abbr {abbr!r}")
        tasks[abbr.removeprefix("ruler_").removesuffix(suffix)] = entry
    return path, tasks


def plain(value):
    """A config value as plain JSON-able Python (ConfigDicts and tuples to dicts and lists)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


# --- data checks: name the file, the line and the key; OpenCompass would crash or loop ---


def check_essays(path, length, enc):
    """PaulGrahamEssays.jsonl: every line a JSON object with a string `text`, enough tokens.
    (OpenCompass json.loads every line and takes .get('text', ''): a missing key would silently
    shrink the haystack, a blank line crash it.)"""
    if not path.is_file():
        raise DataError(f"{path}: missing (the RULER essay haystack)")
    texts = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                row = json.loads(line.strip())
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{n}: not a JSON line ({e.msg})") from None
            if not isinstance(row, dict) or "text" not in row:
                raise DataError(f"{path}:{n}: no key 'text'")
            if not isinstance(row["text"], str):
                raise DataError(f"{path}:{n}: 'text' is not a string")
            texts.append(row["text"].strip())
    if not texts:
        raise DataError(f"{path}: no records")
    available = len(enc.encode(" ".join(texts)))
    if available < length:
        raise DataError(
            f"{path} holds {available} cl100k tokens; length {length} needs more "
            "(OpenCompass would silently build shorter prompts)"
        )


def read_json(path, what):
    if not path.is_file():
        raise DataError(f"{path}: missing ({what})")
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}:{e.colno}: not valid JSON ({e.msg})") from None


def need(obj, key, path, where, kind=None):
    if not isinstance(obj, dict) or key not in obj:
        raise DataError(f"{path}: {where}: no key {key!r}")
    value = obj[key]
    if kind is not None and not isinstance(value, kind):
        raise DataError(f"{path}: {where}.{key}: not a {kind.__name__}")
    return value


def check_squad(path):
    """SQuAD v2 dev: the fields RulerQaDataset reads; returns the answerable questions."""
    data = read_json(path, "SQuAD v2 dev-v2.0.json")
    answerable = 0
    for i, article in enumerate(need(data, "data", path, "top level", list)):
        for j, para in enumerate(need(article, "paragraphs", path, f"data[{i}]", list)):
            where = f"data[{i}].paragraphs[{j}]"
            need(para, "context", path, where, str)
            for k, qa in enumerate(need(para, "qas", path, where, list)):
                at = f"{where}.qas[{k}]"
                need(qa, "question", path, at, str)
                if not need(qa, "is_impossible", path, at):
                    answers = need(qa, "answers", path, at, list)
                    for m, a in enumerate(answers):
                        need(a, "text", path, f"{at}.answers[{m}]", str)
                    if not answers:
                        raise DataError(f"{path}: {at}: an answerable question with no answers")
                    answerable += 1
    return answerable


def check_hotpotqa(path):
    """HotpotQA dev distractor: a list of {question, answer, context: [[title, [sentences]]]}."""
    data = read_json(path, "HotpotQA dev distractor hotpotqa.json")
    if not isinstance(data, list):
        raise DataError(f"{path}: top level: not a list of questions")
    for i, item in enumerate(data):
        need(item, "question", path, f"[{i}]", str)
        need(item, "answer", path, f"[{i}]", str)
        for j, doc in enumerate(need(item, "context", path, f"[{i}]", list)):
            ok = (
                isinstance(doc, list)
                and len(doc) == 2
                and isinstance(doc[0], str)
                and isinstance(doc[1], list)
                and all(isinstance(s, str) for s in doc[1])
            )
            if not ok:
                raise DataError(f"{path}: [{i}].context[{j}]: not [title, [sentences]]")
    return len(data)


def check_data(cls_name, kwargs, length, n_samples, enc):
    if cls_name == "RulerNiahDataset" and kwargs["type_haystack"] == "essay":
        check_essays(Path(kwargs["base_path"]) / kwargs["file_path"], length, enc)
    elif cls_name == "RulerQaDataset":
        path = Path(kwargs["path"])
        if kwargs["dataset"] == "squad":
            questions = check_squad(path)
        elif kwargs["dataset"] == "hotpotqa":
            questions = check_hotpotqa(path)
        else:
            raise UsageError(f"unknown RULER QA dataset {kwargs['dataset']!r}")
        wanted = n_samples + int(kwargs.get("pre_samples", 0))
        if questions < wanted:
            # RulerQaDataset would index past the end, swallow the error and loop forever.
            raise DataError(
                f"{path} holds {questions} answerable questions; {n_samples} samples need {wanted}"
            )


def generator_arguments(entry, data_dir, length, n_samples):
    kwargs = {k: plain(v) for k, v in entry.items() if k not in NOT_ARGUMENTS}
    kwargs.update(
        num_samples=n_samples,
        random_seed=SEED,
        max_seq_length=length,
        tokenizer_model="gpt-4",
    )
    if "base_path" in kwargs:  # RulerNiahDataset: base_path/file_path
        kwargs["base_path"] = str(data_dir)
    if "path" in kwargs:  # RulerQaDataset: the config's ./data/ruler/<file>
        kwargs["path"] = str(data_dir / Path(kwargs["path"]).name)
    return kwargs


def main(spec_path):
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    data_dir = Path(spec["data_dir"]).resolve()
    task, length, n_samples = spec["task"], int(spec["length"]), int(spec["n_samples"])
    if n_samples < 1:
        raise UsageError(f"n_samples must be at least 1, not {n_samples}")
    name = config_name(spec)
    config_path, tasks = load_tasks(name)
    if task not in tasks:
        raise UsageError(f"unknown RULER task {task!r}; known: {', '.join(tasks)}")
    entry = tasks[task]
    cls = entry["type"]
    kwargs = generator_arguments(entry, data_dir, length, n_samples)
    enc = tiktoken.encoding_for_model("gpt-4")
    check_data(cls.__name__, kwargs, length, n_samples, enc)
    # The generators print their search for the haystack size: keep stdout clean.
    with contextlib.redirect_stdout(sys.stderr):
        ds = cls.load(**kwargs)
    label = length_label(length)
    rows = []
    for index, (prompt, answer) in enumerate(zip(ds["prompt"], ds["answer"], strict=True)):
        rows.append(
            {
                "id": f"{label}_{task}_{index:04d}",
                "task": task,
                "length": length,
                "index": index,
                "prompt": prompt,
                "answer": answer,
                "cl100k_tokens": len(enc.encode(prompt)),
            }
        )
    out = Path(spec["out"])
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(out)
    if spec.get("params_out"):
        params = {
            "config": str(config_path),
            "abbr": entry["abbr"],
            "dataset": f"{cls.__module__}.{cls.__name__}",
            "kwargs": kwargs,
        }
        Path(spec["params_out"]).write_text(json.dumps(params, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(3)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
