"""The reproduction report: per target the paper's claim, our figure or table, the comparison
with verdicts, the runs' provenance and GPU time; then the known differences from the paper.

Built from files only (``paper_figures/`` and ``results/`` under ``root``), into one structure
(:class:`Report`) that two writers render: Markdown (figures linked) and self-contained HTML
(figures inlined as PNG, no network). A target whose files are absent or unreadable gets a line
saying so; the others are built all the same.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from longllada.config import Study, Target
from longllada.files import write_text
from longllada.reproduction.run_facts import RunFacts, run_facts
from longllada.reproduction.verdicts import (
    VERDICTS,
    Cell,
    TargetVerdicts,
    Tolerances,
    format_value,
    read_comparison,
    shortened,
)
from longllada.rope import format_lambda

NO_COMPARISON = {
    "rope_coverage": "analytic: no published numbers to compare (the paper's figure is drawn, "
    "not tabulated)",
    "tsne_qk": "a projection: no published numbers to compare",
}
VERDICT_WORDS = {
    "inside": "inside tolerance",
    "outside": "outside tolerance",
    "missing": "published, not reproduced",
    "unpublished": "ours, not in the paper",
}


def load_package_yaml(name: str) -> Any:
    return yaml.safe_load(resources.files("longllada.data").joinpath(name).read_text("utf-8"))


@dataclass
class TargetSection:
    target: Target
    claim: str | None
    figure: Path | None  # the PNG, when the target is a figure and it exists
    table_md: Path | None  # the table's Markdown, when a table and it exists
    verdicts: TargetVerdicts | None  # None: the target has no comparison file by design
    runs: list[RunFacts]
    differences: list[dict[str, Any]]
    estimate_hours: float
    missing_outputs: list[str] = field(default_factory=list)

    @property
    def gpu_seconds(self) -> float | None:
        timed = [r.gpu_seconds for r in self.runs if r.gpu_seconds is not None]
        return sum(timed) if timed else None


@dataclass
class Report:
    config_name: str
    tolerances: Tolerances
    banner: str | None
    sections: list[TargetSection]
    differences: list[dict[str, Any]]


def limits_banner(study: Study, runs: list[RunFacts]) -> str | None:
    """Which limits were in force: demo models, sample limits, runs on fewer samples."""
    parts = []
    demo = [m.key for m in study.models.values() if m.source == "demo"]
    if demo:
        parts.append(f"tiny random-weight demo models ({', '.join(demo)})")
    limits = {
        b: cfg["sample_limit"]
        for b, cfg in study.benchmarks.items()
        if isinstance(cfg, dict) and cfg.get("sample_limit")
    }
    if limits:
        parts.append("sample_limit " + ", ".join(f"{b} {n}" for b, n in limits.items()))
    short = [r for r in runs if r.limited]
    if short and not limits:
        parts.append(f"{len(short)} runs on fewer samples than their benchmark's")
    if not parts:
        return None
    return (
        "Limited run: "
        + "; ".join(parts)
        + ". These numbers are not the paper's setting and the verdicts say how far they lie, "
        "not whether the paper reproduces."
    )


def build_report(study: Study, root: str | Path = ".", config_name: str = "") -> Report:
    """Everything the report shows, read from ``root``; paper targets only (not extensions)."""
    root = Path(root)
    tolerances = Tolerances.from_config(study.config)
    claims = load_package_yaml("paper_claims.yaml") or {}
    differences = load_package_yaml("known_differences.yaml") or []
    facts_of: dict[Any, RunFacts] = {}
    sections = []
    for target in study.paper_targets():
        runs = []
        for run in target.runs:
            if run not in facts_of:
                facts_of[run] = run_facts(study, run, root)
            runs.append(facts_of[run])
        outputs = target.outputs
        missing = [o for o in outputs if not (root / o).exists()]
        comparison = f"paper_figures/{target.name}.comparison.csv"
        verdicts = None
        if comparison in outputs:
            verdicts = read_comparison(
                root / comparison, target.name, target.kind, published_files(target, root)
            )
        png = root / f"paper_figures/{target.name}.png"
        md = root / f"paper_figures/{target.name}.md"
        sections.append(
            TargetSection(
                target=target,
                claim=claims.get(target.name),
                figure=_present(png, root, outputs),
                table_md=_present(md, root, outputs),
                verdicts=verdicts,
                runs=runs,
                differences=[d for d in differences if _affects(d, target.name)],
                estimate_hours=sum(r.estimate_hours for r in runs),
                missing_outputs=missing,
            )
        )
    return Report(
        config_name=config_name,
        tolerances=tolerances,
        banner=limits_banner(study, list(facts_of.values())),
        sections=sections,
        differences=differences,
    )


def _present(path: Path, root: Path, outputs: list[str]) -> Path | None:
    """``path`` when it is one of the target's outputs and exists (a figure's PNG, a table's
    Markdown)."""
    return path if str(path.relative_to(root)) in outputs and path.exists() else None


def published_files(target: Target, root: Path) -> list[Path]:
    """The target's own published file (config paths are relative to the workflow): its first.
    Files after it lend rows shared with another table (Table 3 takes Table 1's LLaMA3 rows),
    so their other rows are not this target's to compare."""
    spec = target.spec.get("published") or []
    files = [spec] if isinstance(spec, str) else list(spec)
    return [root / files[0]] if files else []


def _affects(difference: dict[str, Any], target: str) -> bool:
    targets = difference.get("targets") or []
    return targets == "all" or "all" in targets or target in targets


def section_status(section: TargetSection, tolerances: Tolerances) -> str:
    """The summary's word for a target: not built, no published numbers, its comparison's
    trouble, or its verdicts'; "(partly built)" when some of its outputs are absent."""
    if len(section.missing_outputs) == len(section.target.outputs):
        return "not built"
    v = section.verdicts
    if v is None:
        status = "no published numbers"
    elif v.error:
        status = "no comparison" if not v.path.exists() else "comparison unreadable"
    else:
        status = v.status(tolerances)
    return f"{status} (partly built)" if section.missing_outputs else status


def summary_table(report: Report) -> tuple[list[str], list[list[str]]]:
    rows = []
    for s in report.sections:
        status = section_status(s, report.tolerances)
        v = s.verdicts
        counts = v.counts(report.tolerances) if v and not v.error else None
        rows.append([s.target.name, status, *(str(counts[k]) if counts else "" for k in VERDICTS)])
    return ["target", "status", *VERDICTS], rows


# --- shared text ------------------------------------------------------------------------------


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds / 3600:.2f} h" if seconds >= 360 else f"{seconds:.0f} s"


