#!/usr/bin/env bash
# End to end on a throwaway KinD cluster: deploy the program to it, check the result with tools.verify,
# prove that a deploy shows no drift (tools.drift: preview --refresh --expect-no-changes), then destroy
# it all. CI runs it (.github/workflows/e2e.yml); it runs the same on a workstation.
#
#   scripts/e2e-kind.sh [--scenario fresh|runbook] [--cluster NAME] [--keep]
#
#   --scenario fresh    the program on a cluster without MetalLB (default, or $E2E_SCENARIO)
#   --scenario runbook  first the runbook by hand (MetalLB's v0.14.3 native manifest, checked against its
#                       sha256; lan-pool and lan-advertisement; the bootstrap Service made a
#                       LoadBalancer), then a stack with adoptExisting takes it over. It checks that the
#                       Service keeps its IP and prints how long `up` took and the longest gap in ARP
#                       answers for that IP, probed from a container on KinD's docker network
#   --cluster NAME      the KinD cluster to use (default macula-e2e, or $E2E_CLUSTER); reused if it
#                       exists, and then left in place
#   --keep              leave the cluster, the stack and its state behind to look at (or E2E_KEEP=1)
#
# Needs docker, kind, kubectl, pulumi, python3, make, and curl for the runbook scenario. The stack
# (e2e-<random>, or $E2E_STACK) lives in a file backend in a temporary directory with a throwaway
# passphrase, so it never touches real state.
set -euo pipefail

usage() { sed -n '2,22s/^# \{0,1\}//p' "$0"; }

cluster=${E2E_CLUSTER:-macula-e2e}
keep=${E2E_KEEP:-0}
scenario=${E2E_SCENARIO:-fresh}
while (($#)); do
  case $1 in
    --scenario) scenario=${2:?--scenario needs fresh or runbook}; shift 2 ;;
    --cluster) cluster=${2:?--cluster needs a name}; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "e2e-kind: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

[[ $scenario == fresh || $scenario == runbook ]] || { echo "e2e-kind: --scenario is fresh or runbook, not '$scenario'" >&2; exit 2; }

cd "$(dirname "$0")/.."
project_dir=$PWD
context=kind-$cluster
# KinD names the control-plane node after the cluster.
node=$cluster-control-plane
stack=${E2E_STACK:-e2e-$(date +%s)-$RANDOM}
pool=e2e-pool
# MetalLB's own manifest of the version the runbook installed, pinned by tag and by its bytes' sha256.
native_manifest_url=https://raw.githubusercontent.com/metallb/metallb/v0.14.3/config/manifests/metallb-native.yaml
native_manifest_sha256=df1ca995d3dc7f033cb5424a186ebdde69305e3beb688c5cb4d3271d71b1883c
arp_probe=$cluster-arp-probe

log() { printf '\n==> %s\n' "$*" >&2; }
die() { echo "e2e-kind: $*" >&2; exit 1; }

tools=(docker kind kubectl pulumi python3 make)
[[ $scenario == fresh ]] || tools+=(curl sha256sum)
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed"
done
[[ -e "$project_dir/Pulumi.$stack.yaml" ]] && die "Pulumi.$stack.yaml already exists; pick another E2E_STACK"

state_dir=$(mktemp -d "${TMPDIR:-/tmp}/macula-e2e-state.XXXXXX")
export PULUMI_BACKEND_URL="file://$state_dir"
export PULUMI_CONFIG_PASSPHRASE="e2e-throwaway-$RANDOM$RANDOM"
unset PULUMI_CONFIG_PASSPHRASE_FILE
export PULUMI_SKIP_UPDATE_CHECK=true

created_cluster=0
stack_exists=0

show_cluster() {
  kubectl --context "$context" get nodes,pods -A -o wide || true
  kubectl --context "$context" get events -A --sort-by=.lastTimestamp | tail -n 40 || true
}

