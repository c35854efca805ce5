#!/usr/bin/env bash
# Hands a cluster's MetalLB over from the runbook's native-manifest install to the chart's, keeping the
# gap in ARP answers as short as the handover allows.
#
# It runs beside the chart's install, during `pulumi up` of a stack with adoptExisting:
#   1. waits for the chart's controller Deployment (metallb-controller) to exist;
#   2. removes the runbook's controller Deployment, so that one controller alone assigns addresses and
#      writes the webhook's CA bundle, and waits for the chart's controller to be available;
#   3. waits for the chart's speaker DaemonSet (metallb-speaker) to exist;
#   4. parks the runbook's speakers, whose pods hold the host ports (7472, 7946) the chart's speakers
#      need: a node selector no node matches makes the DaemonSet remove its pods, and can be taken back.
#      It waits until the chart's speakers are ready on every node (that wait is the gap in which no
#      speaker answers ARP), then removes the runbook's DaemonSet. If the chart's speakers do not get
#      ready in time, it takes the node selector back, so the runbook's speakers return, and fails;
#   5. removes the rest of what the manifest created: its ServiceAccounts, RBAC and Service, and its
#      BGPPeer webhook entry, which the chart names differently, from the shared webhook configuration.
# Only objects of the native manifest go: by name and by the labels the manifest gives them (app=metallb,
# plus component=... on the workloads; the unlabelled Service webhook-service by its selector). Never the
# namespace, the CRDs, custom resources, or anything else. Without a runbook install it removes nothing
# and only waits for the chart, so running it again is harmless.
#
# Usage: retire-runbook-metallb.sh --context CONTEXT [--kubeconfig FILE] [--namespace NAMESPACE]
#            [--timeout SECONDS] [--interval SECONDS] [--request-timeout SECONDS]
# stdout: "removed KIND/NAME" for each object removed, then one summary line. Exit 0 once the chart's
# MetalLB runs and the runbook's is gone, 1 when a step failed or did not finish in time, 2 on bad
# arguments.
set -euo pipefail

readonly self=retire-runbook-metallb
context=""
kubeconfig=""
namespace=metallb-system
timeout=300
interval=2
request_timeout=20

usage() {
  cat <<'EOF'
Usage: retire-runbook-metallb.sh --context CONTEXT [--kubeconfig FILE] [--namespace NAMESPACE]
           [--timeout SECONDS] [--interval SECONDS] [--request-timeout SECONDS]
Hands MetalLB over from the runbook's native-manifest install to the chart's: removes the runbook's
controller, speaker, ServiceAccounts, RBAC and Service as the chart's workloads come up.
  --timeout          seconds for the whole handover (default 300, at most 3600)
  --interval         seconds between two looks at the cluster (default 2, 1 to 60)
  --request-timeout  seconds one kubectl call may take (default 20, 1 to 300)
stdout: "removed KIND/NAME" per object removed, then a summary. Exit 0 done, 1 failed, 2 bad arguments.
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
    --context | --kubeconfig | --namespace | --timeout | --interval | --request-timeout)
      (($# >= 2)) || die "$1 needs a value"
      case $1 in
        --context) context=$2 ;;
        --kubeconfig) kubeconfig=$2 ;;
        --namespace) namespace=$2 ;;
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
[[ -n $namespace && $namespace != -* ]] || die "--namespace needs a namespace name"
timeout=$(bounded --timeout "$timeout" 1 3600)
interval=$(bounded --interval "$interval" 1 60)
request_timeout=$(bounded --request-timeout "$request_timeout" 1 300)
command -v kubectl >/dev/null 2>&1 || die "kubectl is not on PATH"

kubectl_args=(--context "$context" --request-timeout "${request_timeout}s")
[[ -z $kubeconfig ]] || kubectl_args+=(--kubeconfig "$kubeconfig")
k() { kubectl "${kubectl_args[@]}" "$@"; }

deadline=$((SECONDS + timeout))
removed=0

