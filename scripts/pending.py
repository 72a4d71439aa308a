"""Stand-in for a stage that is not built yet: fail loudly, naming what is missing."""

from longllada import targets

rule = snakemake.rule  # noqa: F821 (injected by Snakemake)
kind = {
    "perplexity": "perplexity_curve",
    "qk_states": "tsne_qk",
    "figure_perplexity": "perplexity_curve",
    "figure_tsne": "tsne_qk",
    "figure_niah": "niah_heatmaps",
}.get(rule, "niah_heatmaps" if rule.startswith("niah") else None)
if kind is None:
    kind = "longbench_table" if "longbench" in rule else "ruler_table"
if rule == "table":
    kind = "longbench_table"
raise NotImplementedError(
    f"rule {rule} is not implemented yet: waiting for {targets.PENDING[kind]}. "
    "`snakemake implemented` builds every target whose stages exist (README, Targets)."
)