cleanup() {
  local status=$?
  trap - EXIT
  docker rm --force "$arp_probe" >/dev/null 2>&1 || true
  if ((status != 0)); then
    log "failed (exit $status); the cluster as it was:"
    show_cluster
  fi
  if ((keep)); then
    log "kept for a look: cluster $cluster (context $context), stack $stack in $state_dir"
    cat >&2 <<EOF
  export PULUMI_BACKEND_URL=$PULUMI_BACKEND_URL PULUMI_CONFIG_PASSPHRASE=$PULUMI_CONFIG_PASSPHRASE
  pulumi stack select $stack
Clean up with:
  pulumi destroy --yes --stack $stack; pulumi stack rm --yes --stack $stack
  kind delete cluster --name $cluster; rm -rf $state_dir
Until then Pulumi.$stack.yaml stays in the project: the program checks every Pulumi.*.yaml for
overlapping ranges and the tests run once per stack file, so remove it before anything else.
EOF
    exit "$status"
  fi
  if ((stack_exists)); then
    if ((created_cluster)); then
      # The cluster goes next; destroying its objects one by one first would only take time.
      pulumi stack rm --yes --force --stack "$stack" >/dev/null || true
    else
      # Hand a cluster that was here before back without what this run put on it.
      pulumi destroy --yes --non-interactive --stack "$stack" || true
      pulumi stack rm --yes --force --stack "$stack" || true
    fi
  fi
  if ((created_cluster)); then
    kind delete cluster --name "$cluster" || true
  fi
  # `stack rm` removes the stack file, but not if it failed or never ran: a Pulumi.*.yaml left in the
  # project would be checked for overlaps by every other stack and run by the tests.
  rm -f "$project_dir/Pulumi.$stack.yaml"
  rm -rf "$state_dir"
  exit "$status"
}
trap cleanup EXIT

create_cluster() {
  if kind get clusters 2>/dev/null | grep -qxF "$cluster"; then
    log "reusing KinD cluster $cluster"
    return
  fi
  log "creating KinD cluster $cluster"
  created_cluster=1
  kind create cluster --name "$cluster" --config "$project_dir/kind/e2e-cluster.yaml" --wait 180s
}

# Eleven addresses near the top of the IPv4 subnet of KinD's docker network (x.y.255.200-210 in a /16),
# far from the low addresses docker hands to the nodes; the runner reaches them over the bridge. Prints
# the first, the last and the subnet, which is the e2e stack's LAN.
choose_address_range() {
  local subnets
  subnets=$(docker network inspect kind --format '{{range .IPAM.Config}}{{.Subnet}} {{end}}')
  python3 - "$subnets" <<'EOF'
import ipaddress
import sys

networks = [ipaddress.ip_network(text) for text in sys.argv[1].split()]
ipv4 = [network for network in networks if network.version == 4 and network.prefixlen <= 24]
if not ipv4:
    sys.exit(f"e2e-kind: the kind docker network has no IPv4 subnet of /24 or larger: {sys.argv[1]!r}")
top = ipv4[0].broadcast_address
print(top - 55, top - 45, ipv4[0])
EOF
}

# The Service the program patches. A real cluster runs the macula bootstrap; this stand-in has its
# ports (quic 4433/UDP, http 80/TCP) and echoes every datagram, so tools.verify's UDP probe gets a reply.
create_bootstrap_stand_in() {
  log "creating the stand-in bootstrap Service macula/macula-bootstrap"
  kubectl --context "$context" apply -f - <<'EOF'
apiVersion: v1
kind: Namespace
metadata:
  name: macula
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: macula-bootstrap
  namespace: macula
spec:
  replicas: 1
  selector:
    matchLabels:
      app: macula-bootstrap
  template:
    metadata:
      labels:
        app: macula-bootstrap
    spec:
      containers:
        - name: echo
          image: python:3.12-alpine
          command: ["python3", "-u", "-c"]
          args:
            - |
              import http.server, socket, threading

              def echo_udp():
                  server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                  server.bind(("0.0.0.0", 4433))
                  while True:
                      datagram, peer = server.recvfrom(65535)
                      server.sendto(datagram, peer)

              threading.Thread(target=echo_udp, daemon=True).start()
              http.server.HTTPServer(("0.0.0.0", 80), http.server.SimpleHTTPRequestHandler).serve_forever()
          ports:
            - name: quic
              containerPort: 4433
              protocol: UDP
            - name: http
              containerPort: 80
              protocol: TCP
---
apiVersion: v1
kind: Service
metadata:
  name: macula-bootstrap
  namespace: macula
spec:
  type: ClusterIP
  selector:
    app: macula-bootstrap
  ports:
    - name: quic
      port: 4433
      protocol: UDP
      targetPort: quic
    - name: http
      port: 80
      protocol: TCP
      targetPort: http
EOF
  kubectl --context "$context" -n macula rollout status deployment/macula-bootstrap --timeout=300s
}

