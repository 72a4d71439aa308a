"""Rule table_ruler: Table 2 or 4 (RULER) from its runs' scores, with the published numbers."""

from longllada.snakejob import logged
from longllada.tables import ruler_table

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    ruler_table.write_target(
        snakemake.params.target,  # noqa: F821
        snakemake.params.labels,  # noqa: F821
        snakemake.input.results,  # noqa: F821
        snakemake.input.published,  # noqa: F821
        snakemake.params.contexts,  # noqa: F821
        csv=snakemake.output.csv,  # noqa: F821
        md=snakemake.output.md,  # noqa: F821
        tex=snakemake.output.tex,  # noqa: F821
        comparison=snakemake.output.comparison,  # noqa: F821
        tasks_csv=snakemake.output.tasks,  # noqa: F821
    )
