"""Rule reproduction_report: paper_figures/reproduction_report.{md,html}."""

from longllada.config import Study
from longllada.reproduction.report import write_report
from longllada.snakejob import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    report = write_report(
        Study(snakemake.config),  # noqa: F821
        snakemake.output.md,  # noqa: F821
        snakemake.output.html,  # noqa: F821
        config_name=snakemake.params.config_name,  # noqa: F821
    )
    print(f"{len(report.sections)} targets reported")
