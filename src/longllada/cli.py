"""`longllada ...`: the scaling law, config checks, run listings, cost estimates and the
verdicts of a results directory against the paper."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from longllada import budget, rope, targets
from longllada.config import ConfigError, Study
from longllada.reproduction import report, verdicts

# The λ table of the paper (TARGETS.md): model, b, d, T_train, targets, variant.
PAPER_TABLE = (
    ("LLaDA-8B", 500_000, 128, 4096, (8192, 16384, 24576, 32768), "paper"),
    ("LLaMA3-8B", 500_000, 128, 8192, (16384, 32768), "paper"),
    ("Dream-v0-7B", 1_000_000, 128, 2048, (4096,), "paper"),
    ("LLaDA-8B", 500_000, 128, 4096, (8192, 16384, 24576, 32768), "diffusion_aware"),
)


def _print_scalings(rows: list[tuple[str, rope.NtkScaling]]) -> None:
    head = f"{'model':<12} {'variant':<16} {'b':>9} {'d':>4} {'T_train':>8} {'T_target':>9}"
    print(f"{head} {'d_crit':>6} {'λ raw':>8} {'λ':>4} {'new theta':>11} {'T_extra':>9}")
    for name, s in rows:
        print(
            f"{name:<12} {s.variant:<16} {s.base:>9g} {s.head_dim:>4} {s.t_train:>8} "
            f"{s.t_target:>9} {s.d_crit:>6} {s.lambda_raw:>8.2f} {s.ntk_lambda:>4g} "
            f"{s.new_theta:>11.4g} {s.t_extra:>9.0f}"
        )


def cmd_ntk(args: argparse.Namespace) -> int:
    if args.paper_table:
        rows = [
            (name, rope.scaling_for_target(b, d, t, target, variant))
            for name, b, d, t, targets_, variant in PAPER_TABLE
            for target in targets_
        ]
    else:
        missing = [o for o in ("base", "head_dim", "t_train", "t_target") if not getattr(args, o)]
        if missing:
            print(f"longllada ntk: give --{missing[0].replace('_', '-')} (or --paper-table)")
            return 2
        rows = [
            ("-", rope.scaling_for_target(args.base, args.head_dim, args.t_train, t, args.variant))
            for t in args.t_target
        ]
    _print_scalings(rows)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    study = Study.from_file(args.config)
    # Files the config names must be there (relative paths: from the working directory, as
    # snakemake reads them), and fetched or generated data unedited since its data check.
    problems = study.input_problems(Path.cwd())
    if problems:
        lines = "\n".join(f"  {p}" for p in problems)
        print(f"longllada validate: {args.config}:\n{lines}", file=sys.stderr)
        return 1
    paper = study.paper_runs()
    by_bench: dict[str, int] = {}
    for run in study.runs.values():
        if run in paper:
            by_bench[run.benchmark] = by_bench.get(run.benchmark, 0) + 1
    n_ext = sum(t.extension for t in study.targets.values())
    print(
        f"{args.config}: valid. {len(study.models)} models, {len(study.targets) - n_ext} "
        f"targets of the paper + {n_ext} extensions,"
    )
    counts = ", ".join(f"{n} {b}" for b, n in by_bench.items())
    print(f"  {len(paper)} distinct runs: {counts}")
    if n_ext:
        print(f"  + {len(study.runs) - len(paper)} runs of the extensions only")
    print(f"  {len(study.all_checkpoints())} checkpoints (originals + RoPE-patched)")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    study = Study.from_file(args.config)
    names = [args.target] if args.target else list(study.targets)
    for name in names:
        if name not in study.targets:
            print(f"no target {name!r}; targets: {', '.join(study.targets)}")
            return 2
        target = study.targets[name]
        state = "built" if targets.implemented(target.kind) else "pending"
        print(f"{name} ({target.kind}, {state}) -> {', '.join(target.outputs)}")
        for run in target.runs:
            print(f"  {run.directory}  [{study.checkpoint(run.model, run.ntk_lambda)}]")
    return 0


def cmd_budget(args: argparse.Namespace) -> int:
    study = Study.from_file(args.config)
    print("| target | GPU-hours (one H100, est.) | stages |")
    print("|---|---:|---|")
    for name, target in study.targets.items():
        hours = budget.target_gpu_hours(study, name)
        pending = targets.PENDING[target.kind]
        state = f"pending: {pending}" if pending else "built"
        print(f"| `{name}` | {hours:,.1f} | {state} |")
    per_bench = budget.study_gpu_hours(study)
    total = sum(per_bench.values())
    detail = ", ".join(f"{b} {h:,.0f}" for b, h in per_bench.items())
    print(f"| **all (shared runs once)** | **{total:,.0f}** | {detail} |")
    extra = budget.study_gpu_hours(study, extensions=True)
    if extra:
        detail = ", ".join(f"{b} {h:,.0f}" for b, h in extra.items())
        print(f"| **extensions (their own runs)** | **{sum(extra.values()):,.0f}** | {detail} |")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    root = Path(args.results_dir)
    if not root.is_dir():
        print(f"longllada compare: {root} is not a directory", file=sys.stderr)
        return 2
    figures = root / "paper_figures" if (root / "paper_figures").is_dir() else root
    study = Study.from_file(args.config) if args.config else None
    tolerances = verdicts.Tolerances.from_config(study.config if study else {})
    kinds = {t.name: t.kind for t in study.targets.values()} if study else {}
    found = sorted(figures.glob("*.comparison.csv"))
    if not found:
        print(f"longllada compare: no *.comparison.csv in {figures}", file=sys.stderr)
        return 2
    if study:
        # Every paper target with a comparison file is expected: one not built yet is listed
        # as such (and fails --strict), never left out. The config's order; files of targets
        # it does not know come after.
        have = {p.name for p in found}
        found += [
            figures / f"{t.name}.comparison.csv"
            for t in study.paper_targets()
            if f"paper_figures/{t.name}.comparison.csv" in t.outputs
            and f"{t.name}.comparison.csv" not in have
        ]
        order = {name: i for i, name in enumerate(kinds)}
        found.sort(key=lambda p: (order.get(_target_of(p), len(order)), p.name))
    else:
        print(
            f"longllada compare: only the {len(found)} target(s) with a comparison file in "
            f"{figures} are listed; pass --config to list the targets not built yet",
            file=sys.stderr,
        )
    results = []
    for path in found:
        name = _target_of(path)
        target = study.targets.get(name) if study else None
        published = report.published_files(target, Path(".")) if target else []
        results.append(verdicts.read_comparison(path, name, kinds.get(name), published))
    print(verdicts.format_table(results, tolerances, args.cells), end="")
    if args.strict and (verdicts.any_outside(results, tolerances) or any(r.error for r in results)):
        return 1
    return 0


def _target_of(path: Path) -> str:
    return path.name.removesuffix(".comparison.csv")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="longllada", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    ntk = sub.add_parser("ntk", help="d_crit, λ and T_extra from the RoPE scaling law")
    ntk.add_argument("--base", type=float, help="rope_theta b of the checkpoint")
    ntk.add_argument("--head-dim", type=int)
    ntk.add_argument("--t-train", type=int, help="training context length")
    ntk.add_argument("--t-target", type=int, nargs="+", help="target context length(s)")
    ntk.add_argument("--variant", choices=rope.VARIANTS, default="paper")
    ntk.add_argument("--paper-table", action="store_true", help="the paper's λ table")
    ntk.set_defaults(func=cmd_ntk)

    for name, func, text in (
        ("validate", cmd_validate, "check a config against the schema and summarise it"),
        ("runs", cmd_runs, "list each target's runs, result directories and checkpoints"),
        ("budget", cmd_budget, "estimated GPU-hours per target (markdown table)"),
    ):
        s = sub.add_parser(name, help=text)
        s.add_argument("config", nargs="?", default="config/paper.yaml")
        if name == "runs":
            s.add_argument("--target")
        s.set_defaults(func=func)

    cmp = sub.add_parser(
        "compare", help="verdicts of a results directory's comparison files against the paper"
    )
    cmp.add_argument("results_dir", help="a run's directory (or its paper_figures/)")
    cmp.add_argument("--config", help="the run's config: its targets' kinds and report.tolerances")
    cmp.add_argument(
        "--cells",
        choices=("outside", "all", "none"),
        default="outside",
        help="which cells to list under the summary (default: those outside tolerance)",
    )
    cmp.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when a cell is outside its tolerance, a comparison file is unreadable, "
        "or (with --config) a target of the paper has no comparison file yet",
    )
    cmp.set_defaults(func=cmd_compare)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"longllada {args.command}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
