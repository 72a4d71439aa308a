"""Rule niah_all_runs: one tidy CSV of every NIAH run's cells."""

from longllada.benchmarks import niah
from longllada.snakejob import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    niah.write_all_runs_csv(
        list(snakemake.input),  # noqa: F821
        dict(snakemake.params.labels),  # noqa: F821
        snakemake.output[0],  # noqa: F821
    )
