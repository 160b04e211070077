# Every target creates .venv when missing and installs the pinned stack into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
comma := ,
EXTRAS ?= test
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
export TF_CPP_MIN_LOG_LEVEL := 2
export RAY_AUTH_MODE := disabled

.PHONY: demo test bench install clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m experiments.demo

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m experiments.benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
