# Checkpoints: hub download (or a local / tiny demo checkpoint), then RoPE-patched views of it.


rule demo_checkpoint:
    output:
        directory("results/demo_hub/{model}"),
    log:
        "logs/demo_checkpoint/{model}.log",
    params:
        model=lambda w: study.models[w.model],
    localrule: True
    script:
        "../../scripts/demo_checkpoint.py"


def download_input(w):
    model = study.models[w.model]
    return [f"results/demo_hub/{w.model}"] if model.source == "demo" else []


# Downloads run where there is internet (the submit host), never on a compute node.
rule download:
    input:
        download_input,
    output:
        f"{CKPT}/{{model}}/download.json",
    log:
        "logs/download/{model}.log",
    params:
        model=lambda w: study.models[w.model],
        snapshot_dir=lambda w, input: (
            input[0] if input else f"{CKPT}/{w.model}/hub"
        ),
    localrule: True
    script:
        "../../scripts/download.py"


rule rope_patch:
    input:
        f"{CKPT}/{{model}}/download.json",
    output:
        f"{CKPT}/{{model}}/ntk{{ntk}}/rope_patch.json",
    log:
        "logs/rope_patch/{model}_ntk{ntk}.log",
    params:
        scaling=lambda w: study.patches[(w.model, float(w.ntk))],
    localrule: True
    script:
        "../../scripts/rope_patch.py"
