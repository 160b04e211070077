"""The README's Performance tables, rendered from the benchmark CSVs committed under docs/benchmarks.

``python -m experiments.benchmark_tables`` prints them (header, separator,
rows); ``tests/test_benchmark_tables.py`` checks that the README holds each as
one block, exactly as printed. The CSVs are what ``init_speed`` (both
propagations), ``real_models`` (96x96, and 224x224 with the probe) and
``fidelity`` wrote; the commands are in the README.

Example:
    >>> lines = tables()["fidelity"]
    >>> lines[2].startswith("| mlp_relu_d10 |")
    True
"""

import csv
import sys
from pathlib import Path

TABLES = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"

INIT_SPEED_NAMES = {
    "mlp": "50 × Dense(256) MLP", "mlp200": "200 × Dense(64) MLP", "cnn": "CNN, 18 MaxPooling2D 3×3",
    "gru": "3 × GRU(64), 100 steps", "resnet": "ResNet-style, 16 blocks", "transformer": "Transformer, 6 blocks",
    "anchor_mnist": "anchor mnist (NAS, tf.keras 2 JSON)", "anchor_pmlb": "anchor pmlb",
    "anchor_toxicity": "anchor toxicity",
}
REAL_MODEL_NAMES = {
    "resnet50": "ResNet50", "mobilenetv2": "MobileNetV2", "efficientnetb0": "EfficientNetB0",
    "densenet121": "DenseNet121", "convnexttiny": "ConvNeXtTiny", "vgg16": "VGG16",
    "nasnetmobile": "NASNetMobile", "text_transformer": "keras-io text transformer",
    "timeseries_transformer": "keras-io time-series transformer",
}


def _read(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _fixed(value, digits=2):
    return "–" if value in ("", None) else f"{float(value):.{digits}f}"


def _general(value):
    """Three significant digits, or two in scientific notation below 0.01 and from 1,000 (Python's exponent style)."""
    if value in ("", None):
        return "–"
    number = float(value)
    if number != 0 and (abs(number) < 0.01 or abs(number) >= 1000):
        return f"{number:.1e}"
    return f"{number:.3g}"


def _row(cells):
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def init_speed_rows(probe_csv, scalar_csv):
    """``init_speed`` under both propagations, one row per model (build time from the probe run)."""
    scalar = {row["model"]: row for row in _read(scalar_csv)}
    rows = []
    for row in _read(probe_csv):
        other = scalar[row["model"]]
        rows.append(_row([
            INIT_SPEED_NAMES.get(row["model"], row["model"]), row["layers"], f"{int(row['parameters']):,}",
            _fixed(row["build_s"], 3), _fixed(row["autoinit_first_s"], 3), _fixed(row["autoinit_steady_s"], 3),
            _fixed(row["steady_over_build"]), _fixed(row["rss_growth_mb"], 1),
            _fixed(other["autoinit_steady_s"], 3), _fixed(other["steady_over_build"]),
            _fixed(other["rss_growth_mb"], 1),
        ]))
    return rows


def real_models_rows(path):
    """``real_models``: every mode of every model (the model named on its first row)."""
    rows, previous = [], None
    for row in _read(path):
        name = REAL_MODEL_NAMES.get(row["model"], row["model"]) if row["model"] != previous else ""
        previous = row["model"]
        rows.append(_row([
            name, row["mode"], _fixed(row["init_s"]), _fixed(row["init_per_build"]), _fixed(row["step_s"]),
            _fixed(row["init_per_step"]), _fixed(row["init_mb"], 0), _fixed(row["forward_mb"], 0),
            _general(row["var32"]), _general(row["var128"]), _fixed(row["median_log2"], 3),
            row["beyond_2x"] or "–",
        ]))
    return rows


def probe_rows(path):
    """``real_models``' probe rows alone (the 224x224 run)."""
    return [
        _row([
            REAL_MODEL_NAMES.get(row["model"], row["model"]), _fixed(row["init_s"]), _fixed(row["step_s"]),
            _fixed(row["init_per_step"]), _fixed(row["init_per_build"]), _fixed(row["init_mb"], 0),
            _fixed(row["forward_mb"], 0), _general(row["var32"]), _fixed(row["median_log2"], 3),
            row["beyond_2x"] or "–",
        ])
        for row in _read(path) if row["mode"] == "probe"
    ]


def fidelity_rows(path):
    """``fidelity``: per model, median / max error and final variance under each initialization."""
    rows = []
    for row in _read(path):
        cells = [row["model"], row["layers"]]
        for mode in ("scalar", "probe", "default"):
            cells += [f"{_fixed(row[mode + '_median'])} / {_fixed(row[mode + '_max'])}",
                      _general(row[mode + "_final"])]
        rows.append(_row(cells))
    return rows


HEADERS = {
    "init_speed (probe and scalar)": (
        "| model | layers | parameters | build s | probe first s | probe steady s | probe steady/build "
        "| probe RSS MB | scalar steady s | scalar steady/build | scalar RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"),
    "real_models at 96x96": (
        "| model | init | init s | init / build | step s | init / step | init MB | fwd MB | var @32 "
        "| var @128 | median err | layers > 2× |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"),
    "real_models at 224x224 (probe)": (
        "| model | init s | step s | init / step | init / build | init MB | fwd MB | var @32 | median err "
        "| layers > 2× |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"),
    "fidelity": (
        "| model | layers | scalar median / max | scalar final var | probe median / max | probe final var "
        "| default median / max | default final var |",
        "|---|---:|---:|---:|---:|---:|---:|---:|"),
}


def tables(directory=TABLES):
    """{title: lines} of every README table the committed CSVs give: header, separator, rows."""
    directory = Path(directory)
    rows = {
        "init_speed (probe and scalar)": lambda: init_speed_rows(directory / "init_speed_probe.csv",
                                                                 directory / "init_speed_scalar.csv"),
        "real_models at 96x96": lambda: real_models_rows(directory / "real_models_96.csv"),
        "real_models at 224x224 (probe)": lambda: probe_rows(directory / "real_models_224.csv"),
        "fidelity": lambda: fidelity_rows(directory / "fidelity.csv"),
    }
    return {title: list(HEADERS[title]) + render() for title, render in rows.items()}


def main(argv=None):
    """Print every table's rows. Returns 0."""
    argv = sys.argv[1:] if argv is None else argv
    for title, rows in tables(argv[0] if argv else TABLES).items():
        print(f"{title}:")
        print("\n".join(rows))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
