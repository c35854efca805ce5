#!/usr/bin/env bash
# Waits, within a bound, until MetalLB has given a Service its LoadBalancer address, and prints it.
#
# pulumi-kubernetes would wait up to 10 minutes for the address and then fail with "was not allocated an
# IP address", naming neither MetalLB nor the reason. This waits --timeout seconds instead, and when the
# address does not come it says why in MetalLB's own words: the controller's AllocationFailed event on
# the Service (controller/service.go of MetalLB 0.14.3: "Failed to allocate IP for ...: ..."), with the
# fix for the usual reasons (the address is outside every pool, or another Service holds it).
#
# Usage: wait-for-service-ip.sh --context CONTEXT [--kubeconfig FILE] --namespace NAMESPACE --service NAME
#            [--ip IP] [--timeout SECONDS] [--interval SECONDS] [--request-timeout SECONDS]
# stdout: the address, alone on its line (the stack's externalIp). With --ip, only that address counts.
# Exit 0 assigned, 1 not assigned in time (or the Service is gone), 2 on bad arguments.
set -euo pipefail

readonly self=wait-for-service-ip
context=""
kubeconfig=""
namespace=""
service=""
ip=""
timeout=180
interval=2
request_timeout=20

usage() {
  cat <<'EOF'
Usage: wait-for-service-ip.sh --context CONTEXT [--kubeconfig FILE] --namespace NAMESPACE --service NAME
           [--ip IP] [--timeout SECONDS] [--interval SECONDS] [--request-timeout SECONDS]
Waits until the Service has a LoadBalancer address (IP, when given) and prints it; when it does not
come in time, says why in MetalLB's words (its AllocationFailed event).
  --timeout          seconds to wait in all (default 180, 10 to 3600)
  --interval         seconds between two looks (default 2, 1 to 60)
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
    --context | --kubeconfig | --namespace | --service | --ip | --timeout | --interval | --request-timeout)
      (($# >= 2)) || die "$1 needs a value"
      case $1 in
        --context) context=$2 ;;
        --kubeconfig) kubeconfig=$2 ;;
        --namespace) namespace=$2 ;;
        --service) service=$2 ;;
        --ip) ip=$2 ;;
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
[[ $namespace =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || die "--namespace needs a namespace name, got '$namespace'"
[[ $service =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || die "--service needs a Service name, got '$service'"
[[ -z $ip || $ip =~ ^[0-9a-fA-F.:]+$ ]] || die "--ip must be an IP address, got '$ip'"
timeout=$(bounded --timeout "$timeout" 10 3600)
interval=$(bounded --interval "$interval" 1 60)
request_timeout=$(bounded --request-timeout "$request_timeout" 1 300)
command -v kubectl >/dev/null 2>&1 || die "kubectl is not on PATH; it is needed to read the Service"

target=(--context "$context")
[[ -z $kubeconfig ]] || target+=(--kubeconfig "$kubeconfig")
k() { kubectl "${target[@]}" --request-timeout "${request_timeout}s" "$@"; }

errors=$(mktemp)
trap 'rm -f "$errors"' EXIT
readonly where="$namespace/$service"
deadline=$((SECONDS + timeout))
asked=""
while :; do
  # stdout is the answer: the name when the Service exists (nothing with --ignore-not-found when it does
  # not), then its addresses. kubectl's stderr is kept for people, for the message if it never answers.
  if answer=$(k get services "$service" -n "$namespace" --ignore-not-found \
    -o 'jsonpath={.metadata.name}{"\t"}{range .status.loadBalancer.ingress[*]}{.ip}{" "}{end}' 2>"$errors"); then
    asked=1
    [[ -n $answer ]] || fail "Service $where does not exist (context $context)"
    read -r -a addresses <<<"${answer#*$'\t'}"
    for address in ${addresses[@]+"${addresses[@]}"}; do
      if [[ -z $ip || $address == "$ip" ]]; then
        echo "$address"
        exit 0
      fi
    done
  fi
  ((SECONDS + interval <= deadline)) || break
  sleep "$interval"
done

if [[ -z $asked ]]; then
  fail "could not read Service $where in ${timeout}s (context $context): $(tr '\n' ' ' <"$errors")"
fi
wanted=${ip:+ $ip}
reason=""
if events=$(k get events -n "$namespace" \
  --field-selector "involvedObject.kind=Service,involvedObject.name=$service,reason=AllocationFailed" \
  -o 'jsonpath={range .items[*]}{.message}{"\n"}{end}' 2>/dev/null); then
  reason=$(printf '%s\n' "$events" | awk 'NF { last = $0 } END { print last }')
fi
if [[ -z $reason ]]; then
  fail "MetalLB gave Service $where no address$wanted within ${timeout}s and said nothing about it (no" \
    "AllocationFailed event): check that its controller runs (make verify) and that a pool and an" \
    "advertisement cover the address"
fi
case $reason in
  *"is not allowed in config"* | *"unknown pool"*)
    fix="the address is in no pool of the stack: pin an address of its pools (make plan lists them)" ;;
  *"already in use"* | *"also in use by"* | *"does not allow sharing"*)
    fix="another Service holds the address: free it there, or pin another one" ;;
  *"no available IPs"*)
    fix="the pool is used up: widen it (make plan shows what is free), or free an address" ;;
  *) fix="see MetalLB's message" ;;
esac
fail "MetalLB gave Service $where no address$wanted within ${timeout}s: $reason; $fix"
