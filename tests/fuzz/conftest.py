"""Fuzz tests: quiet Hypothesis's note on Keras's use of `random`, and report the counts.

Keras draws default seeds from Python's `random` while a drawn model is
built; Hypothesis warns about that, but it does not change which model is
drawn. At the end of a session that ran the property test, the counts
(examples, layers, probe runs, overflow and contradicted-shape fallbacks, graphs Keras refused)
are printed, so ``make fuzz`` shows what it covered.
"""

import time


def pytest_configure(config):
    config.addinivalue_line(
        "filterwarnings",
        "ignore:Do not use the `random` module:hypothesis.errors.HypothesisDeprecationWarning",
    )


def pytest_terminal_summary(terminalreporter):
    from tests.fuzz.strategies import REJECTED
    from tests.fuzz.test_fuzz import COUNT

    if COUNT["started"] is None:
        return
    seconds = time.perf_counter() - COUNT["started"]
    write = terminalreporter.write_line
    write(
        f"fuzz: {COUNT['examples']} architectures ({COUNT['layers']} top-level layers) initialized "
        f"in {seconds:.0f} s; probe ran on {COUNT['probe']}, {COUNT['overflow']} fell back to "
        f"scalar on overflow, {COUNT['contradicted']} on a layer that runs with another shape than it "
        f"declares; {sum(REJECTED.values())} drawn graphs Keras could not build or run"
    )
    for reason, count in sorted(REJECTED.items(), key=lambda item: -item[1]):
        write(f"  {count} x {reason}")
