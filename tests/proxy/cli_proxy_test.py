#!/usr/bin/env python3
"""End-to-end tests of `lockstep proxy`, run on the real binary.

Usage: python3 tests/proxy/cli_proxy_test.py LOCKSTEP_BINARY

A small LMTP server (written here, standard library only, with options to
misbehave) stands upstream; test clients connect to the proxy, which listens
on 127.0.0.1:0 (or a unix socket) and tells its port in its "listening" line.
Every wait is bounded; every process this script starts is killed at the end.
Exit status 0 only if all cases pass; the last line is "N passed, M failed".
"""

import hashlib
import json
import os
import queue
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter

LOCKSTEP = None
TMP = None
PROCS = []  # every process started, killed at the end

STEP = 10.0  # default bound for a single wait, seconds


class TestFailure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def tmp_path(name):
    return os.path.join(TMP, name)


# ---------------------------------------------------------------------------
# The upstream LMTP server
# ---------------------------------------------------------------------------

class ServerConn:
    """What one upstream connection saw: the exact bytes both ways."""

    def __init__(self):
        self.received = bytearray()
        self.sent = bytearray()
        self.contents = []  # message contents (between 354 and ".", dot-unstuffed not applied)
        self.done = threading.Event()
        self.error = None


class LmtpServer:
    """A line-at-a-time LMTP server on TCP 127.0.0.1:0 or on a unix socket.

    misbehaviour:
      stray: a line (e.g. "350 lockers") sent before the end-of-data replies
      close_after_354: close the connection right after the 354
      reset_after_354: SO_LINGER 0 and close (RST) right after the 354
      hold_content: a threading.Event; after the 354 the server reads nothing
                    until it is set (a mailbox server stuck on a lock)
    """

    def __init__(self, unix_path=None, stray=None, close_after_354=False, reset_after_354=False,
                 hold_content=None):
        self.stray = stray
        self.close_after_354 = close_after_354
        self.reset_after_354 = reset_after_354
        self.hold_content = hold_content
        self.conns = []
        self.lock = threading.Lock()
        self.new_conn = threading.Condition(self.lock)
        self.unix_path = unix_path
        if unix_path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(unix_path)
            self.address = "unix:" + unix_path
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(("127.0.0.1", 0))
            self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def _accept_loop(self):
        while not self.stopping:
            try:
                s, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c = ServerConn()
            with self.lock:
                self.conns.append(c)
                self.new_conn.notify_all()
            threading.Thread(target=self._serve, args=(s, c), daemon=True).start()

    def wait_conn(self, index=0, timeout=STEP):
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.conns) <= index:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TestFailure("the upstream server got no connection #%d within %.0fs" % (index + 1, timeout))
                self.new_conn.wait(left)
            return self.conns[index]

    def close(self):
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass
        self.thread.join(2)
        if self.unix_path:
            try:
                os.unlink(self.unix_path)
            except OSError:
                pass

    def _serve(self, s, c):
        s.settimeout(30)
        if not self.unix_path:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each reply goes out at once
        buf = bytearray()

        def send(line):
            data = line.encode() + b"\r\n"
            s.sendall(data)
            c.sent.extend(data)

        def recv(n=65536):
            d = s.recv(n)
            c.received.extend(d)
            return d

        def read_line():
            while True:
                i = buf.find(b"\n")
                if i >= 0:
                    line = bytes(buf[:i + 1])
                    del buf[:i + 1]
                    return line
                d = recv()
                if not d:
                    return None
                buf.extend(d)

        try:
            send("220 test ready")
            mail = None
            rcpts = 0
            while True:
                line = read_line()
                if line is None:
                    break
                cmd = line.rstrip(b"\r\n").decode("latin-1")
                verb = cmd.split(" ", 1)[0].upper()
                if verb == "LHLO":
                    send("250-test.example")
                    send("250-PIPELINING")
                    send("250-ENHANCEDSTATUSCODES")
                    send("250 8BITMIME")
                elif verb == "MAIL":
                    mail, rcpts = cmd, 0
                    send("250 2.1.0 ok")
                elif verb == "RCPT":
                    rcpts += 1
                    send("250 2.1.5 ok")
                elif verb == "DATA":
                    send("354 go ahead")
                    if self.close_after_354:
                        s.close()
                        return
                    if self.reset_after_354:
                        # Let the 354 leave first: SO_LINGER 0 discards what is still queued.
                        time.sleep(0.3)
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        s.close()
                        return
                    if self.hold_content is not None:
                        if not self.hold_content.wait(60):
                            raise TestFailure("the content gate was never opened")
                        s.settimeout(60)
                    content = bytearray()
                    while True:
                        l2 = read_line()
                        if l2 is None:
                            raise TestFailure("EOF inside DATA")
                        if l2 == b".\r\n":
                            break
                        content.extend(l2)
                    c.contents.append(bytes(content))
                    if self.stray:
                        send(self.stray)
                    for _ in range(rcpts):
                        send("250 2.0.0 ok")
                    mail, rcpts = None, 0
                elif verb in ("RSET", "NOOP"):
                    send("250 2.0.0 ok")
                elif verb == "QUIT":
                    send("221 2.0.0 bye")
                    s.shutdown(socket.SHUT_WR)
                    # Keep reading until the peer closes, to have every byte it sent.
                    s.settimeout(STEP)
                    while recv():
                        pass
                    break
                else:
                    send("500 5.5.2 what")
        except Exception as e:  # recorded; the cases look at it
            c.error = e
        finally:
            try:
                s.close()
            except OSError:
                pass
            c.done.set()


