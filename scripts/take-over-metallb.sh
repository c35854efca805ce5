#!/usr/bin/env bash
# Takes a cluster's MetalLB over from the runbook's native-manifest install, or from a Helm release, to
# the chart's that the stack installs, keeping the gap in ARP answers as short as the handover allows.
# Three stages, each a step of `pulumi up` of a stack with adoptExisting:
#
# webhook-entry, before the chart is applied: removes the manifest's BGPPeer webhook entry
#   (bgppeersvalidationwebhook.metallb.io; the chart's is bgppeervalidationwebhook.metallb.io) from the
#   webhook configuration both share, while it still points at the runbook's Service. Left in, it would
#   refuse every BGPPeer once that Service goes, and it would put the chart's entries out of the order
#   Pulumi records, so the next `up` would show a change.
#
# handover, beside the chart's install:
#   1. waits for the chart's controller Deployment (metallb-controller) to exist;
#   2. parks the runbook's controller (replicas 0), so that one controller alone assigns addresses and
#      writes the webhook's certificate, and waits for the chart's controller to be available and for
#      the webhook configuration to point at the chart's Service. The Deployment stays for now: it owns
#      the memberlist Secret the runbook's speakers mount;
#   3. waits for the chart's speaker DaemonSet (metallb-speaker) to exist;
#   4. parks the runbook's speakers, whose pods hold the host ports (7472, 7946) the chart's speakers
#      need: a node selector no node matches makes their DaemonSet remove its pods. It waits, at most
#      --speaker-timeout, until as many chart speakers are ready as runbook speakers were: that wait is
#      the gap in which no speaker answers ARP. It stops early when a chart speaker cannot start. (A
#      parking of the chart's speakers that an earlier failed run left is taken back at this point.);
#   5. removes the runbook's DaemonSet and Deployment (the memberlist Secret goes with it), its
#      ServiceAccounts and RBAC, and its webhook Service.
# If the chart's controller or webhooks are not ready in time, the runbook's controller comes back. If
# the chart's speakers are not, the chart's are parked in turn and the runbook's come back (the
# runbook's speakers need no controller). Either way nothing was removed, and the step fails; the next
# run starts over. It undoes the same when it is interrupted.
#
# Only objects of the native manifest are touched: by name and by the labels the manifest gives them
# (app=metallb, plus component=... on the workloads; the unlabelled Service webhook-service by its
# selector). Never the namespace, the CRDs, custom resources, or anything else. Without a runbook
# install it removes nothing, so running it again is harmless.
#
# forget-helm-release, once the chart owns the release's objects: removes Helm's records of the release
#   (Secrets of type helm.sh/release.v1, and ConfigMaps for Helm's configmap driver, labelled
#   owner=helm,name=RELEASE), so that helm no longer believes it owns them: a `helm uninstall` would
#   otherwise delete what the stack manages, CRDs and pools included. The objects stay as they are.
#
# Usage: take-over-metallb.sh webhook-entry|handover|forget-helm-release --context CONTEXT
#            [--kubeconfig FILE] [--namespace NAMESPACE] [--release NAME] [--timeout SECONDS]
#            [--speaker-timeout SECONDS] [--interval SECONDS] [--request-timeout SECONDS]
# stdout: "removed KIND/NAME" (or "forgot KIND/NAME") for each object removed, then one summary line.
# Exit 0 done, 1 when a step failed or did not finish in time, 2 on bad arguments.
set -euo pipefail

readonly self=take-over-metallb
stage=""
context=""
kubeconfig=""
namespace=metallb-system
release=metallb
timeout=300
speaker_timeout=120
interval=2
request_timeout=20

