"""What the installed OpenCompass's LongBench configs say about each of the 21 subsets.

    python longbench_facts.py OUT.json

Loads opencompass/configs/datasets/longbench/longbench.py (the aggregate OpenCompass users
import: `from opencompass.configs.datasets.longbench.longbench import longbench_datasets`) with
mmengine's Config.fromfile, which follows its read_base imports of the per-subset
longbench<x>/longbench_<x>_gen.py, which in turn read_base the hashed
longbench_<x>_gen_<hash>.py that defines the dataset entry. mmengine keeps no record of which
file defined a value, so the chain is followed here with ast (the `from .module import NAME`
lines of each read_base block) and the defining file loaded on its own to check that it gives
the aggregate's entry.

OUT: {"opencompass": version, "aggregate": path, "subsets": {name: facts}}, a subset named by
its entry's `name` (what OpenCompass passes to the dataset class, e.g. "repobench-p"); paths
are relative to site-packages (opencompass/configs/...). Facts: config (the defining file),
chain (aggregate -> ... -> config), abbr, name, path (the entry's data path),
dataset_class, template (the HUMAN round's prompt, verbatim), placeholders (the {field}s in
it, in order), input_columns, output_column, max_out_len, evaluator (class name),
evaluator_kwargs, pred_postprocessor (function name or null), pred_postprocessor_kwargs,
pred_role. Exit code 2 when the configs do not hold the 21 subsets as expected.
"""

import ast
import importlib.metadata
import json
import re
import sys
from pathlib import Path

import opencompass
from mmengine.config import Config

PACKAGE = Path(opencompass.__file__).resolve().parent
CONFIG_DIR = PACKAGE / "configs" / "datasets" / "longbench"
AGGREGATE = CONFIG_DIR / "longbench.py"
AGGREGATE_NAME = "longbench_datasets"
SUBSETS = (
    "narrativeqa",
    "qasper",
    "multifieldqa_en",
    "multifieldqa_zh",
    "hotpotqa",
    "2wikimqa",
    "musique",
    "dureader",
    "gov_report",
    "qmsum",
    "multi_news",
    "vcsum",
    "trec",
    "triviaqa",
    "samsum",
    "lsht",
    "passage_count",
    "passage_retrieval_en",
    "passage_retrieval_zh",
    "lcc",
    "repobench-p",
)
PLACEHOLDER = re.compile(r"\{(\w+)\}")


class ConfigError(ValueError):
    """Exit code 2: the configs are not what this script knows how to read."""


def read_base_imports(path):
    """{NAME: the file it is imported from} of the read_base block(s) of one config file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    out = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.With):
            continue
        calls = [item.context_expr for item in node.items]
        if not any(
            isinstance(c, ast.Call) and getattr(c.func, "id", "") == "read_base" for c in calls
        ):
            continue
        for stmt in node.body:
            if isinstance(stmt, ast.ImportFrom) and stmt.level >= 1:
                base = path.parent
                for _ in range(stmt.level - 1):
                    base = base.parent
                target = base.joinpath(*stmt.module.split(".")).with_suffix(".py")
                for alias in stmt.names:
                    out[alias.asname or alias.name] = target
    return out


def defining_file(name, start):
    """The chain of files from `start` to the one that assigns `name` itself."""
    chain = [start]
    while True:
        imports = read_base_imports(chain[-1])
        if name not in imports:
            return chain
        nxt = imports[name]
        if nxt in chain or not nxt.is_file():
            raise ConfigError(f"{chain[-1]}: cannot follow the import of {name} to {nxt}")
        chain.append(nxt)


def plain(value):
    """A config value as JSON: dicts and lists as such, classes and functions by name."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, type) or callable(value):
        return value.__name__
    return value


def human_prompt(entry, where):
    template = entry["infer_cfg"]["prompt_template"]["template"]
    rounds = [r for r in template["round"] if r["role"] == "HUMAN"]
    if len(rounds) != 1 or len(template["round"]) != 1:
        raise ConfigError(f"{where}: expected one HUMAN round, found {plain(template)}")
    return rounds[0]["prompt"]


def facts_of(entry, config, chain):
    where = str(config)
    eval_cfg = dict(entry["eval_cfg"])
    evaluator = dict(eval_cfg["evaluator"])
    evaluator_cls = evaluator.pop("type")
    post = dict(eval_cfg.get("pred_postprocessor") or {})
    post_fn = post.pop("type", None)
    template = human_prompt(entry, where)
    placeholders = list(dict.fromkeys(PLACEHOLDER.findall(template)))
    dataset_cls = entry["type"]
    return {
        "config": relative(config),
        "chain": [relative(p) for p in chain],
        "abbr": entry["abbr"],
        "name": entry["name"],
        "path": entry["path"],
        "dataset_class": f"{dataset_cls.__module__}.{dataset_cls.__name__}",
        "template": template,
        "placeholders": placeholders,
        "input_columns": list(entry["reader_cfg"]["input_columns"]),
        "output_column": entry["reader_cfg"]["output_column"],
        "max_out_len": int(entry["infer_cfg"]["inferencer"]["max_out_len"]),
        "evaluator": evaluator_cls.__name__,
        "evaluator_kwargs": plain(evaluator),
        "pred_postprocessor": post_fn.__name__ if post_fn is not None else None,
        "pred_postprocessor_kwargs": plain(post),
        "pred_role": eval_cfg.get("pred_role"),
    }


def load_entries():
    """The aggregate config and {subset: its dataset entry}; the 21 subsets, each once."""
    aggregate = Config.fromfile(str(AGGREGATE))
    datasets = aggregate[AGGREGATE_NAME]
    entries = {e["name"]: e for e in datasets}
    if sorted(entries) != sorted(SUBSETS) or len(datasets) != len(SUBSETS):
        raise ConfigError(
            f"{AGGREGATE}: {AGGREGATE_NAME} holds {sorted(entries)}, not the 21 LongBench subsets"
        )
    return aggregate, entries


def relative(path):
    """A path inside the installed package as opencompass/...: the same on every machine."""
    return str(Path(path).relative_to(PACKAGE.parent))


def main(out_path):
    aggregate, entries = load_entries()
    # Which variable of the aggregate holds which subset (LongBench_repobench_datasets holds
    # repobench-p): by the entries themselves, not by their names.
    variable = {}
    for key, value in aggregate.items():
        if key.endswith("_datasets") and key != AGGREGATE_NAME:
            for e in value:
                variable[e["name"]] = key
    subsets = {}
    for name in SUBSETS:
        chain = defining_file(variable[name], AGGREGATE)
        config = chain[-1]
        own = [e for e in Config.fromfile(str(config))[variable[name]] if e["name"] == name]
        if len(own) != 1 or plain(own[0]) != plain(entries[name]):
            raise ConfigError(f"{config}: does not define the aggregate's entry of {name}")
        subsets[name] = facts_of(entries[name], config, chain)
    out = {
        "opencompass": importlib.metadata.version("opencompass"),
        "aggregate": relative(AGGREGATE),
        "subsets": subsets,
    }
    Path(out_path).write_text(
        json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
