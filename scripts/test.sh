#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test (unit tests, tests
# against real ovsdb-server/ovs-vswitchd, and the testbed end-to-end tests). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The OVS to run on: WEIR_OVS=fixed (default, see scripts/ovs.sh) or WEIR_OVS=system.
ovs_path=$(bash scripts/ovs.sh)
export PATH="$ovs_path$PATH"
cargo build --locked --bin weir
cargo test --locked --workspace --no-fail-fast
