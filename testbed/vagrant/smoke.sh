#!/usr/bin/env bash
# The smoke test, on the control plane once every node has joined: pods a and b in namespaces
# x, y and z (agnhost serving TCP/80), deploy/examples/deny-x-ingress.yaml applied, then
# probes that the policy decides: y/a reaches x/a on 80; y/b and z/a do not; x/a reaches y/b
# (y has no policy). Through weir's host gateway: the same through a Service of x/a (kube-proxy's
# DNAT on the node, the policy on the real flow), and a pod reaching the API server on cp's own
# address (outside the pod network, masqueraded). Exits non-zero if a probe disagrees.
set -euo pipefail
export KUBECONFIG=/etc/kubernetes/admin.conf
image=registry.k8s.io/e2e-test-images/agnhost:2.53

kubectl wait --for=condition=Ready nodes --all --timeout=10m
for ns in x y z; do
  kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
  for pod in a b; do
    kubectl -n "$ns" run "$pod" --image="$image" --labels="pod=$pod" --restart=Never \
      --dry-run=client -o yaml -- /agnhost netexec --http-port=80 | kubectl apply -f -
  done
done
for ns in x y z; do kubectl -n "$ns" wait --for=condition=Ready pod --all --timeout=5m; done
kubectl -n x expose pod a --name=a --port=80 --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -f /vagrant/deploy/examples/deny-x-ingress.yaml
# The agents realize a change within milliseconds; the API's watch adds its own delay.
sleep 5

failures=0
probe_addr() { # FROM_NS/FROM_POD HOST:PORT allowed|denied [what]
  local from=$1 addr=$2 want=$3 what=${4:-$2} got
  if kubectl -n "${from%/*}" exec "${from#*/}" -- /agnhost connect --timeout=2s "$addr" >/dev/null 2>&1; then
    got=allowed
  else
    got=denied
  fi
  if [[ $got == "$want" ]]; then
    echo "ok      $from -> $what $got"
  else
    echo "FAILED  $from -> $what $got, want $want"
    failures=$((failures + 1))
  fi
}
probe() { # FROM_NS/FROM_POD TO_NS/TO_POD allowed|denied
  local ip
  ip=$(kubectl -n "${2%/*}" get pod "${2#*/}" -o jsonpath='{.status.podIP}')
  probe_addr "$1" "$ip:80" "$3" "$2:80"
}
service=$(kubectl -n x get service a -o jsonpath='{.spec.clusterIP}')
probe y/a x/a allowed
probe y/b x/a denied
probe z/a x/a denied
probe x/a y/b allowed
probe z/b y/a allowed
probe_addr y/a "$service:80" allowed "service x/a"
probe_addr y/b "$service:80" denied "service x/a"
probe_addr x/b 192.168.56.10:6443 allowed "cp's API server"
kubectl get nodes -o wide
((failures == 0)) || { echo "$failures probe(s) disagree with the policy" >&2; exit 1; }
echo "smoke test passed"
