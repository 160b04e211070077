"""The README's Performance tables are the benchmark CSVs committed under docs/benchmarks.

``experiments.benchmark_tables`` renders each table (header, separator, rows)
from its CSVs; the README must hold it as one block, exactly, with no other
table row right before or after it.
"""

from pathlib import Path

import pytest

from experiments import benchmark_tables

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("title", list(benchmark_tables.HEADERS))
def test_the_readme_table_is_the_committed_csv(title):
    table = benchmark_tables.tables()[title]
    assert len(table) > 2, f"{title}: no rows in the committed CSV"
    lines = README.read_text().splitlines()
    starts = [index for index, line in enumerate(lines) if line == table[0] and lines[index + 1:index + 2] == [table[1]]
              and lines[index + 2:index + 3] == [table[2]]]
    assert len(starts) == 1, f"{title}: expected one README table starting with {table[0]!r} and row {table[2]!r}"
    start = starts[0]
    block = lines[start:start + len(table)]
    differing = [(want, have) for want, have in zip(table, block) if want != have]
    assert not differing and len(block) == len(table), (
        f"{title}: README rows differ from the CSV's (expected, README): {differing[:3]}")
    before = lines[start - 1] if start else ""
    after = lines[start + len(table)] if start + len(table) < len(lines) else ""
    assert not before.startswith("|") and not after.startswith("|"), (
        f"{title}: the README table has rows the CSV lacks: {before!r} / {after!r}")
