# Sourced by the peer scripts: the scratch folder the peers install into.
ADZE_PEERS_SCRATCH="${ADZE_PEERS_SCRATCH:-/tmp/adze-bench-peers}"
mkdir -p "$ADZE_PEERS_SCRATCH"