def counts_line(verdicts: TargetVerdicts, tolerances: Tolerances) -> str:
    counts = verdicts.counts(tolerances)
    tol = ", ".join(f"{g} {tolerances.describe(g)}" for g in verdicts.groups())
    parts = [f"{counts[v]} {VERDICT_WORDS[v]}" for v in VERDICTS if counts[v]]
    suspect = sum(c.suspect for c in verdicts.cells)
    if suspect:
        parts.append(f"{suspect} against published numbers flagged as suspect")
    return f"{'; '.join(parts) or 'no cells'} (tolerance: {tol or '-'})"


def _run_row(facts: RunFacts) -> list[str]:
    run = facts.run
    model = facts.model_id or run.model
    if facts.commits:
        model += " @ " + ", ".join(c[:12] for c in facts.commits)
    elif facts.revision:
        model += f" @ {facts.revision} (not resolved)"
    sampler = ", ".join(f"{k}={v}" for k, v in sorted(facts.sampler.items())) or "-"
    limit = "-" if facts.sample_limit is None else str(facts.sample_limit)
    if facts.n_samples is not None and facts.n_full is not None:
        limit += f" ({facts.n_samples}/{facts.n_full} samples)"
    gpu = _hours(facts.gpu_seconds)
    if facts.jobs and facts.gpu_seconds is not None and facts.jobs_timed < facts.jobs:
        gpu += f" ({facts.jobs_timed}/{facts.jobs} jobs timed)"
    return [
        f"{run.benchmark}/{run.model}/{run.setting}",
        facts.status,
        model,
        format_lambda(facts.ntk_lambda if facts.ntk_lambda is not None else run.ntk_lambda),
        "-" if facts.rope_theta is None else f"{facts.rope_theta:.4g}",
        sampler,
        "-" if facts.seed is None else str(facts.seed),
        limit,
        facts.dtype or "-",
        ", ".join(facts.devices) or "-",
        ", ".join(f"{k} {v}" for k, v in facts.packages.items()) or "-",
        gpu,
        f"{facts.estimate_hours:.2f} h",
    ]


