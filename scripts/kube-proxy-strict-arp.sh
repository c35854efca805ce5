#!/usr/bin/env bash
# Turns on strictARP in kube-proxy's configuration and restarts kube-proxy so it takes effect.
#
# With kube-proxy in IPVS mode every node answers ARP for every LoadBalancer IP (they sit on its kube-ipvs0
# interface) unless strictARP is on, and MetalLB's L2 announcements then fight with all of them. This is
# MetalLB's documented edit of the kubeadm-managed kube-system/kube-proxy ConfigMap, made idempotent.
#
# Usage: kube-proxy-strict-arp.sh --context CONTEXT [--kubeconfig FILE]
set -euo pipefail

readonly self=kube-proxy-strict-arp
context=""
kubeconfig=""

die() {
  echo "$self: $*" >&2
  exit 2
}

while (($# > 0)); do
  case $1 in
    --context | --kubeconfig)
      (($# >= 2)) || die "$1 needs a value"
      declare "${1#--}=$2"
      shift 2
      ;;
    *) die "unknown argument: $1" ;;
  esac
done

[[ -n $context ]] || die "--context is required"
command -v kubectl >/dev/null 2>&1 || die "kubectl is not on PATH"

kubectl_args=(--context "$context")
[[ -z $kubeconfig ]] || kubectl_args+=(--kubeconfig "$kubeconfig")

if ! config=$(kubectl "${kubectl_args[@]}" -n kube-system get configmap kube-proxy -o yaml 2>&1); then
  {
    echo "$self: cannot read ConfigMap kube-system/kube-proxy in context $context:"
    echo "  $config"
    echo "strictArp needs the kubeadm-managed kube-proxy configuration. If this cluster runs kube-proxy"
    echo "some other way (or replaces it, as Cilium can), turn on strict ARP there and unset strictArp."
  } >&2
  exit 1
fi

mode=$(sed -n 's/^ *mode: *"\{0,1\}\([a-z]*\)"\{0,1\} *$/\1/p' <<<"$config" | head -n 1)
if grep -q '^ *strictARP: *true *$' <<<"$config"; then
  echo "strictARP is already on (kube-proxy mode: ${mode:-default}); nothing to do"
  exit 0
fi
if ! grep -q '^ *strictARP: false$' <<<"$config"; then
  die "kube-system/kube-proxy has no 'strictARP:' setting to turn on; edit its ipvs section by hand"
fi

# resourceVersion rides along, so a concurrent edit makes replace fail instead of being overwritten.
kubectl "${kubectl_args[@]}" -n kube-system replace -f - <<<"${config/strictARP: false/strictARP: true}" >&2
if ! kubectl "${kubectl_args[@]}" -n kube-system rollout restart daemonset/kube-proxy >&2; then
  # kube-proxy reads its configuration only at start, and the next run would find strictARP on and do
  # nothing: turn it off again so that run does both steps.
  if current=$(kubectl "${kubectl_args[@]}" -n kube-system get configmap kube-proxy -o yaml) &&
    kubectl "${kubectl_args[@]}" -n kube-system replace -f - <<<"${current/strictARP: true/strictARP: false}" >&2; then
    echo "$self: could not restart kube-proxy, so strictARP was turned off again; nothing changed" >&2
  else
    echo "$self: could not restart kube-proxy, and could not turn strictARP off again: restart it by hand" >&2
    echo "  kubectl --context $context -n kube-system rollout restart daemonset/kube-proxy" >&2
  fi
  exit 1
fi
echo "strictARP turned on and kube-proxy restarted (mode: ${mode:-default})"