# Waits until `check` (a function) succeeds. A failed kubectl call is retried until the deadline, since
# an API server that restarts mid-handover comes back; what kubectl said stays on stderr for people.
wait_until() {
  local what=$1 check=$2
  while ! "$check"; do
    if ((SECONDS + interval > deadline)); then
      fail "gave up after ${timeout}s waiting for $what (context $context, namespace $namespace)"
    fi
    sleep "$interval"
  done
}

# Prints the object's kind/name if it exists, nothing if it does not; non-zero when kubectl cannot say.
present() {
  k get "$1" "$2" -n "$namespace" --ignore-not-found -o name
}

# Removes RESOURCE NAME if it carries LABELS (a selector; none given: by name alone), then checks that
# it is gone.
retire() {
  local resource=$1 name=$2 labels=${3:-} matched
  local selectors=(--field-selector "metadata.name=$name")
  [[ -z $labels ]] || selectors+=(-l "$labels")
  # `get -o name` prints nothing when nothing matches ("kubectl delete" would print a sentence instead).
  matched=$(k get "$resource" -n "$namespace" "${selectors[@]}" -o name) ||
    fail "could not look for $resource $name; nothing after it was touched"
  [[ -n $matched ]] || return 0
  k delete "$resource" "$name" -n "$namespace" --wait=false >/dev/null ||
    fail "could not remove $matched; nothing after it was touched"
  echo "removed $matched"
  removed=$((removed + 1))
  gone() { [[ -z $(present "$resource" "$name") ]]; }
  wait_until "$resource $name to be deleted" gone
}

chart_controller_exists() { [[ -n $(present deployments.apps metallb-controller) ]]; }
chart_speaker_exists() { [[ -n $(present daemonsets.apps metallb-speaker) ]]; }
runbook_controller_pods_gone() {
  local pods
  pods=$(k get pods -n "$namespace" -l app=metallb,component=controller -o name) || return 1
  [[ -z $pods ]]
}

# generation|observedGeneration|wanted|ready|updated, each empty when the API server leaves it out.
rollout() {
  local resource=$1 name=$2 fields=$3 status
  status=$(k get "$resource" "$name" -n "$namespace" -o "jsonpath=$fields") || return 1
  IFS='|' read -r generation observed wanted ready updated <<<"$status"
  ((${observed:-0} >= ${generation:-1} && ${wanted:-0} >= 1 && ${ready:-0} == ${wanted:-0} && ${updated:-0} == ${wanted:-0}))
}
chart_controller_available() {
  rollout deployments.apps metallb-controller \
    '{.metadata.generation}|{.status.observedGeneration}|{.spec.replicas}|{.status.availableReplicas}|{.status.updatedReplicas}'
}
chart_speakers_ready() {
  rollout daemonsets.apps metallb-speaker \
    '{.metadata.generation}|{.status.observedGeneration}|{.status.desiredNumberScheduled}|{.status.numberReady}|{.status.updatedNumberScheduled}'
}

# The runbook's speakers are parked under a node selector no node carries.
readonly park_label=lan.macula.io/runbook-speaker-retired
parked='"true"'
park() {
  k patch daemonsets.apps speaker -n "$namespace" --type merge \
    -p "{\"spec\":{\"template\":{\"spec\":{\"nodeSelector\":{\"$park_label\":$1}}}}}" >/dev/null ||
    fail "could not set the node selector $park_label=$1 on the runbook's speaker DaemonSet"
}

# Like wait_until, but returns 1 at the deadline instead of failing, so the caller can undo first.
wait_for_speakers() {
  while ! chart_speakers_ready; do
    ((SECONDS + interval <= deadline)) || return 1
    sleep "$interval"
  done
}

wait_until "the chart's Deployment metallb-controller to be created" chart_controller_exists
retire deployments.apps controller app=metallb,component=controller
wait_until "the runbook's controller pods to stop" runbook_controller_pods_gone
wait_until "the chart's controller to be available" chart_controller_available

