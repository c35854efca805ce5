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
action=${1:-}
shift || true
context=""
kubeconfig=""
node=""
previous=${PULUMI_COMMAND_STDOUT:-}

die() {
  echo "$self: $*" >&2
  exit 2
}

while (($# > 0)); do
  case $1 in
    --context | --kubeconfig | --node | --previous)
      (($# >= 2)) || die "$1 needs a value"
      declare "${1#--}=$2"
      shift 2
      ;;
    *) die "unknown argument: $1" ;;
  esac
done

[[ $action == remove || $action == restore ]] || die "the first argument must be remove or restore"
[[ -n $context ]] || die "--context is required"
[[ -n $node ]] || die "--node is required"
command -v kubectl >/dev/null 2>&1 || die "kubectl is not on PATH"

kubectl_args=(--context "$context")
[[ -z $kubeconfig ]] || kubectl_args+=(--kubeconfig "$kubeconfig")

# Prints "present=VALUE" when the label is there (kubeadm's value is empty), nothing when it is not.
label_state() {
  kubectl "${kubectl_args[@]}" get node "$node" -o go-template="{{range \$k, \$v := .metadata.labels}}{{if eq \$k \"$label\"}}present={{\$v}}{{end}}{{end}}"
}

case $action in
  remove)
    if ! state=$(label_state 2>&1); then
      die "cannot read node $node in context $context: $state"
    fi
    if [[ $state != present=* ]]; then
      if [[ $previous == removed:* ]]; then
        echo "$previous"
      else
        echo "absent"
      fi
      exit 0
    fi
    kubectl "${kubectl_args[@]}" label node "$node" "$label-" >&2
    echo "removed:${state#present=}"
    ;;
  restore)
    if [[ $previous != removed:* ]]; then
      echo "$self: $label on $node was not removed by this stack; leaving it as it is" >&2
      exit 0
    fi
    if ! kubectl "${kubectl_args[@]}" get node "$node" -o name >/dev/null 2>&1; then
      echo "$self: node $node is gone from context $context; nothing to restore" >&2
      exit 0
    fi
    kubectl "${kubectl_args[@]}" label node "$node" "$label=${previous#removed:}" --overwrite >&2
    echo "restored"
    ;;
esac
