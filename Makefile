# make run   set-up, then the gateway with the router in front of real local backends
# make test  set-up, then every test
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# LiteLLM fetches a cost map when imported unless told to use the one it ships; without
# network access that fetch retries from a thread and can crash the import.
export LITELLM_LOCAL_MODEL_COST_MAP ?= True
# The environment is rebuilt when the package's build inputs change (pyproject.toml, and
# setup.py with the C sources of the scorer, compiled at install).
BUILD_INPUTS := pyproject.toml setup.py $(sort $(wildcard stratum_litellm/scoring/*.c stratum_litellm/scoring/*.h))
STAMP := $(VENV)/.installed-$(shell cat $(BUILD_INPUTS) | cksum | cut -d' ' -f1)

.PHONY: setup backends chromium test test-fast run check bench clean

setup: $(STAMP)

$(STAMP): $(BUILD_INPUTS)
	@echo "==> Python environment in $(VENV) (about a minute the first time)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
	@$(PY) -c 'import stratum_litellm, litellm' || { echo "error: installing the Python environment failed; see the pip output above" >&2; exit 1; }
	@$(PY) -c 'from stratum_litellm.scoring.scan import ENGINE; from stratum_litellm.scoring.measure import MEASURE_ENGINE; print("    scorer scan engine:", ENGINE, "/ measurements:", MEASURE_ENGINE)'
	@rm -f $(VENV)/.installed-*
	@touch $@

backends: setup
	@bash scripts/backends.sh

# Headless Chromium for the Open WebUI browser test (apt-get install chromium when missing).
chromium:
	@bash scripts/ensure_chromium.sh

test: setup backends chromium
	$(PY) -m pytest -ra

test-fast: setup
	$(PY) -m pytest -ra -m "not e2e"

run: setup backends
	@bash scripts/run.sh

check: setup
	$(VENV)/bin/stratum check litellm_config.yaml

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info stratum_litellm/scoring/*.so
