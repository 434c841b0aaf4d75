# syntax=docker/dockerfile:1
#
# The LiteLLM gateway with the stratum router plugin installed.
#
# Built by docker-compose.yml with the repository root as context (only pyproject.toml,
# README.md and stratum_litellm/ are sent: see gateway.Dockerfile.dockerignore). The
# config is not baked in: compose mounts litellm_config.yaml at /app/config.yaml and the
# router settings at /etc/stratum/, so editing them needs no rebuild.

# A LiteLLM release inside the range pyproject.toml declares (docs/compat.md: make test and
# make test-compat run its two ends). Release images are ghcr.io/berriai/litellm:v<version>.
ARG LITELLM_IMAGE=ghcr.io/berriai/litellm:v1.105.3
# Recent LiteLLM images keep their Python packages in a uv-made virtualenv without pip;
# uv installs into whichever interpreter runs `litellm` (the same uv release LiteLLM's
# own Dockerfile uses).
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.10.9

FROM ${UV_IMAGE} AS uv

FROM ${LITELLM_IMAGE}

USER root
COPY --from=uv /uv /usr/local/bin/uv

# Never fetch the remote model cost map, at build time (the import check below) or at start.
ENV LITELLM_LOCAL_MODEL_COST_MAP=True

COPY pyproject.toml README.md setup.py /opt/stratum-litellm/
COPY stratum_litellm /opt/stratum-litellm/stratum_litellm

# --no-deps keeps the image's own LiteLLM and its pinned dependencies untouched (pip would
# otherwise re-resolve litellm[proxy]); the plugin's other dependencies are named explicitly
# (pydantic is LiteLLM's own already: naming it only checks the range).
# The scorer's C scan engine compiles when a C compiler and the Python headers are there;
# on an image without them (best effort: apk on the Wolfi-based LiteLLM images), the
# install still succeeds with the pure-Python engine, which gives the same scores more
# slowly. The last line prints which engine the image has.
# The import check fails the build if the plugin cannot load in this LiteLLM. numpy and scipy
# are the `learn` extra: `stratum fit` runs in the gateway's container.
RUN set -eu; \
    py="$(command -v python3 || command -v python)"; \
    "$py" -c 'import litellm'; \
    if ! command -v cc >/dev/null 2>&1 && command -v apk >/dev/null 2>&1; then \
        apk add --no-cache gcc glibc-dev >/dev/null 2>&1 || true; \
        inc="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"; \
        ver="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"; \
        [ -f "$inc/Python.h" ] || apk add --no-cache "python-$ver-dev" >/dev/null 2>&1 || true; \
    fi; \
    uv pip install --python "$py" --break-system-packages --no-cache --no-deps /opt/stratum-litellm; \
    uv pip install --python "$py" --break-system-packages --no-cache \
        "nvidia-ml-py>=12.535" "prometheus-client>=0.20" "pyyaml>=6.0" "google-re2>=1.1" \
        "pydantic>=2.6,<3" \
        "numpy>=1.24" "scipy>=1.10"; \
    "$py" -c 'import stratum_litellm.gateway.plugin, pynvml, prometheus_client, re2; from stratum_litellm.scoring.scan import ENGINE; from stratum_litellm.scoring.scorer import KERNEL; print("stratum-litellm ready; scan engine:", ENGINE, "/ score kernel:", KERNEL)'

# ENTRYPOINT and WORKDIR stay the base image's (its entrypoint may be a path relative to
# /app); the main LiteLLM image runs as root, as this one does. Compose passes
# --config /app/config.yaml --port 4000 --num_workers ${GATEWAY_WORKERS}.
EXPOSE 4000
