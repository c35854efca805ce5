#!/usr/bin/env bash
# Opens one port in the host's ufw firewall: the runbook's `sudo ufw allow 4433/udp`, safe to repeat.
#
# Usage: open-firewall-port.sh PORT/PROTO      e.g. 4433/udp (PROTO is udp or tcp)
#
# Without ufw there is no ufw firewall to open: it says so and exits 0. Otherwise it runs
# `ufw allow PORT/PROTO`, through sudo -n when not root (never a password prompt); ufw itself skips a
# rule that already exists. The ufw command can be replaced with the environment variable UFW, e.g.
# UFW="ufw --dry-run" to see what ufw would do without changing anything.
#
# Exit status: 0 opened, already open or no ufw; 1 ufw or sudo failed (the message says why);
# 2 bad arguments.
set -euo pipefail
export LC_ALL=C

readonly self=open-firewall-port

say() { printf '%s: %s\n' "$self" "$*"; }
die() {
  printf '%s: %s\n' "$self" "$*" >&2
  exit 1
}
usage_error() {
  printf '%s: %s\n' "$self" "$*" >&2
  printf 'Usage: open-firewall-port.sh PORT/PROTO   (e.g. 4433/udp; PROTO is udp or tcp)\n' >&2
  exit 2
}

case ${1-} in
  -h | --help)
    printf 'Usage: open-firewall-port.sh PORT/PROTO   (e.g. 4433/udp; PROTO is udp or tcp)\n'
    printf 'Runs ufw allow PORT/PROTO (through sudo -n when not root); without ufw, does nothing.\n'
    exit 0
    ;;
esac
(($# == 1)) || usage_error "expects exactly one argument, PORT/PROTO; got $#"
rule=$1
[[ $rule =~ ^([1-9][0-9]{0,4})/(udp|tcp)$ ]] || usage_error "'$rule' is not PORT/PROTO, e.g. 4433/udp"
((BASH_REMATCH[1] <= 65535)) || usage_error "port ${BASH_REMATCH[1]} is above 65535"

# A command's output on one line: its non-blank lines joined with "; ".
one_line() { printf '%s\n' "$1" | awk 'NF { printf "%s%s", sep, $0; sep = "; " }'; }

# Finds a system program that may live outside a non-root user's PATH.
find_program() {
  local dir
  command -v "$1" 2>/dev/null && return 0
  [[ $1 != */* ]] || return 1
  for dir in /usr/local/sbin /usr/sbin /sbin; do
    [[ -x $dir/$1 ]] && printf '%s\n' "$dir/$1" && return 0
  done
  return 1
}

read -r -a ufw <<<"${UFW:-ufw}"
((${#ufw[@]} > 0)) || ufw=(ufw)
if ! ufw[0]=$(find_program "${ufw[0]}"); then
  say "no ufw: nothing to open for $rule (this host has no ufw firewall)"
  if find_program firewall-cmd >/dev/null; then
    say "note: firewalld is installed, which this script does not manage; if it is running, open the" \
      "port with: firewall-cmd --permanent --add-port=$rule && firewall-cmd --reload"
  fi
  exit 0
fi

as_root=()
if ((EUID != 0)); then
  command -v sudo >/dev/null 2>&1 ||
    die "needs root or passwordless sudo to run ufw allow $rule, and sudo is not installed"
  if ! err=$(sudo -n true 2>&1); then
    die "needs root or passwordless sudo to run ufw allow $rule ($(one_line "$err"))"
  fi
  as_root=(sudo -n --)
fi

# ufw's stdout is what it did; its stderr (warnings, errors) goes to people as it is.
if ! output=$(${as_root[@]+"${as_root[@]}"} "${ufw[@]}" allow "$rule"); then
  die "ufw allow $rule failed (ufw said why, above)"
fi
printf '%s\n' "$output"
# ufw reports IPv4 and IPv6 on lines of their own ("Rule added", "Rule added (v6)"): an IPv6 rule can be
# added beside an IPv4 one that was there, and with IPV6=no there is no IPv6 line at all.
added=()
existing=()
inactive=""
while IFS= read -r line; do
  family=IPv4
  [[ $line != *" (v6)" ]] || family=IPv6
  case ${line% (v6)} in
    "Rule added") added+=("$family") ;;
    "Rules updated")
      added+=("$family")
      inactive=1
      ;;
    "Skipping adding existing rule") existing+=("$family") ;;
  esac
done <<<"$output"
joined() {
  local IFS=/
  printf '%s' "$*"
}
if ((${#added[@]} == 0 && ${#existing[@]} == 0)); then
  say "ran ufw allow $rule, which reported neither an added nor an existing rule"
elif ((${#added[@]} == 0)); then
  say "$rule was already allowed in ufw ($(joined "${existing[@]}")); nothing changed"
else
  message="allowed $rule in ufw: added the $(joined "${added[@]}") rule"
  ((${#existing[@]} == 0)) || message+="; the $(joined "${existing[@]}") rule was there already"
  [[ -z $inactive ]] || message+="; ufw is inactive, so the rules apply once it is enabled"
  say "$message"
fi
