"""Rule niah_prompts: one length's NeedleBench prompts, by OpenCompass (its own environment).

With conda this runs in envs/opencompass.yaml, which does not install this repository's
package: its OpenCompass-side modules (standard library only) are imported from src/. The
settings are read from params.depends_on, the record of exactly what the prompts depend on.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from longllada import opencompass_env  # noqa: E402
from longllada.benchmarks import niah  # noqa: E402
from longllada.snakejob import logged  # noqa: E402

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    spec = json.loads(snakemake.params.depends_on)  # noqa: F821
    niah.make_prompts(
        snakemake.input.data,  # noqa: F821
        int(snakemake.wildcards.length),  # noqa: F821
        spec["settings"],
        snakemake.output.prompts,  # noqa: F821
        snakemake.output.meta,  # noqa: F821
        opencompass_env.prepare(opencompass_env.interpreter()),
    )
