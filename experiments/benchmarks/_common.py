"""What the benchmarks share: the machine line, timing and memory, tables, CSV/Markdown output, fresh processes.

Not a benchmark itself (the leading underscore keeps the runner from
collecting it).
"""

import csv
import math
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_OUT = Path("out") / "benchmarks"

# Keras maps a Functional graph recursively (about four frames per layer):
# a 1,000-layer chain needs more than Python's default 1,000 frames.
RECURSION_LIMIT = 20000


def raise_recursion_limit():
    if sys.getrecursionlimit() < RECURSION_LIMIT:
        sys.setrecursionlimit(RECURSION_LIMIT)


def package_version(package):
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info():
    """Lines describing the machine, its load and the software versions."""
    tensorflow = package_version("tensorflow")
    if tensorflow == "not installed":
        tensorflow = package_version("tensorflow-cpu")
    lines = [
        f"machine: {platform.platform()} ({platform.machine()}), {os.cpu_count()} CPUs",
        f"python {platform.python_version()}, keras {package_version('keras')}, "
        f"tensorflow {tensorflow}, numpy {package_version('numpy')}, "
        f"backend {os.environ.get('KERAS_BACKEND', 'tensorflow')}",
    ]
    try:
        load = os.getloadavg()
        lines.append(
            f"load average at start {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min): "
            "timings are wall-clock and shared with whatever else runs"
        )
    except (AttributeError, OSError):
        pass
    return lines


def start_run(out, lines):
    """Create ``out`` and print the machine lines, then ``lines``; returns them all (a report's header)."""
    Path(out).mkdir(parents=True, exist_ok=True)
    header = machine_info() + list(lines)
    for text in header:
        print(text, flush=True)
    return header


def peak_rss_mb():
    """Peak resident set size of this process so far, in MB."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def timed_result(function, *args, **kwargs):
    """(result, seconds) of one call."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def timed(function, *args, **kwargs):
    """Seconds one call takes."""
    return timed_result(function, *args, **kwargs)[1]


