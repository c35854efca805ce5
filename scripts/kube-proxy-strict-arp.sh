#!/usr/bin/env bash
# Turns on strictARP in kube-proxy's configuration and makes sure kube-proxy runs with it.
#
# With kube-proxy in IPVS mode every node answers ARP for every LoadBalancer IP (they sit on its kube-ipvs0
# interface) unless strictARP is on, and MetalLB's L2 announcements then fight with all of them. This is
# MetalLB's documented edit of the kubeadm-managed kube-system/kube-proxy ConfigMap, made idempotent.
# kube-proxy reads its configuration only when it starts: whenever a kube-proxy pod is older than the
# ConfigMap's last change (a run stopped between the edit and the restart, say, or an edit by hand), it
# restarts kube-proxy and waits, at most --timeout, for the rollout.
#
# Usage: kube-proxy-strict-arp.sh --context CONTEXT [--kubeconfig FILE] [--timeout SECONDS]
#            [--interval SECONDS] [--request-timeout SECONDS]
# stdout: one line saying what was done. Exit 0 once kube-proxy runs with strictARP on, 1 when it could
# not be made so (nothing half-done is left: a restart that cannot start undoes the edit), 2 on bad
# arguments.
set -euo pipefail

readonly self=kube-proxy-strict-arp
context=""
kubeconfig=""
timeout=180
interval=2
request_timeout=20

usage() {
  cat <<'EOF'
Usage: kube-proxy-strict-arp.sh --context CONTEXT [--kubeconfig FILE] [--timeout SECONDS]
           [--interval SECONDS] [--request-timeout SECONDS]
Turns on strictARP in kube-system/kube-proxy and restarts kube-proxy whenever a pod of it is older than
the ConfigMap's last change.
  --timeout          seconds the kube-proxy rollout may take (default 180, 10 to 3600)
  --interval         seconds between two looks at the rollout (default 2, 1 to 60)
  --request-timeout  seconds one kubectl call may take (default 20, 1 to 300)
EOF
}

die() {
  echo "$self: $*" >&2
  exit 2
}

fail() {
  echo "$self: $*" >&2
  exit 1
}

