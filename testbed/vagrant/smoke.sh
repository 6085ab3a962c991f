#!/usr/bin/env bash
# The smoke test, on the control plane once every node has joined: pods a and b in namespaces
# x, y and z (agnhost serving TCP/80), deploy/examples/deny-x-ingress.yaml applied, then
# probes that the policy decides: y/a reaches x/a on 80; y/b and z/a do not; x/a reaches y/b
# (y has no policy). Exits non-zero on the first probe that disagrees.
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
kubectl apply -f /vagrant/deploy/examples/deny-x-ingress.yaml
# The agents realize a change within milliseconds; the API's watch adds its own delay.
sleep 5

failures=0
probe() { # FROM_NS/FROM_POD TO_NS/TO_POD allowed|denied
  local from=$1 to=$2 want=$3 ip got
  ip=$(kubectl -n "${to%/*}" get pod "${to#*/}" -o jsonpath='{.status.podIP}')
  if kubectl -n "${from%/*}" exec "${from#*/}" -- /agnhost connect --timeout=2s "$ip:80" >/dev/null 2>&1; then
    got=allowed
  else
    got=denied
  fi
  if [[ $got == "$want" ]]; then
    echo "ok      $from -> $to:80 $got"
  else
    echo "FAILED  $from -> $to:80 $got, want $want"
    failures=$((failures + 1))
  fi
}
probe y/a x/a allowed
probe y/b x/a denied
probe z/a x/a denied
probe x/a y/b allowed
probe z/b y/a allowed
kubectl get nodes -o wide
((failures == 0)) || { echo "$failures probe(s) disagree with the policy" >&2; exit 1; }
echo "smoke test passed"
