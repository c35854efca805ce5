#!/usr/bin/env bash
# Removes the DNS host's dnsmasq override for one name, so that the name is answered by the LAN's real DNS
# (PowerDNS, fed by ExternalDNS) instead of an address hard-coded in dnsmasq.
#
# Usage: update-bootstrap-dns.sh [HOSTNAME [CONF_DIR]]
#   HOSTNAME  the name whose override goes (default bootstrap.macula.local)
#   CONF_DIR  the directory dnsmasq reads with conf-dir (default /etc/dnsmasq.d)
#
# It reads every file of CONF_DIR that dnsmasq reads (dnsmasq skips names that start with "." or end in
# "~", and "#...#"), and takes out every active line, or the part of it, that answers for exactly HOSTNAME:
#   address=/H/...  server=/H/...  local=/H/      H leaves the list of domains; a line naming only H goes
#   host-record=H,...  cname=H,...               H leaves the names (aliases); a line naming only H goes
#   interface-name= dynamic-host= mx-host= srv-host= txt-record= ptr-record= naptr-record= caa-record=
#   dns-rr=                                      a line whose record name is H goes
# Names match without regard to case or a trailing dot; in a domain list ".H" counts as H, as dnsmasq reads
# it. Parent domains, wildcards, other names, comments and all other bytes stay as they are.
#
# Each file it changes is first copied to CONF_DIR/.FILE.<UTC time>.bak, which dnsmasq does not read.
# Then it checks the result with dnsmasq --test and restarts dnsmasq; if either fails, it puts the files
# back and exits non-zero. When there is nothing to remove it changes nothing, restarts nothing and
# exits 0, so it can run any number of times.
#
# When not root it uses sudo -n (never a password prompt) for what needs root: editing files it cannot
# write and the default restart. Environment, for hosts (and tests) that differ:
#   DNSMASQ_TEST_COMMAND     shell command that checks the configuration, run as the invoking user with
#                            $1 = CONF_DIR; "true" skips the check. Default: as root,
#                            dnsmasq --test --conf-file=/dev/null --conf-dir=CONF_DIR
#   DNSMASQ_RESTART_COMMAND  shell command that restarts dnsmasq, run as the invoking user with
#                            $1 = CONF_DIR. Default: as root, systemctl restart dnsmasq when systemd has
#                            a dnsmasq unit, else service dnsmasq restart
#
# Exit status: 0 done or nothing to do, 1 could not do it (the message says why), 2 bad arguments.
set -euo pipefail
export LC_ALL=C

readonly self=update-bootstrap-dns

usage() {
  cat <<'EOF'
Usage: update-bootstrap-dns.sh [HOSTNAME [CONF_DIR]]
Removes dnsmasq's records for exactly HOSTNAME (default bootstrap.macula.local) from the files of
CONF_DIR (default /etc/dnsmasq.d), keeping a backup of each changed file, then restarts dnsmasq.
EOF
}

say() { printf '%s: %s\n' "$self" "$*"; }
die() {
  printf '%s: %s\n' "$self" "$*" >&2
  exit 1
}

case ${1-} in
  -h | --help)
    usage
    exit 0
    ;;
