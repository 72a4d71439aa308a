# The reproduction report: every published number beside ours, the runs' provenance and GPU
# time, the known differences from the paper (longllada.reproduction). Snakemake's own report
# (`snakemake --report report.zip`) shows the figures and tables wrapped in report(...).


rule reproduction_report:
    input:
        outputs=all_target_files(),
        results=report_result_files(),
    output:
        md="paper_figures/reproduction_report.md",
        html=report(
            "paper_figures/reproduction_report.html",
            caption="../report/reproduction_report.rst",
            category="Reproduction report",
        ),
    log:
        "logs/paper/reproduction_report.log",
    localrule: True
    conda:
        "../../envs/longllada.yaml"
    params:
        tolerances=lambda w: dataclasses.asdict(Tolerances.from_config(config)),
        config_name=lambda w: ", ".join(
            os.path.relpath(f) for f in workflow.configfiles
        ),
    script:
        "../../scripts/reproduction_report.py"
