# Every target creates .venv when missing and installs the pinned stack into it: pyproject.toml
# states ranges, constraints.txt the exact known-good versions (TensorFlow as tensorflow-cpu).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
comma := ,
CONSTRAINTS := constraints.txt
EXTRAS ?= tensorflow-cpu,test,tuner,ray,results,jax,torch
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
export TF_CPP_MIN_LOG_LEVEL := 2
export RAY_AUTH_MODE := disabled

.PHONY: demo test check bench fuzz mutants install lower-bounds clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e ".[$(EXTRAS)]"
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m experiments.demo

# The whole suite on TensorFlow, then the core's end-to-end tests on JAX and PyTorch
# (tf.keras 2 config conversion is backend-free: TensorFlow's run covers it; the reliability
# suite, with its per-process determinism checks, runs on the other backends in make check).
OTHER_BACKEND_TESTS := tests/core tests/e2e --ignore=tests/core/test_legacy.py --ignore=tests/core/test_reliability.py
test: $(STAMP)
	$(PY) -m pytest
	KERAS_BACKEND=jax $(PY) -m pytest $(OTHER_BACKEND_TESTS)
	KERAS_BACKEND=torch $(PY) -m pytest $(OTHER_BACKEND_TESTS)

# Everything make test runs, then the slow checks: tests marked slow, fuzzing at
# CHECK_FUZZ_EXAMPLES (2,000: about half an hour on 2 cores; `make fuzz` runs 10,000),
# and the fault injections of make mutants.
CHECK_FUZZ_EXAMPLES ?= 2000
check: test
	$(PY) -m pytest -m slow
	KERAS_BACKEND=jax $(PY) -m pytest tests/core/test_reliability.py
	KERAS_BACKEND=torch $(PY) -m pytest tests/core/test_reliability.py
	$(MAKE) fuzz FUZZ_EXAMPLES=$(CHECK_FUZZ_EXAMPLES)
	$(MAKE) mutants

# The property test at FUZZ_EXAMPLES random architectures (make test runs 100);
# FUZZ_SEED=n explores a different stream of examples. Prints the count.
FUZZ_EXAMPLES ?= 10000
fuzz: $(STAMP)
	AUTOINIT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) AUTOINIT_FUZZ_SEED=$(FUZZ_SEED) $(PY) -m pytest tests/fuzz -s -p no:cacheprovider --hypothesis-show-statistics

# Targeted faults (tests/mutants/plugin.py), each in its own pytest run; prints
# "caught k of n" and fails if a fault survives the tests meant to catch it.
mutants: $(STAMP)
	$(PY) -m tests.mutants.run

# A fresh venv under /tmp with the lowest versions pyproject.toml allows (scripts/lower_bounds.py
# reads them) for the core and the extras in LOWER_EXTRAS, the package installed from the sources,
# and the core's, keras-tuner's, Ray's and the results' tests run against them on TensorFlow, then the
# core's on JAX. Downloads about 600 MB the first time (pip's cache keeps them). torch is left out:
# PyPI's torch wheels are CUDA builds of several GB.
LOWER_VENV ?= /tmp/autoinit_nas-lower-bounds
LOWER_PY := $(LOWER_VENV)/bin/python
LOWER_EXTRAS ?= tensorflow-cpu,jax,tuner,results,ray,test
LOWER_TESTS ?= tests/core/test_api.py tests/core/test_weights.py tests/maths tests/test_backend_error.py \
	tests/integrations/test_keras_tuner.py tests/integrations/test_ray_tune.py tests/test_results.py
lower-bounds:
	rm -rf $(LOWER_VENV)
	$(PYTHON) -m venv $(LOWER_VENV)
	$(LOWER_PY) -m pip install -q --upgrade pip
	$(LOWER_PY) scripts/lower_bounds.py $(subst $(comma), ,$(LOWER_EXTRAS)) > $(LOWER_VENV)/lower-bounds.txt
	cat $(LOWER_VENV)/lower-bounds.txt
	rm -rf build  # setuptools' scratch: stale modules there would be installed too
	$(LOWER_PY) -m pip install -q -c $(LOWER_VENV)/lower-bounds.txt ".[$(LOWER_EXTRAS)]"
	rm -rf build
	$(LOWER_PY) -m pip list
	$(LOWER_PY) -m pytest -p no:cacheprovider $(LOWER_TESTS)
	KERAS_BACKEND=jax $(LOWER_PY) -m pytest -p no:cacheprovider tests/core/test_api.py tests/core/test_weights.py

bench: $(STAMP)
	$(PY) -m experiments.benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