RUN_HEAD = [
    "run",
    "status",
    "model @ commit",
    "λ",
    "rope_theta",
    "sampler",
    "seed",
    "sample limit",
    "dtype",
    "device",
    "packages",
    "GPU time",
    "cost model",
]
CELL_HEAD = ["cell", "published", "ours", "difference", "verdict"]


def _cell_row(cell: Cell, tolerances: Tolerances) -> list[str]:
    verdict = cell.verdict(tolerances)
    if cell.suspect:
        verdict += " (published number suspect)"
    return [
        cell.what,
        format_value(cell.published, cell.group, ""),
        format_value(cell.reproduced, cell.group, ""),
        format_value(cell.difference, cell.group, ""),
        verdict,
    ]


def _difference_text(d: dict[str, Any]) -> str:
    text = str(d.get("what", "")).strip()
    if d.get("option"):
        text += f" Option: `{d['option']}`"
        if d.get("option_effect"):
            text += f" ({str(d['option_effect']).strip()})"
        text += "."
    return text


def _uncompared_text(v: TargetVerdicts) -> str:
    count = len(v.uncompared)
    return f"{count} published rows no run of ours was compared with: {shortened(v.uncompared)}"


def _target_gpu_line(section: TargetSection) -> str:
    return (
        f"GPU time of its runs (Snakemake benchmark files): {_hours(section.gpu_seconds)}; "
        f"cost model: {section.estimate_hours:.2f} GPU-hours (shared runs counted in each target)."
    )


# --- Markdown ---------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return text.replace("|", r"\|").replace("\n", " ")


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return lines


