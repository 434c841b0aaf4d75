#!/usr/bin/env bash
# Headless Chromium for the browser test of Open WebUI (tests/e2e/test_stack.py takes a
# screenshot of its chat page): Debian's `chromium` package, installed with apt-get when
# missing. Idempotent: when /usr/bin/chromium exists it prints one "ok:" line and exits.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

die() {
    echo "error: $1" >&2
    shift
    for line in "$@"; do echo "  $line" >&2; done
    exit 1
}

if [[ -x "$CHROMIUM" ]]; then
    echo "ok: $CHROMIUM"
    exit 0
fi

command -v apt-get >/dev/null ||
    die "$CHROMIUM is missing and there is no apt-get to install it" \
        "install Chromium (Debian/Ubuntu package 'chromium') so that $CHROMIUM exists, then run make test again"
if [[ "$(id -u)" -eq 0 ]]; then
    sudo=()
elif command -v sudo >/dev/null; then
    sudo=(sudo)
else
    die "$CHROMIUM is missing, and installing it needs root (no sudo here)" \
        "as root: apt-get update && apt-get install -y --no-install-recommends chromium"
fi

echo "installing Chromium (apt-get install chromium, about a minute) for the Open WebUI browser test"
log="$(mktemp -t stratum-chromium-XXXXXX.log)"
if ! { "${sudo[@]}" apt-get update &&
       "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
           apt-get install -y --no-install-recommends chromium; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "installing Chromium with apt-get failed (log: $log)" \
        "the Open WebUI browser test needs $CHROMIUM: apt-get install chromium (Debian/Ubuntu), then run make test again"
fi
[[ -x "$CHROMIUM" ]] ||
    die "apt-get installed 'chromium' but $CHROMIUM is still missing (log: $log)" \
        "on Ubuntu the package may be a snap stub: install a Chromium that provides $CHROMIUM"
rm -f "$log"
echo "ok: $CHROMIUM ($("$CHROMIUM" --version 2>/dev/null || true))"
