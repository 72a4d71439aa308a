"""Build one LongBench subset's prompts (whole, not yet truncated) with OpenCompass's own
dataset class and prompt template.

    python longbench_prompts.py SPEC.json

SPEC: {"data_file", "subset", "out", "params_out"[, "partitioner"]}, or a list of them (one
OpenCompass start).
The subset's entry comes from the installed OpenCompass's aggregate LongBench config
(longbench_facts.py beside this). Its dataset class (LongBench<x>Dataset.load) runs as it is,
except that the HF `load_dataset` call it makes (of THUDM/LongBench's hub script) is served the
jsonl given here, read directly: what the class keeps of a record, and under which column
names, stays OpenCompass's. The prompt is the config's PromptTemplate.generate_item of that
row (OpenCompass's safe_format: the row's columns replaced one after the other, in the class's
column order), made into text by OpenCompass's LMTemplateParser without a meta template, as an
HF base model without one gets it: what the official wrapper received.

The official run's tasks: the paper's LongBench evaluation split each subset into OpenCompass
tasks with `SizePartitioner(max_task_size=1000, gen_task_coef=15)` (BENCHMARKS.md, "Facts found
later"; SPEC's "partitioner", {"type", **arguments}, may name another), and each task seeded the
model's random stream anew. The installed partitioner's own `partition` cuts the subset's entry
(its dataset size given through the partitioner's size cache, a file here, as the rows the
dataset class made), and OpenCompass's `load_partial_dataset` applies each task's test_range to
the row indices: every row records its task (`oc_task`: the task's dataset abbr, e.g.
LongBench_trec_1; the subset's abbr when it is not split), where the generation job restarts
its random stream.

Writes one JSON line per record, in file order: id ("<subset>_<index>"), subset, index, _id,
prompt, answers, all_classes, length, language, max_out_len, template_prompt (the template with
empty text columns: what a context's budget must at least hold), oc_task. A malformed file exits
with code 3 ("error: ..." on stderr; the caller checks the file first, so this is a second line
of defence); an unknown subset exits with code 2. PARAMS_OUT: what the prompts came from (the
entry's abbr, dataset class, template, output column and max_out_len) and the partitioner (class,
arguments, and its tasks: oc_task, test_range, first, stop).
"""

import json
import sys
import tempfile
from pathlib import Path

import opencompass.partitioners
from datasets import Dataset, DatasetDict

# This script's directory is sys.path[0] when it runs: the facts script beside it reads the
# configs.
from longbench_facts import SUBSETS, ConfigError, load_entries
from opencompass.models.base import LMTemplateParser
from opencompass.openicl.icl_dataset_reader import load_partial_dataset
from opencompass.utils import dataset_abbr_from_cfg

# The official LongBench evaluation's partitioner (BENCHMARKS.md, "Facts found later").
OFFICIAL_PARTITIONER = {"type": "SizePartitioner", "max_task_size": 1000, "gen_task_coef": 15}


class DataError(ValueError):
    """Exit code 3."""


def read_records(path):
    records = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{n}: not JSON ({e})") from None
    if not records:
        raise DataError(f"{path}: no records")
    return records


def dataset_rows(entry, records):
    """The rows OpenCompass's dataset class makes of `records`."""
    cls = entry["type"]
    module = sys.modules[cls.__module__]

    def serve(**_kwargs):  # what the class asks THUDM/LongBench's script for, from our file
        return DatasetDict({"test": Dataset.from_list(records)})

    module.load_dataset = serve
    module.get_data_path = lambda path, *_a, **_k: path
    return list(cls.load(path=entry["path"], name=entry["name"])["test"])