def _status_mb(field):
    """A memory field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in MB; nan where absent."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return math.nan


def peak_growth_mb(function):
    """Peak RSS growth (MB) while ``function()`` runs, from the RSS just before it (Linux).

    The kernel's high-water mark (``VmHWM``) is reset to the current RSS
    through ``/proc/self/clear_refs`` first, so earlier peaks never hide it.
    """
    import gc

    gc.collect()
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    before = _status_mb("VmRSS")
    function()
    return _status_mb("VmHWM") - before


def spawned_pool():
    """A one-worker pool in a fresh (spawned) process."""
    return ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"))


def run_spawned(function, *args, **kwargs):
    """``function(*args, **kwargs)`` in a fresh process; returns its result."""
    with spawned_pool() as pool:
        return pool.submit(function, *args, **kwargs).result()


ANCHOR_DIRECTORY = Path(__file__).resolve().parents[2] / "tests" / "data"


def anchor_builder(name):
    """A builder for one of the NAS-generated tf.keras 2 anchor models (fixed size: its argument is ignored)."""

    def build(_size=None):
        import json
        import warnings

        from autoinit_nas.core.loading import load_model

        document = json.loads((ANCHOR_DIRECTORY / f"{name}.json").read_text())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # arguments Keras 3 dropped from the tf.keras 2 config
            return load_model(document["interpretation"]["model"])

    build.__doc__ = f"The '{name}' anchor model (tests/data/{name}.json), built from its tf.keras 2 JSON."
    return build


def selected_names(parser, items, choices, what="model"):
    """Names from space- or comma-separated ``items``, deduplicated in order; a parser error names unknown ones."""
    names = []
    for item in items:
        names += [name.strip() for name in item.split(",") if name.strip()]
    unknown = [name for name in names if name not in choices]
    if unknown:
        parser.error(f"unknown {what}(s) {unknown}; choose from {list(choices)}")
    return list(dict.fromkeys(names))


def add_models_argument(parser, choices, what="models"):
    """``--models``: a subset of ``choices``, space- or comma-separated (``selected_names`` reads it)."""
    parser.add_argument(
        "--models", nargs="+", default=None, metavar="MODEL",
        help=f"{what} to run (space- or comma-separated), from {', '.join(choices)}; default all",
    )


def tiny_or_default(parser, value, option, tiny, defaults, minimum):
    """``value``, or ``defaults`` (tiny, full) by ``tiny`` when not given; a parser error below ``minimum``."""
    if value is None:
        value = defaults[0] if tiny else defaults[1]
    if value < minimum:
        parser.error(f"--{option} must be at least {minimum}")
    return value


def add_propagation_argument(parser):
    """``--propagation probe|scalar``: which AutoInit propagation a benchmark times."""
    parser.add_argument("--propagation", choices=("probe", "scalar"), default="probe",
                        help="AutoInit's propagation (default probe, AutoInit's default)")


def profile_calls(call, repeats, path, title):
    """cProfile ``repeats`` calls of ``call()``; writes the report (cumulative, then own time) and returns it."""
    import cProfile
    import io
    import pstats
    import warnings

    profiler = cProfile.Profile()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        profiler.enable()
        for _ in range(repeats):
            call()
        profiler.disable()
    stream = io.StringIO()
    stream.write(title + "\n")
    stats = pstats.Stats(profiler, stream=stream).strip_dirs()
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(25)
    text = stream.getvalue()
    Path(path).write_text(text)
    return text


def loglog_slope(xs, ys):
    """Least-squares slope of log(y) against log(x) (nan with fewer than 2 usable points)."""
    points = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y > 0]
    if len(points) < 2:
        return math.nan
    mean_x = sum(p[0] for p in points) / len(points)
    mean_y = sum(p[1] for p in points) / len(points)
    sxx = sum((p[0] - mean_x) ** 2 for p in points)
    if sxx == 0:
        return math.nan
    return sum((p[0] - mean_x) * (p[1] - mean_y) for p in points) / sxx


class Table:
    """Columns, headers and formatting of one result table.

    Args:
        columns: the CSV field names, in order.
        headers: {column: header text}; defaults to the column name.
        formats: {column: callable(value) -> str}; default ``str``.
        text_columns: left-aligned columns (the rest are right-aligned).
    """

    def __init__(self, columns, headers=None, formats=None, text_columns=()):
        self.columns = tuple(columns)
        self.headers = {c: (headers or {}).get(c, c) for c in self.columns}
        self.formats = dict(formats or {})
        self.text_columns = set(text_columns)

    def cell(self, column, value):
        if value is None:
            return ""
        if isinstance(value, float) and math.isnan(value):
            return "nan"
        return self.formats.get(column, str)(value)

    def text(self, rows):
        """Fixed-width text table."""
        cells = [[self.headers[c] for c in self.columns]]
        cells += [[self.cell(c, row.get(c)) for c in self.columns] for row in rows]
        widths = [max(len(line[i]) for line in cells) for i in range(len(self.columns))]

        def line(values):
            return "  ".join(
                value.ljust(width) if column in self.text_columns else value.rjust(width)
                for column, value, width in zip(self.columns, values, widths)
            ).rstrip()

        rule = "  ".join("-" * width for width in widths)
        return "\n".join([line(cells[0]), rule] + [line(values) for values in cells[1:]])

    def markdown(self, rows):
        """A GitHub Markdown table."""
        lines = [
            "| " + " | ".join(self.headers[c] for c in self.columns) + " |",
            "|" + "|".join("---" if c in self.text_columns else "---:" for c in self.columns) + "|",
        ]
        for row in rows:
            cells = [self.cell(c, row.get(c)).replace("|", "\\|") for c in self.columns]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def write_csv(self, rows, path):
        """Raw values (not the formatted cells), one row per dict."""
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(self.columns), extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({c: _csv_value(row.get(c)) for c in self.columns})


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return value


def markdown_document(title, header_lines, sections):
    """A Markdown page: a title, a bullet list, then (heading or None, body) sections."""
    lines = [f"# {title}", ""]
    lines += [f"- {text}" for text in header_lines]
    for heading, body in sections:
        lines.append("")
        if heading:
            lines += [f"## {heading}", ""]
        lines.append(body.rstrip())
    return "\n".join(lines) + "\n"


def seconds(value):
    return f"{value:.4f}"


def fixed(digits):
    return lambda value: f"{value:.{digits}f}"


def general(digits=3):
    return lambda value: f"{value:.{digits}g}"


def thousands(value):
    return f"{int(value):,}"
