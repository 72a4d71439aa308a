# LongLLaDA reproduction: every table and figure of arXiv 2506.14429, from model download to PDF.
#   snakemake --profile slurm all                         everything, on a SLURM cluster
#   snakemake --cores 1 paper_figures/<target>            one figure or table
#   snakemake --configfile config/demo.yaml --cores 2     the tiny CPU demo
from pathlib import Path

from snakemake.logging import logger
from snakemake.utils import min_version, update_config

from longllada.invocation import InvocationError, check_command_line, paths_not_here
from longllada.yaml_config import ConfigError, load_config

min_version("9.0")


# First, two mistakes of the command line, each stopped with what to type instead: a target
# eaten by --configfile (which takes every following word as a file), and no --configfile
# outside the repository root (the default config is read from the working directory).
try:
    check_command_line(Path.cwd(), workflow.basedir, workflow.overwrite_configfiles)
except InvocationError as _error:
    raise InvocationError(str(_error)) from None


# Snakemake has already read the --configfile files, with a loader that lets a duplicated key
# silently replace the first: read each again strictly, so a duplicate stops the run naming
# file, line and column. Without --configfile: the paper's config (--configfile replaces it,
# no merging), read strictly as well, with any --config values on top (as `configfile:` does).
# Re-raised here so the message shows no traceback.
try:
    for _configfile in workflow.overwrite_configfiles:
        load_config(_configfile)
    if not workflow.overwrite_configfiles:
        config.update(load_config("config/paper.yaml"))
        update_config(config, workflow.config_settings.overwrite_config)
        workflow.configfiles.append("config/paper.yaml")
except ConfigError as _error:
    raise ConfigError(str(_error)) from None

# A config's relative paths are read from the working directory: outside the repository
# root, those found only in the repository are named (a warning: a copy elsewhere is fine).
_elsewhere = paths_not_here(Path.cwd(), workflow.basedir, config)
if _elsewhere:
    logger.warning(_elsewhere)


include: "workflow/rules/common.smk"


# Every file the config names must be there before anything runs: Snakemake would keep a table
# whose published CSV vanished, a figure whose document did. Fetched or generated data edited
# after its data check stops here too (longllada.inputs). Outside the repository root, paths
# found only in the repository are left to the warning above. Checked by the main process only:
# a job it starts (on a cluster node) re-reads this file while the data checks may be writing.
if workflow.is_main_process:
    _problems = study.input_problems(Path.cwd(), workflow.basedir)
    if _problems:
        raise ConfigError("\n".join(_problems))


include: "workflow/rules/models.smk"
include: "workflow/rules/verify.smk"
include: "workflow/rules/perplexity.smk"
include: "workflow/rules/niah.smk"
include: "workflow/rules/longbench.smk"
include: "workflow/rules/ruler.smk"
include: "workflow/rules/paper.smk"
include: "workflow/rules/report.smk"


report: "workflow/report/workflow.rst"


rule all:
    default_target: True
    input:
        all_target_files(),
        study.run_tables(),
        rules.reproduction_report.output,


rule report:
    input:
        rules.reproduction_report.output,


rule implemented:
    input:
        implemented_target_files(),
        study.run_tables(),
        study.all_checkpoints(),
        rules.reproduction_report.output,


rule extensions:
    input:
        extension_target_files(),


rule checkpoints:
    input:
        study.all_checkpoints(),
