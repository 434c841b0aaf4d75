#!/usr/bin/env bash
# Prometheus and promtool for tests/e2e/test_prometheus.py (a real Prometheus scraping a
# real gateway, the dashboard's queries) and promtool check/test of deploy/prometheus/:
# Debian's `prometheus` package, installed when missing. The tests start their own
# Prometheus on a free port, whatever the package starts.
exec bash "$(dirname "$0")/ensure_debian_package.sh" prometheus "the dashboard and alert-rule tests" \
    /usr/bin/prometheus /usr/bin/promtool
