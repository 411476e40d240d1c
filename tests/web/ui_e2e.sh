#!/usr/bin/env bash
# Usage: tests/web/ui_e2e.sh LOCKSTEP [DIR]
#
# The web view end to end, in a real browser: lockstep proxy --ui in front of a real
# Dovecot LMTP server, an LMTP client (tests/web/ui_e2e.mjs) delivering through it, and
# headless Chromium (Debian's chromium, driven by playwright-core from npm) asserting
# what the page shows. Writes DIR/web-view.png. Skips (exit 77) when not root, or when
# Dovecot, node, chromium or playwright-core (scripts/install-deps --peers) are missing,
# except under CI=true, where a missing piece fails.
set -euo pipefail
bin=$(realpath "$1")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
peers=$here/../peers
# shellcheck source=tests/peers/lib.sh
. "$peers/lib.sh"
skip() {
  if [ "${CI:-}" = "true" ]; then echo "ui_e2e: $*: required under CI"; exit 1; fi
  echo "ui_e2e: $*, skipped"; exit 77
}
[ "$(id -u)" -eq 0 ] || skip "needs root (Dovecot)"
command -v dovecot >/dev/null || skip "dovecot not installed"
command -v node >/dev/null || skip "node not installed"
chromium=$(command -v chromium || true)
[ -n "$chromium" ] || skip "chromium not installed"
[ -d "$here/node_modules/playwright-core" ] || skip "playwright-core not installed (npm ci --prefix tests/web)"
if [ -n "${2:-}" ]; then
  work=$(abs_dir "$2")
else
  work=$(mktemp -d /tmp/lockstep-ui-e2e.XXXXXX)
fi
chmod 755 "$work"
read -r dport pport uport < <(python3 -c 'import socket
ss=[socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
proxy_pid=
cleanup() {
  [ -z "$proxy_pid" ] || stop_pid "$proxy_pid" 10 || true
  "$peers/dovecot.sh" stop "$work/dovecot" >/dev/null 2>&1 || true
}
trap 'cleanup; [ -n "${2:-}" ] || rm -rf "$work"' EXIT

"$peers/dovecot.sh" start "$work/dovecot" "$dport" >/dev/null
"$bin" proxy --listen "127.0.0.1:$pport" --upstream "127.0.0.1:$dport" --ui "127.0.0.1:$uport" \
  --color never </dev/null >"$work/proxy.log" 2>&1 &
proxy_pid=$!
wait_port "$pport" 10 "$proxy_pid" "$work/proxy.log"
wait_port "$uport" 10 "$proxy_pid" "$work/proxy.log"
# The offline page of the incident log, for the same browser.
"$bin" check "$here/../fixtures/incidents/cyrus-lockers-postfix.log" --html "$work/incident.html" >/dev/null || [ $? -eq 1 ]
status=0
timeout 180 node "$here/ui_e2e.mjs" --chromium "$chromium" --ui "127.0.0.1:$uport" --proxy "127.0.0.1:$pport" \
  --shot "$work/web-view.png" --static "$work/incident.html" || status=$?
if [ "$status" -ne 0 ]; then
  echo "ui_e2e: FAILED ($status); the proxy said:"
  tail -n 40 "$work/proxy.log"
  exit 1
fi
# What the page showed is what the peers did: the edited reply reached the client, and
# alice's mailbox holds the message delivered with the fault on.
n=$(find "$work/dovecot/mail/alice" -path '*/new/*' -type f 2>/dev/null | wc -l)
if [ "$n" -lt 1 ]; then echo "ui_e2e: FAILED: no message in alice's mailbox"; exit 1; fi
echo "ui_e2e: ok ($n message(s) for alice${2:+; screenshot $work/web-view.png})"
