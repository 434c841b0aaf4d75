#!/usr/bin/env bash
# Headless Chromium for the browser test of Open WebUI (tests/e2e/test_stack.py takes a
# screenshot of its chat page): Debian's `chromium` package, installed when missing.
exec bash "$(dirname "$0")/ensure_debian_package.sh" chromium "the Open WebUI browser test" /usr/bin/chromium \
    -- "on Ubuntu the package may be a snap stub: install a Chromium that provides /usr/bin/chromium"
