#!/usr/bin/env bash
# The one test command: the workspace's Rust tests, then the SDK conformance suite twice,
# against `adze lite` (SQLite) and against `adze server` (PostgreSQL). PostgreSQL comes
# from ADZE_TEST_DATABASE_URL, else 127.0.0.1:5432, else a throwaway cluster (adze-testdb).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The bench's smoke test (crates/adze-bench) starts the adze binary: build it first.
cargo build -p adze
cargo test --workspace
conformance/run.sh "$@"
ADZE_CONFORMANCE_STORE=postgres conformance/run.sh "$@"