# Every stack setting the run uses, in one place (keys as stack_config.parsing reads them).
write_stack_config() {
  local first=$1 last=$2 ip=$3 subnet=$4
  local set=(pulumi config set --stack "$stack")
  "${set[@]}" kubeContext "$context"
  # The cluster is on docker's network, not on the LAN of Pulumi.yaml's plan: the stack has its own.
  "${set[@]}" --path "lan.subnet" "$subnet"
  "${set[@]}" --path "pools[0].name" "$pool"
  "${set[@]}" --path "pools[0].addresses[0]" "$first-$last"
  "${set[@]}" --path "bootstrap.ip" "$ip"
  "${set[@]}" --path "bootstrap.pool" "$pool"
  # No bootstrap.hostname: nothing publishes the name in CI, so tools.verify skips its DNS check.
  "${set[@]}" --path "clearLoadBalancerExclusion[0]" "$node"
  [[ $scenario == fresh ]] || "${set[@]}" adoptExisting true
}

service_ip() {
  kubectl --context "$context" -n macula get service macula-bootstrap \
    -o 'jsonpath={.status.loadBalancer.ingress[0].ip}'
}

# What the runbook did by hand, as its user did it: MetalLB's native manifest, the pool and the
# advertisement applied with kubectl, and the bootstrap Service switched to LoadBalancer.
apply_runbook() {
  local first=$1 last=$2 manifest=$state_dir/metallb-native.yaml attempt
  log "the runbook by hand: MetalLB v0.14.3's native manifest"
  if [[ -n ${E2E_NATIVE_MANIFEST:-} ]]; then
    cp "$E2E_NATIVE_MANIFEST" "$manifest"
  else
    curl --fail --silent --show-error --location --retry 3 --output "$manifest" "$native_manifest_url"
  fi
  echo "$native_manifest_sha256  $manifest" | sha256sum --check --quiet ||
    die "$native_manifest_url is not the v0.14.3 manifest (sha256 $native_manifest_sha256)"
  kubectl --context "$context" apply -f "$manifest"
  kubectl --context "$context" -n metallb-system rollout status deployment/controller --timeout=300s
  kubectl --context "$context" -n metallb-system rollout status daemonset/speaker --timeout=300s
  # kubeadm's exclusion label keeps 0.14.3's speakers silent on KinD's only node. The runbook's cluster
  # answered ARP, so its node went without the label; so does this one.
  kubectl --context "$context" label node "$node" node.kubernetes.io/exclude-from-external-load-balancers-

  log "the runbook by hand: $pool and lan-advertisement"
  for attempt in $(seq 60); do
    # The native controller's webhook refuses them until it serves.
    kubectl --context "$context" apply -f - <<EOF && break
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: $pool
  namespace: metallb-system
spec:
  addresses:
    - $first-$last
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata:
  name: lan-advertisement
  namespace: metallb-system
spec:
  ipAddressPools:
    - $pool
EOF
    ((attempt < 60)) || die "the runbook's pool was refused for 5 minutes"
    sleep 5
  done

  log "the runbook by hand: the bootstrap Service becomes a LoadBalancer"
  kubectl --context "$context" -n macula patch service macula-bootstrap -p '{"spec":{"type":"LoadBalancer"}}'
  for attempt in $(seq 60); do
    [[ -n $(service_ip) ]] && break
    ((attempt < 60)) || die "MetalLB gave the runbook's Service no address in 2 minutes"
    sleep 2
  done
}

