"""The autoinit-nas command, run in-process through main()."""

import csv
import importlib.util
import json
from pathlib import Path

import keras
import pytest

from autoinit_nas import cli

ROOT = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data"


def small_model():
    inputs = keras.Input((12,), name="x")
    hidden = keras.layers.Dense(32, activation="relu", name="hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(16, name="head")(hidden), name="small")


def test_visualize_anchor_writes_pngs_and_csv(tmp_path, capsys):
    prefix = tmp_path / "plots" / "pmlb"
    status = cli.main(["visualize", str(DATA / "pmlb.json"), "--out", str(prefix), "--batch", "64"])
    out = capsys.readouterr().out
    assert status == 0
    for suffix in ("variance.png", "mean.png", "layers.csv"):
        path = Path(f"{prefix}_{suffix}")
        assert path.stat().st_size > 0, path
        assert f"wrote {path}" in out
    with open(f"{prefix}_layers.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 70 and rows[0]["layer"] == "input_task_00_term_00"
    assert set(rows[0]) >= {"predicted_var", "autoinit_var", "default_var", "log2_error"}
    assert "median" in out and "final layer densedec_task_00_term_00" in out
    assert "model_3_module_2407_31_6/layer_4_Dense_0" in out


@pytest.mark.parametrize("form", ["to_json", "get_config", "json_string"])
def test_visualize_reads_each_model_file_form(tmp_path, capsys, form):
    model = small_model()
    content = {
        "to_json": model.to_json(),
        "get_config": json.dumps(model.get_config()),
        "json_string": json.dumps(model.to_json()),
    }[form]
    path = tmp_path / "model.json"
    path.write_text(content, encoding="utf-8")
    assert cli.main(["visualize", str(path), "--batch", "16"]) == 0
    out = capsys.readouterr().out
    assert "small: 3 entries" in out and "hidden" in out


def test_visualize_output_directory(tmp_path, capsys):
    path = tmp_path / "model.json"
    path.write_text(small_model().to_json(), encoding="utf-8")
    out_dir = tmp_path / "viz"
    out_dir.mkdir()
    assert cli.main(["visualize", str(path), "--out", str(out_dir), "--batch", "16"]) == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["layers.csv", "mean.png", "variance.png"]


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "cannot read model file"),
        ("{not json", "is not valid JSON"),
        ('{"a": 1}', "holds no model"),
        ("[1, 2]", "holds no model"),
    ],
)
def test_visualize_bad_input_is_one_line_and_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "model.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert cli.main(["visualize", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("autoinit-nas visualize: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_visualize_refuses_lambda_unless_unsafe(tmp_path, capsys):
    inputs = keras.Input((4,), name="x")
    outputs = keras.layers.Dense(4)(keras.layers.Lambda(lambda t: t * 2.0)(inputs))
    path = tmp_path / "lambda.json"
    path.write_text(keras.Model(inputs, outputs).to_json(), encoding="utf-8")
    assert cli.main(["visualize", str(path), "--batch", "8"]) == 2
    err = capsys.readouterr().err
    assert "cannot visualize" in err and err.count("\n") == 1
    assert cli.main(["visualize", str(path), "--batch", "8", "--unsafe"]) == 0


def test_layers_markdown_and_text(capsys):
    assert cli.main(["layers", "--markdown"]) == 0
    markdown = capsys.readouterr().out
    assert "| layers | estimator | method (scalar) | probe | summary |" in markdown
    assert "| Dense | `DenseEstimator` |" in markdown
    assert "runs it; rescales `kernel` to the measured variance" in markdown
    assert "| keras.ops | estimator | method (scalar) | summary |" in markdown
    assert "`matmul`" in markdown
    assert cli.main(["layers"]) == 0
    text = capsys.readouterr().out
    assert "DenseEstimator" in text and "Conv1D/2D/3D" in text
    assert "probe:   cells run in numpy" in text


def test_supported_layers_rows_come_from_the_registry():
    from autoinit_nas.estimators.registry import builtin_estimators

    layer_rows, op_rows = cli.supported_layers()
    estimators = {row["estimator"] for row in layer_rows + op_rows}
    assert estimators == {cls.__name__ for cls in builtin_estimators().values()}
    assert all(row["method"] and row["summary"] for row in layer_rows + op_rows)


@pytest.mark.parametrize("argv", [["--help"], ["visualize", "--help"], ["layers", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: autoinit-nas")
    if argv[0] == "visualize":
        assert "--unsafe" in out and "--out PREFIX" in out


def test_unknown_command_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["nope"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_registered_commands_join_the_parser(monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMANDS", list(cli.COMMANDS))
    seen = {}

    def add_arguments(parser):
        parser.add_argument("--trials", type=int, default=1)

    def run(args):
        seen["trials"] = args.trials
        return 3

    cli.register_command(cli.Command("sweep", "Run a sweep.", add_arguments, run))
    assert cli.main(["sweep", "--trials", "5"]) == 3 and seen == {"trials": 5}
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "sweep" in capsys.readouterr().out


def test_readme_supported_layers_table_is_up_to_date():
    path = ROOT / "scripts" / "supported_layers.py"
    spec = importlib.util.spec_from_file_location("supported_layers", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--check", str(ROOT / "README.md")]) == 0, (
        "README.md's supported-layers table is stale: run "
        "`python scripts/supported_layers.py --write README.md`"
    )


def test_replace_marked_block_requires_markers():
    text = "a\n<!-- supported-layers:start -->\nold\n<!-- supported-layers:end -->\nb\n"
    assert cli.replace_marked_block(text, "new") == (
        "a\n<!-- supported-layers:start -->\nnew\n<!-- supported-layers:end -->\nb\n"
    )
    with pytest.raises(ValueError, match="Received: 0 start and 0 end markers"):
        cli.replace_marked_block("no markers", "new")
