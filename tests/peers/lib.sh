# Helpers shared by the peer scripts in this folder; sourced, not run.
# shellcheck shell=bash

# die MESSAGE...: print to stderr and exit 1.
die() {
  printf '%s: %s\n' "${0##*/}" "$*" >&2
  exit 1
}

# need_root: the peers bind ports, switch users and write spool trees.
need_root() {
  [ "$(id -u)" -eq 0 ] || die "must run as root"
}

# abs_dir DIR: create DIR if needed and print its absolute path. Paths with
# whitespace are refused: the daemons' config formats cannot quote them.
abs_dir() {
  case "$1" in
    *[[:space:]]*) die "directory path must not contain whitespace: '$1'" ;;
  esac
  mkdir -p "$1"
  (cd "$1" && pwd -P)
}

# check_port PORT: a decimal TCP port number.
check_port() {
  case "$1" in
    '' | *[!0-9]*) die "bad port: '$1'" ;;
  esac
  if [ "$1" -lt 1 ] || [ "$1" -gt 65535 ]; then
    die "bad port: '$1'"
  fi
}

# The address the peers listen on: loopback, unless a container needs them reachable.
bind=${LOCKSTEP_PEER_BIND:-127.0.0.1}

# port_open PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# pid_alive PID: true when PID runs and is not a zombie (a zombie counts as
# stopped: PID 1 may reap it late).
pid_alive() {
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  case "$state" in
    Z*) return 1 ;;
  esac
  return 0
}

# read_pid FILE: print the pid recorded in FILE (first number), fail if none.
read_pid() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(tr -dc '0-9\n' <"$1" | head -n 1)
  [ -n "$pid" ] || return 1
  printf '%s\n' "$pid"
}

# show_tail FILE...: print the end of each existing, non-empty log to stderr.
show_tail() {
  local f
  for f in "$@"; do
    if [ -s "$f" ]; then
      printf -- '--- last lines of %s ---\n' "$f" >&2
      tail -n 25 "$f" >&2
    fi
  done
}

# wait_port PORT SECONDS PID LOG...: wait until 127.0.0.1:PORT accepts
# connections. Fails early when PID (if not empty) dies; shows the logs on failure.
wait_port() {
  local port=$1 seconds=$2 pid=$3 deadline
  shift 3
  deadline=$((SECONDS + seconds))
  until port_open "$port"; do
    if [ -n "$pid" ] && ! pid_alive "$pid"; then
      show_tail "$@"
      die "process $pid exited before 127.0.0.1:$port accepted connections"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      show_tail "$@"
      die "127.0.0.1:$port does not accept connections after ${seconds}s"
    fi
    sleep 0.1
  done
}

# wait_file PATH SECONDS LOG...: wait until PATH exists (a pid file, a socket).
wait_file() {
  local path=$1 seconds=$2 deadline
  shift 2
  deadline=$((SECONDS + seconds))
  until [ -e "$path" ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      show_tail "$@"
      die "$path did not appear after ${seconds}s"
    fi
    sleep 0.1
  done
}

# descendants PID: print the pids of PID's children, grandchildren, ...
descendants() {
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    printf '%s\n' "$child"
    descendants "$child"
  done
}

# stop_pid PID SECONDS: SIGTERM to PID, then wait up to SECONDS for it and the
# children it had to exit; SIGKILL whatever is left. Returns 1 if a process
# still runs after that.
stop_pid() {
  local pid=$1 seconds=$2 deadline p
  local -a tree left
  pid_alive "$pid" || return 0
  read -r -a tree <<<"$(descendants "$pid" | tr '\n' ' ')"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + seconds))
  while :; do
    left=()
    for p in "$pid" "${tree[@]}"; do
      if pid_alive "$p"; then left+=("$p"); fi
    done
    [ "${#left[@]}" -eq 0 ] && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "${0##*/}: still running after ${seconds}s: ${left[*]}; sending SIGKILL" >&2
      kill -KILL "${left[@]}" 2>/dev/null || true
      sleep 0.5
      for p in "${left[@]}"; do
        pid_alive "$p" && return 1
      done
      return 0
    fi
    sleep 0.1
  done
}

# check_traversable DIR UID GID: the unprivileged user must reach DIR.
check_traversable() {
  setpriv --reuid "$2" --regid "$3" --clear-groups test -x "$1" ||
    die "$1 is not reachable for uid $2 (a parent directory lacks o+x)"
}
