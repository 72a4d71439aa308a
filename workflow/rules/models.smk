# Checkpoints: hub download (or a local / tiny demo checkpoint), then RoPE-patched views of it.

from longllada.checkpoints import patch_input, patch_scaling


rule demo_checkpoint:
    output:
        directory("results/demo_hub/{model}"),
    log:
        "logs/demo_checkpoint/{model}.log",
    localrule: True
    conda:
        "../../envs/longllada.yaml"
    params:
        model=lambda w: study.models[w.model],
        depends_on=depends_on("demo_checkpoint"),
    script:
        "../../scripts/demo_checkpoint.py"


# Downloads run where there is internet (the submit host), never on a compute node.
rule download:
    input:
        download_input,
    output:
        manifest=f"{CKPT}/{{model}}/download.json",
        provenance=f"{CKPT}/{{model}}/download.provenance.json",
    log:
        "logs/download/{model}.log",
    localrule: True
    conda:
        "../../envs/longllada.yaml"
    params:
        model=lambda w: study.models[w.model],
        snapshot_dir=lambda w, input: (input[0] if input else f"{CKPT}/{w.model}/hub"),
        depends_on=depends_on("download"),
    script:
        "../../scripts/download.py"


# The input function checks λ first: one that no run of the config uses is named, with the
# λ values the config has for that model.
rule rope_patch:
    input:
        lambda w: patch_input(study, w.model, w.ntk),
    output:
        record=f"{CKPT}/{{model}}/ntk{{ntk}}/rope_patch.json",
        provenance=f"{CKPT}/{{model}}/ntk{{ntk}}/rope_patch.provenance.json",
    log:
        "logs/rope_patch/{model}_ntk{ntk}.log",
    localrule: True
    conda:
        "../../envs/longllada.yaml"
    params:
        scaling=lambda w: patch_scaling(study, w.model, w.ntk),
        depends_on=depends_on("rope_patch"),
    script:
        "../../scripts/rope_patch.py"
