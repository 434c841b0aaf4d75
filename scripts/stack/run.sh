#!/usr/bin/env bash
# `make run`: the whole serving stack on this machine, CPU only, every service real:
#
#   fast tier   gemma4-fast   vLLM (CPU build) serving SmolLM2-135M-Instruct    :8081
#   smart tier  gemma4-smart  llama.cpp llama-server, Gemma 3 270M Q4_K_M, 2 slots :8082
#   gateway     gemma4-auto   LiteLLM + the stratum router, litellm_config.yaml   :4000
#   Open WebUI                pointed at the gateway                              :8080
#
# Set-up (installs, builds, model fetches and conversion; cached under
# ~/.cache/stratum-litellm keyed by version) runs first through scripts/stack/setup.sh.
# Then every service starts in its own process group; "Ready." is printed once each one
# answers its health check. Ctrl-C (or any failure) stops every process it started.
#
# Environment:
#   STRATUM_PORT / STRATUM_FAST_PORT / STRATUM_SMART_PORT / STRATUM_WEBUI_PORT   ports
#   STRATUM_WEBUI=0            no Open WebUI (and no 3 GB install for it)
#   STRATUM_FAST_API_BASE + STRATUM_SMART_API_BASE   front these backends instead of
#                              starting vLLM and llama-server
#   STRATUM_LADDER=1           the ladder example (examples/ladder.yaml): a third local
#                              llama-server (SmolLM2, :8083, STRATUM_OVERFLOW_PORT) stands in
#                              for the hosted overflow tier, or STRATUM_OVERFLOW_API_BASE
#   STRATUM_WEBUI_DATA_DIR     Open WebUI's data dir (default: under the cache)
#   STRATUM_LOG_DIR            service logs (default: <cache>/run)
#   STRATUM_CACHE_DIR          the cache (default: ~/.cache/stratum-litellm)
#   LITELLM_MASTER_KEY         the gateway key (default: sk-stratum-local-demo)
# The whole script is one { ... } block: bash parses it before running any of it, so
# editing this file (or a git pull) while it runs cannot break the running copy.
{
set -euo pipefail
cd "$(dirname "$0")/../.."

py="${PYTHON:-python3}"
command -v "$py" >/dev/null || { echo "error: '$py' not found; install Python 3.10+ or set PYTHON" >&2; exit 1; }
stack_env="$("$py" scripts/stack/paths.py --shell)" || { echo "error: scripts/stack/paths.py failed (see above)" >&2; exit 1; }
eval "$stack_env"

PORT="$GATEWAY_PORT"
WEBUI="${STRATUM_WEBUI:-1}"
VENV_BIN="$PWD/.venv/bin"
LOG_DIR="${STRATUM_LOG_DIR:-$RUN_DIR}"
WEBUI_DATA="${STRATUM_WEBUI_DATA_DIR:-$WEBUI_DATA}"
export LITELLM_MASTER_KEY="${LITELLM_MASTER_KEY:-sk-stratum-local-demo}"
# The bundled model cost map: LiteLLM 1.105.3 otherwise fetches it at import, and with no
# network its retry thread races the import of its own logging filter (ImportError seen).
export LITELLM_LOCAL_MODEL_COST_MAP="${LITELLM_LOCAL_MODEL_COST_MAP:-true}"
export STRATUM_FAST_API_KEY="${STRATUM_FAST_API_KEY:-none}"
export STRATUM_SMART_API_KEY="${STRATUM_SMART_API_KEY:-none}"
LADDER="${STRATUM_LADDER:-0}"
GATEWAY_CONFIG=litellm_config.yaml
((LADDER)) && GATEWAY_CONFIG=examples/ladder.yaml
OVERFLOW_PORT="${STRATUM_OVERFLOW_PORT:-8083}"

die() {
    echo "error: $1" >&2
    shift
    for line in "$@"; do echo "  $line" >&2; done
    exit 1
}

# --- process groups: every service runs in its own, all of them are stopped on exit -----
names=() pgids=() logs=()
alive() {  # pid: running and not a zombie
    local stat
    stat="$(ps -o stat= -p "$1" 2>/dev/null)" && [[ -n "$stat" && "$stat" != Z* ]]
}
group_alive() {  # pgid: any member running
    ps -o stat= -g "$1" 2>/dev/null | grep -qv '^Z'
}
say() { echo "$@" 2>/dev/null || true; }  # stdout may be gone (a `| tee` killed by Ctrl-C)
cleanup() {
    local rc=$? i waited=0 left
    set +e
    # Finish cleaning up whatever happens meanwhile: a second Ctrl-C, or a closed stdout
    # (SIGPIPE would otherwise end this script before it stopped anything).
    trap - EXIT
    trap '' INT TERM PIPE HUP
    if ((${#pgids[@]})); then
        for i in "${!pgids[@]}"; do kill -TERM -- "-${pgids[$i]}" 2>/dev/null; done
        say "==> stopping ${#pgids[@]} service(s): ${names[*]}"
        while :; do
            left=()
            for i in "${!pgids[@]}"; do group_alive "${pgids[$i]}" && left+=("${names[$i]}"); done
            ((${#left[@]} == 0)) && break
            if ((waited >= 15)); then
                say "    still running after 15s, killing: ${left[*]}"
                for i in "${!pgids[@]}"; do kill -KILL -- "-${pgids[$i]}" 2>/dev/null; done
                sleep 1
                break
            fi
            sleep 1
            waited=$((waited + 1))
        done
        wait 2>/dev/null
        rm -f "$LOG_DIR/pgids"
        say "==> stopped"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'exit 129' HUP

start_service() {  # name log cmd...: in its own process group (setsid), output to log
    local name="$1" log="$2"
    shift 2
    setsid "$@" >"$log" 2>&1 </dev/null &
    names+=("$name") pgids+=("$!") logs+=("$log")
    # For whoever must clean up after a `kill -9` of this script (tests/support/stack.py does).
    echo "$! $name" >>"$LOG_DIR/pgids"
}

port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
require_free() {  # port what env-var
    port_free "$1" || die "port $1 ($2) is already in use" \
        "stop what listens there (see: ss -ltnp 'sport = :$1'), or pick another port: $3=<port> make run"
}

group_rss_mb() {  # pgid -> MB resident, summed over the group's processes
    ps -o rss= -g "$1" 2>/dev/null | awk '{s += $1} END {printf "%d", s / 1024}'
}

# --- what to start -----------------------------------------------------------------------
external=0
if [[ -n "${STRATUM_FAST_API_BASE:-}" || -n "${STRATUM_SMART_API_BASE:-}" ]]; then
    [[ -n "${STRATUM_FAST_API_BASE:-}" && -n "${STRATUM_SMART_API_BASE:-}" ]] ||
        die "set both STRATUM_FAST_API_BASE and STRATUM_SMART_API_BASE to front your own backends, or neither to start local ones"
    external=1
fi
[[ "$WEBUI" == 0 || "$WEBUI" == 1 ]] || die "STRATUM_WEBUI must be 0 or 1 (got '$WEBUI')"

command -v curl >/dev/null || die "curl is missing (used for health checks)" "on Debian/Ubuntu: apt-get install curl"
command -v setsid >/dev/null || die "setsid is missing" "on Debian/Ubuntu: apt-get install util-linux"
[[ -x "$VENV_BIN/litellm" && -x "$VENV_BIN/stratum" ]] ||
    die "the gateway's environment .venv is missing or incomplete" "run: make run (it runs make setup first), or make setup"

# Fail fast on a taken port, before a long set-up.
require_free "$PORT" "gateway" STRATUM_PORT
if ((!external)); then
    require_free "$FAST_PORT" "fast tier, vLLM" STRATUM_FAST_PORT
    require_free "$SMART_PORT" "smart tier, llama-server" STRATUM_SMART_PORT
fi
((WEBUI)) && require_free "$WEBUI_PORT" "Open WebUI" STRATUM_WEBUI_PORT

# --- set-up (cached; seconds when everything is there) ---------------------------------------
setup_args=()
((external)) && setup_args+=(--no-backends)
((WEBUI)) || setup_args+=(--no-webui)
bash scripts/stack/setup.sh "${setup_args[@]}"

mkdir -p "$LOG_DIR"
: >"$LOG_DIR/pgids"
echo "==> checking $GATEWAY_CONFIG"
STRATUM_OVERFLOW_API_BASE="${STRATUM_OVERFLOW_API_BASE:-http://127.0.0.1:$OVERFLOW_PORT/v1}" \
    "$VENV_BIN/stratum" check "$GATEWAY_CONFIG"

# Ports again: the set-up may have taken minutes.
require_free "$PORT" "gateway" STRATUM_PORT
starts=$SECONDS
health=()  # per service, in start order: its health URL and how long it may take
limit=()
if ((!external)); then
    require_free "$FAST_PORT" "fast tier, vLLM" STRATUM_FAST_PORT
    require_free "$SMART_PORT" "smart tier, llama-server" STRATUM_SMART_PORT
    { read -r LLAMA_SERVER && read -r SMART_MODEL && read -r VLLM_PY && read -r FAST_MODEL; } < <(
        "$py" scripts/stack/paths.py llama-server gemma3-gguf vllm-python fast-model) ||
        die "scripts/stack/paths.py found the set-up incomplete (see above)"

    echo "==> starting the smart tier: llama-server, $(basename "$SMART_MODEL"), $SMART_SLOTS slots, on 127.0.0.1:$SMART_PORT"
    start_service "llama-server" "$LOG_DIR/smart-llama-server.log" \
        "$LLAMA_SERVER" -m "$SMART_MODEL" --host 127.0.0.1 --port "$SMART_PORT" --alias gemma4-smart \
        --metrics --slots -np "$SMART_SLOTS" -c "$SMART_CTX" -t 2 -tb 2 --chat-template-file "$SMART_CHAT_TEMPLATE"
    # (The GGUF is Gemma 3 270M base and carries no chat template; without one llama-server
    # falls back to ChatML, which Gemma has never seen. `--chat-template gemma` is taken as
    # a literal Jinja template by this build, hence a file with Gemma's turn format.)
    health+=("http://127.0.0.1:$SMART_PORT/health") limit+=(180)

    echo "==> starting the fast tier: vLLM $VLLM_VERSION (CPU), SmolLM2-135M-Instruct, on 127.0.0.1:$FAST_PORT (about a minute)"
    start_service "vLLM" "$LOG_DIR/fast-vllm.log" \
        env HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE="$FAST_KVCACHE_GIB" \
        VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 VLLM_HOST_IP=127.0.0.1 \
        "$VLLM_PY" -m vllm.entrypoints.openai.api_server --model "$FAST_MODEL" \
        --served-model-name gemma4-fast --host 127.0.0.1 --port "$FAST_PORT" \
        --enforce-eager --max-model-len "$FAST_MAX_MODEL_LEN" --dtype bfloat16
    health+=("http://127.0.0.1:$FAST_PORT/health") limit+=(420)

    export STRATUM_FAST_API_BASE="http://127.0.0.1:$FAST_PORT/v1"
    export STRATUM_SMART_API_BASE="http://127.0.0.1:$SMART_PORT/v1"
fi

if ((LADDER)) && [[ -z "${STRATUM_OVERFLOW_API_BASE:-}" ]]; then
    require_free "$OVERFLOW_PORT" "overflow stand-in, llama-server" STRATUM_OVERFLOW_PORT
    { read -r OVERFLOW_SERVER && read -r OVERFLOW_MODEL; } < <("$py" scripts/stack/paths.py llama-server smollm2-gguf) ||
        die "scripts/stack/paths.py found the set-up incomplete (see above)"
    echo "==> starting the overflow tier's stand-in: llama-server, $(basename "$OVERFLOW_MODEL"), on 127.0.0.1:$OVERFLOW_PORT"
    start_service "llama-server (overflow)" "$LOG_DIR/overflow-llama-server.log" \
        "$OVERFLOW_SERVER" -m "$OVERFLOW_MODEL" --host 127.0.0.1 --port "$OVERFLOW_PORT" --alias cloud-overflow \
        --metrics -np 2 -c 2048 -t 1 -tb 1
    health+=("http://127.0.0.1:$OVERFLOW_PORT/health") limit+=(180)
    export STRATUM_OVERFLOW_API_BASE="http://127.0.0.1:$OVERFLOW_PORT/v1"
fi
echo "==> starting the LiteLLM gateway with the stratum router on 127.0.0.1:$PORT"
start_service "gateway" "$LOG_DIR/gateway.log" \
    "$VENV_BIN/litellm" --config "$GATEWAY_CONFIG" --host 127.0.0.1 --port "$PORT"
health+=("http://127.0.0.1:$PORT/health/liveliness") limit+=(240)

if ((WEBUI)); then
    require_free "$WEBUI_PORT" "Open WebUI" STRATUM_WEBUI_PORT
    WEBUI_BIN="$("$py" scripts/stack/paths.py webui-bin)"
    mkdir -p "$WEBUI_DATA"
    [[ -s "$WEBUI_DATA/.stratum_secret_key" ]] ||
        "$py" -c 'import secrets; print(secrets.token_hex(32))' >"$WEBUI_DATA/.stratum_secret_key"
    echo "==> starting Open WebUI $WEBUI_VERSION on 127.0.0.1:$WEBUI_PORT (data: $WEBUI_DATA)"
    WEBUI_CONNECTION='{"0": {"enable": true, "headers": {"X-OpenWebUI-Message-Id": "{{MESSAGE_ID}}", "X-OpenWebUI-Chat-Id": "{{CHAT_ID}}", "X-OpenWebUI-User-Message-Id": "{{USER_MESSAGE_ID}}", "X-OpenWebUI-Task": "{{TASK}}"}}}'
    # Offline, no login (a local single-user demo), only the gateway as model source;
    # config from the environment on every start (not frozen into its database); the
    # background title/tag/follow-up generations are off so a chat costs one generation.
    # The connection sends each answer's message id (and its chat and user message) as
    # headers, so the router can join the thumbs given to an answer to its decision
    # (learning.feedback; `stratum labels import-openwebui`, docs/learning.md).
    start_service "Open WebUI" "$LOG_DIR/open-webui.log" \
        env -C "$WEBUI_DATA" DATA_DIR="$WEBUI_DATA" OFFLINE_MODE=true HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
        WEBUI_AUTH=False ENABLE_PERSISTENT_CONFIG=False ENABLE_OLLAMA_API=false ENABLE_OPENAI_API=true \
        OPENAI_API_BASE_URL="http://127.0.0.1:$PORT/v1" OPENAI_API_KEY="$LITELLM_MASTER_KEY" \
        OPENAI_API_CONFIGS="$WEBUI_CONNECTION" \
        WEBUI_SECRET_KEY="$(cat "$WEBUI_DATA/.stratum_secret_key")" \
        ENABLE_TITLE_GENERATION=False ENABLE_TAGS_GENERATION=False ENABLE_FOLLOW_UP_GENERATION=False \
        ENABLE_AUTOCOMPLETE_GENERATION=False ENABLE_VERSION_UPDATE_CHECK=False \
        ANONYMIZED_TELEMETRY=false DO_NOT_TRACK=true SCARF_NO_ANALYTICS=true \
        "$WEBUI_BIN" serve --host 127.0.0.1 --port "$WEBUI_PORT"
    health+=("http://127.0.0.1:$WEBUI_PORT/health") limit+=(300)
fi

# --- wait until every service answers its health check ----------------------------------------
echo "==> waiting for ${#names[@]} service(s) to answer their health checks"
ready=()
for i in "${!names[@]}"; do ready+=(0); done
next=15
while :; do
    pending=()
    for i in "${!names[@]}"; do
        ((ready[i])) && continue
        if ! alive "${pgids[$i]}"; then
            echo "---- last lines of ${logs[$i]} ----" >&2
            tail -n 25 "${logs[$i]}" >&2 || true
            die "${names[$i]} exited before it was ready" "its log: ${logs[$i]}"
        fi
        if curl -fsS -o /dev/null --max-time 2 "${health[$i]}" 2>/dev/null; then
            ready[i]=1
            echo "    ok: ${names[$i]} answered ${health[$i]} after $((SECONDS - starts))s"
            continue
        fi
        if ((SECONDS - starts > limit[i])); then
            echo "---- last lines of ${logs[$i]} ----" >&2
            tail -n 25 "${logs[$i]}" >&2 || true
            die "${names[$i]} did not answer ${health[$i]} within ${limit[i]}s" "its log: ${logs[$i]}"
        fi
        pending+=("${names[$i]}")
    done
    ((${#pending[@]} == 0)) && break
    if ((SECONDS - starts >= next)); then
        echo "    ... $((SECONDS - starts))s, still waiting for: ${pending[*]}"
        next=$((next + 15))
    fi
    sleep 1
done

memory=""
total_mb=0
for i in "${!names[@]}"; do
    mb="$(group_rss_mb "${pgids[$i]}")"
    total_mb=$((total_mb + mb))
    memory+="${memory:+, }${names[$i]} ${mb} MB"
done

cat <<EOF

Ready. (services up in $((SECONDS - starts))s)
  gateway       http://127.0.0.1:$PORT/v1   (key: $LITELLM_MASTER_KEY; model: gemma4-auto)
  fast tier     $STRATUM_FAST_API_BASE   (gemma4-fast$( ((external)) || echo ", vLLM $VLLM_VERSION"))
  smart tier    $STRATUM_SMART_API_BASE   (gemma4-smart$( ((external)) || echo ", llama-server: /slots /metrics"))
  metrics       http://127.0.0.1:$PORT/metrics/   (Bearer key)
EOF
((LADDER)) && echo "  overflow      $STRATUM_OVERFLOW_API_BASE   (cloud-overflow, examples/ladder.yaml)"
((WEBUI)) && echo "  Open WebUI    http://127.0.0.1:$WEBUI_PORT/   (no login; pick gemma4-auto)"
cat <<EOF
  memory        $memory (resident, total ${total_mb} MB)
  logs          $LOG_DIR

Try a routed request: the x-stratum-* headers say which tier answered and why (a hard
question goes to the smart tier; "hi there" instead goes to the fast one):
  curl -si http://127.0.0.1:$PORT/v1/chat/completions \\
    -H "Authorization: Bearer $LITELLM_MASTER_KEY" -H 'Content-Type: application/json' \\
    -d '{"model": "gemma4-auto", "max_tokens": 40, "messages": [{"role": "user", "content": "Prove rigorously that for every prime p greater than 3 the number p squared minus one is divisible by 24, then analyse step by step why the argument fails for composite numbers."}]}' \\
    | grep -iE '^x-(stratum|litellm-model-group)|content'

Press Ctrl-C to stop.
EOF

# --- run until Ctrl-C or until a service dies ---------------------------------------------------
while :; do
    for i in "${!names[@]}"; do
        if ! alive "${pgids[$i]}"; then
            echo "---- last lines of ${logs[$i]} ----" >&2
            tail -n 25 "${logs[$i]}" >&2 || true
            die "${names[$i]} exited; the others are being stopped" "its log: ${logs[$i]}"
        fi
    done
    sleep 1
done
exit
}
