"""Rule figure_tsne: Figure 5, t-SNE of final-layer Q/K states with and without RoPE."""

from longllada.figures import tsne_fig5
from longllada.snakejob import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    tsne_fig5.plot_target(
        snakemake.params.target,  # noqa: F821
        snakemake.params.models,  # noqa: F821
        list(snakemake.input.results),  # noqa: F821
        snakemake.output[0],  # noqa: F821
        seed=snakemake.params.seed,  # noqa: F821
    )
