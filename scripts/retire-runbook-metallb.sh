#!/usr/bin/env bash
# Hands a cluster's MetalLB over from the runbook's native-manifest install to the chart's, keeping the
# gap in ARP answers as short as the handover allows.
#
# It runs beside the chart's install, during `pulumi up` of a stack with adoptExisting:
#   1. waits for the chart's controller Deployment (metallb-controller) to exist;
#   2. parks the runbook's controller (replicas 0), so that one controller alone assigns addresses and
#      writes the webhook's CA bundle, and waits for the chart's controller to be available and for the
#      webhook configuration to point at the chart's Service. The Deployment stays for now: it owns the
#      memberlist Secret the runbook's speakers mount;
#   3. waits for the chart's speaker DaemonSet (metallb-speaker) to exist;
#   4. parks the runbook's speakers, whose pods hold the host ports (7472, 7946) the chart's speakers
#      need: a node selector no node matches makes their DaemonSet remove its pods. It waits until the
#      chart's speakers are ready on every node; that wait is the gap in which no speaker answers ARP;
#   5. removes the runbook's DaemonSet and Deployment (the memberlist Secret goes with it), its
#      ServiceAccounts and RBAC, its BGPPeer webhook entry in the shared webhook configuration (the
#      chart names it differently), and then its webhook Service.
# If the chart's controller, webhooks or speakers are not ready in time, it undoes the parking (the runbook's
# speakers and controller come back) and fails, so `up` stops with the LAN answering as before.
# Only objects of the native manifest are touched: by name and by the labels the manifest gives them
# (app=metallb, plus component=... on the workloads; the unlabelled Service webhook-service by its
# selector). Never the namespace, the CRDs, custom resources, or anything else. Without a runbook
# install it removes nothing and only waits for the chart, so running it again is harmless.
#
# Usage: retire-runbook-metallb.sh --context CONTEXT [--kubeconfig FILE] [--namespace NAMESPACE]
#            [--timeout SECONDS] [--interval SECONDS] [--request-timeout SECONDS]
# Each wait may take --timeout seconds. stdout: "removed KIND/NAME" for each object removed, then one
# summary line. Exit 0 once the chart's MetalLB runs and the runbook's is gone, 1 when a step failed or
# did not finish in time, 2 on bad arguments.
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
  --timeout          seconds each wait may take (default 300, at most 3600)
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

kubectl_args=(--context "$context" --request-timeout "${request_timeout}s")
[[ -z $kubeconfig ]] || kubectl_args+=(--kubeconfig "$kubeconfig")
k() { kubectl "${kubectl_args[@]}" "$@"; }

removed=0
undo_steps=()

