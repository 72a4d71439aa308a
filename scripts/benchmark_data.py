"""Rules *_data: fetch, generate or check a benchmark's data files; write their manifest."""

from longllada import data_sources
from longllada.snakejob import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    data_sources.prepare(
        snakemake.params.benchmark,  # noqa: F821
        snakemake.params.source,  # noqa: F821
        data_sources.files_of(
            snakemake.params.benchmark,  # noqa: F821
            snakemake.config["benchmarks"].get(snakemake.params.benchmark),  # noqa: F821
        ),
        snakemake.output.manifest,  # noqa: F821
    )
