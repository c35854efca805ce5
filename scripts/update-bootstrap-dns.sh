#!/usr/bin/env bash
# Removes the DNS host's dnsmasq override for one name, so that the name is answered by the LAN's real DNS
# (PowerDNS, fed by ExternalDNS) instead of an address hard-coded in dnsmasq.
#
# Usage: update-bootstrap-dns.sh [--restart-command CMD] [--pid-file FILE] [HOSTNAME]
#   HOSTNAME           the name whose override goes (default bootstrap.macula.local)
#   --pid-file FILE    the running dnsmasq's pid file; needed only when several dnsmasq run and none is
#                      systemd's dnsmasq.service (libvirt and NetworkManager start their own)
#   --restart-command CMD
#                      shell command that restarts that dnsmasq, for one that is not systemd's
#                      dnsmasq.service: NetworkManager's own (nmcli general reload dns-full), or one in a
#                      container reached over SSH (supervisorctl restart dnsmasq). Default: systemctl
#                      try-restart dnsmasq.service, or service dnsmasq restart without systemd.
#
# It works on the dnsmasq that runs, and only on what it reads: its command line, its main file (-C, else
# /etc/dnsmasq.conf), every conf-file= include, every conf-dir= with dnsmasq's own filters (dot files,
# "~" and "#...#" files are skipped, "ext" excludes, "*ext" includes), addn-hosts= files and directories,
# hostsdir= and /etc/hosts unless no-hosts. In those files it takes out every active line, or the part of
# it, that answers for exactly HOSTNAME:
#   address=/H/...  local=/H/  server=/H/          H leaves the list of domains; a line naming only H goes
#   (local= and server= without an upstream: dnsmasq answers them itself)
#   host-record=H,...  cname=H,...                H leaves the names (aliases); a line naming only H goes
#   interface-name= dynamic-host= mx-host= srv-host= txt-record= ptr-record= naptr-record= caa-record=
#   dns-rr=                                       a line whose record name is H goes
#   hosts files: "ADDRESS H ..."                  H leaves the names; a line naming only H goes
# Names match without regard to case or a trailing dot; in a domain list ".H" counts as H, as dnsmasq reads
# it. Forwards (server=/H/ADDRESS, local=/H/ADDRESS, rev-server=) are how the real DNS answers, and stay.
# Parent domains, wildcards, other names, comments and every other byte stay as they are. A record for H it
# leaves alone (a quoted value, a dotless hosts name that expand-hosts turns into H) is named, and fails
# the run.
#
# Before changing anything it checks that dnsmasq --test accepts dnsmasq's configuration as it is (run
# with dnsmasq's own command line), and asks the running dnsmasq for HOSTNAME with dig. After the change
# it checks the files again, restarts dnsmasq, waits for the new process and asks again: success means
# dnsmasq no longer answers with the removed addresses, a loopback or an unspecified address, nor NXDOMAIN
# from a parent domain it answers itself. If the check or the restart fails, or a signal comes, the
# files are put back and a dnsmasq that was running runs again. A dnsmasq that was not running is never
# started. When nothing answers for HOSTNAME it changes nothing, restarts nothing and exits 0, so it can
# run any number of times. When not root it uses sudo -n (never a password prompt) for what needs root.
#
# Exit status: 0 done or nothing to do, 1 could not do it (the message says why and what is left),
# 2 bad arguments.
set -euo pipefail
export LC_ALL=C

readonly self=update-bootstrap-dns

usage() {
  cat <<'EOF'
Usage: update-bootstrap-dns.sh [--restart-command CMD] [--pid-file FILE] [HOSTNAME]
Removes the running dnsmasq's records for exactly HOSTNAME (default bootstrap.macula.local) from the files
it reads, restarts it and checks that it no longer answers with the removed or a loopback address.
  --pid-file FILE        the dnsmasq to work on, when several run and none is systemd's dnsmasq.service
  --restart-command CMD  how to restart it, when it is not systemd's dnsmasq.service
EOF
}

say() { printf '%s: %s\n' "$self" "$*"; }
die() {
  printf '%s: %s\n' "$self" "$*" >&2
  exit 1
}
bad_usage() {
  printf '%s: %s (see --help)\n' "$self" "$*" >&2
  exit 2
}