def closed_tcp_port():
    """A TCP port on 127.0.0.1 that nobody listens on."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------------------
# The proxy under test
# ---------------------------------------------------------------------------

class Proxy:
    def __init__(self, listen, upstream, *extra, fmt="json", wait=True):
        self.args = [LOCKSTEP, "proxy", "--listen", listen, "--upstream", upstream, "--format", fmt] + list(extra)
        self.fmt = fmt
        self.p = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        PROCS.append(self.p)
        self.out_lines = []
        self.err_lines = []
        self.cond = threading.Condition()
        self.t_out = threading.Thread(target=self._reader, args=(self.p.stdout, self.out_lines), daemon=True)
        self.t_err = threading.Thread(target=self._reader, args=(self.p.stderr, self.err_lines), daemon=True)
        self.t_out.start()
        self.t_err.start()
        self.address = None
        if wait:
            self.address = self.wait_listening()

    def _reader(self, f, lines):
        for raw in iter(f.readline, b""):
            with self.cond:
                lines.append(raw.decode("utf-8", "replace"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_until(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                r = pred()
                if r:
                    return r
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TestFailure("timed out after %.0fs waiting for %s; stdout=%r stderr=%r"
                                      % (timeout, what, self.out_lines[-10:], self.err_lines[-10:]))
                self.cond.wait(min(left, 0.2))

    def events(self):
        evs = []
        for l in list(self.out_lines):
            l = l.strip()
            if l.startswith("{"):
                try:
                    evs.append(json.loads(l))
                except ValueError:
                    pass
        return evs

    def wait_listening(self, timeout=STEP):
        if self.fmt == "json":
            def find():
                if self.out_lines:
                    try:
                        j = json.loads(self.out_lines[0])
                    except ValueError:
                        raise TestFailure("the first stdout line is not JSON: %r" % self.out_lines[0])
                    check(j.get("event") == "listening", "the first stdout line is not a listening event: %r" % j)
                    return j["listen"]
                if self.p.poll() is not None:
                    raise TestFailure("proxy exited %s before listening; stderr=%r" % (self.p.returncode, self.err_lines))
                return None
        else:
            def find():
                for l in self.err_lines:
                    if "listening on " in l:
                        return l.split("listening on ", 1)[1].split(", relaying", 1)[0].strip()
                if self.p.poll() is not None:
                    raise TestFailure("proxy exited %s before listening; stderr=%r" % (self.p.returncode, self.err_lines))
                return None
        return self.wait_until(find, timeout, "the proxy's listening line")

    def wait_event(self, pred, timeout=STEP, what="an event"):
        def find():
            for e in self.events():
                if pred(e):
                    return e
            return None
        return self.wait_until(find, timeout, what)

    def wait_session(self, conn=None, timeout=STEP):
        return self.wait_event(lambda e: e.get("event") == "session" and (conn is None or e.get("conn") == conn),
                               timeout, "a session event (conn %s)" % conn)

    def signal(self, sig):
        if self.p.poll() is None:
            self.p.send_signal(sig)

    def stop(self, timeout=STEP):
        """SIGTERM and wait; returns the exit code (None if it had to be killed)."""
        self.signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(5)
            rc = None
        self.t_out.join(5)
        self.t_err.join(5)
        return rc

    def stdout(self):
        return "".join(self.out_lines)

    def stderr(self):
        return "".join(self.err_lines)


def connect(address, timeout=STEP):
    if address.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(address[5:])
    else:
        host, port = address.rsplit(":", 1)
        s = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    s.settimeout(timeout)
    return s


class Client:
    """An LMTP client that keeps every byte it sent and received."""

    def __init__(self, address, timeout=STEP):
        self.s = connect(address, timeout)
        self.sent = bytearray()
        self.received = bytearray()
        self.buf = bytearray()
        self.eof = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.s.sendall(data)
        self.sent.extend(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TestFailure("the client timed out waiting for the proxy; got so far %r" % bytes(self.received[-300:]))
        self.s.settimeout(left)
        try:
            d = self.s.recv(65536)
        except socket.timeout:
            raise TestFailure("the client timed out waiting for the proxy; got so far %r" % bytes(self.received[-300:]))
        if not d:
            self.eof = True
            return False
        self.received.extend(d)
        self.buf.extend(d)
        return True

    def line(self, timeout=STEP):
        deadline = time.monotonic() + timeout
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                l = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return l.decode("latin-1")
            if self.eof or not self._fill(deadline):
                raise TestFailure("EOF from the proxy while waiting for a line; got %r" % bytes(self.received[-300:]))

    def reply(self, timeout=STEP):
        """Reads one reply (all its lines); returns the list of lines."""
        lines = []
        while True:
            l = self.line(timeout)
            lines.append(l.rstrip("\r\n"))
            if len(l) < 4 or l[3] != "-":
                return lines

    def expect(self, code, timeout=STEP):
        r = self.reply(timeout)
        check(r[-1].startswith(code), "expected a %s reply, got %r" % (code, r))
        return r

    def read_eof(self, timeout=STEP):
        """Reads to EOF; returns ("eof"|"reset", seconds waited). Fails on timeout."""
        start = time.monotonic()
        deadline = start + timeout
        try:
            while not self.eof:
                self._fill(deadline)
        except (ConnectionResetError, BrokenPipeError):
            return "reset", time.monotonic() - start
        return "eof", time.monotonic() - start

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def clean_session(address, rcpts=2, content=b"Subject: hi\r\n\r\nhello\r\n"):
    """A full, well-behaved LMTP session; returns the client."""
    c = Client(address)
    c.expect("220")
    c.send("LHLO client.example\r\n")
    r = c.expect("250")
    check(any("PIPELINING" in l for l in r), "LHLO reply without PIPELINING: %r" % r)
    c.send("MAIL FROM:<a@example.org>\r\n")
    c.expect("250")
    for i in range(rcpts):
        c.send("RCPT TO:<r%d@example.org>\r\n" % i)
        c.expect("250")
    c.send("DATA\r\n")
    c.expect("354")
    c.send(content + b".\r\n")
    for _ in range(rcpts):
        c.expect("250")
    c.send("QUIT\r\n")
    c.expect("221")
    kind, _ = c.read_eof()
    check(kind == "eof", "expected EOF after QUIT, got %s" % kind)
    c.close()
    return c


def read_recording(path):
    events = []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            raw = raw.strip()
            if not raw:
                continue
            try:
                events.append(json.loads(raw))
            except ValueError as e:
                raise TestFailure("%s line %d is not JSON (%s): %r" % (path, n, e, raw[:200]))
    return events


def recorded_bytes(events, conn, d):
    out = bytearray()
    for e in events:
        if e.get("ev") == "data" and e.get("conn") == conn and e.get("dir") == d:
            out.extend(e["data"].encode("latin-1"))
    return bytes(out)


def run_check(path, timeout=60):
    p = subprocess.Popen([LOCKSTEP, "check", "--format", "json", path], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    PROCS.append(p)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise TestFailure("lockstep check %s did not finish in %ds" % (path, timeout))
    try:
        j = json.loads(out)
    except ValueError:
        raise TestFailure("lockstep check --format json %s: not JSON (rc %d): %r stderr %r"
                          % (path, p.returncode, out[:500], err[:500]))
    return p.returncode, j, err.decode("utf-8", "replace")


def run_bad(args, timeout=STEP):
    p = subprocess.Popen([LOCKSTEP, "proxy"] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    PROCS.append(p)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise TestFailure("lockstep proxy %s did not exit within %ds (it should refuse to start)" % (args, timeout))
    return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------

def test_01_bad_flags():
    srv = LmtpServer()
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        busy_addr = "127.0.0.1:%d" % busy.getsockname()[1]
        up = srv.address
        cases = [
            ("missing --upstream", ["--listen", "127.0.0.1:0"], ["--upstream"]),
            ("--listen nonsense", ["--listen", "nonsense", "--upstream", up], ["--listen", "nonsense"]),
            ("--threads 0", ["--listen", "127.0.0.1:0", "--upstream", up, "--threads", "0"], ["--threads"]),
            ("--socket-mode 999", ["--listen", "127.0.0.1:0", "--upstream", up, "--socket-mode", "999"],
             ["--socket-mode", "999"]),
            ("--record /nonexistent/dir/file",
             ["--listen", "127.0.0.1:0", "--upstream", up, "--record", "/nonexistent/dir/file"],
             ["/nonexistent/dir/file"]),
            ("busy listen port", ["--listen", busy_addr, "--upstream", up], [busy_addr, "in use"]),
        ]
        problems = []
        for name, args, words in cases:
            rc, out, err = run_bad(args)
            if rc != 2:
                problems.append("%s: exit %s, expected 2 (stderr %r)" % (name, rc, err))
                continue
            if "listening" in out or "listening" in err:
                problems.append("%s: it said it was listening: %r %r" % (name, out, err))
            first = err.strip().splitlines()[0] if err.strip() else ""
            missing = [w for w in words if w.lower() not in err.lower()]
            if not first or missing:
                problems.append("%s: the message %r does not name %r" % (name, err, missing))
        check(not problems, "; ".join(problems))
        check(not srv.conns, "the upstream got a connection from a proxy that should not have started")
    finally:
        busy.close()
        srv.close()


def test_02_clean_session():
    srv = LmtpServer()
    rec = tmp_path("clean.jsonl")
    px = Proxy("127.0.0.1:0", srv.address, "--record", rec)
    try:
        c = clean_session(px.address)
        sc = srv.wait_conn(0)
        check(sc.done.wait(STEP), "the upstream connection did not end")
        check(sc.error is None, "upstream server error: %r" % sc.error)
        check(bytes(c.received) == bytes(sc.sent),
              "the client did not receive exactly the server's bytes:\n client got %r\n server sent %r"
              % (bytes(c.received), bytes(sc.sent)))
        check(bytes(sc.received) == bytes(c.sent),
              "the server did not receive exactly the client's bytes:\n server got %r\n client sent %r"
              % (bytes(sc.received), bytes(c.sent)))
        sess = px.wait_session()
        check(sess.get("errors") == 0, "the live session has errors: %r; findings %r"
              % (sess, [e for e in px.events() if e.get("event") == "finding"]))
        check(sess.get("commands", 0) >= 6, "the live session counts %r commands" % sess.get("commands"))
        # The recording holds the same bytes both ways.
        evs = read_recording(rec)
        conn = sess["conn"]
        check(recorded_bytes(evs, conn, "c") == bytes(c.sent), "the recording's client bytes differ from the sent ones")
        check(recorded_bytes(evs, conn, "s") == bytes(sc.sent), "the recording's server bytes differ from the sent ones")
        kinds = [e.get("ev") for e in evs if e.get("conn") == conn]
        check(kinds and kinds[0] == "open" and kinds[-1] == "end" and "close" in kinds,
              "recording events for conn %s: %r" % (conn, kinds))
        rc, j, err = run_check(rec)
        check(rc == 0, "lockstep check exited %d on a clean recording (stderr %r)" % (rc, err))
        check(j["totals"]["errors"] == 0, "lockstep check finds errors: %r" % j["totals"])
        check(len(j["sessions"]) == 1, "lockstep check finds %d sessions" % len(j["sessions"]))
        check(j["sessions"][0]["commands"] == sess["commands"],
              "lockstep check counts %r commands, the live run %r" % (j["sessions"][0]["commands"], sess["commands"]))
    finally:
        px.stop()
        srv.close()


def test_03_stray_reply():
    srv = LmtpServer(stray="350 lockers")
    rec = tmp_path("stray.jsonl")
    px = Proxy("127.0.0.1:0", srv.address, "--record", rec)
    try:
        c = Client(px.address)
        c.expect("220")
        c.send("LHLO client.example\r\n")
        c.expect("250")
        c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")  # pipelined
        c.expect("250")
        c.expect("250")
        c.expect("354")
        c.send("Subject: x\r\n\r\nbody\r\n.\r\n")
        c.expect("350")
        c.expect("250")
        c.send("QUIT\r\n")
        c.expect("221")
        c.read_eof()
        c.close()
        sess = px.wait_session()
        live = Counter(e["rule"] for e in px.events() if e.get("event") == "finding")
        for rule in ("LMTP-4.2-PER-RCPT-REPLIES", "DESYNC-1-UNSOLICITED"):
            check(live[rule] > 0, "the live findings lack %s: %r" % (rule, dict(live)))
        check(sess.get("errors", 0) > 0, "the live session reports no error: %r" % sess)
        rc, j, err = run_check(rec)
        check(rc == 1, "lockstep check exited %d on a recording with errors, expected 1 (stderr %r)" % (rc, err))
        offline = Counter(f["rule"] for s in j["sessions"] for f in s["findings"])
        check(offline == live, "the rule IDs differ: live %r, offline %r" % (dict(live), dict(offline)))
    finally:
        px.stop()
        srv.close()


def open_to_354(c, pipelined):
    """Greeting, LHLO and one transaction up to the 354, the commands one by one or
    pipelined as one group."""
    c.expect("220")
    c.send("LHLO client.example\r\n")
    c.expect("250")
    if pipelined:
        c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
        c.expect("250")
        c.expect("250")
    else:
        c.send("MAIL FROM:<a@example.org>\r\n")
        c.expect("250")
        c.send("RCPT TO:<b@example.org>\r\n")
        c.expect("250")
        c.send("DATA\r\n")
    c.expect("354")


def test_04_upstream_vanishes():
    srv = LmtpServer(close_after_354=True)
    rec = tmp_path("vanish.jsonl")
    px = Proxy("127.0.0.1:0", srv.address, "--record", rec)
    try:
        c = Client(px.address)
        open_to_354(c, pipelined=False)
        kind, secs = c.read_eof(timeout=5)
        check(kind == "eof", "the client saw %s; the upstream closed cleanly, so EOF was expected" % kind)
        check(c.buf == b"", "unexpected bytes before EOF: %r" % bytes(c.buf))
        c.close()
        px.wait_session(timeout=5)
        evs = read_recording(rec)
        closes = [e for e in evs if e.get("ev") == "close"]
        check(any(e.get("dir") == "s" for e in closes), "the recording has no server-side close event: %r" % closes)
        check(evs[-1].get("ev") == "end", "the recording does not end with an end event: %r" % evs[-1])
    finally:
        px.stop()
        srv.close()


def test_05_upstream_reset():
    srv = LmtpServer(reset_after_354=True)
    rec = tmp_path("reset.jsonl")
    px = Proxy("127.0.0.1:0", srv.address, "--record", rec)
    try:
        c = Client(px.address)
        open_to_354(c, pipelined=True)
        kind, secs = c.read_eof(timeout=5)
        check(kind in ("eof", "reset"), "unexpected %s" % kind)
        check(secs < 5, "took %.1fs" % secs)
        c.close()
        px.wait_session(timeout=5)
        evs = read_recording(rec)
        check(any(e.get("ev") == "close" and e.get("dir") == "s" for e in evs),
              "the recording has no server-side close event")
    finally:
        px.stop()
        srv.close()


def test_06_upstream_unreachable():
    port = closed_tcp_port()
    rec = tmp_path("unreach.jsonl")
    px = Proxy("127.0.0.1:0", "127.0.0.1:%d" % port, "--record", rec, "--connect-timeout", "5")
    try:
        c = Client(px.address)
        l = c.line(timeout=8)
        check(l.startswith("421 4.4.0"), "expected a line starting 421 4.4.0, got %r" % l)
        check(l.endswith("\r\n"), "the 421 line does not end with CRLF: %r" % l)
        kind, _ = c.read_eof(timeout=5)
        check(kind == "eof", "expected EOF after the 421, got %s" % kind)
        check(c.buf == b"", "bytes after the 421: %r" % bytes(c.buf))
        c.close()
        px.wait_session(timeout=5)
        evs = read_recording(rec)
        faults = [e for e in evs if e.get("ev") == "fault"]
        check(faults, "the recording has no fault event: %r" % [e.get("ev") for e in evs])
    finally:
        px.stop()


def test_07_idle_timeout():
    srv = LmtpServer()
    px = Proxy("127.0.0.1:0", srv.address, "--idle-timeout", "1")
    try:
        c = Client(px.address)
        c.expect("220")
        start = time.monotonic()
        try:
            kind, _ = c.read_eof(timeout=5)
        except TestFailure:
            raise TestFailure("with --idle-timeout 1 a client silent after the 220 greeting was still connected "
                              "after 5s (log lines: %r)"
                              % [e.get("text") for e in px.events() if e.get("event") == "log"])
        secs = time.monotonic() - start
        check(kind in ("eof", "reset"), "unexpected %s" % kind)
        check(0.5 <= secs <= 5, "disconnected after %.2fs, expected about 1s" % secs)
        c.close()
        sc = srv.wait_conn(0)
        check(sc.done.wait(5), "the upstream connection was not closed after the idle timeout")
    finally:
        px.stop()
        srv.close()


_HELP = None


def proxy_supports(flag):
    """Whether this lockstep's `proxy --help` lists a flag."""
    global _HELP
    if _HELP is None:
        p = subprocess.Popen([LOCKSTEP, "proxy", "--help"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        PROCS.append(p)
        try:
            out, _ = p.communicate(timeout=STEP)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
        _HELP = out.decode("utf-8", "replace")
    return flag in _HELP


def open_session(px):
    """A client in the middle of a transaction; returns (client, conn id)."""
    c = Client(px.address)
    c.expect("220")
    c.send("LHLO client.example\r\n")
    c.expect("250")
    c.send("MAIL FROM:<a@example.org>\r\n")
    c.expect("250")
    open_ev = px.wait_event(lambda e: e.get("event") == "log" and e.get("text", "").startswith("open"),
                            what="the open log line")
    return c, open_ev["conn"]


def test_08_sigterm():
    srv = LmtpServer()
    rec = tmp_path("sigterm.jsonl")
    # Newer proxies let open sessions finish first (--drain-timeout, 10 s by default):
    # make that short, the session here never ends by itself.
    extra = ["--drain-timeout", "1"] if proxy_supports("--drain-timeout") else []
    px = Proxy("127.0.0.1:0", srv.address, "--record", rec, *extra)
    try:
        c, conn = open_session(px)
        start = time.monotonic()
        px.signal(signal.SIGTERM)
        try:
            rc = px.p.wait(5)
        except subprocess.TimeoutExpired:
            rc = None
        secs = time.monotonic() - start
        check(rc == 0, "after SIGTERM with an open session (flags %r) the proxy %s"
              % (extra, "did not exit within 5s" if rc is None else "exited %d" % rc))
        kind, _ = c.read_eof(timeout=5)
        check(kind in ("eof", "reset"), "the client's connection was not closed")
        c.close()
        evs = read_recording(rec)
        check(evs and evs[-1].get("ev") == "end" and evs[-1].get("conn") == conn,
              "the recording does not end with conn %s's end event: last %r" % (conn, evs[-1:]))
        px.t_out.join(5)
        check(any(e.get("event") == "session" and e.get("conn") == conn for e in px.events()),
              "no session summary printed for conn %s" % conn)
        check(secs < 5, "took %.1fs" % secs)
    finally:
        px.stop()
        srv.close()


def test_08b_sigterm_drain():
    """With the default drain, a session open at SIGTERM may finish, then the proxy exits."""
    if not proxy_supports("--drain-timeout"):
        return  # an older proxy closes at once (test_08)
    srv = LmtpServer()
    rec = tmp_path("drain.jsonl")
    px = Proxy("127.0.0.1:0", srv.address, "--record", rec)
    try:
        c, conn = open_session(px)
        px.signal(signal.SIGTERM)
        time.sleep(0.3)
        check(px.p.poll() is None, "the proxy exited at once (rc %s) instead of letting the session finish"
              % px.p.returncode)
        c.send("RCPT TO:<b@example.org>\r\n")
        c.expect("250")
        c.send("DATA\r\n")
        c.expect("354")
        c.send("Subject: x\r\n\r\nbody\r\n.\r\n")
        c.expect("250")
        c.send("QUIT\r\n")
        c.expect("221")
        kind, _ = c.read_eof(timeout=5)
        check(kind == "eof", "expected EOF after QUIT, got %s" % kind)
        c.close()
        ended = time.monotonic()
        try:
            rc = px.p.wait(5)
        except subprocess.TimeoutExpired:
            rc = None
        check(rc == 0, "after the last session ended during the drain the proxy %s"
              % ("did not exit within 5s" if rc is None else "exited %d" % rc))
        check(time.monotonic() - ended < 3, "the proxy waited %.1fs after the last session ended"
              % (time.monotonic() - ended))
        evs = read_recording(rec)
        check(evs[-1].get("ev") == "end" and evs[-1].get("conn") == conn, "the recording ends with %r" % evs[-1])
        px.t_out.join(5)
        sess = [e for e in px.events() if e.get("event") == "session" and e.get("conn") == conn]
        check(sess and sess[0].get("errors") == 0, "the drained session: %r" % sess)
    finally:
        px.stop()
        srv.close()


def test_09_sighup_rotation():
    srv = LmtpServer()
    rec = tmp_path("rotate.jsonl")
    old = rec + ".1"
    px = Proxy("127.0.0.1:0", srv.address, "--record", rec)
    try:
        clean_session(px.address, rcpts=1)
        s1 = px.wait_session()
        os.rename(rec, old)
        px.signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while not os.path.exists(rec) and time.monotonic() < deadline:
            time.sleep(0.05)
        check(os.path.exists(rec), "after SIGHUP no new recording at %s within 5s" % rec)
        check(px.p.poll() is None, "the proxy exited after SIGHUP (rc %s)" % px.p.returncode)
        clean_session(px.address, rcpts=1)
        s2 = px.wait_session(conn=str(int(s1["conn"]) + 1))
        new_evs = read_recording(rec)
        old_evs = read_recording(old)
        new_conns = {e.get("conn") for e in new_evs if "conn" in e}
        old_conns = {e.get("conn") for e in old_evs if "conn" in e}
        check(old_conns == {s1["conn"]}, "the renamed file holds connections %r, expected {%r}" % (old_conns, s1["conn"]))
        check(new_conns == {s2["conn"]}, "the new file holds connections %r, expected {%r}" % (new_conns, s2["conn"]))
        new_kinds = [e.get("ev") for e in new_evs if "conn" in e]
        check(new_kinds[0] == "open" and new_kinds[-1] == "end", "the new file's events: %r" % new_kinds)
        for path, want in ((old, s1), (rec, s2)):
            rc, j, err = run_check(path)
            check(rc == 0 and len(j["sessions"]) == 1 and j["sessions"][0]["commands"] == want["commands"],
                  "lockstep check %s: rc %d, %d sessions, commands %r (live %r), stderr %r"
                  % (os.path.basename(path), rc, len(j["sessions"]),
                     [s["commands"] for s in j["sessions"]], want["commands"], err.strip()))
    finally:
        px.stop()
        srv.close()


def test_10_unix_sockets():
    d = tempfile.mkdtemp(prefix="lsx", dir="/tmp")
    try:
        srv = LmtpServer(unix_path=os.path.join(d, "up.sock"))
        try:
            for extra, mode in (([], 0o666), (["--socket-mode", "0600"], 0o600)):
                lpath = os.path.join(d, "px.sock")
                px = Proxy("unix:" + lpath, srv.address, *extra)
                try:
                    check(px.address == "unix:" + lpath, "listening on %r" % px.address)
                    m = stat.S_IMODE(os.stat(lpath).st_mode)
                    check(stat.S_ISSOCK(os.stat(lpath).st_mode), "%s is not a socket" % lpath)
                    check(m == mode, "the listening socket has mode %o, expected %o (flags %r)" % (m, mode, extra))
                    n = len(srv.conns)
                    c = clean_session(px.address, rcpts=1)
                    sc = srv.wait_conn(n)
                    check(sc.done.wait(STEP), "the upstream connection did not end")
                    check(bytes(c.received) == bytes(sc.sent) and bytes(sc.received) == bytes(c.sent),
                          "bytes differ through the unix socket proxy")
                    sess = px.wait_session()
                    check(sess.get("errors") == 0, "errors in the session: %r" % sess)
                finally:
                    px.stop()
        finally:
            srv.close()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_11_text_and_quiet():
    # Text format, not a terminal: findings but no ANSI escapes.
    srv = LmtpServer(stray="350 lockers")
    px = Proxy("127.0.0.1:0", srv.address, fmt="text")
    try:
        c = Client(px.address)
        c.expect("220")
        c.send("LHLO x\r\n")
        c.expect("250")
        c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")  # pipelined
        c.expect("250")
        c.expect("250")
        c.expect("354")
        c.send("hi\r\n.\r\n")
        c.expect("350")
        c.expect("250")
        c.send("QUIT\r\n")
        c.expect("221")
        c.read_eof()
        c.close()
        px.wait_until(lambda: any("closed:" in l for l in px.out_lines), STEP, "the text session summary")
    finally:
        rc = px.stop()
        srv.close()
    out, err = px.stdout(), px.stderr()
    check(rc == 0, "text proxy exit %r" % rc)
    check("\x1b[" not in out and "\x1b[" not in err, "ANSI escapes in the output without a terminal: %r" % out)
    check(any(l.startswith("[conn 1] ✗ LMTP-4.2-PER-RCPT-REPLIES error: ") for l in px.out_lines),
          "no text finding line for LMTP-4.2-PER-RCPT-REPLIES: %r" % out)
    check("listening on 127.0.0.1:" in err, "no listening line on stderr: %r" % err)

    # --quiet: a clean session prints nothing.
    srv = LmtpServer()
    px = Proxy("127.0.0.1:0", srv.address, "--quiet", fmt="text")
    try:
        clean_session(px.address)
        sc = srv.wait_conn(0)
        check(sc.done.wait(STEP), "the upstream connection did not end")
        time.sleep(0.5)  # time for a (wrong) summary line to be printed
    finally:
        rc = px.stop()
        srv.close()
    check(rc == 0, "quiet proxy exit %r" % rc)
    check(px.stdout() == "", "--quiet printed for a clean session: %r" % px.stdout())
    check("\x1b[" not in px.stderr(), "ANSI escapes on stderr")


def tcp_queues(ports):
    """The bytes waiting in the kernel (send and receive queues) of every established
    127.0.0.1 TCP socket whose local or remote port is in `ports`, from /proc/net/tcp."""
    total = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for row in f:
            fields = row.split()
            local, remote, state, queues = fields[1], fields[2], fields[3], fields[4]
            if state != "01":  # ESTABLISHED
                continue
            lport, rport = int(local.split(":")[1], 16), int(remote.split(":")[1], 16)
            if lport in ports or rport in ports:
                tx, rx = queues.split(":")
                total += int(tx, 16) + int(rx, 16)
    return total


def test_12_backpressure():
    # The mailbox server stops reading after its 354 (stuck on a lock) while the client
    # sends 24 MB of content as fast as it can. Every byte the client's kernel accepted
    # must then be in a kernel queue along the way or in the proxy's read block: the
    # proxy stops reading when it cannot write. The kernel's share depends on buffer
    # autotuning, so it is read from /proc/net/tcp rather than assumed.
    gate = threading.Event()
    srv = LmtpServer(hold_content=gate)
    rec = tmp_path("big.jsonl")
    px = Proxy("127.0.0.1:0", srv.address, "--record", rec)
    try:
        line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/" * 15
        body = b"".join(b"%06d " % i + line + b"\r\n" for i in range(24 * 1024 * 1024 // 969))
        content = b"Subject: big\r\n\r\n" + body
        payload = memoryview(content + b".\r\n")
        c = Client(px.address, timeout=60)
        c.expect("220")
        c.send("LHLO x\r\n")
        c.expect("250")
        c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")  # pipelined
        c.expect("250")
        c.expect("250")
        c.expect("354")
        sc = srv.wait_conn(0)
        proxy_port = int(px.address.rsplit(":", 1)[1])
        server_port = int(srv.address.rsplit(":", 1)[1])

        # Send until the client has made no progress for a second.
        c.s.setblocking(False)
        off = 0
        last_progress = time.monotonic()
        deadline = last_progress + 60
        while off < len(payload) and time.monotonic() - last_progress < 1.0:
            check(time.monotonic() < deadline, "the client was neither held back nor done in 60s")
            try:
                n = c.s.send(payload[off:off + 65536])
            except BlockingIOError:
                select.select([], [c.s], [], 0.1)
                continue
            c.sent.extend(payload[off:off + n])
            off += n
            last_progress = time.monotonic()
        check(off < len(payload),
              "the client's kernel took all %d bytes while the server read none: nothing held it back" % off)

        # Bytes the proxy holds = what the client handed to its kernel - what the server
        # read - what waits in the kernel queues of both connections. Read until two
        # readings agree (acks in flight settle within milliseconds).
        held = prev = None
        for _ in range(20):
            held = len(c.sent) - len(sc.received) - tcp_queues({proxy_port, server_port})
            if held == prev:
                break
            prev = held
            time.sleep(0.2)
        check(held == prev, "the byte count did not settle: %r then %r" % (prev, held))
        check(0 <= held <= 128 * 1024,
              "with the server not reading, the proxy holds %d bytes of the %d the client sent "
              "(kernel queues %d): it reads on instead of holding the client back"
              % (held, len(c.sent), tcp_queues({proxy_port, server_port})))

        # The server reads again: everything arrives, byte for byte.
        gate.set()
        c.s.setblocking(True)
        c.s.settimeout(60)
        c.s.sendall(payload[off:])
        c.sent.extend(payload[off:])
        c.expect("250", timeout=60)
        c.send("QUIT\r\n")
        c.expect("221")
        c.read_eof()
        c.close()
        check(sc.done.wait(STEP), "the upstream connection did not end")
        check(len(sc.contents) == 1, "the server got %d messages" % len(sc.contents))
        got = sc.contents[0]
        check(len(got) == len(content), "the server got %d content bytes, the client sent %d" % (len(got), len(content)))
        check(hashlib.sha256(got).hexdigest() == hashlib.sha256(content).hexdigest(), "the content checksum differs")
        check(bytes(sc.received) == bytes(c.sent), "the server's bytes differ from the client's")
        sess = px.wait_session(timeout=STEP)
        check(sess.get("errors") == 0, "errors: %r" % sess)
    finally:
        gate.set()
        px.stop()
        srv.close()


def test_13_fault_flags():
    srv = LmtpServer()
    try:
        up = srv.address
        base = ["--listen", "127.0.0.1:0", "--upstream", up]
        cases = [
            ("unknown action", base + ["--fault", "explode@rcpt"], ["--fault", "explode", "unknown action"]),
            ("unknown preset", base + ["--fault", "cyrus-locker"], ["cyrus-locker", "cyrus-lockers"]),
            ("bad value", base + ["--fault", "drop@rcpt,p=2"], ["p=2"]),
            ("two faults, one name", base + ["--fault", "cyrus-lockers", "--fault", "cyrus-lockers"],
             ["named 'cyrus-lockers'"]),
            ("control without a token beyond loopback", base + ["--control", "0.0.0.0:0"], ["--control-token"]),
            ("control on a busy port", None, ["--control", "in use"]),
        ]
        busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        cases[-1] = (cases[-1][0], base + ["--control", "127.0.0.1:%d" % busy.getsockname()[1]], cases[-1][2])
        problems = []
        for name, args, words in cases:
            rc, out, err = run_bad(args)
            if rc != 2:
                problems.append("%s: exit %s, expected 2 (stderr %r)" % (name, rc, err))
                continue
            missing = [w for w in words if w.lower() not in err.lower()]
            if missing:
                problems.append("%s: the message %r does not name %r" % (name, err, missing))
        busy.close()
        check(not problems, "; ".join(problems))
        p = subprocess.run([LOCKSTEP, "faults"], stdin=subprocess.DEVNULL, capture_output=True, timeout=STEP)
        out = p.stdout.decode()
        check(p.returncode == 0, "lockstep faults exited %d" % p.returncode)
        for word in ("cyrus-lockers", "dovecot-multiline-split", "spampd-single-data-reply", "lost-final-reply",
                     "exim-452-then-250", "slow-data-done", "eod[#K[+]]", "smuggle"):
            check(word in out, "lockstep faults does not mention %r" % word)
    finally:
        srv.close()


def test_14_fault_live_and_recorded():
    """--fault cyrus-lockers: the client gets the stray, the JSON findings say injected,
    the recording holds the fault event, check agrees, and --seed is reported."""
    srv = LmtpServer()
    rec = tmp_path("fault.jsonl")
    px = Proxy("127.0.0.1:0", srv.address, "--record", rec, "--fault", "cyrus-lockers", "--seed", "77")
    try:
        listening = [e for e in px.events() if e.get("event") == "listening"]
        check(listening and listening[0].get("seed") == 77, "the listening event lacks the seed: %r" % listening)
        c = Client(px.address)
        open_to_354(c, pipelined=True)
        c.send("Subject: x\r\n\r\nbody\r\n.\r\n")
        c.expect("350")  # a client that counts takes the stray as the end-of-data reply
        c.send("QUIT\r\n")
        c.expect("250")  # one step late: QUIT gets the 250 meant for end of data
        c.close()
        sess = px.wait_session()
        findings = [e for e in px.events() if e.get("event") == "finding"]
        errors = [f for f in findings if f["severity"] == "error"]
        check(errors and all(f.get("injected") or f.get("after_fault") for f in errors),
              "errors not marked injected: %r" % errors)
        check(any(f["rule"] == "LMTP-4.2-PER-RCPT-REPLIES" and f["injected"] for f in errors),
              "no injected LMTP-4.2-PER-RCPT-REPLIES: %r" % errors)
        logs = [e["text"] for e in px.events() if e.get("event") == "log"]
        check(any("cyrus-lockers: injected '350 lockers'" in t for t in logs), "no fault log line: %r" % logs)
        # The upstream never sent a 350: the stray is lockstep's.
        sc = srv.wait_conn(0)
        check(b"350" not in bytes(sc.sent), "the upstream sent a 350 itself")
        evs = read_recording(rec)
        faults = [e for e in evs if e.get("ev") == "fault"]
        check(any("seed" in e["text"] for e in faults), "no seed in the recording: %r" % faults)
        located = [e for e in faults if "offset" in e]
        check(located and located[0]["len"] == 13, "the fault event lacks its range: %r" % faults)
        server_bytes = recorded_bytes(evs, sess["conn"], "s")
        check(server_bytes[located[0]["offset"]:located[0]["offset"] + 13] == b"350 lockers\r\n",
              "the fault's range does not hold the injected bytes")
        rc, j, err = run_check(rec)
        offline = [f for s in j["sessions"] for f in s["findings"] if f["severity"] == "error"]
        check([f["rule"] for f in offline] == [f["rule"] for f in errors],
              "offline errors %r differ from live %r" % ([f["rule"] for f in offline], [f["rule"] for f in errors]))
        check(all(f.get("injected") or f.get("after_fault") for f in offline), "offline errors not marked: %r" % offline)
    finally:
        px.stop()
        srv.close()


def http(method, url, body=None, token=None):
    import urllib.request
    import urllib.error
    req = urllib.request.Request(url, method=method, data=body.encode() if body else None)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=STEP) as r:
            data = r.read()
            return r.status, json.loads(data) if data else None
    except urllib.error.HTTPError as e:
        data = e.read()
        return e.code, json.loads(data) if data else None


def test_15_control_api():
    srv = LmtpServer()
    px = Proxy("127.0.0.1:0", srv.address, "--control", "127.0.0.1:0", "--control-token", "t0ken")
    try:
        listening = [e for e in px.events() if e.get("event") == "listening"][0]
        base = "http://%s" % listening["control"]
        st, _ = http("GET", base + "/faults")
        check(st == 401, "GET /faults without the token: %d" % st)
        st, body = http("POST", base + "/faults", '{"name":"lockers","spec":"cyrus-lockers"}', token="t0ken")
        check(st == 201 and body["name"] == "lockers", "POST /faults: %d %r" % (st, body))
        st, body = http("POST", base + "/faults", '{"spec":"nonsense"}', token="t0ken")
        check(st == 400 and "nonsense" in body["error"], "POST a bad spec: %d %r" % (st, body))
        c = Client(px.address)
        open_to_354(c, pipelined=True)
        st, body = http("GET", base + "/sessions", token="t0ken")
        check(st == 200 and body["sessions"] and body["sessions"][0]["faults"] == ["lockers"],
              "GET /sessions: %d %r" % (st, body))
        c.send("Subject: x\r\n\r\nbody\r\n.\r\n")
        c.expect("350")
        c.close()
        st, _ = http("DELETE", base + "/faults/lockers", token="t0ken")
        check(st == 204, "DELETE: %d" % st)
        clean_session(px.address)  # a new connection: no fault any more
        st, body = http("GET", base + "/faults", token="t0ken")
        check(st == 200 and body["faults"] == [], "faults left: %r" % body)
    finally:
        px.stop()
        srv.close()


CASES = [
    test_01_bad_flags,
    test_02_clean_session,
    test_03_stray_reply,
    test_04_upstream_vanishes,
    test_05_upstream_reset,
    test_06_upstream_unreachable,
    test_07_idle_timeout,
    test_08_sigterm,
    test_08b_sigterm_drain,
    test_09_sighup_rotation,
    test_10_unix_sockets,
    test_11_text_and_quiet,
    test_12_backpressure,
    test_13_fault_flags,
    test_14_fault_live_and_recorded,
    test_15_control_api,
]


def kill_all():
    for p in PROCS:
        if p.poll() is None:
            try:
                p.kill()
            except OSError:
                pass
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass


def main():
    global LOCKSTEP, TMP
    if len(sys.argv) != 2:
        print("usage: %s LOCKSTEP_BINARY" % sys.argv[0], file=sys.stderr)
        return 2
    LOCKSTEP = os.path.abspath(sys.argv[1])
    if not os.access(LOCKSTEP, os.X_OK):
        print("%s is not executable" % LOCKSTEP, file=sys.stderr)
        return 2
    TMP = tempfile.mkdtemp(prefix="lockstep-proxy-test-")
    passed = failed = 0
    try:
        for case in CASES:
            name = case.__name__
            start = time.monotonic()
            try:
                case()
                passed += 1
                print("PASS %s (%.1fs)" % (name, time.monotonic() - start), flush=True)
            except TestFailure as e:
                failed += 1
                print("FAIL %s: %s" % (name, e), flush=True)
            except Exception:
                failed += 1
                print("FAIL %s: unexpected exception\n%s" % (name, traceback.format_exc()), flush=True)
            finally:
                kill_all()
    finally:
        kill_all()
        shutil.rmtree(TMP, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