# Undoes the parking done so far, newest first, before a failure is reported.
undo() {
  local step
  for ((step = ${#undo_steps[@]} - 1; step >= 0; step--)); do
    ${undo_steps[step]} || echo "$self: could not undo: ${undo_steps[step]}" >&2
  done
  undo_steps=()
}

fail_and_undo() {
  undo
  fail "$@"
}

# Waits up to --timeout for `check` (a function) to succeed. A failed kubectl call is retried until then,
# since an API server that restarts mid-handover comes back; what kubectl said stays on stderr for people.
wait_until() {
  local what=$1 check=$2 deadline=$((SECONDS + timeout))
  while ! "$check"; do
    if ((SECONDS + interval > deadline)); then
      fail_and_undo "gave up after ${timeout}s waiting for $what (context $context, namespace $namespace)"
    fi
    sleep "$interval"
  done
}

# Prints the object's kind/name if it exists, nothing if it does not; non-zero when kubectl cannot say.
present() {
  k get "$1" "$2" -n "$namespace" --ignore-not-found -o name
}

# Prints kind/name of RESOURCE NAME when it carries LABELS (a selector; none: by name alone).
runbooks() {
  local resource=$1 name=$2 labels=${3:-}
  local selectors=(--field-selector "metadata.name=$name")
  [[ -z $labels ]] || selectors+=(-l "$labels")
  # `get -o name` prints nothing when nothing matches ("kubectl delete" would print a sentence instead).
  k get "$resource" -n "$namespace" "${selectors[@]}" -o name
}

# Removes RESOURCE NAME if it is the runbook's (see runbooks), then checks that it is gone.
retire() {
  local resource=$1 name=$2 labels=${3:-} matched
  matched=$(runbooks "$resource" "$name" "$labels") ||
    fail "could not look for $resource $name; nothing after it was touched"
  [[ -n $matched ]] || return 0
  k delete "$resource" "$name" -n "$namespace" --wait=false >/dev/null ||
    fail "could not remove $matched; nothing after it was touched"
  echo "removed $matched"
  removed=$((removed + 1))
  gone() {
    local left
    left=$(present "$resource" "$name") || return 1
    [[ -z $left ]]
  }
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

# The runbook's controller is parked at 0 replicas, its speakers under a node selector no node carries.
readonly park_label=lan.macula.io/runbook-speaker-retired
scale_controller() {
  k patch deployments.apps controller -n "$namespace" --type merge -p "{\"spec\":{\"replicas\":$1}}" >/dev/null
}
select_speakers() {
  k patch daemonsets.apps speaker -n "$namespace" --type merge \
    -p "{\"spec\":{\"template\":{\"spec\":{\"nodeSelector\":{\"$park_label\":$1}}}}}" >/dev/null
}

readonly webhooks=validatingwebhookconfigurations.admissionregistration.k8s.io
readonly stale_webhook=bgppeersvalidationwebhook.metallb.io
# True once no entry but the manifest's BGPPeer one points at the runbook's Service: the chart's own
# configuration has been applied over the shared object.
webhooks_moved() {
  local entries
  entries=$(k get "$webhooks" metallb-webhook-configuration --ignore-not-found \
    -o 'jsonpath={range .webhooks[*]}{.name}={.clientConfig.service.name}{"\n"}{end}') || return 1
  ! grep -v "^$stale_webhook=" <<<"$entries" | grep -q '=webhook-service$'
}

# 1-2. The controller.
wait_until "the chart's Deployment metallb-controller to be created" chart_controller_exists
runbook_controller=$(runbooks deployments.apps controller app=metallb,component=controller) ||
  fail "could not look for the runbook's controller"
if [[ -n $runbook_controller ]]; then
  replicas=$(k get deployments.apps controller -n "$namespace" -o 'jsonpath={.spec.replicas}') ||
    fail "could not read the runbook's controller"
  scale_controller 0 || fail "could not scale the runbook's controller to 0"
  # 0 found means an earlier run parked it and was stopped: the manifest runs one.
  ((${replicas:-0} > 0)) || replicas=1
  undo_steps+=("scale_controller $replicas")
  wait_until "the runbook's controller pods to stop" runbook_controller_pods_gone
fi
wait_until "the chart's controller to be available" chart_controller_available
# Pulumi applies the chart's webhook configuration over the shared one beside the chart's workloads.
wait_until "the webhook configuration to point at the chart's Service" webhooks_moved

# 3-4. The speakers.
wait_until "the chart's DaemonSet metallb-speaker to be created" chart_speaker_exists
runbook_speaker=$(runbooks daemonsets.apps speaker app=metallb,component=speaker) ||
  fail_and_undo "could not look for the runbook's speaker DaemonSet"
speakers_gap=""
if [[ -n $runbook_speaker ]]; then
  parked_at=$SECONDS
  select_speakers '"true"' || fail_and_undo "could not park the runbook's speakers"
  undo_steps+=("select_speakers null")
  wait_until "the chart's speakers to be ready on every node (the runbook's are back)" chart_speakers_ready
  speakers_gap=$((SECONDS - parked_at))
else
  wait_until "the chart's speakers to be ready on every node" chart_speakers_ready
fi
undo_steps=()

# 5. The rest of the runbook's install.
retire daemonsets.apps speaker app=metallb,component=speaker
retire deployments.apps controller app=metallb,component=controller
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

# The manifest calls its BGPPeer webhook bgppeersvalidationwebhook, the chart bgppeervalidationwebhook.
# Taking over the shared webhook configuration leaves the manifest's entry behind, pointing at the
# runbook's Service, and with failurePolicy Fail it would refuse every BGPPeer once that Service goes.
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

# The manifest leaves its webhook Service unlabelled: it is the runbook's when it selects the runbook's
# controller and nothing else.
selector=$(k get services webhook-service -n "$namespace" --ignore-not-found -o 'jsonpath={.spec.selector}') ||
  fail "could not read Service webhook-service"
if [[ $selector == '{"component":"controller"}' ]]; then
  retire services webhook-service
fi

if ((removed == 0)); then
  echo "no runbook MetalLB in $namespace (context $context): nothing removed; the chart's MetalLB runs"
elif [[ -n $speakers_gap ]]; then
  echo "handed over: removed $removed objects of the runbook's MetalLB; the chart's speakers were ready ${speakers_gap}s after the runbook's were parked"
else
  echo "handed over: removed $removed objects of the runbook's MetalLB; the chart's MetalLB runs"
fi
