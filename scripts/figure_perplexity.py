"""Rule figure_perplexity: Figure 1a from the runs' perplexity curves."""

from longllada.figures import perplexity_fig1a
from longllada.snakejob import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    perplexity_fig1a.plot_target(
        snakemake.params.target,  # noqa: F821
        snakemake.params.models,  # noqa: F821
        list(snakemake.input.results),  # noqa: F821
        snakemake.output.pdf,  # noqa: F821
        snakemake.output.comparison,  # noqa: F821
    )
