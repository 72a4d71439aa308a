"""Rule table_longbench: Table 1 or 3 (LongBench) from its runs' scores, with the published
numbers."""

from longllada.snakejob import logged
from longllada.tables import longbench_table

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    longbench_table.write_target(
        snakemake.params.target,  # noqa: F821
        snakemake.params.labels,  # noqa: F821
        snakemake.input.results,  # noqa: F821
        snakemake.input.published,  # noqa: F821
        snakemake.params.contexts,  # noqa: F821
        csv=snakemake.output.csv,  # noqa: F821
        md=snakemake.output.md,  # noqa: F821
        tex=snakemake.output.tex,  # noqa: F821
        comparison=snakemake.output.comparison,  # noqa: F821
        subsets_csv=snakemake.output.subsets,  # noqa: F821
    )
