#!/usr/bin/env bash
# The check command as a user meets it: exit codes, formats, errors. Usage: check_test.sh LOCKSTEP SOURCE_DIR
set -u
bin=$1
src=$2
fx=$src/tests/fixtures
fail=0
pass=0
expect() {  # expect NAME WANTED_EXIT COMMAND...
  local name=$1 want=$2
  shift 2
  "$@" >/tmp/lockstep-cli-out.$$ 2>/tmp/lockstep-cli-err.$$
  local got=$?
  if [ "$got" -eq "$want" ]; then pass=$((pass + 1)); else
    echo "FAIL $name: exit $got, wanted $want"; head -5 /tmp/lockstep-cli-err.$$; fail=$((fail + 1)); fi
}
expect "clean transcript exits 0" 0 "$bin" check "$fx/transcripts/cyrus.txt"
expect "incident exits 1" 1 "$bin" check "$fx/incidents/cyrus-lockers-postfix.log"
expect "missing file exits 2" 2 "$bin" check /nonexistent.log
expect "unknown format exits 2" 2 "$bin" check "$src/README.md"
expect "bad flag exits 2" 2 "$bin" check --format yaml "$fx/transcripts/cyrus.txt"
expect "no file exits 2" 2 "$bin" check
expect "json is valid JSON" 1 sh -c "'$bin' check --format json '$fx/incidents/cyrus-lockers-postfix.log' > /tmp/lockstep-cli-json.$$"
if python3 -c "import json,sys; d=json.load(open('/tmp/lockstep-cli-json.$$')); f=d['sessions'][0]['findings']; assert all(k in f[0] for k in ('rule','severity','side','explanation')); assert d['totals']['errors']>0" 2>/dev/null; then
  pass=$((pass + 1)); else echo "FAIL json document shape"; fail=$((fail + 1)); fi
expect "junit is written" 1 sh -c "'$bin' check --format junit '$fx/incidents/cyrus-lockers-postfix.log' > /tmp/lockstep-cli-junit.$$"
if python3 -c "import xml.dom.minidom as m; d=m.parse('/tmp/lockstep-cli-junit.$$'); assert d.getElementsByTagName('failure')" 2>/dev/null; then
  pass=$((pass + 1)); else echo "FAIL junit document"; fail=$((fail + 1)); fi
"$bin" check "$fx/incidents/cyrus-lockers-postfix.log" > /tmp/lockstep-cli-text.$$
if grep -q $'\x1b\[' /tmp/lockstep-cli-text.$$; then echo "FAIL colour on a pipe"; fail=$((fail + 1)); else pass=$((pass + 1)); fi
if grep -q "DATA will receive '250 2.1.5 ok', meant for RCPT" /tmp/lockstep-cli-text.$$; then pass=$((pass + 1)); else
  echo "FAIL narrative missing"; fail=$((fail + 1)); fi
# The README's table of rules not checked is the one the binary prints.
"$bin" rules --unchecked --markdown > /tmp/lockstep-cli-rules.$$
if python3 -c "import sys; t=open('/tmp/lockstep-cli-rules.$$').read(); r=open('$src/README.md').read(); sys.exit(0 if t and t in r else 1)"; then
  pass=$((pass + 1)); else echo "FAIL README rule table differs from 'lockstep rules --unchecked --markdown'"; fail=$((fail + 1)); fi
# --html: one self-contained page with the sessions embedded, and an unwritable path is an error.
expect "html is written" 1 "$bin" check "$fx/incidents/cyrus-lockers-postfix.log" --html /tmp/lockstep-cli-page.$$.html
if python3 - /tmp/lockstep-cli-page.$$.html <<'PY'
import json, re, sys
page = open(sys.argv[1]).read()
m = re.search(r"window\.LOCKSTEP_STATIC = (\{.*?\});</script>", page, re.S)
assert m, "no embedded data"
data = json.loads(m.group(1))
s = data["sessions"][0]
assert any(e["text"].startswith("350 lockers") for e in s["ladder"]), "no 350 in the ladder"
assert any(f["rule"] == "DESYNC-2-IMPOSSIBLE-CODE" for f in s["findings"]), "no finding"
assert 'src="app.js"' not in page and 'href="app.css"' not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
PY
then pass=$((pass + 1)); else echo "FAIL the html page"; fail=$((fail + 1)); fi
expect "an unwritable html path exits 2" 2 "$bin" check "$fx/transcripts/dovecot.txt" --html /nonexistent-dir/x.html
expect "stdin works" 0 sh -c "'$bin' check - < '$fx/transcripts/dovecot.txt'"
# A recording file's sessions are checked without ladders and those with problems again
# from their lines (engine/replay.hpp); from standard input every ladder is traced. The
# two reports must be the same, with few sessions with problems and with many (then the
# ladders are traced from the start once most sessions need one).
for n in "" 300; do
  python3 "$src/tests/cli/sessions_recording.py" $n > /tmp/lockstep-cli-rec.$$.jsonl
  "$bin" check /tmp/lockstep-cli-rec.$$.jsonl > /tmp/lockstep-cli-file.$$ 2> /dev/null
  "$bin" check - < /tmp/lockstep-cli-rec.$$.jsonl 2> /dev/null |
    sed "s#^== session -:#== session /tmp/lockstep-cli-rec.$$.jsonl:#" > /tmp/lockstep-cli-stdin.$$
  if cmp -s /tmp/lockstep-cli-file.$$ /tmp/lockstep-cli-stdin.$$ && [ "$(grep -c '^   S: ' /tmp/lockstep-cli-file.$$)" -gt 20 ] &&
     grep -q "DATA will receive\|will receive '250 2.0.0 ok'" /tmp/lockstep-cli-file.$$; then pass=$((pass + 1)); else
    echo "FAIL the report of a recording file differs from the one read from standard input ($n)"
    diff /tmp/lockstep-cli-file.$$ /tmp/lockstep-cli-stdin.$$ | head -5; fail=$((fail + 1)); fi
done
# Scenarios: a broken file names its line; an unreachable target is an error, not a pass.
printf 'id: t\ntitle: t\nsteps:\n  - S: "220"\n  - Q: nope\n' > /tmp/lockstep-cli-bad.$$.yaml
expect "a bad scenario exits 2" 2 "$bin" run --target 127.0.0.1:1 /tmp/lockstep-cli-bad.$$.yaml
if grep -q "lockstep-cli-bad.$$.yaml:5: unknown step 'Q'" /tmp/lockstep-cli-err.$$; then pass=$((pass + 1)); else
  echo "FAIL the scenario error does not name the line"; fail=$((fail + 1)); fi
expect "an unreachable target exits 1" 1 "$bin" suite server --target 127.0.0.1:1 --only lmtp-greeting
if grep -q "cannot connect to 127.0.0.1:1" /tmp/lockstep-cli-err.$$; then pass=$((pass + 1)); else
  echo "FAIL no connect error"; fail=$((fail + 1)); fi
expect "an empty selection exits 2" 2 "$bin" suite server --target 127.0.0.1:1 --only no-such-case
expect "an unknown suite exits 2" 2 "$bin" suite clients --target 127.0.0.1:1
rm -f /tmp/lockstep-cli-*.$$ /tmp/lockstep-cli-page.$$.html
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