usage() {
  cat <<'EOF'
Usage: take-over-metallb.sh webhook-entry|handover|forget-helm-release --context CONTEXT
           [--kubeconfig FILE] [--namespace NAMESPACE] [--release NAME] [--timeout SECONDS]
           [--speaker-timeout SECONDS] [--interval SECONDS] [--request-timeout SECONDS]
Takes MetalLB over from the runbook's native-manifest install, or a Helm release, to the chart's.
  webhook-entry        before the chart: remove the runbook's BGPPeer webhook entry from the shared
                       webhook configuration
  handover             beside the chart: park the runbook's controller and speakers as the chart's come
                       up, then remove the runbook's objects; undo the parking if the chart's never get ready
  forget-helm-release  after the chart: remove Helm's records of release --release (default metallb)
  --timeout            seconds each wait for the chart may take (default 300, 1 to 3600)
  --speaker-timeout    seconds the speakers may take, which no speaker answers ARP in (default 120, 10 to 3600)
  --interval           seconds between two looks at the cluster (default 2, 1 to 60)
  --request-timeout    seconds one kubectl call may take (default 20, 1 to 300)
stdout: "removed KIND/NAME" or "forgot KIND/NAME" per object removed, then a summary. Exit 0 done,
1 failed, 2 bad arguments.
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
    webhook-entry | handover | forget-helm-release)
      [[ -z $stage ]] || die "one stage only, got '$stage' and '$1'"
      stage=$1
      shift
      ;;
    --context | --kubeconfig | --namespace | --release | --timeout | --speaker-timeout | --interval | --request-timeout)
      (($# >= 2)) || die "$1 needs a value"
      case $1 in
        --context) context=$2 ;;
        --kubeconfig) kubeconfig=$2 ;;
        --namespace) namespace=$2 ;;
        --release) release=$2 ;;
        --timeout) timeout=$2 ;;
        --speaker-timeout) speaker_timeout=$2 ;;
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

