#!/usr/bin/env bash
# The demo: builds weir, brings up a 2-node testbed with the standard model (9 pods in
# namespaces x, y, z), shows the probe table and node-1's flows with table names, and leaves
# the testbed up for exploring. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The OVS to run on: WEIR_OVS=fixed (default, see scripts/ovs.sh) or WEIR_OVS=system.
ovs_path=$(bash scripts/ovs.sh)
export PATH="$ovs_path$PATH"
cargo build --locked --bin weir --bin weir-cni
weir=target/debug/weir
$weir testbed up --model testbed/standard.yaml --nodes 2
echo
echo "== every pod to every pod (no policy yet): '.' reaches, 'X' does not"
$weir testbed probe --ports 80 --protocols tcp,udp,sctp
echo
echo "== node-1's flows (installed by weir; table names from OVSDB)"
ovs-ofctl -O OpenFlow15 dump-flows --names --no-stats unix:/run/weir-testbed/node-1/br-int.mgmt
cat <<MSG

The testbed is up. Try:
  $weir testbed pods
  $weir testbed apply -f deploy/examples/deny-x-ingress.yaml
  $weir testbed probe --ports 80 --protocols tcp
  $weir testbed exec x/a -- ip addr
  $weir status --status-file /run/weir-testbed/node-1/agent-status.json
  ovs-ofctl -O OpenFlow15 dump-flows --names unix:/run/weir-testbed/node-1/br-int.mgmt
Tear it down with:
  $weir testbed down
MSG