wait_until "the chart's DaemonSet metallb-speaker to be created" chart_speaker_exists
runbook_speaker=$(k get daemonsets.apps -n "$namespace" -l app=metallb,component=speaker \
  --field-selector metadata.name=speaker -o name) || fail "could not look for the runbook's speaker DaemonSet"
speakers_retired=0
if [[ -n $runbook_speaker ]]; then
  handover_started=$SECONDS
  park "$parked"
  if ! wait_for_speakers; then
    park null
    fail "the chart's speakers were not ready within ${timeout}s of parking the runbook's; the runbook's speakers are back (node selector $park_label taken off). Look at: kubectl --context $context -n $namespace describe daemonset metallb-speaker"
  fi
  speakers_gap=$((SECONDS - handover_started))
  retire daemonsets.apps speaker app=metallb,component=speaker
  speakers_retired=1
else
  wait_until "the chart's speakers to be ready on every node" chart_speakers_ready
fi

for leftover in \
  "serviceaccounts controller" "serviceaccounts speaker" \
  "roles.rbac.authorization.k8s.io controller" "roles.rbac.authorization.k8s.io pod-lister" \
  "rolebindings.rbac.authorization.k8s.io controller" "rolebindings.rbac.authorization.k8s.io pod-lister" \
  "clusterroles.rbac.authorization.k8s.io metallb-system:controller" \
  "clusterroles.rbac.authorization.k8s.io metallb-system:speaker" \
  "clusterrolebindings.rbac.authorization.k8s.io metallb-system:controller" \
  "clusterrolebindings.rbac.authorization.k8s.io metallb-system:speaker"; do
  read -r resource name <<<"$leftover"
  retire "$resource" "$name" app=metallb
done

# The manifest leaves its webhook Service unlabelled: it is the runbook's when it selects the runbook's
# controller and nothing else.
selector=$(k get services webhook-service -n "$namespace" --ignore-not-found -o 'jsonpath={.spec.selector}') ||
  fail "could not read Service webhook-service"
if [[ $selector == '{"component":"controller"}' ]]; then
  retire services webhook-service
fi

# The manifest calls its BGPPeer webhook bgppeersvalidationwebhook, the chart bgppeervalidationwebhook.
# Taking over the shared webhook configuration leaves the manifest's entry behind, pointing at the
# Service removed above, and with failurePolicy Fail it would refuse every BGPPeer. It goes too, if it
# still points at the runbook's Service.
readonly webhooks=validatingwebhookconfigurations.admissionregistration.k8s.io
readonly stale_webhook=bgppeersvalidationwebhook.metallb.io
target=$(k get "$webhooks" metallb-webhook-configuration --ignore-not-found \
  -o "jsonpath={.webhooks[?(@.name==\"$stale_webhook\")].clientConfig.service.name}") ||
  fail "could not read ValidatingWebhookConfiguration metallb-webhook-configuration"
if [[ $target == webhook-service ]]; then
  k patch "$webhooks" metallb-webhook-configuration --type strategic \
    -p "{\"webhooks\":[{\"name\":\"$stale_webhook\",\"\$patch\":\"delete\"}]}" >/dev/null ||
    fail "could not remove webhook $stale_webhook from metallb-webhook-configuration"
  echo "removed webhook $stale_webhook from validatingwebhookconfiguration.admissionregistration.k8s.io/metallb-webhook-configuration"
  removed=$((removed + 1))
fi

if ((removed == 0)); then
  echo "no runbook MetalLB in $namespace (context $context): nothing removed; the chart's MetalLB runs"
elif ((speakers_retired)); then
  echo "handed over: removed $removed objects of the runbook's MetalLB; the chart's speakers were ready ${speakers_gap}s after the runbook's were removed"
else
  echo "handed over: removed $removed objects of the runbook's MetalLB; the chart's MetalLB runs"
fi