def official_tasks(entry, n_rows, partitioner):
    """[{oc_task, test_range, first, stop}] of the subset's rows, as the partitioner cut the
    official run into tasks (one seed each): its `partition` of this one dataset for one model,
    each task's test_range applied to the row indices by OpenCompass's reader function."""
    arguments = {k: v for k, v in partitioner.items() if k != "type"}
    cls = getattr(opencompass.partitioners, partitioner["type"])
    abbr = dataset_abbr_from_cfg(entry)
    with tempfile.TemporaryDirectory(prefix="longbench_tasks_") as tmp:
        sizes = Path(tmp) / "dataset_size.json"  # the size cache: no dataset is built
        sizes.write_text(json.dumps({abbr: n_rows}), encoding="utf-8")
        runner = cls(out_dir=tmp, dataset_size_path=str(sizes), **arguments)
        combination = {"models": [{"abbr": "model"}], "datasets": [entry]}
        tasks = runner.partition([combination], work_dir=tmp, out_dir=tmp)
    indices = Dataset.from_dict({"row": list(range(n_rows))})
    out = []
    for task in tasks:
        (datasets,) = task["datasets"]  # one model
        if len(datasets) != 1:
            raise RuntimeError(f"{abbr}: a task of {len(datasets)} datasets from one dataset")
        test_range = datasets[0]["reader_cfg"].get("test_range")
        rows = list(load_partial_dataset(indices, test_range)["row"])
        first = out[-1]["stop"] if out else 0
        if rows != list(range(first, first + len(rows))) or not rows:
            raise RuntimeError(f"{abbr}: task {datasets[0]['abbr']} holds rows {rows[:5]}...")
        out.append(
            {
                "oc_task": datasets[0]["abbr"],
                "test_range": test_range,
                "first": first,
                "stop": first + len(rows),
            }
        )
    if not out or out[-1]["stop"] != n_rows:
        raise RuntimeError(f"{abbr}: the partitioner's tasks do not cover its {n_rows} rows")
    return {
        "class": f"{cls.__module__}.{cls.__name__}",
        "arguments": arguments,
        "strategy": runner.strategy,
        "tasks": out,
    }


def main(spec_path):
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    _aggregate, entries = load_entries()
    for job in spec if isinstance(spec, list) else [spec]:
        build(job, entries)


def build(spec, entries):
    subset = spec["subset"]
    if subset not in SUBSETS:
        raise ConfigError(f"unknown LongBench subset {subset!r}")
    entry = entries[subset]
    records = read_records(spec["data_file"])
    rows = dataset_rows(entry, records)
    if len(rows) != len(records):
        raise DataError(f"{spec['data_file']}: the dataset class made {len(rows)} rows")
    template_cfg = dict(entry["infer_cfg"]["prompt_template"])
    template = template_cfg.pop("type")(**template_cfg)
    output_column = entry["reader_cfg"]["output_column"]
    parser = LMTemplateParser(None)
    max_out_len = int(entry["infer_cfg"]["inferencer"]["max_out_len"])
    # The template with every text column empty: what a budget must at least hold.
    empty = {k: "" if isinstance(v, str) else v for k, v in rows[0].items()}
    template_prompt = parser.parse_template(
        template.generate_item(empty, output_field=output_column, output_field_replace_token=""),
        mode="gen",
    )
    partitioner = official_tasks(entry, len(rows), spec.get("partitioner", OFFICIAL_PARTITIONER))
    task_of = [t["oc_task"] for t in partitioner["tasks"] for _ in range(t["first"], t["stop"])]
    out = Path(spec["out"])
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        for i, (record, row) in enumerate(zip(records, rows, strict=True)):
            item = template.generate_item(
                row, output_field=output_column, output_field_replace_token=""
            )
            prompt = parser.parse_template(item, mode="gen")
            line = {
                "id": f"{subset}_{i:04d}",
                "subset": subset,
                "index": i,
                "_id": record.get("_id"),
                "prompt": prompt,
                "answers": record["answers"],
                "all_classes": record.get("all_classes"),
                "length": record.get("length"),
                "language": record.get("language"),
                "max_out_len": max_out_len,
                "template_prompt": template_prompt,
                "oc_task": task_of[i],
            }
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    cls = entry["type"]
    params = {
        "abbr": entry["abbr"],
        "name": entry["name"],
        "dataset_class": f"{cls.__module__}.{cls.__name__}",
        "template": template_cfg["template"],
        "output_column": output_column,
        "max_out_len": max_out_len,
        "partitioner": partitioner,
    }
    Path(spec["params_out"]).write_text(json.dumps(params, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except (DataError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(3)
