#!/usr/bin/env bash
# Waits until MetalLB's validating webhook answers admission requests.
#
# Right after the chart is installed the controller is still generating its webhook certificate, so
# creating an IPAddressPool fails with "failed calling webhook ... connection refused", and
# pulumi-kubernetes does not retry that rejection. A server-side dry run of a throwaway L2Advertisement
# goes through the same admission chain without storing anything, so its success means the real objects
# will be admitted.
#
# Usage: wait-for-metallb-webhook.sh --context CONTEXT [--kubeconfig FILE] [--namespace NAMESPACE]
#                                    [--timeout SECONDS] [--interval SECONDS]
set -euo pipefail

readonly self=wait-for-metallb-webhook
context=""
kubeconfig=""
namespace=metallb-system
timeout=300
interval=5

die() {
  echo "$self: $*" >&2
  exit 2
}

while (($# > 0)); do
  case $1 in
    --context | --kubeconfig | --namespace | --timeout | --interval)
      (($# >= 2)) || die "$1 needs a value"
      declare "${1#--}=$2"
      shift 2
      ;;
    -h | --help)
      sed -n '2,11s/^# \{0,1\}//p' "$0"
      exit 0
      ;;
    *) die "unknown argument: $1" ;;
  esac
done

[[ -n $context ]] || die "--context is required"
[[ $timeout =~ ^[0-9]+$ ]] || die "--timeout must be a whole number of seconds, got '$timeout'"
[[ $interval =~ ^[0-9]+$ ]] || die "--interval must be a whole number of seconds, got '$interval'"
command -v kubectl >/dev/null 2>&1 || die "kubectl is not on PATH; it is needed to probe the webhook"

kubectl_args=(--context "$context")
[[ -z $kubeconfig ]] || kubectl_args+=(--kubeconfig "$kubeconfig")

probe="apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata:
  name: pulumi-webhook-readiness-probe
  namespace: $namespace"

deadline=$((SECONDS + timeout))
attempt=0
while :; do
  attempt=$((attempt + 1))
  if output=$(kubectl "${kubectl_args[@]}" create --dry-run=server -o name -f - <<<"$probe" 2>&1); then
    echo "MetalLB webhook in $namespace is serving (context $context, attempt $attempt)"
    exit 0
  fi
  if [[ $output == *"denied the request"* ]]; then
    # The webhook itself answered: it is serving, whatever it thought of the probe.
    echo "MetalLB webhook in $namespace is serving (context $context, attempt $attempt): $output"
    exit 0
  fi
  case $output in
    # Waiting cannot fix these: kubectl cannot reach the cluster as configured.
    *"context was not found"* | *"does not exist"* | *"no such file or directory"* | *Unauthorized* | *forbidden*)
      echo "$self: kubectl cannot use context $context: $output" >&2
      exit 1
      ;;
  esac
  if ((SECONDS + interval > deadline)); then
    {
      echo "$self: MetalLB's webhook did not answer within ${timeout}s ($attempt attempts)"
      echo "in namespace $namespace of context $context. Last error:"
      echo "  $output"
      echo "Look at: kubectl --context $context -n $namespace get pods,endpoints"
      echo "         kubectl --context $context -n $namespace logs deploy/metallb-controller"
      echo "Raise metallb.webhookTimeoutSeconds in the stack file if the cluster is just slow."
    } >&2
    exit 1
  fi
  sleep "$interval"
done
