# LongLLaDA reproduction: every table and figure of arXiv 2506.14429, from model download to PDF.
#   snakemake --profile slurm all                         everything, on a SLURM cluster
#   snakemake --cores 1 paper_figures/<target>            one figure or table
#   snakemake --configfile config/demo.yaml --cores 2     the tiny CPU demo
from snakemake.utils import min_version

min_version("9.0")


# The paper's config unless another is given (--configfile replaces it instead of merging).
if not config:

    configfile: "config/paper.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/verify.smk"
include: "workflow/rules/perplexity.smk"
include: "workflow/rules/niah.smk"
include: "workflow/rules/longbench.smk"
include: "workflow/rules/ruler.smk"
include: "workflow/rules/paper.smk"


rule all:
    default_target: True
    input:
        all_target_files(),


rule implemented:
    input:
        implemented_target_files(),
        study.all_checkpoints(),


rule checkpoints:
    input:
        study.all_checkpoints(),