[[ -n $stage ]] || die "the first argument must be the stage: webhook-entry, handover or forget-helm-release"
[[ -n $context && $context != -* ]] || die "--context needs a context name"
[[ -n $namespace && $namespace != -* ]] || die "--namespace needs a namespace name"
[[ $release =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || die "--release must be a Helm release name, got '$release'"
timeout=$(bounded --timeout "$timeout" 1 3600)
speaker_timeout=$(bounded --speaker-timeout "$speaker_timeout" 10 3600)
interval=$(bounded --interval "$interval" 1 60)
request_timeout=$(bounded --request-timeout "$request_timeout" 1 300)
command -v kubectl >/dev/null 2>&1 || die "kubectl is not on PATH"

kubectl_args=(--context "$context" --request-timeout "${request_timeout}s")
[[ -z $kubeconfig ]] || kubectl_args+=(--kubeconfig "$kubeconfig")
k() { kubectl "${kubectl_args[@]}" "$@"; }

removed=0
readonly webhooks=validatingwebhookconfigurations.admissionregistration.k8s.io
readonly stale_webhook=bgppeersvalidationwebhook.metallb.io

if [[ $stage == webhook-entry ]]; then
  target=$(k get "$webhooks" metallb-webhook-configuration --ignore-not-found \
    -o "jsonpath={.webhooks[?(@.name==\"$stale_webhook\")].clientConfig.service.name}") ||
    fail "could not read ValidatingWebhookConfiguration metallb-webhook-configuration"
  if [[ $target != webhook-service ]]; then
    echo "no runbook webhook entry in metallb-webhook-configuration (context $context): nothing removed"
    exit 0
  fi
  k patch "$webhooks" metallb-webhook-configuration --type strategic \
    -p "{\"webhooks\":[{\"name\":\"$stale_webhook\",\"\$patch\":\"delete\"}]}" >/dev/null ||
    fail "could not remove webhook $stale_webhook from metallb-webhook-configuration"
  echo "removed webhook $stale_webhook from validatingwebhookconfiguration.admissionregistration.k8s.io/metallb-webhook-configuration"
  exit 0
fi

if [[ $stage == forget-helm-release ]]; then
  records="owner=helm,name=$release"
  forgotten=0
  for kind in secrets configmaps; do
    selectors=(-l "$records")
    [[ $kind == configmaps ]] || selectors+=(--field-selector type=helm.sh/release.v1)
    found=$(k get "$kind" -n "$namespace" "${selectors[@]}" -o name) ||
      fail "could not look for the $kind holding Helm's records of release $release in $namespace"
    while read -r record; do
      [[ -n $record ]] || continue
      k delete "$record" -n "$namespace" --wait=false >/dev/null || fail "could not remove $record"
      echo "forgot $record"
      forgotten=$((forgotten + 1))
    done <<<"$found"
  done
  left=$(k get secrets,configmaps -n "$namespace" -l "$records" -o name) ||
    fail "could not check that Helm's records of release $release are gone"
  [[ -z $left ]] || fail "Helm's records of release $release are still there: $left"
  if ((forgotten == 0)); then
    echo "no Helm release $release in $namespace (context $context): nothing to forget"
  else
    echo "forgot Helm release $release in $namespace: $forgotten records removed; its objects stay, now the stack's"
  fi
  exit 0
fi

# --- handover ------------------------------------------------------------------------------------------

# Each undo step is recorded before the change it undoes is sent: a request that times out after the
# API server applied it must still be undone. Every step is safe to run whether or not that change landed.
undo_steps=()

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

trap 'fail_and_undo "interrupted; the parking was undone"' INT TERM HUP

# Waits up to SECONDS for `check` (a function) to succeed: returns 0 then, 1 at the deadline, and 2 as
# soon as `stop` (a function, optional) succeeds. A failed kubectl call is retried until then, since an
# API server that restarts mid-handover comes back; what kubectl said stays on stderr for people.
await_condition() {
  local check=$1 seconds=$2 stop=${3:-}
  local deadline=$((SECONDS + seconds))
  while ! "$check"; do
    if [[ -n $stop ]] && "$stop"; then
      return 2
    fi
    ((SECONDS + interval <= deadline)) || return 1
    sleep "$interval"
  done
}

# await_condition, or undo and fail.
wait_until() {
  local what=$1 check=$2 seconds=$3
  await_condition "$check" "$seconds" ||
    fail_and_undo "gave up after ${seconds}s waiting for $what (context $context, namespace $namespace)"
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
  wait_until "$resource $name to be deleted" gone "$timeout"
}

chart_controller_exists() { [[ -n $(present deployments.apps metallb-controller) ]]; }
chart_speaker_exists() { [[ -n $(present daemonsets.apps metallb-speaker) ]]; }
runbook_controller_pods_gone() {
  local pods
  pods=$(k get pods -n "$namespace" -l app=metallb,component=controller -o name) || return 1
  [[ -z $pods ]]
}

# generation|observedGeneration|wanted|ready|updated, each empty when the API server leaves it out.
read_rollout() {
  local resource=$1 name=$2 fields=$3 status
  status=$(k get "$resource" "$name" -n "$namespace" -o "jsonpath=$fields") || return 1
  IFS='|' read -r generation observed wanted ready updated <<<"$status"
}
chart_controller_available() {
  read_rollout deployments.apps metallb-controller \
    '{.metadata.generation}|{.status.observedGeneration}|{.spec.replicas}|{.status.availableReplicas}|{.status.updatedReplicas}' ||
    return 1
  ((${observed:-0} >= ${generation:-1} && ${wanted:-0} >= 1 && ${ready:-0} >= ${wanted:-0} && ${updated:-0} >= ${wanted:-0}))
}
readonly speaker_fields='{.metadata.generation}|{.status.observedGeneration}|{.status.desiredNumberScheduled}|{.status.numberReady}|{.status.updatedNumberScheduled}'
# As many chart speakers ready as there were runbook speakers ready (at least one): a node that is down
# counts in desiredNumberScheduled, and must not keep the handover from ever finishing.
needed_speakers=1
chart_speakers_ready() {
  read_rollout daemonsets.apps metallb-speaker "$speaker_fields" || return 1
  ((${observed:-0} >= ${generation:-1} && ${ready:-0} >= needed_speakers && ${updated:-0} >= needed_speakers))
}
runbook_speakers_ready() {
  read_rollout daemonsets.apps speaker "$speaker_fields" || return 1
  ((${ready:-0} >= needed_speakers))
}
# A chart speaker that cannot start: waiting longer would only lengthen the gap.
stopped_because=""
chart_speakers_failing() {
  local reasons reason
  reasons=$(k get pods -n "$namespace" -l app.kubernetes.io/name=metallb,app.kubernetes.io/component=speaker \
    -o 'jsonpath={range .items[*].status.containerStatuses[*]}{.state.waiting.reason}{"\n"}{end}') || return 1
  while read -r reason; do
    case $reason in
      CrashLoopBackOff | ImagePullBackOff | ErrImagePull | CreateContainerConfigError | InvalidImageName)
        stopped_because="a chart speaker is in $reason"
        return 0
        ;;
    esac
  done <<<"$reasons"
  return 1
}

# A parked DaemonSet carries a node selector no node has; parking is a merge patch, undone by a null.
readonly park_label=lan.macula.io/parked-by-takeover
select_speakers() {
  k patch daemonsets.apps "$1" -n "$namespace" --type merge \
    -p "{\"spec\":{\"template\":{\"spec\":{\"nodeSelector\":{\"$park_label\":$2}}}}}" >/dev/null
}
scale_controller() {
  k patch deployments.apps controller -n "$namespace" --type merge -p "{\"spec\":{\"replicas\":$1}}" >/dev/null
}
# Brings the runbook's speakers back: the chart's go first, as theirs hold the host ports once placed.
give_speakers_back() {
  select_speakers metallb-speaker '"true"'
  select_speakers speaker null
}

# True once no entry points at the runbook's Service: the chart's configuration has been applied over
# the shared one.
webhooks_moved() {
  local entries entry
  entries=$(k get "$webhooks" metallb-webhook-configuration --ignore-not-found \
    -o 'jsonpath={range .webhooks[*]}{.clientConfig.service.name}{"\n"}{end}') || return 1
  while read -r entry; do
    [[ $entry != webhook-service ]] || return 1
  done <<<"$entries"
}

# 1. The chart's controller.
wait_until "the chart's Deployment metallb-controller to be created" chart_controller_exists "$timeout"

# 2. The controller.
runbook_controller=$(runbooks deployments.apps controller app=metallb,component=controller) ||
  fail "could not look for the runbook's controller"
if [[ -n $runbook_controller ]]; then
  replicas=$(k get deployments.apps controller -n "$namespace" -o 'jsonpath={.spec.replicas}') ||
    fail "could not read the runbook's controller"
  # 0 found means an earlier run parked it and was stopped: the manifest runs one.
  ((${replicas:-0} > 0)) || replicas=1
  undo_steps+=("scale_controller $replicas")
  scale_controller 0 || fail_and_undo "could not scale the runbook's controller to 0"
  wait_until "the runbook's controller pods to stop" runbook_controller_pods_gone "$timeout"
fi
wait_until "the chart's controller to be available" chart_controller_available "$timeout"
# Pulumi applies the chart's webhook configuration over the shared one beside the chart's workloads.
wait_until "the webhook configuration to point at the chart's Service" webhooks_moved "$timeout"
# From here on the chart's controller serves; two controllers would fight over the webhook's certificate.
undo_steps=()

# 3-4. The speakers. An earlier run that failed here left the chart's parked: they are let go only as
# the runbook's are parked, so that no node is ever left with neither for longer than the handover.
wait_until "the chart's DaemonSet metallb-speaker to be created" chart_speaker_exists "$timeout"
chart_parked=$(k get daemonsets.apps metallb-speaker -n "$namespace" \
  -o "jsonpath={.spec.template.spec.nodeSelector.lan\\.macula\\.io/parked-by-takeover}") ||
  fail "could not read the chart's speaker DaemonSet"
runbook_speaker=$(runbooks daemonsets.apps speaker app=metallb,component=speaker) ||
  fail "could not look for the runbook's speaker DaemonSet"
speakers_gap=""
if [[ -n $runbook_speaker ]]; then
  read_rollout daemonsets.apps speaker "$speaker_fields" || fail "could not read the runbook's speakers"
  ((${ready:-0} <= 1)) || needed_speakers=$ready
  parked_at=$SECONDS
  undo_steps+=("give_speakers_back")
  select_speakers speaker '"true"' || fail_and_undo "could not park the runbook's speakers"
  if [[ -n $chart_parked ]]; then
    select_speakers metallb-speaker null || fail_and_undo "could not let the chart's speakers go"
  fi
  outcome=0
  await_condition chart_speakers_ready "$speaker_timeout" chart_speakers_failing || outcome=$?
  if ((outcome != 0)); then
    why="not ready within ${speaker_timeout}s"
    ((outcome == 1)) || why=$stopped_because
    undo
    if await_condition runbook_speakers_ready "$speaker_timeout"; then
      fail "the chart's speakers did not take over ($why); the runbook's are back and answer ARP. Look at: kubectl --context $context -n $namespace describe daemonset metallb-speaker"
    fi
    fail "the chart's speakers did not take over ($why), and the runbook's did not come back either: nothing answers ARP. Look at: kubectl --context $context -n $namespace get pods -o wide. To run the chart's speakers instead: kubectl --context $context -n $namespace patch daemonset metallb-speaker --type merge -p '{\"spec\":{\"template\":{\"spec\":{\"nodeSelector\":{\"$park_label\":null}}}}}'"
  fi
  speakers_gap=$((SECONDS - parked_at))
else
  if [[ -n $chart_parked ]]; then
    select_speakers metallb-speaker null || fail "could not let the chart's speakers go"
  fi
  wait_until "the chart's speakers to be ready on every node" chart_speakers_ready "$timeout"
fi
undo_steps=()
trap - INT TERM HUP

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
