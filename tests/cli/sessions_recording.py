#!/usr/bin/env python3
"""Writes a lockstep recording of LMTP sessions interleaved on one file, for the check's
tests: clean sessions, sessions whose server sends a stray 350 after the end of data
(the Cyrus case), one whose server closes owing the replies to the end of data, a
connection id used again after a session that had no end event, a
session cut at the end of the file, a line spelled with spaces and a broken line.

Usage: sessions_recording.py [SESSIONS [SEED]]. With SESSIONS, that many sessions more,
most of them with the stray reply, eight at a time."""
import json
import random
import sys

t = [1795238727000000]
out = ['{"t":1795238727000000,"ev":"meta","format":"lockstep-recording","v":1,"lockstep":"0.1.0"}']


def ev(conn, kind, **kw):
    t[0] += 137
    d = {"t": t[0], "conn": conn, "ev": kind}
    d.update(kw)
    out.append(json.dumps(d, separators=(",", ":")))


def c(conn, b):
    ev(conn, "data", dir="c", data=b)


def s(conn, b):
    ev(conn, "data", dir="s", data=b)


def session(conn, stray=False, rcpts=2, end=True, quit=True, delivered=True):
    """The events of one session, one at a time (a generator of thunks)."""
    yield lambda: ev(conn, "open", client="127.0.0.1:4%s" % conn, server="127.0.0.1:24")
    yield lambda: s(conn, "220 lmtp.example.test LMTP ready\r\n")
    yield lambda: c(conn, "LHLO mx.example.test\r\n")
    yield lambda: s(conn, "250-lmtp.example.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n")
    yield lambda: c(conn, "MAIL FROM:<a@example.test>\r\n" +
                    "".join("RCPT TO:<u%d@example.test>\r\n" % i for i in range(rcpts)) + "DATA\r\n")
    yield lambda: s(conn, "250 2.1.0 ok\r\n" + "250 2.1.5 ok\r\n" * rcpts + "354 go ahead\r\n")
    yield lambda: c(conn, "Subject: x\r\n\r\nbody line\r\n.\r\n")
    if delivered:
        yield lambda: s(conn, ("350 lockers\r\n" if stray else "") + "250 2.0.0 ok\r\n" * rcpts)
    if not quit:
        yield lambda: ev(conn, "close", dir="s")
    if quit:
        yield lambda: c(conn, "QUIT\r\n")
        yield lambda: s(conn, "221 2.0.0 bye\r\n")
        yield lambda: ev(conn, "close", dir="c")
        yield lambda: ev(conn, "close", dir="s")
    if end:
        yield lambda: ev(conn, "end")


def interleave(gens, width, rng):
    live = []
    while gens or live:
        while gens and len(live) < width:
            live.append(gens.pop(0))
        g = rng.choice(live)
        f = next(g, None)
        if f is None:
            live.remove(g)
        else:
            f()


rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
interleave([session("1"), session("2", stray=True, end=False, quit=False), session("3", rcpts=3),
            session("4", stray=True), session("7", delivered=False, quit=False)], 4, rng)
out.append('{"t": 1795238728000000, "conn": "3", "ev": "data", "dir": "c", "data": "NOOP\\r\\n"}')
out.append('{"t":1795238728000100,"conn":"5","ev":"da')
for f in list(session("2", stray=True, rcpts=1)):  # connection 2 again: ends the session before it
    f()
if len(sys.argv) > 1:
    interleave([session("m%d" % i, stray=rng.random() < 0.7, rcpts=rng.randint(1, 4))
                for i in range(int(sys.argv[1]))], 8, rng)
for f in list(session("6", stray=True, end=False)):  # cut at the end of the file
    f()
sys.stdout.write("\n".join(out) + "\n")
