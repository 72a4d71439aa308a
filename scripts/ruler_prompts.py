"""Rule ruler_prompts: one (length, task) of RULER's prompts, by OpenCompass (its own environment).

As niah_prompts.py: the OpenCompass-side modules come from src/, and the settings are read from
params.depends_on, the record of exactly what the prompts depend on.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from longllada import opencompass_env  # noqa: E402
from longllada.benchmarks import ruler  # noqa: E402
from longllada.snakejob import logged  # noqa: E402

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    spec = json.loads(snakemake.params.depends_on)  # noqa: F821
    # The time limit changes no prompt: read from the config, not fingerprinted.
    timeout = ruler.prompt_timeout_s(snakemake.config["benchmarks"]["ruler"])  # noqa: F821
    ruler.make_prompts(
        snakemake.input.data,  # noqa: F821
        snakemake.wildcards.context,  # noqa: F821
        int(spec["unit"]["tokens"]),
        snakemake.wildcards.task,  # noqa: F821
        spec["settings"] | {"prompt_timeout_s": timeout},
        snakemake.output.prompts,  # noqa: F821
        snakemake.output.meta,  # noqa: F821
        opencompass_env.prepare(opencompass_env.interpreter()),
    )
