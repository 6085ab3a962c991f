#!/usr/bin/env bash
# Runs weir's benchmarks (issue 7) at full size, one after another, writing bench/NAME.json
# and the tables to bench/RESULTS.txt. Needs root (network namespaces, OVS). Installs what is
# missing from Debian's packages. Usage: scripts/bench.sh [--quick] [NAME...]
set -euo pipefail
cd "$(dirname "$0")/.."
quick=()
if [[ "${1:-}" == "--quick" ]]; then quick=(--quick); shift; fi
names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(compile-scale install churn enforcement-latency datapath restart)

need=()
for pair in ovs-vswitchd:openvswitch-switch ip:iproute2 ethtool:ethtool wrk:wrk nginx:nginx-light iperf3:iperf3 ipset:ipset iptables:iptables; do
    command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
if [[ ${#need[@]} -gt 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
fi
cargo build --release -p weir -p cni
# The OVS to run on: WEIR_OVS=fixed (default, see scripts/ovs.sh) or WEIR_OVS=system.
ovs_path=$(bash scripts/ovs.sh)
export PATH="$ovs_path$PATH"
mkdir -p bench
out=bench/RESULTS.txt
[[ ${#quick[@]} -gt 0 ]] && out=bench/RESULTS-quick.txt
: > "$out"
for n in "${names[@]}"; do
    suffix=""; [[ ${#quick[@]} -gt 0 ]] && suffix="-quick"
    echo "== $n" >&2
    start=$(date +%s)
    ./target/release/weir bench "$n" "${quick[@]}" --json "bench/$n$suffix.json" | tee -a "$out"
    echo "($n took $(( $(date +%s) - start )) s)" | tee -a "$out"
done
