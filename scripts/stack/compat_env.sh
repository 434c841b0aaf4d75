#!/usr/bin/env bash
# The environment of `make test-compat`: this project with the OLDEST LiteLLM release of the
# range pyproject.toml declares, in a virtualenv cached outside the repository (keyed by
# that version; paths.py names the folder). Its dependencies are installed once per change
# of the build inputs; the project itself is re-linked on every run (editable, --no-deps),
# so a fresh clone in another folder tests its own code. Prints the venv's python last.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py="${PYTHON:-python3}"
eval "$("$py" "$here/paths.py" --shell litellm-oldest compat-dir)"
venv="$COMPAT_DIR/venv"
marker="$COMPAT_DIR/installed"
log="$COMPAT_DIR/install.log"
stamp="$(cd "$root" && cat pyproject.toml setup.py | cksum | cut -d' ' -f1)"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)

mkdir -p "$COMPAT_DIR"
if [[ ! -x "$venv/bin/python" || ! -f "$marker" || "$(<"$marker")" != "$stamp" ]]; then
    echo "==> LiteLLM $LITELLM_OLDEST environment in $venv (about 2-3 minutes the first time)" >&2
    rm -f "$marker"
    [[ -x "$venv/bin/python" ]] || "$py" -m venv "$venv"
    # The project's own dependencies and test extras, with LiteLLM held at the oldest release.
    if ! (cd "$root" && "${pip[@]}" -e '.[test]' "litellm[proxy]==$LITELLM_OLDEST") >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        echo "error: installing LiteLLM $LITELLM_OLDEST failed; full log: $log" >&2
        exit 1
    fi
    echo "$stamp" >"$marker"
fi
(cd "$root" && "${pip[@]}" --no-deps -e .) >>"$log" 2>&1 || { tail -n 30 "$log" >&2; exit 1; }
"$venv/bin/python" - "$LITELLM_OLDEST" <<'PY' >&2
import sys
from importlib.metadata import version
import stratum_litellm  # noqa: F401  (the clone's own code, linked above)
found = version("litellm")
if found != sys.argv[1]:
    raise SystemExit(f"error: the compat environment has LiteLLM {found}, expected {sys.argv[1]}")
print(f"    LiteLLM {found}, stratum_litellm from {stratum_litellm.__file__.rsplit('/', 2)[0]}")
PY
echo "$venv/bin/python"
