#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test (unit tests, tests
# against real ovsdb-server/ovs-vswitchd, and the testbed end-to-end tests). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --locked --bin weir
cargo test --locked --workspace --no-fail-fast
