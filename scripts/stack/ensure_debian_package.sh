#!/usr/bin/env bash
# A Debian package that `make test` needs, installed with apt-get when missing:
#   ensure_debian_package.sh PACKAGE "WHAT NEEDS IT" BINARY... [-- HINT]
# Idempotent: when every BINARY exists it prints one "ok:" line and exits. HINT, if given,
# is printed when apt-get succeeded but a binary is still missing.
set -euo pipefail

package="$1" purpose="$2"
shift 2
binaries=() hint=""
while (($#)); do
    if [[ "$1" == "--" ]]; then hint="${2:-}"; break; fi
    binaries+=("$1")
    shift
done

die() {
    echo "error: $1" >&2
    shift
    for line in "$@"; do echo "  $line" >&2; done
    exit 1
}

all_present() {
    local binary
    for binary in "${binaries[@]}"; do [[ -x "$binary" ]] || return 1; done
}

if all_present; then
    echo "ok: ${binaries[*]}"
    exit 0
fi

command -v apt-get >/dev/null ||
    die "${binaries[*]} missing and there is no apt-get to install them" \
        "install the Debian/Ubuntu package '$package' so that they exist, then run make test again"
if [[ "$(id -u)" -eq 0 ]]; then
    sudo=()
elif command -v sudo >/dev/null; then
    sudo=(sudo)
else
    die "${binaries[*]} missing, and installing them needs root (no sudo here)" \
        "as root: apt-get update && apt-get install -y --no-install-recommends $package"
fi

echo "installing $package (apt-get install $package) for $purpose"
log="$(mktemp -t "stratum-$package-XXXXXX.log")"
if ! { "${sudo[@]}" apt-get update &&
       "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
           apt-get install -y --no-install-recommends "$package"; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "installing $package with apt-get failed (log: $log)" \
        "$purpose needs ${binaries[*]}: apt-get install $package, then run make test again"
fi
all_present || die "apt-get installed '$package' but ${binaries[*]} still missing (log: $log)" ${hint:+"$hint"}
rm -f "$log"
echo "ok: ${binaries[0]} ($("${binaries[0]}" --version 2>/dev/null | head -n 1 || true))"
