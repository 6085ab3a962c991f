#!/bin/sh
# Runs each openflow fuzz target for SECONDS (default 60) from its kept corpus
# (crates/openflow/fuzz/corpus/<target>), which new finds are added to. Needs nightly and
# cargo-fuzz. Exits non-zero if a target crashes; the crash input is in fuzz/artifacts/.
set -eu
SECONDS_EACH=${1:-60}
cd "$(dirname "$0")/../crates/openflow/fuzz"
for target in decode_message parse_flow; do
    mkdir -p "corpus/$target"
    echo "fuzz: $target for ${SECONDS_EACH}s"
    cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$SECONDS_EACH" -max_len=4096
done
