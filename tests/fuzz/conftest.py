"""Fuzz tests: Keras draws default seeds from Python's `random` while a drawn
model is built; Hypothesis warns about that, but it does not change which
model is drawn."""


def pytest_configure(config):
    config.addinivalue_line(
        "filterwarnings",
        "ignore:Do not use the `random` module:hypothesis.errors.HypothesisDeprecationWarning",
    )
