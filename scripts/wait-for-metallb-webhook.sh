#!/usr/bin/env bash
# Waits until MetalLB's validating webhook answers admission requests.
#
# Right after the chart is installed the controller is still generating its webhook certificate, so
# creating an IPAddressPool fails with "failed calling webhook ... connection refused", and
# pulumi-kubernetes does not retry that rejection. A server-side dry run of a throwaway L2Advertisement
# goes through the same admission chain without storing anything, so its success means the real objects
# will be admitted.
#
# What waiting cannot fix fails at once, found out from answers kubectl gives as data, never from its
# error messages: a context kubectl cannot use (unknown, or its kubeconfig unreadable), a credential
# plugin that is not installed, and no permission to create L2Advertisements. Every kubectl call has its
# own timeout, so one hung call cannot outlast the deadline by much.
#
# Usage: wait-for-metallb-webhook.sh --context CONTEXT [--kubeconfig FILE] [--namespace NAMESPACE]
#            [--timeout SECONDS] [--interval SECONDS] [--request-timeout SECONDS]
# stdout: one line once the webhook serves. Exit 0 serving, 1 not serving in time or never can be,
# 2 on bad arguments.
set -euo pipefail

readonly self=wait-for-metallb-webhook
context=""
kubeconfig=""
namespace=metallb-system
timeout=300
interval=5
request_timeout=20

usage() {
  cat <<'EOF'
Usage: wait-for-metallb-webhook.sh --context CONTEXT [--kubeconfig FILE] [--namespace NAMESPACE]
           [--timeout SECONDS] [--interval SECONDS] [--request-timeout SECONDS]
Waits until MetalLB's validating webhook admits a server-side dry run of an L2Advertisement.
  --timeout          seconds to wait in all (default 300, 10 to 3600)
  --interval         seconds between two probes (default 5, 1 to 60)
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
timeout=$(bounded --timeout "$timeout" 10 3600)
interval=$(bounded --interval "$interval" 1 60)
request_timeout=$(bounded --request-timeout "$request_timeout" 1 300)
command -v kubectl >/dev/null 2>&1 || die "kubectl is not on PATH; it is needed to probe the webhook"

target=(--context "$context")
[[ -z $kubeconfig ]] || target+=(--kubeconfig "$kubeconfig")
k() { kubectl "${target[@]}" --request-timeout "${request_timeout}s" "$@"; }

# Can kubectl use the context at all? (Answered by exit status and stdout: the context's own name.)
found=$(kubectl "${target[@]}" config view --minify -o 'jsonpath={.contexts[0].name}') ||
  fail "kubectl cannot use context $context: unknown context, or a kubeconfig it cannot read (kubectl said why, above)"
[[ $found == "$context" ]] || fail "kubectl cannot use context $context: it is not in the kubeconfig"
plugin=$(kubectl "${target[@]}" config view --minify -o 'jsonpath={.users[0].user.exec.command}') ||
  fail "kubectl cannot read the credentials of context $context"
if [[ -n $plugin ]] && ! command -v "$plugin" >/dev/null 2>&1; then
  fail "context $context logs in through the credential plugin '$plugin', which is not installed here"
fi

errors=$(mktemp)
trap 'rm -f "$errors"' EXIT
deadline=$((SECONDS + timeout))
probe="apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata:
  name: pulumi-webhook-readiness-probe
  namespace: $namespace"
attempt=0
while :; do
  attempt=$((attempt + 1))
  # "no" is an answer (exit 1 with it on stdout); no answer at all is retried like the probe.
  allowed=$(k auth can-i create l2advertisements.metallb.io -n "$namespace" 2>/dev/null) || true
  if [[ $allowed == no ]]; then
    fail "context $context may not create L2Advertisements in $namespace, which the stack's pools need"
  fi
  # kubectl's words are kept for people, for the message if this never succeeds; the answer is stdout.
  # --validate=false: the server-side dry run is the check; kubectl need not fetch the OpenAPI documents.
  if created=$(k create --dry-run=server --validate=false -o name -f - 2>"$errors" <<<"$probe") && [[ -n $created ]]; then
    echo "MetalLB webhook in $namespace is serving (context $context, attempt $attempt)"
    exit 0
  fi
  last_error=$(tail -n 1 "$errors")
  if ((SECONDS + interval > deadline)); then
    {
      echo "$self: MetalLB's webhook did not answer within ${timeout}s ($attempt attempts)"
      echo "in namespace $namespace of context $context. Last error:"
      echo "  ${last_error:-(none printed)}"
      echo "Look at: kubectl --context $context -n $namespace get pods,endpoints"
      echo "         kubectl --context $context -n $namespace logs deploy/metallb-controller"
      echo "Raise metallb.webhookTimeoutSeconds in the stack file if the cluster is just slow."
    } >&2
    exit 1
  fi
  sleep "$interval"
done