esac
if (($# > 2)); then
  usage >&2
  exit 2
fi
name=${1:-bootstrap.macula.local}
conf_dir=${2:-/etc/dnsmasq.d}
if ((${#name} > 254)) || [[ ! $name =~ ^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$ ]]; then
  printf '%s: %s\n' "$self" "'$name' is not a host name (letters, digits, '-', '_', dots)" >&2
  exit 2
fi
name=${name%.}
conf_dir=${conf_dir%/}
conf_dir=${conf_dir:-/}

# Root is needed only for what the invoking user cannot do. need_root checks once that sudo -n works.
use_sudo=""
need_root() {
  ((EUID == 0)) && return 0
  [[ -n $use_sudo ]] && return 0
  command -v sudo >/dev/null 2>&1 || die "needs root or passwordless sudo $1, and sudo is not installed"
  local err
  if ! err=$(sudo -n true 2>&1); then
    die "needs root or passwordless sudo $1 ($(one_line "$err"))"
  fi
  use_sudo=1
}
priv() {
  if [[ -n $use_sudo ]]; then
    sudo -n -- "$@"
  else
    "$@"
  fi
}

# A command's output on one line: its non-blank lines joined with "; ".
one_line() { printf '%s\n' "$1" | awk 'NF { printf "%s%s", sep, $0; sep = "; " }'; }

# Finds a system program that may live outside a non-root user's PATH.
find_program() {
  local dir
  command -v "$1" 2>/dev/null && return 0
  for dir in /usr/local/sbin /usr/sbin /sbin; do
    [[ -x $dir/$1 ]] && printf '%s\n' "$dir/$1" && return 0
  done
  return 1
}

# The files dnsmasq's conf-dir reads, NUL-separated, in its (C locale) order.
list_conf_files() {
  local path base
  shopt -s nullglob dotglob
  for path in "$1"/*; do
    base=${path##*/}
    [[ $base == .* || $base == *~ || ($base == \#* && $base == *\#) ]] && continue
    [[ -f $path ]] || continue
    printf '%s\0' "$path"
  done
}

# Reads one file and writes it with HOSTNAME's records taken out; findings go to $REPORT,
# "deleted edited last-line-kept" to $COUNTS. POSIX awk only (mawk on Debian, gawk on Fedora).
# dnsmasq's own reading: a "#" at the start of a line or after white space starts a comment, white
# space around "=" is allowed, and " quotes a value (quoted lines are only reported, never edited).
# shellcheck disable=SC2016 # awk's own $0, not the shell's
readonly edit_program='
function trim(s) { sub(/^[ \t\r\v\f]+/, "", s); sub(/[ \t\r\v\f]+$/, "", s); return s }
function canon(s) { s = tolower(trim(s)); sub(/\.$/, "", s); return s }
function is_name(t) {
  return t != "" && t !~ /^[0-9]+$/ && t !~ /^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$/ && index(t, ":") == 0
}
# Whether text names HOSTNAME as a whole name (not xHOSTNAME, not a.HOSTNAME).
function mentions(text,   t, at, before, after) {
  t = tolower(text)
  while ((at = index(t, name)) > 0) {
    before = substr(t, at - 1, 1); after = substr(t, at + length(name), 2)
    if ((at == 1 || before !~ /[a-z0-9_.-]/) && after !~ /^[a-z0-9_-]/ && after !~ /^\.[a-z0-9_-]/) return 1
    t = substr(t, at + 1)
  }
  return 0
}
function note(text) { printf "%s: note: %s:%d: %s\n", self, file, FNR, text > report }
# address=, server=, local=: /domain/.../domain/rest
function domains(value,   seg, n, i, d, kept, dropped, out, pat) {
  if (substr(value, 1, 1) != "/") return "keep"
  n = split(value, seg, "/")
  if (n < 3) return "keep"
  kept = 0; dropped = 0; out = ""
  for (i = 2; i < n; i++) {
    d = canon(seg[i]); sub(/^\./, "", d)
    if (d == name) { dropped++; continue }
    kept++; out = out "/" seg[i]
    pat = d; sub(/^\*/, "", pat)
    if (d == "#" || (d != "" && substr(d, 1, 1) != "*" && substr(name, length(name) - length(d)) == "." d))
      covers = covers " " seg[i]
    else if (substr(d, 1, 1) == "*" && pat != "" && substr(name, length(name) - length(pat) + 1) == pat)
      covers = covers " " seg[i]
  }
  if (!dropped) return "keep"
  if (!kept) return "delete"
  result = out "/" seg[n]
  return "edit"
}
# host-record=name,...,address,...[,ttl] and cname=alias,...,target[,ttl]
function names(value, cname,   f, n, i, t, last, kept, dropped, out, count, field) {
  n = split(value, f, ",")
  last = n
  if (cname) { if (trim(f[n]) ~ /^[0-9]+$/) last--; last-- }
  kept = 0; dropped = 0; out = ""; count = 0
  for (i = 1; i <= n; i++) {
    t = canon(f[i])
    if ((cname && i <= last) || (!cname && is_name(t))) {
      if (t == name) { dropped++; continue }
      kept++
    }
    field = f[i]
    if (count == 0) sub(/^[ \t]+/, "", field)
    out = (count++ ? out "," : "") field
  }
  if (!dropped) return "keep"
  if (!kept) return "delete"
  result = out
  return "edit"
}
function first_name(value,   f) {
  split(value, f, ",")
  return canon(f[1]) == name ? "delete" : "keep"
}
BEGIN {
  name = canon(ENVIRON["DNS_NAME"]); report = ENVIRON["REPORT"]; file = ENVIRON["FILE_LABEL"]
  self = ENVIRON["SELF"]; deleted = 0; edited = 0; last_kept = 0
  split("interface-name dynamic-host mx-host srv-host txt-record ptr-record naptr-record caa-record dns-rr", \
    list, " ")
  for (i in list) single[list[i]] = 1
}
{
  line = $0; last_kept = 1
  if (index(line, "\"")) {
    if (line !~ /^[ \t\r\v\f]*#/ && mentions(line)) note("left as it is (a quoted value): " line)
    print line; next
  }
  n = length(line); cut = n + 1; white = 1
  for (i = 1; i <= n; i++) {
    c = substr(line, i, 1)
    if (c ~ /[ \t\r\v\f]/) white = 1
    else if (white && c == "#") { cut = i; break }
    else white = 0
  }
  content = substr(line, 1, cut - 1)
  match(content, /^[ \t\r\v\f]*/); lead = substr(content, 1, RLENGTH); rest = substr(content, RLENGTH + 1)
  match(rest, /[ \t\r\v\f]*$/); body = substr(rest, 1, RSTART - 1)
  tail = substr(rest, RSTART) substr(line, cut)
  eq = index(body, "=")
  if (eq == 0) { print line; next }
  key = trim(substr(body, 1, eq - 1))
  after = substr(body, eq + 1); match(after, /^[ \t\r\v\f]*/)
  head = substr(body, 1, eq + RLENGTH); value = substr(after, RLENGTH + 1)
  covers = ""; result = ""
  if (key == "address" || key == "server" || key == "local") action = domains(value)
  else if (key == "host-record") action = names(value, 0)
  else if (key == "cname") action = names(value, 1)
  else if (key in single) action = first_name(value)
  else action = "keep"
  if (action == "delete") {
    printf "%s: %s:%d: %s  (line removed)\n", self, file, FNR, body > report
    deleted++; last_kept = 0; next
  }
  if (action == "edit") {
    printf "%s: %s:%d: %s  ->  %s\n", self, file, FNR, body, head result > report
    edited++; print lead head result tail
  } else print line
  if (covers != "") note(trim(covers) " in " body " still covers " name)
  else if (action == "keep" && mentions(body)) note(body " still names " name)
}
END { print deleted, edited, last_kept > ENVIRON["COUNTS"] }
'

# Nothing to do without the directory. When a parent cannot be searched, only root can tell.
probe=$conf_dir
while [[ ! -e $probe && $probe == */* ]]; do
  probe=${probe%/*}
  probe=${probe:-/}
done
if [[ ! -e $conf_dir ]] && ((EUID != 0)) && [[ -d $probe && ! -x $probe ]]; then
  need_root "to look into $probe"
fi
if ! priv test -e "$conf_dir"; then
  say "nothing to do for $name: $conf_dir does not exist"
  exit 0
fi
priv test -d "$conf_dir" || die "$conf_dir is not a directory"

work=$(mktemp -d "${TMPDIR:-/tmp}/$self.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

if [[ ! -r $conf_dir || ! -x $conf_dir ]]; then
  need_root "to read $conf_dir"
fi
priv bash -c "$(declare -f list_conf_files); list_conf_files \"\$1\"" list "$conf_dir" >"$work/files" ||
  die "could not list the files of $conf_dir"
files=()
while IFS= read -r -d '' file; do
  files+=("$file")
done <"$work/files"

# Work out every change before touching anything.
changed=()
total_deleted=0
total_edited=0
for i in ${files[@]+"${!files[@]}"}; do
  file=${files[i]}
  if [[ ! -r $file ]]; then
    need_root "to read $file"
  fi
  priv cat -- "$file" >"$work/$i.orig" || die "could not read $file"
  DNS_NAME=$name REPORT=$work/$i.report COUNTS=$work/$i.counts FILE_LABEL=$file SELF=$self \
    awk "$edit_program" "$work/$i.orig" >"$work/$i.new" || die "could not parse $file"
  [[ ! -s $work/$i.report ]] || cat -- "$work/$i.report"
  read -r deleted edited last_kept <"$work/$i.counts"
  ((deleted + edited > 0)) || continue
  # awk ends every line with a newline; keep a file's missing final newline missing.
  if [[ -n $(tail -c 1 -- "$work/$i.orig") ]] && ((last_kept)); then
    truncate -s -1 -- "$work/$i.new"
  fi
  changed+=("$i")
  total_deleted=$((total_deleted + deleted))
  total_edited=$((total_edited + edited))
done

if ((${#changed[@]} == 0)); then
  say "nothing to do for $name: no record for it in $conf_dir"
  exit 0
fi

for i in "${changed[@]}"; do
  file=${files[i]}
  if [[ ! -w $file || ! -w $conf_dir ]]; then
    need_root "to edit $file"
  fi
done

dnsmasq_bin=""
if [[ -z ${DNSMASQ_TEST_COMMAND+set} ]]; then
  dnsmasq_bin=$(find_program dnsmasq) || say "note: no dnsmasq program here, so no dnsmasq --test"
fi
check_config() {
  if [[ -n ${DNSMASQ_TEST_COMMAND+set} ]]; then
    bash -c "$DNSMASQ_TEST_COMMAND" dnsmasq-test "$conf_dir"
  elif [[ -n $dnsmasq_bin ]]; then
    priv "$dnsmasq_bin" --test --conf-file=/dev/null "--conf-dir=$conf_dir"
  fi
}

restart_how=""
if [[ -n ${DNSMASQ_RESTART_COMMAND-} ]]; then
  restart_how=DNSMASQ_RESTART_COMMAND
elif [[ -d /run/systemd/system ]] && systemctl=$(find_program systemctl) &&
  [[ $("$systemctl" show --property=LoadState dnsmasq.service 2>/dev/null) == LoadState=loaded ]]; then
  restart_how="systemctl restart dnsmasq"
  need_root "to restart dnsmasq"
elif service=$(find_program service); then
  restart_how="service dnsmasq restart"
  need_root "to restart dnsmasq"
else
  die "cannot restart dnsmasq here: systemd has no dnsmasq unit and there is no service command" \
    "(set DNSMASQ_RESTART_COMMAND); nothing changed"
fi
restart_dnsmasq() {
  case $restart_how in
    DNSMASQ_RESTART_COMMAND) bash -c "$DNSMASQ_RESTART_COMMAND" dnsmasq-restart "$conf_dir" ;;
    systemctl*) priv "$systemctl" restart dnsmasq.service ;;
    *) priv "$service" dnsmasq restart ;;
  esac
}

# dnsmasq --test reads the directory on its own, so it can only judge the change if it accepts the
# files as they are now.
validate=1
if ! output=$(check_config 2>&1); then
  validate=""
  say "note: dnsmasq --test rejects $conf_dir already, before any change ($(one_line "$output"));" \
    "going on without that check"
fi

stamp=$(date -u +%Y%m%dT%H%M%SZ)
backups=()
written=()
restore() {
  local j failed=""
  for j in ${written[@]+"${written[@]}"}; do
    if priv cp -- "${backups[j]}" "${files[j]}"; then
      priv rm -f -- "${backups[j]}" || true
    else
      failed+=" ${files[j]} (from ${backups[j]})"
    fi
  done
  [[ -z $failed ]] || printf '%s: %s\n' "$self" "COULD NOT RESTORE:$failed" >&2
}
for i in "${changed[@]}"; do
  file=${files[i]}
  backup="$conf_dir/.${file##*/}.$stamp.bak"
  n=1
  while priv test -e "$backup"; do
    backup="$conf_dir/.${file##*/}.$stamp.$n.bak"
    n=$((n + 1))
  done
  backups[i]=$backup
  if ! priv cp -p -- "$file" "$backup"; then
    restore
    die "could not back up $file to $backup; nothing changed"
  fi
  # cp into the existing file keeps its owner, mode and links.
  if ! priv cp -- "$work/$i.new" "$file"; then
    written+=("$i")
    restore
    die "could not write $file; put back what was changed"
  fi
  written+=("$i")
  say "backed up $file to $backup"
done

if [[ -n $validate ]] && ! output=$(check_config 2>&1); then
  restore
  die "dnsmasq --test rejects $conf_dir after the change, so the original files are back and dnsmasq" \
    "was not restarted: $(one_line "$output")"
fi

if ! output=$(restart_dnsmasq 2>&1); then
  restore
  die "restarting dnsmasq ($restart_how) failed, so the original files are back (check that dnsmasq" \
    "runs): $(one_line "$output")"
fi

say "removed $((total_deleted + total_edited)) line(s) for $name ($total_deleted deleted, $total_edited" \
  "edited) in ${#changed[@]} file(s) of $conf_dir; dnsmasq restarted"
