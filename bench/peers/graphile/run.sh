#!/usr/bin/env bash
# Graphile Worker (npm) as a bench peer: installs it into the scratch folder, creates its
# own database on the local PostgreSQL (127.0.0.1:5432, user postgres), runs the no-op
# job, drops the database, and prints one JSON summary line on stdout.
#
#   bench/peers/graphile/run.sh --mode drain|steady --count N [--rate R]
#       [--concurrency C] [--local-queue N] [--unbatched]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../lib.sh"
scratch="$ADZE_PEERS_SCRATCH/graphile"
mkdir -p "$scratch"
if ! cmp -s "$here/package.json" "$scratch/package.json" || [[ ! -d "$scratch/node_modules/graphile-worker" ]]; then
  echo "graphile: npm install into $scratch" >&2
  cp "$here/package.json" "$here/package-lock.json" "$scratch/"
  (cd "$scratch" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
cp "$here/run.js" "$scratch/run.js"
database="adze_bench_graphile_$$"
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
psql -q -d postgres -c "CREATE DATABASE $database" >&2
trap 'psql -q -d postgres -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >&2' EXIT
cd "$scratch"
node run.js --database "postgres://$PGUSER@$PGHOST:$PGPORT/$database" "$@"
