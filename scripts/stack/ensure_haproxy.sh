#!/usr/bin/env bash
# haproxy for the rolling-restart test (tests/support/balancer.py): Debian's `haproxy`
# package, installed when missing. The test starts its own haproxy on a free port.
exec bash "$(dirname "$0")/ensure_debian_package.sh" haproxy "the rolling-restart test" /usr/sbin/haproxy