# One ARP request a tenth of a second for IP, from a container on KinD's docker network (never any other
# network), each logged as "<epoch seconds> ok|miss".
start_arp_probe() {
  local ip=$1 attempt
  log "probing ARP for $ip from a container on the kind network"
  docker run --detach --name "$arp_probe" --network kind --cap-add NET_RAW alpine:3.20 sh -c "
    apk add --no-cache --quiet iputils-arping || exit 1
    while :; do
      if arping -q -c 1 -w 1 -I eth0 $ip; then echo \"\$(date +%s.%N) ok\"; sleep 0.1
      else echo \"\$(date +%s.%N) miss\"; fi
    done" >/dev/null
  for attempt in $(seq 60); do
    docker logs "$arp_probe" 2>/dev/null | grep -q ' ok$' && return 0
    ((attempt < 60)) || die "the ARP probe got no answer for $ip before the takeover: nobody announces it"
    sleep 2
  done
}

# The longest time between two answered probes, in seconds, and how many probes went unanswered.
arp_gap() {
  docker logs "$arp_probe" 2>/dev/null | python3 -c '
import sys

longest, missed, previous = 0.0, 0, None
for line in sys.stdin:
    fields = line.split()
    if len(fields) != 2 or fields[1] not in ("ok", "miss"):
        continue
    try:
        stamp = float(fields[0])
    except ValueError:
        continue
    if previous is not None:
        # A gap still open at the last probe counts up to that probe.
        longest = max(longest, stamp - previous)
    if fields[1] == "miss":
        missed += 1
    else:
        previous = stamp
print(f"{longest:.1f} {missed}")
'
}

create_cluster
create_bootstrap_stand_in

log "choosing addresses on the kind network"
read -r first_ip last_ip kind_subnet < <(choose_address_range)
[[ -n "${last_ip:-}" ]] || die "could not choose an address range on the kind network"
echo "pool $pool: $first_ip-$last_ip" >&2

ip_before=$first_ip
if [[ $scenario == runbook ]]; then
  pool=lan-pool
  apply_runbook "$first_ip" "$last_ip"
  ip_before=$(service_ip)
  echo "the runbook's Service has $ip_before" >&2
  start_arp_probe "$ip_before"
fi

log "preparing ./venv and stack $stack (state in $state_dir)"
make setup
pulumi stack init "$stack" --secrets-provider passphrase
stack_exists=1
write_stack_config "$first_ip" "$last_ip" "$ip_before" "$kind_subnet"
cat "$project_dir/Pulumi.$stack.yaml"

if [[ $scenario == runbook ]]; then
  log "what the stack finds before its first up (read-only)"
  venv/bin/python -m tools.survey --stack "$stack"
fi

log "pulumi up"
started=$SECONDS
pulumi up --yes --non-interactive --stack "$stack"
converged=$((SECONDS - started))

log "verify"
venv/bin/python -m tools.verify --stack "$stack" --strict-udp

if [[ $scenario == runbook ]]; then
  ip_after=$(service_ip)
  [[ $ip_after == "$ip_before" ]] || die "the takeover moved the Service from $ip_before to $ip_after"
  read -r gap missed < <(arp_gap)
  docker rm --force "$arp_probe" >/dev/null
  figures="takeover converged in ${converged}s; longest gap without an ARP answer for $ip_before: ${gap}s"
  figures+=" ($missed probes unanswered); the Service kept $ip_before"
  log "$figures"
  [[ -z ${GITHUB_STEP_SUMMARY:-} ]] || echo "e2e ($scenario): $figures" >>"$GITHUB_STEP_SUMMARY"
fi

log "drift right after the deploy (there must be none)"
venv/bin/python -m tools.drift "$stack"

log "a second up would change nothing"
pulumi preview --expect-no-changes --non-interactive --stack "$stack"

if ((keep)); then
  exit 0
fi

log "pulumi destroy"
pulumi destroy --yes --non-interactive --stack "$stack"
pulumi stack rm --yes --stack "$stack"
stack_exists=0
log "passed"
