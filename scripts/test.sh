#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test (unit tests, tests
# against real ovsdb-server/ovs-vswitchd, and the testbed end-to-end tests). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The OVS to run on: WEIR_OVS=fixed (default, see scripts/ovs.sh) or WEIR_OVS=system.
ovs_path=$(bash scripts/ovs.sh)
export PATH="$ovs_path$PATH"
# etcd and kube-apiserver/kubectl for the tests against a real API server (see scripts/kube.sh);
# WEIR_REQUIRE_KUBE makes those tests fail instead of skipping when the programs are missing.
kube_path=$(bash scripts/kube.sh)
export PATH="$kube_path$PATH" WEIR_REQUIRE_KUBE=1
# promtool (from Debian's prometheus package) for the metrics test (see scripts/promtool.sh).
promtool_path=$(bash scripts/promtool.sh)
export PATH="$promtool_path$PATH"
# The reference CNI runtime tool that drives weir-cni in crates/cni/tests (see scripts/cnitool.sh);
# WEIR_REQUIRE_CNITOOL makes those tests fail instead of skipping when it is missing.
cnitool_path=$(bash scripts/cnitool.sh)
export PATH="$cnitool_path$PATH" WEIR_REQUIRE_CNITOOL=1
cargo build --locked --bin weir --bin weir-cni
cargo test --locked --workspace --no-fail-fast