restart_command=""
restart_command_set=""
pid_file=""
names=()
while (($# > 0)); do
  case $1 in
    -h | --help)
      usage
      exit 0
      ;;
    --restart-command | --pid-file)
      (($# > 1)) || bad_usage "$1 needs a value"
      [[ -n $2 ]] || bad_usage "$1 is empty"
      if [[ $1 == --pid-file ]]; then pid_file=$2; else restart_command=$2 restart_command_set=1; fi
      shift 2
      ;;
    --restart-command=* | --pid-file=*)
      [[ -n ${1#*=} ]] || bad_usage "${1%%=*} is empty"
      if [[ $1 == --pid-file=* ]]; then pid_file=${1#*=}; else restart_command=${1#*=} restart_command_set=1; fi
      shift
      ;;
    --)
      shift
      names+=("$@")
      break
      ;;
    -*) bad_usage "unknown option: $1" ;;
    *)
      names+=("$1")
      shift
      ;;
  esac
done
if ((${#names[@]} > 1)); then
  bad_usage "takes one HOSTNAME, got ${#names[@]}: ${names[*]} (dnsmasq's own configuration says which" \
    "files to read, so there is no CONF_DIR argument any more)"
fi
[[ -z $pid_file || $pid_file == /* ]] || bad_usage "--pid-file $pid_file is not an absolute path"
name=${names[0]:-bootstrap.macula.local}
if ((${#name} > 254)) || [[ ! $name =~ ^[A-Za-z0-9_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*\.?$ ]]; then
  bad_usage "'$name' is not a host name (letters, digits, '-', '_', dots; not starting with '-')"
fi
name=${name%.}

# Root is needed only for what the invoking user cannot do. need_root checks once that sudo -n works.
use_sudo=""
need_root() {
  ((EUID == 0)) && return 0
  [[ -n $use_sudo ]] && return 0
  command -v sudo >/dev/null 2>&1 || die "needs root or passwordless sudo $1, and sudo is not installed"
  local err
  if ! err=$(sudo -n true 2>&1); then
    die "needs root or passwordless sudo $1 ($(one_line "$err")); nothing changed"
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

dig=$(find_program dig) ||
  die "needs dig to ask dnsmasq what it answers (Debian and Ubuntu: bind9-dnsutils; Fedora: bind-utils);" \
    "nothing changed"
dnsmasq_bin=$(find_program dnsmasq) || die "there is no dnsmasq program on this host; nothing changed"

# --- Which dnsmasq runs, and how it is restarted --------------------------------------------------------

is_dnsmasq() { [[ $1 =~ ^[1-9][0-9]{0,9}$ && -r /proc/$1/comm && $(</proc/"$1"/comm) == dnsmasq ]]; }
# A process's pid and start time: a restarted dnsmasq may get the pid of the one it replaces.
identity() {
  local fields
  read -r -a fields 2>/dev/null </proc/"$1"/stat || return 0
  printf '%s:%s\n' "$1" "${fields[21]}"
}

# Whether a path exists. When a directory above it cannot be searched, only root can tell: "cannot see"
# is not "not there".
path_exists() {
  [[ -e $1 ]] && return 0
  local dir=${1%/*}
  while [[ -n $dir && ! -e $dir ]]; do dir=${dir%/*}; done
  if [[ -e ${dir:-/} && ! -x ${dir:-/} ]]; then
    need_root "to look at $1"
    priv test -e "$1"
    return
  fi
  return 1
}

systemctl=""
unit=""
if [[ -d /run/systemd/system ]] && systemctl=$(find_program systemctl); then
  if ! unit=$("$systemctl" show --property=LoadState --value dnsmasq.service); then
    die "could not ask systemd about dnsmasq.service (systemctl said why, above); nothing changed"
  fi
  [[ $unit == loaded ]] || unit=""
fi

# Finds the dnsmasq to work on: the one --pid-file names, else systemd's dnsmasq.service, else the only one
# running. Sets pid, or sets absent to why there is none and returns 1. Dies when it cannot tell.
locate_dnsmasq() {
  local state running=() proc text=""
  pid=""
  absent=""
  if [[ -n $pid_file ]]; then
    if ! path_exists "$pid_file"; then
      absent="its pid file $pid_file does not exist"
      return 1
    fi
    if ! text=$(cat -- "$pid_file" 2>/dev/null); then
      need_root "to read $pid_file"
      text=$(priv cat -- "$pid_file") || die "could not read $pid_file; nothing changed"
    fi
    read -r pid _ <<<"$text" || true
    if ! is_dnsmasq "${pid:-}"; then
      absent="$pid_file names process '${pid:-}', which is not a running dnsmasq"
      pid=""
      return 1
    fi
  elif [[ -n $unit ]]; then
    state=$("$systemctl" show --property=ActiveState --value dnsmasq.service) ||
      die "could not ask systemd about dnsmasq.service; nothing changed"
    pid=$("$systemctl" show --property=MainPID --value dnsmasq.service) ||
      die "could not ask systemd about dnsmasq.service; nothing changed"
    if [[ $state != active ]]; then
      absent="systemd's dnsmasq.service is $state"
      pid=""
      return 1
    fi
    is_dnsmasq "$pid" ||
      die "systemd's dnsmasq.service is active, but its main process ($pid) is not dnsmasq; say which" \
        "process answers the LAN with dnsFix.pidFile (--pid-file) and how to restart it with" \
        "dnsFix.restartCommand; nothing changed"
  else
    for proc in /proc/[1-9]*; do
      if is_dnsmasq "${proc#/proc/}"; then running+=("${proc#/proc/}"); fi
    done
    if ((${#running[@]} == 0)); then
      absent="no dnsmasq process runs on this host"
      return 1
    fi
    if ((${#running[@]} > 1)); then
      die "${#running[@]} dnsmasq processes run here (pids ${running[*]}) and none is systemd's" \
        "dnsmasq.service; say which one answers the LAN with dnsFix.pidFile (--pid-file); nothing changed"
    fi
    pid=${running[0]}
  fi
}

if ! locate_dnsmasq; then
  die "dnsmasq is not running: $absent. It was not started and nothing changed; start it (or set" \
    "dnsFix.enabled to false if this host no longer runs dnsmasq)"
fi
started_as=$(identity "$pid")

if [[ ! /proc/$pid/root -ef / ]]; then
  need_root "to read the files of dnsmasq (pid $pid)"
  priv test /proc/"$pid"/root -ef / ||
    die "dnsmasq (pid $pid) runs in another mount namespace, such as a container, so the files here are not" \
      "the ones it reads; run this inside it (point dnsFix.host at it, with dnsFix.restartCommand); nothing" \
      "changed"
fi

# The init script's own dnsmasq writes one of these pid files; only that one is `service dnsmasq`'s.
init_script_pid() {
  local file text
  for file in /run/dnsmasq/dnsmasq.pid /var/run/dnsmasq/dnsmasq.pid /var/run/dnsmasq.pid; do
    text=$(priv cat -- "$file" 2>/dev/null) || continue
    [[ ${text%%[!0-9]*} == "$pid" ]] && return 0
  done
  return 1
}

service=""
if [[ -n $restart_command_set ]]; then
  restart_how=$restart_command
elif [[ -n $unit ]] && [[ $("$systemctl" show --property=MainPID --value dnsmasq.service) == "$pid" ]]; then
  restart_how="systemctl try-restart dnsmasq.service"
elif [[ -z $unit ]] && service=$(find_program service) && init_script_pid; then
  restart_how="service dnsmasq restart"
else
  read -r _ _ _ parent_pid _ </proc/"$pid"/stat
  hint=""
  if [[ $(cat /proc/"$parent_pid"/comm 2>/dev/null) == NetworkManager ]]; then
    hint=" (it is NetworkManager's: nmcli general reload dns-full)"
  fi
  die "dnsmasq (pid $pid) is not the system's dnsmasq service, so this script does not know how to restart" \
    "it; set dnsFix.restartCommand (--restart-command)$hint; nothing changed"
fi

# systemd's try-restart restarts only an active unit, so a dnsmasq stopped meanwhile stays stopped. Not
# reload: SIGHUP makes dnsmasq re-read its hosts files, never its configuration files.
restart_dnsmasq() {
  if [[ -n $restart_command_set ]]; then
    bash -c "$restart_command" dnsmasq-restart
  elif [[ -n $service ]]; then
    priv "$service" dnsmasq restart
  else
    priv "$systemctl" try-restart dnsmasq.service
  fi
}
# After a failed change: dnsmasq was running, so it runs again, on the files as they were.
start_again() {
  if [[ -z $restart_command_set && -z $service ]]; then
    priv "$systemctl" restart dnsmasq.service
  else
    restart_dnsmasq
  fi
}
[[ -n $restart_command_set ]] || need_root "to restart dnsmasq"

# Waits, within a bound, for a dnsmasq other than the one that ran before the restart: a restart command
# may return before the new one runs (nmcli does).
wait_for_new_dnsmasq() {
  local attempt
  for ((attempt = 0; attempt < 20; attempt++)); do
    if locate_dnsmasq && [[ $(identity "$pid") != "$started_as" ]]; then
      return 0
    fi
    sleep 0.5
  done
  return 1
}

# --- What dnsmasq reads -----------------------------------------------------------------------------------

# The files written so far (indexes into files), put back by undo on any failure or interruption.
written=()
restarted=""
# shellcheck disable=SC2317 # called by the EXIT trap
on_exit() {
  local status=$?
  # A second signal must not cut the undo short and leave dnsmasq stopped.
  trap '' INT TERM HUP
  if ((${#written[@]} > 0)); then
    if undo; then
      printf '%s: %s\n' "$self" "interrupted: the files are back as they were" >&2
    else
      work=""
    fi
  fi
  [[ -z $work ]] || rm -rf -- "$work"
  exit "$status"
}
work=$(mktemp -d "${TMPDIR:-/tmp}/$self.XXXXXX")
trap 'on_exit' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

mapfile -d '' cmdline < <(priv cat -- /proc/"$pid"/cmdline)
((${#cmdline[@]} > 0)) || die "could not read the command line of dnsmasq (pid $pid); nothing changed"

# dnsmasq's own comment rule (option.c, read_file), shared by every awk program here: outside double
# quotes, "#" at the start of a line or after white space starts a comment.
# shellcheck disable=SC2016 # awk's own $0, not the shell's
readonly split_comment='
function split_comment(line,   n, i, c, white, quoted) {
  n = length(line); cut = n + 1; white = 1; quoted = 0
  for (i = 1; i <= n; i++) {
    c = substr(line, i, 1)
    if (c == "\"") { quoted = !quoted; white = 0 }
    else if (quoted) continue
    else if (c ~ /[ \t\r\v\f]/) white = 1
    else if (white && c == "#") { cut = i; break }
    else white = 0
  }
  return substr(line, 1, cut - 1)
}
function trim(s) { sub(/^[ \t\r\v\f]+/, "", s); sub(/[ \t\r\v\f]+$/, "", s); return s }
'

# Prints "KEY<TAB>VALUE" for every option of a configuration file that says where dnsmasq reads more,
# or where it listens.
# shellcheck disable=SC2016
readonly options_program="$split_comment"'
{
  body = trim(split_comment($0))
  if (body == "") next
  eq = index(body, "=")
  key = eq ? trim(substr(body, 1, eq - 1)) : body
  value = eq ? trim(substr(body, eq + 1)) : ""
  if (value ~ /^".*"$/) value = substr(value, 2, length(value) - 2)
  if (key ~ /^(conf-(file|dir|script)|addn-hosts|hostsdir|(no|expand)-hosts|domain|port|listen-address|interface)$/)
    printf "%s\t%s\n", key, value
}
'

conf_files=()
hosts_files=()
no_hosts=""
expand_hosts=""
domains=()
dns_port=53
listen_addresses=()
interfaces=""
conf_scripts=()

# dnsmasq skips these names in every directory it reads.
skipped_name() { [[ $1 == .* || $1 == *~ || ($1 == \#* && $1 == *\#) ]]; }

# The regular files of a directory, NUL-separated, in C-locale order.
list_dir() {
  # shellcheck disable=SC2016 # expanded by the inner shell
  priv bash -c 'shopt -s nullglob dotglob; for p in "$1"/*; do [[ -f $p ]] && printf "%s\0" "$p"; done; :' \
    list "$1"
}

# Whether conf-dir=DIR,FILTER... reads a file of that name (dnsmasq's option.c, conf-dir): with any
# "*ext", only names ending in one of them; never a name ending in an "ext". A name ends in a suffix only
# when it is longer than the suffix; a bare "*" filters nothing.
conf_dir_reads() {
  local base=$1 filter suffix includes="" included=""
  shift
  for filter in "$@"; do
    filter=${filter#"${filter%%[! ]*}"}
    filter=${filter%"${filter##*[! ]}"}
    suffix=${filter#\*}
    [[ -n $suffix ]] || continue
    if [[ $filter == \** ]]; then
      includes=1
      if ((${#base} > ${#suffix})) && [[ $base == *"$suffix" ]]; then included=1; fi
    elif ((${#base} > ${#suffix})) && [[ $base == *"$suffix" ]]; then
      return 1
    fi
  done
  [[ -z $includes || -n $included ]]
}

read_option() {
  local key=$1 value=$2 origin=$3 path dir base
  local -a filters
  case $key in
    conf-file) [[ -z $value ]] || read_conf_file "$value" "$origin" ;;
    conf-dir)
      IFS=, read -r -a filters <<<"$value"
      # dnsmasq strips the spaces around each comma-separated part.
      dir=${filters[0]%"${filters[0]##*[! ]}"}
      dir=${dir%/}
      dir=${dir:-/}
      priv test -d "$dir" || die "$origin: conf-dir $dir is not a directory dnsmasq can read; nothing changed"
      while IFS= read -r -d '' path; do
        base=${path##*/}
        if skipped_name "$base"; then continue; fi
        if conf_dir_reads "$base" "${filters[@]:1}"; then
          read_conf_file "$path" "$dir"
        fi
      done < <(list_dir "$dir")
      ;;
    addn-hosts | hostsdir)
      if priv test -d "$value"; then
        while IFS= read -r -d '' path; do
          if ! skipped_name "${path##*/}"; then hosts_files+=("$path"); fi
        done < <(list_dir "${value%/}")
      elif priv test -f "$value"; then
        hosts_files+=("$value")
      fi
      ;;
    no-hosts) no_hosts=1 ;;
    expand-hosts) expand_hosts=1 ;;
    domain) domains+=("${value%%,*}") ;;
    port) dns_port=$value ;;
    listen-address) IFS=, read -r -a filters <<<"$value" && listen_addresses+=("${filters[@]}") ;;
    interface) interfaces=1 ;;
    conf-script) conf_scripts+=("$value") ;;
  esac
}

