#!/usr/bin/env bash
# Usage: tests/peers/smoke.sh DIR [FIXTURE_DIR]
#
# End-to-end check of the peer scripts: starts Dovecot and Cyrus, sends mail
# through a private Postfix (LMTP client, over TCP and then over the unix
# socket) to each, with several recipients of which one is unknown
# (nobody@lab.test), checks that every message landed exactly once in each
# right mailbox and nowhere else, stops everything and checks that no process
# is left. Everything lives in DIR. With FIXTURE_DIR, the Postfix log
# excerpts of the TCP sessions are written there as
# postfix-dovecot-clean.log and postfix-cyrus-clean.log.
# Ports: DOVECOT_PORT (24001), CYRUS_PORT (24002), SMTP_PORT (24025).
# With LOCKSTEP=/path/to/lockstep, Postfix delivers through `lockstep proxy` instead:
# one proxy on TCP (PROXY_PORT, default 24100, and +1 for Cyrus) with a TCP upstream,
# one on a unix socket with the server's unix socket as upstream; their recordings go
# to DIR/rec-NAME/ (one file per connection).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/peers/lib.sh
. "$here/lib.sh"

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  sed -n '2s/^# Usage: *//p' "${BASH_SOURCE[0]}" >&2
  exit 2
fi
need_root
dir=$(abs_dir "$1")
fixtures=${2:+$(abs_dir "$2")}
dovecot_port=${DOVECOT_PORT:-24001}
cyrus_port=${CYRUS_PORT:-24002}
smtp_port=${SMTP_PORT:-24025}
tag=$$ # makes the subjects of this run unique
failures=0
pids=()
proxy_pids=()
proxied=()

