#!/usr/bin/env bash
# Celery (PyPI) with the Redis broker (127.0.0.1:6379) as a bench peer: installs it into a
# venv in the scratch folder, runs the no-op job on its own queue, and prints one JSON
# summary line on stdout.
#
#   bench/peers/celery/run.sh --mode drain|steady --count N [--rate R] [--concurrency C]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../lib.sh"
venv="$ADZE_PEERS_SCRATCH/celery-venv"
if ! cmp -s "$here/requirements.txt" "$venv/requirements.txt"; then
  echo "celery: creating $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
  cp "$here/requirements.txt" "$venv/requirements.txt"
fi
cd "$here"
exec "$venv/bin/python" run.py "$@"