read_conf_file() {
  local file=$1 origin=$2 known key value
  local -a options
  [[ $file == /dev/null ]] && return 0
  for known in ${conf_files[@]+"${conf_files[@]}"}; do
    [[ $known == "$file" ]] && return 0
  done
  if ! priv test -r "$file"; then
    # A missing /etc/dnsmasq.conf is no error to dnsmasq.
    [[ $origin == default ]] && ! priv test -e "$file" && return 0
    die "$origin names $file, which cannot be read; nothing changed"
  fi
  conf_files+=("$file")
  mapfile -t options < <(priv cat -- "$file" | awk "$options_program")
  for key in ${options[@]+"${options[@]}"}; do
    value=${key#*$'\t'}
    read_option "${key%%$'\t'*}" "$value" "$file"
  done
}

# dnsmasq's command line as "KEY=VALUE" lines, read the way its getopt_long does, with the option table of
# dnsmasq's own --help: clusters of one-letter options (-kh), unambiguous prefixes of long ones (--no-ho),
# and a required value attached or in the next word; an optional value only attached.
declare -A takes short_names
while IFS=' ' read -r letter long kind; do
  takes[$long]=$kind
  [[ $letter == - ]] || short_names[$letter]=$long
done < <("$dnsmasq_bin" --help | sed -n -E \
  -e 's/^(-(.),)? +--([a-z0-9-]+)\[=.*/\2 \3 optional/p' \
  -e 's/^(-(.),)? +--([a-z0-9-]+)=.*/\2 \3 required/p' \
  -e 's/^(-(.),)? +--([a-z0-9-]+)( .*)?$/\2 \3 none/p' | sed 's/^ /- /')
((${#takes[@]} > 0)) || die "could not read dnsmasq's options from dnsmasq --help; nothing changed"

long_option() {
  local prefix=$1 known matches=()
  if [[ -n ${takes[$prefix]+set} ]]; then
    printf '%s\n' "$prefix"
    return
  fi
  for known in "${!takes[@]}"; do
    if [[ $known == "$prefix"* ]]; then matches+=("$known"); fi
  done
  ((${#matches[@]} == 1)) ||
    die "could not read dnsmasq's command line (pid $pid): --$prefix is no option of $dnsmasq_bin; nothing" \
      "changed"
  printf '%s\n' "${matches[0]}"
}

cmdline_options=()
main_file=""
add_option() {
  # The first --conf-file with a value replaces /etc/dnsmasq.conf, and is read after the command line.
  if [[ $1 == conf-file && -z $main_file && -n $2 ]]; then
    main_file=$2
  else
    cmdline_options+=("$1=$2")
  fi
}
for ((i = 1; i < ${#cmdline[@]}; i++)); do
  word=${cmdline[i]}
  case $word in
    --) break ;;
    --*)
      key=${word#--}
      key=$(long_option "${key%%=*}")
      if [[ $word == *=* ]]; then
        add_option "$key" "${word#*=}"
      elif [[ ${takes[$key]} == required ]] && ((i + 1 < ${#cmdline[@]})); then
        i=$((i + 1))
        add_option "$key" "${cmdline[i]}"
      else
        add_option "$key" ""
      fi
      ;;
    -?*)
      cluster=${word:1}
      while [[ -n $cluster ]]; do
        key=${short_names[${cluster:0:1}]:-}
        [[ -n $key ]] || die "could not read dnsmasq's command line (pid $pid): -${cluster:0:1} is no option" \
          "of $dnsmasq_bin; nothing changed"
        cluster=${cluster:1}
        if [[ ${takes[$key]} == none ]]; then
          add_option "$key" ""
        elif [[ -n $cluster ]]; then
          add_option "$key" "$cluster"
          cluster=""
        elif [[ ${takes[$key]} == required ]] && ((i + 1 < ${#cmdline[@]})); then
          i=$((i + 1))
          add_option "$key" "${cmdline[i]}"
        else
          add_option "$key" ""
        fi
      done
      ;;
  esac
done
cmdline_origin="dnsmasq's command line (pid $pid)"
for option in ${cmdline_options[@]+"${cmdline_options[@]}"}; do
  read_option "${option%%=*}" "${option#*=}" "$cmdline_origin"
done
if [[ -n $main_file ]]; then
  read_conf_file "$main_file" "$cmdline_origin"
else
  read_conf_file /etc/dnsmasq.conf default
fi
[[ -n $no_hosts ]] || ! priv test -f /etc/hosts || hosts_files+=(/etc/hosts)

if [[ $dns_port == 0 ]]; then
  say "nothing to do for $name: dnsmasq (pid $pid) does not serve DNS (port=0)"
  exit 0
fi
# With no interface= and no listen-address=, dnsmasq answers on every address; interface= adds the
# loopback; listen-address= alone listens only where it says.
server=127.0.0.1
if ((${#listen_addresses[@]} > 0)) && [[ -z $interfaces ]] &&
  [[ " ${listen_addresses[*]} " != *" 127.0.0.1 "* ]]; then
  server=${listen_addresses[0]}
fi

# --- Asking dnsmasq -------------------------------------------------------------------------------------

# Prints dnsmasq's answer for the name as "STATUS ANSWER..." (NOERROR, NXDOMAIN, ...; its A and AAAA
# addresses, and a CNAME's target names, which end in "."), read from dig's stdout only. When dnsmasq does
# not reply it prints dig's words (both streams, for the message) and fails.
ask_dnsmasq() {
  local type output replies=""
  for type in A AAAA; do
    if ! output=$("$dig" +noall +comments +answer +time=2 +tries=1 -p "$dns_port" "@$server" "$name" \
      "$type" 2>"$work/dig.err"); then
      printf '%s\n' "$output" "$(cat -- "$work/dig.err")"
      return 1
    fi
    replies+=$output$'\n'
  done
  printf '%s' "$replies" | awk '
    /->>HEADER<<-/ { for (i = 1; i < NF; i++) if ($i == "status:") { s = $(i + 1); sub(/,$/, "", s)
      if (status == "" || s == "NOERROR") status = s } }
    !/^;/ && NF >= 5 && ($4 == "A" || $4 == "AAAA" || $4 == "CNAME") { answers = answers " " $5 }
    END { print (status == "" ? "UNKNOWN" : status) answers }'
}
ask_until_answered() {
  local attempt answer
  for ((attempt = 1; attempt < 10; attempt++)); do
    if answer=$(ask_dnsmasq 2>/dev/null); then
      printf '%s\n' "$answer"
      return 0
    fi
    sleep 1
  done
  ask_dnsmasq
}
# The answers that are a stub: loopback, unspecified, or one of the addresses records for the name gave.
stub_answers() {
  local line stub answers
  read -r -a answers <<<"${1#* }"
  [[ $1 == *" "* ]] || answers=()
  for line in ${answers[@]+"${answers[@]}"}; do
    case $line in
      127.* | ::1 | 0:0:0:0:0:0:0:1 | 0.0.0.0 | ::) printf '%s\n' "$line" ;;
      *)
        while IFS= read -r stub; do
          if [[ $line == "$stub" ]]; then
            printf '%s\n' "$line"
            break
          fi
        done <"$work/stubs"
        ;;
    esac
  done
}
# The answer in words: its addresses, or its status when it has none.
in_words() {
  if [[ $1 == *" "* ]]; then printf '%s' "${1#* }"; else printf 'no address (%s)' "$1"; fi
}
: >"$work/stubs"
# The exit status is the verdict; dnsmasq reports why on stderr only, which is kept for the message.
config_test() { priv "$dnsmasq_bin" "${cmdline[@]:1}" --test 2>&1; }

if ! output=$(config_test); then
  broken=$(printf '%s\n' "$output" | sed -n -e 's/.* at line [0-9]* of \(\/.*\)$/\1/p' \
    -e 's/.*cannot \(read\|access directory\) \(\/[^:]*\):.*/\2/p' | head -n 1)
  die "dnsmasq's configuration is broken already, before any change${broken:+ (in $broken)}:" \
    "$(one_line "$output"). Nothing changed and dnsmasq was not restarted; fix that first"
fi
if ! before=$(ask_dnsmasq); then
  die "could not ask dnsmasq (pid $pid) for $name at $server port $dns_port: $(one_line "$before");" \
    "nothing changed"
fi

# --- What answers for the name ----------------------------------------------------------------------------

# Reads one file and writes it with HOSTNAME's records taken out; findings go to $REPORT, the addresses the
# records for HOSTNAME give to $STUBS, "deleted edited last-line-kept left" to $COUNTS, where "left" counts
# the records for HOSTNAME it does not edit: quoted values, and dotless hosts names that expand-hosts
# turns into HOSTNAME. POSIX awk only (mawk on Debian, gawk on Fedora). HOSTS=1 reads the hosts-file
# format, else dnsmasq's options.
# shellcheck disable=SC2016 # awk's own $0, not the shell's
readonly edit_program="$split_comment"'
function canon(s) { s = tolower(trim(s)); sub(/\.$/, "", s); return s }
function is_address(t) { return t ~ /^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$/ || index(t, ":") > 0 }
function is_name(t) { return t != "" && t !~ /^[0-9]+$/ && !is_address(t) }
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
function stub(address) { address = trim(address); if (is_address(address)) print address > stubs }
# address=, server=, local=: /domain/.../domain/rest. A server= or local= with an upstream is a forward
# (the three share one parser in option.c), and stays.
function domains(value, key,   seg, n, i, d, kept, dropped, out, pat) {
  if (substr(value, 1, 1) != "/") return "keep"
  n = split(value, seg, "/")
  if (n < 3) return "keep"
  if ((key == "server" || key == "local") && trim(seg[n]) != "") return "keep"
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
  if (key == "address") stub(seg[n])
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
  if (!cname) for (i = 1; i <= n; i++) stub(f[i])
  if (!kept) return "delete"
  result = out
  return "edit"
}
function first_name(value,   f) {
  split(value, f, ",")
  return canon(f[1]) == name ? "delete" : "keep"
}
# A hosts file line: ADDRESS NAME...; the names without HOSTNAME, spacing kept.
function hosts_names(body,   rest, out, word, kept, dropped, expands, sep, address) {
  match(body, /^[^ \t]+/)
  address = substr(body, 1, RLENGTH)
  out = address; rest = substr(body, RLENGTH + 1); kept = 0; dropped = 0
  # A kept name takes the spacing of the name removed before it.
  sep = ""
  while (match(rest, /^[ \t]+[^ \t]+/)) {
    word = substr(rest, RSTART, RLENGTH); rest = substr(rest, RLENGTH + 1)
    if (canon(word) == name) { dropped++; if (sep == "") { match(word, /^[ \t]+/); sep = substr(word, 1, RLENGTH) } }
    else if (sep != "") { kept++; sub(/^[ \t]+/, sep, word); out = out word; sep = "" }
    else { kept++; out = out word }
    if (short != "" && canon(word) == short) expands = 1
  }
  if (expands) { note(body " answers " name " too (expand-hosts with its domain)"); left++; stub(address) }
  if (!dropped) return "keep"
  stub(address)
  if (!kept) return "delete"
  result = out
  return "edit"
}
BEGIN {
  name = canon(ENVIRON["DNS_NAME"]); report = ENVIRON["REPORT"]; file = ENVIRON["FILE_LABEL"]
  stubs = ENVIRON["STUBS"]; hosts = ENVIRON["HOSTS"] == "1"; short = canon(ENVIRON["EXPANDED_SHORT_NAME"])
  self = ENVIRON["SELF"]; deleted = 0; edited = 0; last_kept = 0; left = 0
  split("interface-name dynamic-host mx-host srv-host txt-record ptr-record naptr-record caa-record dns-rr", \
    list, " ")
  for (i in list) single[list[i]] = 1
}
{
  line = $0; last_kept = 1
  # In a hosts file a "#" anywhere starts a comment (cache.c, gettok).
  if (hosts) { cut = index(line, "#"); if (!cut) cut = length(line) + 1; content = substr(line, 1, cut - 1) }
  else content = split_comment(line)
  # A value with quotes is judged without them, and never edited.
  quoted = !hosts && index(content, "\"") > 0
  if (quoted) gsub(/"/, "", content)
  match(content, /^[ \t\r\v\f]*/); lead = substr(content, 1, RLENGTH); rest = substr(content, RLENGTH + 1)
  match(rest, /[ \t\r\v\f]*$/); body = substr(rest, 1, RSTART - 1)
  tail = substr(rest, RSTART) substr(line, cut)
  covers = ""; result = ""; head = ""
  if (hosts) action = body == "" ? "keep" : hosts_names(body)
  else {
    eq = index(body, "=")
    if (eq == 0) { print line; next }
    key = trim(substr(body, 1, eq - 1))
    after = substr(body, eq + 1); match(after, /^[ \t\r\v\f]*/)
    head = substr(body, 1, eq + RLENGTH); value = substr(after, RLENGTH + 1)
    if (key == "address" || key == "server" || key == "local") action = domains(value, key)
    else if (key == "host-record") action = names(value, 0)
    else if (key == "cname") action = names(value, 1)
    else if (key in single) action = first_name(value)
    else action = "keep"
  }
  if (quoted) {
    if (action != "keep") { note("left as it is (a quoted value): " trim(substr(line, 1, cut - 1))); left++ }
    else if (mentions(body)) note(body " still names " name)
    print line; next
  }
  if (action == "delete") {
    printf "%s: %s:%d: %s  (line removed)\n", self, file, FNR, body > report
    deleted++; last_kept = 0; next
  }
  if (action == "edit") {
    printf "%s: %s:%d: %s  ->  %s\n", self, file, FNR, body, head result > report
    edited++; print lead head result tail
  } else print line
  if (covers != "") note(trim(covers) " in " body " still covers " name)
  else if (action == "keep" && mentions(body) && key !~ /^(server|local|rev-server)$/)
    note(body " still names " name)
}
END { print deleted, edited, last_kept, left > ENVIRON["COUNTS"] }
'

# Runs the edit program over one file (HOSTS=1 for the hosts format); $work/N.orig, .new, .report, .counts.
edit_file() {
  local i=$1 path=$2 hosts=$3 label=$4
  DNS_NAME=$name REPORT=$work/$i.report COUNTS=$work/$i.counts STUBS=$work/stubs FILE_LABEL=$label \
    SELF=$self HOSTS=$hosts EXPANDED_SHORT_NAME=$expanded_short_name awk "$edit_program" "$path" \
    >"$work/$i.new" || die "could not parse $label"
}

# With expand-hosts, a hosts file's dotless NAME also answers NAME.DOMAIN.
expanded_short_name=""
if [[ -n $expand_hosts ]]; then
  for domain in ${domains[@]+"${domains[@]}"}; do
    domain=${domain%.}
    short=${name%".$domain"}
    if [[ $short != "$name" && $short != *.* ]] && [[ ${name,,} == "${short,,}.${domain,,}" ]]; then
      expanded_short_name=$short
    fi
  done
fi

# The command line is read, never edited: an override there is for the user to move.
printf '%s\n' ${cmdline_options[@]+"${cmdline_options[@]}"} >"$work/cmdline"
edit_file cmdline "$work/cmdline" 0 "$cmdline_origin"
read -r deleted edited _ <"$work/cmdline.counts"
if ((deleted + edited > 0)); then
  die "$cmdline_origin answers for $name: $(one_line "$(cat -- "$work/cmdline.report")"). This script" \
    "edits files only; take that option out of how dnsmasq is started. Nothing changed"
fi
[[ ! -s $work/cmdline.report ]] || cat -- "$work/cmdline.report"

# Each file once, as dnsmasq reads each once (by device and inode: links and repeated names are one).
files=()
file_is_hosts=()
declare -A seen_files
add_file() {
  local id
  id=$(priv stat -L -c %d:%i -- "$1") || die "could not read $1; nothing changed"
  [[ -z ${seen_files[$id]+set} ]] || return 0
  seen_files[$id]=1
  files+=("$1")
  file_is_hosts+=("$2")
}
for file in "${conf_files[@]}"; do add_file "$file" 0; done
for file in ${hosts_files[@]+"${hosts_files[@]}"}; do add_file "$file" 1; done

changed=()
total_deleted=0
total_edited=0
total_left=0
for i in "${!files[@]}"; do
  file=${files[i]}
  priv cat -- "$file" >"$work/$i.orig" || die "could not read $file; nothing changed"
  edit_file "$i" "$work/$i.orig" "${file_is_hosts[i]}" "$file"
  [[ ! -s $work/$i.report ]] || cat -- "$work/$i.report" | tee -a "$work/notes"
  read -r deleted edited last_kept left <"$work/$i.counts"
  total_left=$((total_left + left))
  ((deleted + edited > 0)) || continue
  # awk ends every line with a newline; keep a file's missing final newline missing.
  if [[ -n $(tail -c 1 -- "$work/$i.orig") ]] && ((last_kept)); then
    truncate -s -1 -- "$work/$i.new"
  fi
  changed+=("$i")
  total_deleted=$((total_deleted + deleted))
  total_edited=$((total_edited + edited))
done

# Where the answer still comes from, as far as this script can tell.
sources() {
  local found=""
  [[ ! -s $work/notes ]] || found=$(grep -F ': note: ' "$work/notes" | sed "s/^$self: note: //") || true
  if [[ -n $found ]]; then
    printf 'what still names it: %s' "$(one_line "$found")"
  elif ((${#conf_scripts[@]} > 0)); then
    printf 'no file dnsmasq reads names it, so look at the output of its conf-script: %s' "${conf_scripts[*]}"
  else
    printf 'no file dnsmasq reads names it: look for a DHCP lease of that name, or another program %s' \
      "answering on $server port $dns_port"
  fi
}

# What keeps the name from the LAN's DNS, given dnsmasq's answer: a stub address, records for the name
# this script leaves alone, or a parent domain dnsmasq answers itself (NXDOMAIN, never forwarded).
blocked() {
  local stubs
  stubs=$(stub_answers "$1")
  if [[ -n $stubs ]]; then
    printf 'still answers %s with %s' "$name" "$(paste -sd ' ' - <<<"$stubs")"
  elif ((total_left > 0)); then
    printf 'has records for %s that this script leaves alone' "$name"
  elif [[ ${1%% *} == NXDOMAIN ]] && grep -qF ' still covers ' "$work/notes" 2>/dev/null; then
    printf 'answers NXDOMAIN for %s from a parent domain it serves itself, so it never asks the LAN'"'"'s DNS' \
      "$name"
  else
    return 1
  fi
}

if ((${#changed[@]} == 0)); then
  if problem=$(blocked "$before"); then
    die "dnsmasq $problem, from no record this script can remove; $(sources). Nothing changed"
  fi
  say "nothing to do for $name: no file dnsmasq reads has a record for it, and dnsmasq answers" \
    "$(in_words "$before")"
  exit 0
fi

# --- The change, checked, and undone if it does not work ---------------------------------------------------

put_back() {
  local j failed=""
  for j in ${written[@]+"${written[@]}"}; do
    priv cp -- "$work/$j.orig" "${files[j]}" || failed+=" ${files[j]}"
  done
  if [[ -n $failed ]]; then
    printf '%s: %s\n' "$self" "COULD NOT PUT BACK:$failed; their contents before the change are in $work" >&2
    return 1
  fi
}
# Puts the files back and, when dnsmasq was restarted on the change, starts it again on them, whatever
# came of the files: the LAN needs its DNS. Runs to the end once begun (signals are ignored meanwhile),
# says on stderr what it could not do, and fails then.
undo() {
  trap '' INT TERM HUP
  local output="" undone=1
  put_back || undone=""
  written=()
  if [[ -n $restarted ]]; then
    restarted=""
    # Whether it worked is for dnsmasq's answer to say, below.
    output=$(start_again 2>&1) || true
    if ! ask_until_answered >/dev/null 2>&1; then
      printf '%s: dnsmasq does NOT answer at %s port %s after starting it again (%s)%s\n' "$self" "$server" \
        "$dns_port" "$restart_how" "${output:+: $(one_line "$output")}" >&2
      undone=""
    fi
  fi
  [[ -n $undone ]]
}
fail() {
  local message=$* again=${restarted:+ and dnsmasq runs on them again}
  if undo; then
    die "$message; the files are back as they were$again"
  fi
  work=""
  die "$message"
}

for i in "${changed[@]}"; do
  if ! priv test -w "${files[i]}"; then
    need_root "to edit ${files[i]}"
  fi
done
for i in "${changed[@]}"; do
  # cp into the existing file keeps its owner, mode and links.
  written+=("$i")
  priv cp -- "$work/$i.new" "${files[i]}" || fail "could not write ${files[i]}"
done

if ! output=$(config_test); then
  fail "dnsmasq --test rejects the configuration after the change, so dnsmasq was not restarted:" \
    "$(one_line "$output")"
fi
restarted=1
if ! output=$(restart_dnsmasq 2>&1); then
  fail "restarting dnsmasq ($restart_how) failed: $(one_line "$output")"
fi
if ! wait_for_new_dnsmasq; then
  fail "restarting dnsmasq ($restart_how) left no new dnsmasq running${absent:+ ($absent)}"
fi
if ! after=$(ask_until_answered); then
  fail "dnsmasq does not answer at $server port $dns_port after the restart ($restart_how):" \
    "$(one_line "$after")"
fi
written=()

summary="removed $((total_deleted + total_edited)) line(s) for $name ($total_deleted deleted,"
summary+=" $total_edited edited) in ${#changed[@]} file(s)"
if problem=$(blocked "$after"); then
  die "$summary and restarted dnsmasq, but it $problem; $(sources)"
fi
say "$summary; restarted dnsmasq ($restart_how), which answers $(in_words "$after") for it"