# A whole number within [low, high], read as decimal whatever its leading zeros.
bounded() {
  local name=$1 value=$2 low=$3 high=$4
  [[ $value =~ ^[0-9]{1,6}$ ]] || die "$name must be a whole number of seconds, got '$value'"
  ((10#$value >= low && 10#$value <= high)) || die "$name must be from $low to $high, got '$value'"
  echo $((10#$value))
}

while (($# > 0)); do
  case $1 in
    --context | --kubeconfig | --timeout | --interval | --request-timeout)
      (($# >= 2)) || die "$1 needs a value"
      case $1 in
        --context) context=$2 ;;
        --kubeconfig) kubeconfig=$2 ;;
        --timeout) timeout=$2 ;;
        --interval) interval=$2 ;;
        --request-timeout) request_timeout=$2 ;;
      esac
      shift 2
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

[[ -n $context && $context != -* ]] || die "--context needs a context name"
timeout=$(bounded --timeout "$timeout" 10 3600)
interval=$(bounded --interval "$interval" 1 60)
request_timeout=$(bounded --request-timeout "$request_timeout" 1 300)
command -v kubectl >/dev/null 2>&1 || die "kubectl is not on PATH"

kubectl_args=(--context "$context" --request-timeout "${request_timeout}s" -n kube-system)
[[ -z $kubeconfig ]] || kubectl_args+=(--kubeconfig "$kubeconfig")
k() { kubectl "${kubectl_args[@]}" "$@"; }

# stdout alone is the ConfigMap; kubectl's warnings stay on stderr for people.
config=$(k get configmap kube-proxy --ignore-not-found -o yaml) ||
  fail "cannot read ConfigMap kube-system/kube-proxy in context $context (kubectl said why, above)"
if [[ -z $config ]]; then
  {
    echo "$self: there is no ConfigMap kube-system/kube-proxy in context $context."
    echo "strictArp needs the kubeadm-managed kube-proxy configuration. If this cluster runs kube-proxy"
    echo "some other way (or replaces it, as Cilium can), turn on strict ARP there and unset strictArp."
  } >&2
  exit 1
fi

mode=$(sed -n 's/^ *mode: *"\{0,1\}\([a-z]*\)"\{0,1\} *$/\1/p' <<<"$config" | head -n 1)
edited=0
if grep -q '^ *strictARP: *true *$' <<<"$config"; then
  :
elif grep -q '^ *strictARP: false$' <<<"$config"; then
  # resourceVersion rides along, so a concurrent edit makes replace fail instead of being overwritten.
  # The object is the server's own with one value changed: kubectl's client-side schema check (which
  # downloads the cluster's OpenAPI documents) adds nothing the API server does not check itself.
  k replace --validate=false -f - <<<"${config/strictARP: false/strictARP: true}" >/dev/null ||
    fail "could not turn strictARP on in kube-system/kube-proxy"
  edited=1
else
  fail "kube-system/kube-proxy has no 'strictARP:' setting to turn on; edit its ipvs section by hand"
fi

# RFC 3339 times in UTC sort as text: the ConfigMap's last change, and kube-proxy's oldest pod.
changed=$(k get configmap kube-proxy -o 'jsonpath={range .metadata.managedFields[*]}{.time}{"\n"}{end}' |
  sort | tail -n 1) || fail "cannot read when kube-system/kube-proxy last changed"
oldest=$(k get pods -l k8s-app=kube-proxy -o 'jsonpath={range .items[*]}{.metadata.creationTimestamp}{"\n"}{end}' |
  sort | sed -n '/./{p;q;}') || fail "cannot read kube-proxy's pods"

if [[ -n $oldest && ! $oldest < $changed ]]; then
  echo "strictARP is on and every kube-proxy pod started after it (mode: ${mode:-default}); nothing to do"
  exit 0
fi

undo_edit() {
  local current
  ((edited)) || return 0
  # The next run then finds strictARP off and does both steps.
  if current=$(k get configmap kube-proxy -o yaml) &&
    k replace --validate=false -f - <<<"${current/strictARP: true/strictARP: false}" >/dev/null; then
    echo "$self: strictARP was turned off again; nothing changed" >&2
  else
    echo "$self: could not turn strictARP off again: restart kube-proxy by hand" >&2
    echo "  kubectl --context $context -n kube-system rollout restart daemonset/kube-proxy" >&2
  fi
}

k rollout restart daemonset/kube-proxy >/dev/null || {
  echo "$self: could not restart kube-proxy" >&2
  undo_edit
  exit 1
}

# generation|observedGeneration|desired|updated|available, each empty when the API server leaves it out.
rolled_out() {
  local status
  status=$(k get daemonset kube-proxy -o 'jsonpath={.metadata.generation}|{.status.observedGeneration}|{.status.desiredNumberScheduled}|{.status.updatedNumberScheduled}|{.status.numberAvailable}') ||
    return 1
  IFS='|' read -r generation observed desired updated available <<<"$status"
  ((${observed:-0} >= ${generation:-1} && ${updated:-0} >= ${desired:-1} && ${available:-0} >= ${desired:-1}))
}
deadline=$((SECONDS + timeout))
until rolled_out; do
  if ((SECONDS + interval > deadline)); then
    # The restart was asked for and stays asked for; only its end was not seen.
    fail "kube-proxy did not finish restarting within ${timeout}s (strictARP is on). Look at: kubectl --context $context -n kube-system rollout status daemonset/kube-proxy"
  fi
  sleep "$interval"
done
if ((edited)); then
  echo "strictARP turned on and kube-proxy restarted (mode: ${mode:-default})"
else
  echo "strictARP was on, but kube-proxy had not restarted since: restarted it (mode: ${mode:-default})"
fi
