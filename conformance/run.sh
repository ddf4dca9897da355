#!/usr/bin/env bash
# End-to-end compatibility suite: drives `adze lite` with Hatchet's official Python SDKs.
# ADZE_CONFORMANCE_STORE=postgres drives `adze server` on a fresh PostgreSQL database
# instead (found or started by adze-testdb); the replica crash tests always use PostgreSQL.
#
#   conformance/run.sh [pytest args...]      e.g. conformance/run.sh -k release -x
#   ADZE_CONFORMANCE_ONLY=1.43.1 conformance/run.sh test_auth.py   (paths are per suite dir)
#
# Builds the engine (`cargo build -p adze`) unless ADZE_BIN points at a binary, and the
# adze-sdk examples (`cargo build -p adze-examples`) unless ADZE_EXAMPLES_DIR is set, creates or
# reuses one venv per SDK version (conformance/.venv-<version>), then runs
# conformance/sdk047 with hatchet-sdk 0.47.1 and conformance/sdk143 with 1.43.1.
# ADZE_CONFORMANCE_ONLY=0.47.1 (or 1.43.1) runs one of them. Exits non-zero if any test
# fails. Measurements (never asserted) are printed as MEASURE: lines and appended to
# conformance/measurements.txt.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

PYTEST_PINS=(pytest==9.2.0 pytest-timeout==2.4.0)
SUITES=("0.47.1:sdk047" "1.43.1:sdk143")

if [[ -z "${ADZE_BIN:-}" ]]; then
  echo "conformance: cargo build -p adze -p adze-testdb" >&2
  (cd "$root" && cargo build -p adze -p adze-testdb)
  export ADZE_BIN="$root/target/debug/adze"
  export ADZE_TESTDB_BIN="$root/target/debug/adze-testdb"
fi
# The adze-sdk example binaries the 1.43.1 suite runs next to the Python SDK.
if [[ -z "${ADZE_EXAMPLES_DIR:-}" ]]; then
  echo "conformance: cargo build -p adze-examples" >&2
  (cd "$root" && cargo build -p adze-examples)
  export ADZE_EXAMPLES_DIR="$root/target/debug"
fi
if [[ ! -x "$ADZE_BIN" ]]; then
  echo "conformance: no executable adze binary at $ADZE_BIN" >&2
  exit 1
fi

# Reuse a venv only if it holds exactly the SDK version and the pinned test tools.
venv_ok() {
  local dir=$1 version=$2
  [[ -x "$dir/bin/python" ]] || return 1
  "$dir/bin/python" - "$version" "${PYTEST_PINS[@]}" <<'PY' 2>/dev/null
import importlib.metadata as md
import sys

wanted = {"hatchet-sdk": sys.argv[1]}
wanted.update(pin.split("==") for pin in sys.argv[2:])
try:
    ok = all(md.version(name) == version for name, version in wanted.items())
    import hatchet_sdk  # noqa: F401  (the install must also import)
except Exception:
    ok = False
sys.exit(0 if ok else 1)
PY
}

ensure_venv() {
  local version=$1 dir="$here/.venv-$1"
  if venv_ok "$dir" "$version"; then
    return 0
  fi
  echo "conformance: creating $dir (hatchet-sdk==$version)" >&2
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check \
    "hatchet-sdk==$version" "${PYTEST_PINS[@]}"
  venv_ok "$dir" "$version" || { echo "conformance: $dir is unusable after install" >&2; return 1; }
}

# Test paths among the arguments replace the default "whole suite directory".
targets=(.)
for arg in "$@"; do
  case "$arg" in
    -*) ;;
    *.py|*.py::*) targets=() ;;
  esac
done

status=0
summary=()
for suite in "${SUITES[@]}"; do
  version=${suite%%:*}
  dir=${suite#*:}
  if [[ -n "${ADZE_CONFORMANCE_ONLY:-}" && "$ADZE_CONFORMANCE_ONLY" != "$version" ]]; then
    continue
  fi
  ensure_venv "$version"
  echo "conformance: hatchet-sdk $version -> conformance/$dir" >&2
  set +e
  (
    cd "$here/$dir"
    ADZE_CONFORMANCE_SDK="$version" \
    PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" \
      "$here/.venv-$version/bin/python" -m pytest "${targets[@]}" \
        -p no:cacheprovider --timeout=180 -rfE --durations=5 "$@"
  )
  code=$?
  set -e
  if [[ $code -eq 0 ]]; then
    summary+=("hatchet-sdk $version: passed")
  else
    summary+=("hatchet-sdk $version: FAILED (pytest exit $code)")
    status=1
  fi
done

echo
for line in "${summary[@]}"; do
  echo "conformance: $line"
done
exit $status
