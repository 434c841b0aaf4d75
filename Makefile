# make run        set-up, then the gateway with the router in front of real local backends
# make test       set-up, then every test (and the scorer's tests once more in pure Python)
# make test-compat  the gateway end-to-end and SDK tests against the oldest LiteLLM of the
#                 range in pyproject.toml, in its own environment cached outside the repository
# make kubernetes  write deploy/kubernetes/'s generated files again (config copies, PrometheusRule)
# make test-fast  the unit tests and the integration tests that need no built llama-server
#                 (on a fresh clone: the Python environment, and Debian's redis-server
#                 when missing; nothing heavy is built)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# LiteLLM fetches a cost map when imported unless told to use the one it ships; without
# network access that fetch retries from a thread and can crash the import.
export LITELLM_LOCAL_MODEL_COST_MAP ?= True
# The environment is rebuilt when the package's build inputs change (pyproject.toml, and
# setup.py with the C sources of the scorer, compiled at install).
# The newest LiteLLM of the range in pyproject.toml: the one the main environment (make test,
# make run) holds, so every clone tests the same release (docs/compat.md).
LITELLM_NEWEST := 1.108.7
BUILD_INPUTS := Makefile pyproject.toml setup.py $(sort $(wildcard stratum_litellm/scoring/*.c stratum_litellm/scoring/*.h))
STAMP := $(VENV)/.installed-$(shell cat $(BUILD_INPUTS) | cksum | cut -d' ' -f1)

.PHONY: setup llama-server chromium prometheus redis haproxy test test-compat test-fast run check kubernetes clean

setup: $(STAMP)

$(STAMP): $(BUILD_INPUTS)
	@echo "==> Python environment in $(VENV) (about a minute the first time)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]' 'litellm[proxy]==$(LITELLM_NEWEST)' 2>&1 | grep -v '^WARNING: Location' || true
	@$(PY) -c 'import stratum_litellm, litellm' || { echo "error: installing the Python environment failed; see the pip output above" >&2; exit 1; }
	@$(PY) -c 'from stratum_litellm.scoring.scan import ENGINE; from stratum_litellm.scoring.measure import MEASURE_ENGINE; print("    scorer scan engine:", ENGINE, "/ measurements:", MEASURE_ENGINE)'
	@rm -f $(VENV)/.installed-*
	@touch $@

# llama.cpp's llama-server and the SmolLM2 GGUF (built and cached outside the repository).
llama-server: setup
	@bash scripts/stack/build_llama_server.sh

# Headless Chromium for the Open WebUI browser test (apt-get install chromium when missing).
chromium:
	@bash scripts/stack/ensure_chromium.sh

# Prometheus and promtool for the dashboard and alert-rule tests (apt-get install prometheus
# when missing).
prometheus:
	@bash scripts/stack/ensure_prometheus.sh

# redis-server for the tests that need a real Redis (apt-get install redis-server when missing).
redis:
	@bash scripts/stack/ensure_redis.sh

# haproxy for the rolling-restart test, standing in for a Service in front of the replicas
# (apt-get install haproxy when missing).
haproxy:
	@bash scripts/stack/ensure_haproxy.sh

# TEST_WORKERS=2 (or 3) runs the tests on parallel workers (pytest-xdist), a whole module
# to a worker so that each module's shared gateway starts once, the longest modules first
# (tests/conftest.py): most of the suite waits on real servers, so it takes about 0.6x the
# time. The default stays one process: on a loaded 2-core machine parallel runs still
# surface timing races in tests (docs/stack.md, "Where make test's time goes").
TEST_WORKERS ?= 0
PARALLEL := -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The second run checks that the scorer's pure-Python path alone gives the same results.
test: setup llama-server chromium prometheus redis haproxy
	$(PY) -m pytest -ra --durations=25 $(PARALLEL)
	STRATUM_PURE_PYTHON=1 $(PY) -m pytest -ra tests/unit/scoring

# The SDK tests and the gateway end-to-end tests (not the whole stack) on the oldest LiteLLM.
COMPAT_TESTS := tests/e2e/test_gateway_e2e.py tests/e2e/test_shadow_e2e.py tests/e2e/test_tier_health_e2e.py tests/e2e/test_shared_state_e2e.py tests/integration/test_plugin.py tests/integration/test_shared_state.py
test-compat: llama-server redis
	@compat_py="$$(bash scripts/stack/compat_env.sh)" && "$$compat_py" -m pytest -ra -p no:cacheprovider $(PARALLEL) $(COMPAT_TESTS)

test-fast: setup redis
	$(PY) -m pytest -ra -m "not llama_server" $(PARALLEL) tests/unit tests/integration

run: setup llama-server
	@bash scripts/stack/run.sh

check: setup
	$(VENV)/bin/stratum check litellm_config.yaml

# deploy/kubernetes/'s copies of the config files and its PrometheusRule (from
# deploy/prometheus/alerts.yml), written again after those change.
kubernetes: setup
	$(PY) scripts/kubernetes_sync.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info stratum_litellm/scoring/*.so
