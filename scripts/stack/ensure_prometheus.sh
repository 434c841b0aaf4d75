#!/usr/bin/env bash
# Prometheus and promtool for tests/e2e/test_prometheus.py (a real Prometheus scraping a
# real gateway, the dashboard's queries, promtool check/test of deploy/prometheus/):
# Debian's `prometheus` package, installed with apt-get when missing. Idempotent: when both
# binaries exist it prints one "ok:" line and exits.
set -euo pipefail

PROMETHEUS=/usr/bin/prometheus
PROMTOOL=/usr/bin/promtool

die() {
    echo "error: $1" >&2
    shift
    for line in "$@"; do echo "  $line" >&2; done
    exit 1
}

if [[ -x "$PROMETHEUS" && -x "$PROMTOOL" ]]; then
    echo "ok: $PROMETHEUS, $PROMTOOL"
    exit 0
fi

command -v apt-get >/dev/null ||
    die "$PROMETHEUS or $PROMTOOL is missing and there is no apt-get to install them" \
        "install Prometheus (Debian/Ubuntu package 'prometheus') so that both exist, then run make test again"
if [[ "$(id -u)" -eq 0 ]]; then
    sudo=()
elif command -v sudo >/dev/null; then
    sudo=(sudo)
else
    die "$PROMETHEUS is missing, and installing it needs root (no sudo here)" \
        "as root: apt-get update && apt-get install -y --no-install-recommends prometheus"
fi

echo "installing Prometheus (apt-get install prometheus) for the dashboard and alert-rule tests"
log="$(mktemp -t stratum-prometheus-XXXXXX.log)"
# policy-rc.d 101: the package's postinst must not start a system Prometheus on :9090;
# the tests start their own on a free port.
if ! { "${sudo[@]}" apt-get update &&
       "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
           apt-get install -y --no-install-recommends prometheus; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "installing Prometheus with apt-get failed (log: $log)" \
        "the Prometheus tests need $PROMETHEUS and $PROMTOOL: apt-get install prometheus, then run make test again"
fi
[[ -x "$PROMETHEUS" && -x "$PROMTOOL" ]] ||
    die "apt-get installed 'prometheus' but $PROMETHEUS or $PROMTOOL is still missing (log: $log)"
rm -f "$log"
echo "ok: $PROMETHEUS ($("$PROMETHEUS" --version 2>/dev/null | head -n 1 || true))"
