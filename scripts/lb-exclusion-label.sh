#!/usr/bin/env bash
# Removes, or puts back, a node's node.kubernetes.io/exclude-from-external-load-balancers label.
#
# kubeadm (and so KinD) puts that label on control-plane nodes, and MetalLB 0.14.3's speakers never
# announce from a labelled node; its option to ignore the label only arrives in 0.14.4. On a single-node
# KinD cluster that means an IP gets assigned and nobody answers ARP for it.
#
# Usage: lb-exclusion-label.sh remove  --context CONTEXT --node NODE [--kubeconfig FILE]
#        lb-exclusion-label.sh restore --context CONTEXT --node NODE [--kubeconfig FILE] [--previous TEXT]
# remove prints "removed:VALUE" when it took the label off, "absent" when there was none. When the label
# is already gone and TEXT says an earlier run removed it, remove prints TEXT again: pulumi-command keeps
# only the latest output, and a re-run (after an edit of this script, say) must not forget what to restore.
# restore puts the label back only when TEXT says this script removed it, so a label it never touched
# stays gone. TEXT defaults to $PULUMI_COMMAND_STDOUT, which pulumi-command sets to the previous output.
set -euo pipefail

readonly self=lb-exclusion-label
readonly label=node.kubernetes.io/exclude-from-external-load-balancers
action=""
context=""
kubeconfig=""
node=""
previous=${PULUMI_COMMAND_STDOUT:-}

usage() {
  cat <<'EOF'
Usage: lb-exclusion-label.sh remove  --context CONTEXT --node NODE [--kubeconfig FILE]
       lb-exclusion-label.sh restore --context CONTEXT --node NODE [--kubeconfig FILE] [--previous TEXT]
remove takes node.kubernetes.io/exclude-from-external-load-balancers off NODE and prints "removed:VALUE"
(or "absent"); restore puts it back only when TEXT (default $PULUMI_COMMAND_STDOUT) says remove took it.
EOF
}

die() {
  echo "$self: $*" >&2
  exit 2
}

while (($# > 0)); do
  case $1 in
    remove | restore)
      [[ -z $action ]] || die "one action only, got '$action' and '$1'"
      action=$1
      shift
      ;;
    --context | --kubeconfig | --node | --previous)
      (($# >= 2)) || die "$1 needs a value"
      case $1 in
        --context) context=$2 ;;
        --kubeconfig) kubeconfig=$2 ;;
        --node) node=$2 ;;
        --previous) previous=$2 ;;
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

[[ -n $action ]] || die "the first argument must be remove or restore"
[[ -n $context && $context != -* ]] || die "--context needs a context name"
[[ -n $node && $node != -* ]] || die "--node needs a node name"
command -v kubectl >/dev/null 2>&1 || die "kubectl is not on PATH"

kubectl_args=(--context "$context")
[[ -z $kubeconfig ]] || kubectl_args+=(--kubeconfig "$kubeconfig")

# Every kubectl call has its own timeout; stdout is read as data, stderr is left to people.
kubectl_args+=(--request-timeout 20s)

fail() {
  echo "$self: $*" >&2
  exit 1
}

# Prints "node", then " present=VALUE" when the label is there (kubeadm's value is empty); prints
# nothing when the node does not exist. Non-zero when kubectl could not ask.
label_state() {
  kubectl "${kubectl_args[@]}" get node "$node" --ignore-not-found \
    -o go-template="node{{range \$k, \$v := .metadata.labels}}{{if eq \$k \"$label\"}} present={{\$v}}{{end}}{{end}}"
}

case $action in
  remove)
    state=$(label_state) || fail "cannot read node $node in context $context (kubectl said why, above)"
    [[ -n $state ]] || fail "node $node does not exist in context $context"
    if [[ $state != *" present="* ]]; then
      if [[ $previous == removed:* ]]; then
        echo "$previous"
      else
        echo "absent"
      fi
      exit 0
    fi
    kubectl "${kubectl_args[@]}" label node "$node" "$label-" >&2 || fail "could not take $label off $node"
    after=$(label_state) || fail "could not check that $label is off $node"
    [[ $after != *" present="* ]] || fail "$label is still on $node"
    echo "removed:${state#* present=}"
    ;;
  restore)
    if [[ $previous != removed:* ]]; then
      echo "$self: $label on $node was not removed by this stack; leaving it as it is" >&2
      exit 0
    fi
    # Only the API server's NotFound means the node is gone; not reaching it keeps the record for a retry.
    found=$(kubectl "${kubectl_args[@]}" get node "$node" --ignore-not-found -o name) ||
      fail "cannot reach context $context to put $label back on $node; run destroy again once it answers"
    if [[ -z $found ]]; then
      echo "$self: node $node is gone from context $context; nothing to restore" >&2
      exit 0
    fi
    kubectl "${kubectl_args[@]}" label node "$node" "$label=${previous#removed:}" --overwrite >&2 ||
      fail "could not put $label back on $node"
    after=$(label_state) || fail "could not check that $label is back on $node"
    [[ $after == *" present=${previous#removed:}" ]] || fail "$label is not back on $node"
    echo "restored"
    ;;
esac
