#!/usr/bin/env bash
# Removes Helm's record of the MetalLB release, once the stack's chart owns the release's objects, so
# that helm no longer believes it owns them (a `helm uninstall` would otherwise delete what the stack
# manages, CRDs and pools included).
#
# Only the records go: Secrets of type helm.sh/release.v1 (Helm's default storage) and ConfigMaps (its
# configmap driver) labelled owner=helm,name=RELEASE in NAMESPACE. The release's objects stay as they are.
# Without such a release it removes nothing, so running it again is harmless.
#
# Usage: forget-helm-release.sh --context CONTEXT [--kubeconfig FILE] [--namespace NAMESPACE]
#            [--release NAME] [--request-timeout SECONDS]
# stdout: "forgot KIND/NAME" for each record removed, then one summary line. Exit 0 when no record of
# the release is left, 1 when one could not be removed or checked, 2 on bad arguments.
set -euo pipefail

readonly self=forget-helm-release
context=""
kubeconfig=""
namespace=metallb-system
release=metallb
request_timeout=20

usage() {
  cat <<'USAGE'
Usage: forget-helm-release.sh --context CONTEXT [--kubeconfig FILE] [--namespace NAMESPACE]
           [--release NAME] [--request-timeout SECONDS]
Removes Helm's release records (Secrets of type helm.sh/release.v1, ConfigMaps) labelled
owner=helm,name=NAME in NAMESPACE (default metallb-system, release metallb); the release's objects stay.
stdout: "forgot KIND/NAME" per record, then a summary. Exit 0 done, 1 failed, 2 bad arguments.
USAGE
}

die() {
  echo "$self: $*" >&2
  exit 2
}

fail() {
  echo "$self: $*" >&2
  exit 1
}

while (($# > 0)); do
  case $1 in
    --context | --kubeconfig | --namespace | --release | --request-timeout)
      (($# >= 2)) || die "$1 needs a value"
      case $1 in
        --context) context=$2 ;;
        --kubeconfig) kubeconfig=$2 ;;
        --namespace) namespace=$2 ;;
        --release) release=$2 ;;
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
[[ $release =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || die "--release must be a Helm release name, got '$release'"
if ! [[ $request_timeout =~ ^[0-9]{1,3}$ ]] || ((10#$request_timeout < 1 || 10#$request_timeout > 300)); then
  die "--request-timeout must be a whole number of seconds from 1 to 300, got '$request_timeout'"
fi
command -v kubectl >/dev/null 2>&1 || die "kubectl is not on PATH"

kubectl_args=(--context "$context" --request-timeout "$((10#$request_timeout))s")
[[ -z $kubeconfig ]] || kubectl_args+=(--kubeconfig "$kubeconfig")
k() { kubectl "${kubectl_args[@]}" "$@"; }

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
