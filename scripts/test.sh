#!/usr/bin/env bash
# The one test command: the workspace's Rust tests, then the SDK conformance suite
# (which builds the adze binary itself unless ADZE_BIN is set).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The bench's smoke test (crates/adze-bench) starts the adze binary: build it first.
cargo build -p adze
cargo test --workspace
exec conformance/run.sh "$@"
