"""`longllada` command line: the λ table, config checks and the cost table."""

from __future__ import annotations

from pathlib import Path

from longllada.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_paper_lambda_table(capsys) -> None:
    assert main(["ntk", "--paper-table"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    paper = [(r[0], int(r[5]), int(r[8])) for r in rows if r[1] == "paper"]
    assert paper == [
        ("LLaDA-8B", 8192, 4),
        ("LLaDA-8B", 16384, 14),
        ("LLaDA-8B", 24576, 31),
        ("LLaDA-8B", 32768, 55),
        ("LLaMA3-8B", 16384, 4),
        ("LLaMA3-8B", 32768, 13),
        ("Dream-v0-7B", 4096, 5),
    ]


def test_ntk_for_given_lengths(capsys) -> None:
    args = ["ntk", "--base", "500000", "--head-dim", "128", "--t-train", "4096"]
    assert main([*args, "--t-target", "16384"]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row[6:9] == ["64", "13.60", "14"]
    assert main(args) == 2  # no target length


def test_validate_and_budget(capsys) -> None:
    assert main(["validate", str(ROOT / "config/paper.yaml")]) == 0
    out = capsys.readouterr().out
    assert "66 distinct runs" in out and "+ 15 runs of the extensions only" in out
    assert main(["budget", str(ROOT / "config/paper.yaml")]) == 0
    assert "figure4_rope_position_coverage" in capsys.readouterr().out


def test_bad_config_exit_code(tmp_path: Path, capsys) -> None:
    (tmp_path / "c.yaml").write_text("seed: x\n")
    assert main(["validate", str(tmp_path / "c.yaml")]) == 1
    assert "seed: 'x' is not of type 'integer'" in capsys.readouterr().err


def test_duplicate_key_stops_every_config_command(tmp_path: Path, capsys) -> None:
    text = (ROOT / "config/demo.yaml").read_text()
    path = tmp_path / "dup.yaml"
    path.write_text(text.replace("seed: 2025\n", "seed: 2025\nseed: 2026\n", 1))
    for command in ("validate", "runs", "budget"):
        assert main([command, str(path)]) == 1
        err = capsys.readouterr().err
        message = f"{path}:6:1: duplicate key 'seed' at the top level (first at line 5)"
        assert err == f"longllada {command}: {message}\n", err


def test_nan_lambda_exit_code(tmp_path: Path, capsys) -> None:
    text = (ROOT / "config/demo.yaml").read_text()
    path = tmp_path / "nan.yaml"
    path.write_text(text.replace("ntk: [1, {target: 2048}]", "ntk: [1, .nan]", 1))
    assert main(["validate", str(path)]) == 1
    assert "targets.table2_ruler.runs[0].ntk[1]: λ nan" in capsys.readouterr().err


def test_validate_names_a_missing_published_file_or_document(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    """A `published:` CSV or the `data.ppl_document` that does not exist: validate fails naming
    the key and the path (on a built tree the run would otherwise keep the old table/figure)."""
    monkeypatch.chdir(ROOT)
    text = (ROOT / "config/demo.yaml").read_text()
    for old, new, key in (
        (
            "published: config/published/figure1a_perplexity.csv",
            "published: config/published/figure1a_gone.csv",
            "targets.figure1a_perplexity.published: config/published/figure1a_gone.csv",
        ),
        (
            "ppl_document: src/longllada/data/demo_document.jsonl",
            "ppl_document: resources/data/ppl/gone.txt",
            "data.ppl_document: resources/data/ppl/gone.txt",
        ),
    ):
        assert old in text
        path = tmp_path / "c.yaml"
        path.write_text(text.replace(old, new, 1))
        assert main(["validate", str(path)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"longllada validate: {path}:\n  {key} does not exist"), err
        assert f"relative paths are read from the working directory {ROOT}" in err
    path.write_text(text)
    assert main(["validate", str(path)]) == 0
