"""Rule figure_niah: a NIAH figure (heatmaps, or Figure 1b's lines) and its two CSVs."""

from longllada.figures import niah_figs
from longllada.snakejob import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    niah_figs.plot_target(
        snakemake.params.target,  # noqa: F821
        dict(snakemake.params.labels),  # noqa: F821
        list(snakemake.input.results),  # noqa: F821
        snakemake.output.pdf,  # noqa: F821
        snakemake.output.csv,  # noqa: F821
        snakemake.output.comparison,  # noqa: F821
    )
