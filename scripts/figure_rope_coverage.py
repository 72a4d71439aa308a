"""Rule figure_rope_coverage: Figure 4, RoPE cos/sin against relative position (analytic)."""

from longllada.figures import rope_fig4
from longllada.snakejob import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    rope_fig4.plot_target(
        snakemake.params.target,  # noqa: F821
        snakemake.params.models,  # noqa: F821
        snakemake.output[0],  # noqa: F821
    )