def _md_table_body(path: Path) -> list[str]:
    """A table's Markdown without its title line (the report gives the heading)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[1:] if lines and lines[0].startswith("# ") else lines


def to_markdown(report: Report) -> str:
    tol = report.tolerances
    out = ["# LongLLaDA reproduction report", ""]
    if report.config_name:
        out += [f"Config: `{report.config_name}`.", ""]
    if report.banner:
        out += [f"> **{report.banner}**", ""]
    out += [
        "Every published number beside ours. A cell is *inside* when |ours - paper| is within "
        "its tolerance (config `report.tolerances`), *missing* when the paper has a number we "
        "did not produce, *unpublished* when we have one the paper does not.",
        "",
        "## Summary",
        "",
    ]
    out += _md_table(*summary_table(report))
    for s in report.sections:
        out += ["", f"## {s.target.name}", ""]
        out += [f"**The paper:** {s.claim or 'beyond the paper'}", ""]
        if s.missing_outputs:
            out += [f"**Not built yet:** {', '.join(f'`{m}`' for m in s.missing_outputs)}", ""]
        if s.figure is not None:
            out += [f"![{s.target.name}]({s.figure.name})", ""]
        if s.table_md is not None:
            out += [*_md_table_body(s.table_md), ""]
        v = s.verdicts
        if v is None:
            out += [f"*{NO_COMPARISON.get(s.target.kind, 'no comparison')}.*", ""]
        elif v.error:
            out += [f"**Comparison:** {v.error}", ""]
        else:
            out += [f"**Verdicts:** {counts_line(v, tol)}.", ""]
            out += [f"- row skipped: {p}" for p in v.problems]
            if v.uncompared:
                out.append(f"- {_uncompared_text(v)}")
            if v.problems or v.uncompared:
                out.append("")
            out += ["<details><summary>Every cell</summary>", ""]
            out += _md_table(CELL_HEAD, [_cell_row(c, tol) for c in v.cells])
            out += ["", "</details>", ""]
        out += [_target_gpu_line(s), ""]
        out += _md_table(RUN_HEAD, [_run_row(r) for r in s.runs])
        problems = [p for r in s.runs for p in r.problems]
        out += [f"- {p}" for p in problems]
        if s.differences:
            out += ["", "Known differences from the paper here:", ""]
            out += [f"- {_difference_text(d)}" for d in s.differences]
    out += ["", "## Known differences from the paper", ""]
    for d in report.differences:
        out.append(f"- **{d.get('id')}** ({d.get('kind')}): {_difference_text(d)}")
    return "\n".join(out) + "\n"


# --- HTML -------------------------------------------------------------------------------------

CSS = """
body { font-family: sans-serif; max-width: 78em; margin: 2em auto; padding: 0 1em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; }
th { background: #f2f2f2; }
.banner { background: #fde2e2; border: 2px solid #c00000; color: #900; padding: 0.6em 1em;
  font-weight: bold; }
.inside { color: #176b2c; } .outside { color: #b00020; font-weight: bold; }
.missing, .unpublished { color: #666; }
img { max-width: 100%; border: 1px solid #ddd; }
pre { background: #f8f8f8; padding: 0.5em; overflow-x: auto; }
"""


def _e(text: Any) -> str:
    return html.escape(str(text))


def _html_table(head: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    parts = ["<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes else ""
        parts.append(f"<tr{cls}>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>")
    return "".join(parts) + "</table>"


def _inline_png(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{_e(path.stem)}" src="data:image/png;base64,{data}">'


def to_html(report: Report) -> str:
    tol = report.tolerances
    body = ["<h1>LongLLaDA reproduction report</h1>"]
    if report.config_name:
        body.append(f"<p>Config: <code>{_e(report.config_name)}</code>.</p>")
    if report.banner:
        body.append(f'<div class="banner">{_e(report.banner)}</div>')
    body.append(
        "<p>Every published number beside ours. A cell is <em>inside</em> when |ours - paper| "
        "is within its tolerance (config <code>report.tolerances</code>), <em>missing</em> when "
        "the paper has a number we did not produce, <em>unpublished</em> when we have one the "
        "paper does not.</p><h2>Summary</h2>"
    )
    head, rows = summary_table(report)
    classes = [row[1].split()[0] for row in rows]
    body.append(_html_table(head, rows, classes))
    for s in report.sections:
        body.append(f'<h2 id="{_e(s.target.name)}">{_e(s.target.name)}</h2>')
        body.append(f"<p><strong>The paper:</strong> {_e(s.claim or 'beyond the paper')}</p>")
        if s.missing_outputs:
            body.append(
                f"<p><strong>Not built yet:</strong> {_e(', '.join(s.missing_outputs))}</p>"
            )
        if s.figure is not None:
            body.append(_inline_png(s.figure))
        if s.table_md is not None:
            body.append(f"<pre>{_e(chr(10).join(_md_table_body(s.table_md)))}</pre>")
        v = s.verdicts
        if v is None:
            body.append(f"<p><em>{_e(NO_COMPARISON.get(s.target.kind, 'no comparison'))}.</em></p>")
        elif v.error:
            body.append(f"<p><strong>Comparison:</strong> {_e(v.error)}</p>")
        else:
            body.append(f"<p><strong>Verdicts:</strong> {_e(counts_line(v, tol))}.</p>")
            body += [f"<p>Row skipped: {_e(p)}</p>" for p in v.problems]
            if v.uncompared:
                body.append(f"<p>{_e(_uncompared_text(v))}</p>")
            cells = [_cell_row(c, tol) for c in v.cells]
            cls = [c.verdict(tol) for c in v.cells]
            body.append(
                "<details><summary>Every cell</summary>"
                + _html_table(CELL_HEAD, cells, cls)
                + "</details>"
            )
        body.append(f"<p>{_e(_target_gpu_line(s))}</p>")
        body.append(_html_table(RUN_HEAD, [_run_row(r) for r in s.runs]))
        body += [f"<p>{_e(p)}</p>" for r in s.runs for p in r.problems]
        if s.differences:
            items = "".join(f"<li>{_e(_difference_text(d))}</li>" for d in s.differences)
            body.append(f"<p>Known differences from the paper here:</p><ul>{items}</ul>")
    body.append("<h2>Known differences from the paper</h2><ul>")
    body += [
        f"<li><strong>{_e(d.get('id'))}</strong> ({_e(d.get('kind'))}): "
        f"{_e(_difference_text(d))}</li>"
        for d in report.differences
    ]
    body.append("</ul>")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>LongLLaDA reproduction report</title><style>{CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def write_report(
    study: Study,
    md_path: str | Path,
    html_path: str | Path,
    root: str | Path = ".",
    config_name: str = "",
) -> Report:
    report = build_report(study, root, config_name)
    write_text(md_path, to_markdown(report))
    write_text(html_path, to_html(report))
    return report