cleanup() {
  "$here/postfix.sh" stop "$dir/postfix-dovecot" >/dev/null 2>&1 || true
  "$here/postfix.sh" stop "$dir/postfix-cyrus" >/dev/null 2>&1 || true
  "$here/dovecot.sh" stop "$dir/dovecot" >/dev/null 2>&1 || true
  "$here/cyrus.sh" stop "$dir/cyrus" >/dev/null 2>&1 || true
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# remember PID and its children, to check at the end that all of them are gone
remember() {
  local p
  pids+=("$1")
  for p in $(descendants "$1"); do pids+=("$p"); done
}

# start_proxy NAME LISTEN UPSTREAM LOG: a lockstep proxy recording into DIR/rec-NAME.
start_proxy() {
  local name=$1 listen=$2 upstream=$3 log=$4
  mkdir -p "$dir/rec-$name"
  "$LOCKSTEP" proxy --listen "$listen" --upstream "$upstream" --record "$dir/rec-$name" --color never \
    </dev/null >"$log" 2>&1 &
  remember $!
  proxy_pids+=("$!")
}

# deliver NAME PEER NEXTHOP: one Postfix instance, four messages to PEER.
deliver() {
  local name=$1 nexthop=$2 pf=$dir/postfix-$1
  local unix_hop="unix:$dir/$name/lmtp.sock"
  proxy_pids=()
  if [ -n "${LOCKSTEP:-}" ]; then
    local pport=$((${PROXY_PORT:-24100} + ${#proxied[@]}))
    proxied+=("$name")
    start_proxy "$name" "127.0.0.1:$pport" "${nexthop#inet:}" "$dir/proxy-$name-tcp.log"
    start_proxy "$name" "unix:$dir/proxy-$name.sock" "$unix_hop" "$dir/proxy-$name-unix.log"
    wait_port "$pport" 10 "${proxy_pids[0]}" "$dir/proxy-$name-tcp.log"
    wait_file "$dir/proxy-$name.sock" 10 "$dir/proxy-$name-unix.log"
    nexthop="inet:127.0.0.1:$pport"
    unix_hop="unix:$dir/proxy-$name.sock"
  fi
  "$here/postfix.sh" start "$pf" "$smtp_port" "$nexthop"
  # Through the proxy, every connection ends with QUIT: no connection cache that
  # Postfix's stop would drop mid-session.
  [ -z "${LOCKSTEP:-}" ] || "$here/postfix.sh" conf "$pf" lmtp_connection_cache_on_demand=no
  remember "$(read_pid "$pf/spool/pid/master.pid")"
  "$here/postfix.sh" send "$pf" sender@example.org alice@lab.test,bob@lab.test "$name 1 $tag"
  "$here/postfix.sh" send "$pf" sender@example.org alice@lab.test,nobody@lab.test,carol@lab.test "$name 2 $tag"
  "$here/postfix.sh" send "$pf" sender@example.org bob@lab.test,carol@lab.test "$name 3 $tag"
  "$here/postfix.sh" wait-queue-empty "$pf" 60
  sleep 1 # let the lmtp processes finish logging
  if [ -n "$fixtures" ]; then
    "$here/postfix.sh" excerpt "$pf" >"$fixtures/postfix-$name-clean.log"
  fi
  # The same peer over its unix socket.
  "$here/postfix.sh" conf "$pf" "transport_maps=inline:{lab.test=lmtp:$unix_hop}"
  sleep 1
  "$here/postfix.sh" send "$pf" sender@example.org alice@lab.test,carol@lab.test "$name unix $tag"
  "$here/postfix.sh" wait-queue-empty "$pf" 60
  "$here/postfix.sh" stop "$pf"
  local pp
  for pp in "${proxy_pids[@]}"; do stop_pid "$pp" 10; done
  grep -qE "to=<nobody@lab\.test>, .*dsn=5\.1\.1, status=bounced .*said: 550.*in reply to RCPT TO command" "$pf/log/postfix.log" ||
    fail "$name: no 550 5.1.1 bounce for nobody@lab.test in $pf/log/postfix.log"
}

# expect NAME USER FILES...: USER's mailbox holds exactly one message per
# expected subject and no other message of this run.
expect() {
  local name=$1 user=$2 n s want got
  shift 2
  local -a files=("$@")
  for n in 1 2 3 unix; do
    s="Subject: $name $n $tag"
    case " $expected_for_user " in
      *" $n "*) want=1 ;;
      *) want=0 ;;
    esac
    got=0
    if [ "${#files[@]}" -gt 0 ]; then
      # Cyrus keeps CRLF line ends, Dovecot LF.
      got=$({ grep -lE "^$s"$'\r?$' "${files[@]}" || true; } | wc -l)
    fi
    if [ "$got" -ne "$want" ]; then
      fail "$name: $user has $got copies of '$s', expected $want"
    fi
  done
  if [ "${#files[@]}" -ne "$(wc -w <<<"$expected_for_user")" ]; then
    fail "$name: $user has ${#files[@]} messages, expected $(wc -w <<<"$expected_for_user")"
  fi
}

declare -A expected=([alice]="1 2 unix" [bob]="1 3" [carol]="2 3 unix")

# Dovecot
"$here/dovecot.sh" start "$dir/dovecot" "$dovecot_port"
remember "$(read_pid "$dir/dovecot/run/master.pid")"
deliver dovecot "inet:127.0.0.1:$dovecot_port"
for user in alice bob carol; do
  expected_for_user=${expected[$user]}
  shopt -s nullglob
  files=("$dir/dovecot/mail/$user/Maildir/new/"* "$dir/dovecot/mail/$user/Maildir/cur/"*)
  shopt -u nullglob
  expect dovecot "$user" "${files[@]}"
done
"$here/dovecot.sh" stop "$dir/dovecot"

# Cyrus
"$here/cyrus.sh" start "$dir/cyrus" "$cyrus_port"
remember "$(read_pid "$dir/cyrus/run/master.pid")"
deliver cyrus "inet:127.0.0.1:$cyrus_port"
for user in alice bob carol; do
  expected_for_user=${expected[$user]}
  box=$("$here/cyrus.sh" mbpath "$dir/cyrus" "$user")
  shopt -s nullglob
  files=("$box"/[0-9]*.)
  shopt -u nullglob
  expect cyrus "$user" "${files[@]}"
done
"$here/cyrus.sh" stop "$dir/cyrus"

trap - EXIT
sleep 0.5
for p in "${pids[@]}"; do
  if pid_alive "$p"; then
    fail "process $p is still running: $(ps -o args= -p "$p")"
  fi
done

if [ "$failures" -gt 0 ]; then
  echo "smoke: $failures check(s) failed" >&2
  exit 1
fi
echo "smoke: OK (Dovecot and Cyrus, TCP and unix socket, no process left)"
