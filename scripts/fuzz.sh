#!/bin/sh
# Runs each fuzz target for SECONDS (default 60) from its kept corpus
# (crates/<crate>/fuzz/corpus/<target>), which new finds are added to: the openflow
# targets, then the ovsdb ones (which also read the recorded ovsdb-server streams in
# crates/ovsdb/fuzz/seeds/<target>, see record_seeds.py there), then the policy manifest
# parser (seeded by crates/policy/fuzz/make_seeds.py). Needs nightly and cargo-fuzz. Exits
# non-zero if a target crashes; the crash input is in fuzz/artifacts/.
set -eu
SECONDS_EACH=${1:-60}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT/crates/openflow/fuzz"
for target in decode_message parse_flow; do
    mkdir -p "corpus/$target"
    echo "fuzz: $target for ${SECONDS_EACH}s"
    cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$SECONDS_EACH" -max_len=4096
done
cd "$ROOT/crates/ovsdb/fuzz"
for target in framing monitor_update; do
    mkdir -p "corpus/$target"
    echo "fuzz: ovsdb $target for ${SECONDS_EACH}s"
    cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- -max_total_time="$SECONDS_EACH" -max_len=8192
done
cd "$ROOT/crates/policy/fuzz"
# Without AddressSanitizer (the YAML parser forbids unsafe code and policy has none; ASan
# made it 10x slower), with overflow checks and debug assertions.
for target in manifests; do
    mkdir -p "corpus/$target"
    echo "fuzz: policy $target for ${SECONDS_EACH}s"
    cargo +nightly fuzz run --sanitizer none --debug-assertions "$target" "corpus/$target" -- -max_total_time="$SECONDS_EACH" -max_len=16384
done
