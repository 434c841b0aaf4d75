#!/usr/bin/env bash
# redis-server for the tests that need a real Redis (tests/support/redis_server.py, the
# redis_server and redis_url fixtures): Debian's `redis-server` package, installed when
# missing. The tests start their own redis-server on a free port, whatever the package starts.
exec bash "$(dirname "$0")/ensure_debian_package.sh" redis-server "the tests that need a real Redis" \
    /usr/bin/redis-server
