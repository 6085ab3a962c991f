#!/usr/bin/env bash
# The demo: builds weir, brings up a 2-node testbed with the standard model (9 pods in
# namespaces x, y, z), shows the probe table and node-1's flows with table names, and leaves
# the testbed up for exploring. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --locked --bin weir
weir=target/debug/weir
$weir testbed up --model testbed/standard.yaml --nodes 2
echo
echo "== every pod to every pod (no policy yet): '.' reaches, 'X' does not"
$weir testbed probe --ports 80 --protocols tcp,udp,sctp
echo
echo "== node-1's flows (installed by weir; table names from OVSDB)"
dir=$($weir testbed status -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["nodes"][0]["dir"])' 2>/dev/null || true)
if [ -n "$dir" ]; then
  ovs-ofctl -O OpenFlow15 dump-flows --names --no-stats "unix:$dir/br-int.mgmt"
fi
cat <<MSG

The testbed is up. Try:
  $weir testbed pods
  $weir testbed apply -f conformance/netpol/001-default-deny-ingress.yaml   # (policies of a case file)
  $weir testbed probe --ports 80 --protocols tcp
  $weir testbed exec x/a -- ip addr
Tear it down with:
  $weir testbed down
MSG
