#!/usr/bin/env python3
"""A small, scriptable LMTP server that behaves like Dovecot's, for tests.

Usage:
  tests/peers/fake_lmtp.py (--port PORT | --unix PATH) [--host 127.0.0.1]
                           [--stray "350 lockers" [--stray-after]
                            [--stray-delay SECONDS]]
                           [--timeout SECONDS]
                           [--max-connections N] [--pidfile FILE] [--log FILE]

Replies: a 220 greeting; LHLO -> 250 with PIPELINING, ENHANCEDSTATUSCODES,
8BITMIME, SIZE; MAIL -> "250 2.1.0 ok"; RCPT -> "250 2.1.5 ok"; DATA ->
"354 go ahead"; after the end of data one "250 2.0.0 ok" per accepted
recipient; RSET and NOOP -> "250 2.0.0 ok"; QUIT -> "221 2.0.0 bye".
Every reply is written as soon as its command line has been read, so a
pipelining client sees the replies in the order of its commands.

--stray LINE writes LINE as an extra, unsolicited reply just before the
per-recipient replies of the first message of each connection: the
"stray 3xx after end of data" incident, which puts a client that counts
replies one step behind for the rest of the connection. With --stray-after
the line comes just after those replies instead (a late stray).
--stray-delay pauses between the stray line and those replies, so that they
reach the client in separate reads rather than in one TCP segment.

The server stops on SIGTERM/SIGINT, after --max-connections connections have
ended, or after --timeout seconds (default 300), whichever comes first.
Standard library only.
"""

import argparse
import asyncio
import os
import signal
import sys
import time

HOSTNAME = "fake.lab.test"
IDLE_TIMEOUT = 60  # seconds without a command line before the server hangs up
MAX_LINE = 64 * 1024  # longer lines are answered with 500 and dropped


class Logger:
    """Writes one line per event: time, connection number, direction, text."""

    def __init__(self, path):
        self.file = open(path, "a", buffering=1) if path else sys.stderr

    def __call__(self, conn, direction, text):
        now = time.time()
        stamp = "%s.%06d" % (time.strftime("%H:%M:%S", time.localtime(now)), int(now % 1 * 1e6))
        self.file.write("%s #%d %s %s\n" % (stamp, conn, direction, text))


class Session:
    """One LMTP connection: a line-at-a-time state machine."""

    def __init__(self, server, number, reader, writer):
        self.server = server
        self.number = number
        self.reader = reader
        self.writer = writer
        self.sender = None
        self.recipients = []
        self.messages = 0

    def send(self, line):
        self.server.log(self.number, "S:", line)
        self.writer.write(line.encode("utf-8", "replace") + b"\r\n")

    def reset(self):
        self.sender = None
        self.recipients = []

    async def pause(self):
        """Flushes what was written and waits --stray-delay seconds."""
        if self.server.args.stray_delay > 0:
            await self.writer.drain()
            await asyncio.sleep(self.server.args.stray_delay)

    async def read_line(self):
        try:
            line = await asyncio.wait_for(self.reader.readline(), IDLE_TIMEOUT)
        except asyncio.TimeoutError:
            self.send("421 4.4.2 %s idle for too long" % HOSTNAME)
            return None
        except (ValueError, asyncio.LimitOverrunError):
            return ""  # over-long line: answered as an unknown command
        if not line:
            return None
        return line.rstrip(b"\r\n").decode("utf-8", "replace")

    async def read_data(self):
        """Reads the message up to the lone dot; returns False on EOF."""
        size = 0
        while True:
            line = await self.read_line()
            if line is None:
                return False
            if line == ".":
                self.server.log(self.number, "C:", "<%d bytes of data> ." % size)
                return True
            size += len(line) + 2

    async def run(self):
        self.send("220 %s Fake LMTP ready" % HOSTNAME)
        while True:
            await self.writer.drain()
            line = await self.read_line()
            if line is None:
                return
            self.server.log(self.number, "C:", line)
            verb = line.split(" ", 1)[0].upper()
            if verb == "LHLO":
                self.reset()
                for ext in (HOSTNAME, "PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME"):
                    self.send("250-" + ext)
                self.send("250 SIZE")
            elif verb == "MAIL":
                if self.sender is not None:
                    self.send("503 5.5.1 MAIL already given")
                else:
                    self.sender = line
                    self.send("250 2.1.0 ok")
            elif verb == "RCPT":
                if self.sender is None:
                    self.send("503 5.5.1 MAIL needed first")
                else:
                    self.recipients.append(line)
                    self.send("250 2.1.5 ok")
            elif verb == "DATA":
                if not self.recipients:
                    self.send("503 5.5.1 No valid recipients")
                    continue
                self.send("354 go ahead")
                await self.writer.drain()
                if not await self.read_data():
                    return
                self.messages += 1
                stray = self.server.stray if self.messages == 1 else None
                if stray and not self.server.args.stray_after:
                    self.send(stray)
                    await self.pause()
                for _ in self.recipients:
                    self.send("250 2.0.0 ok")
                if stray and self.server.args.stray_after:
                    await self.pause()
                    self.send(stray)
                self.reset()
            elif verb in ("RSET", "NOOP"):
                if verb == "RSET":
                    self.reset()
                self.send("250 2.0.0 ok")
            elif verb == "QUIT":
                self.send("221 2.0.0 bye")
                await self.writer.drain()
                return
            else:
                self.send("500 5.5.2 Unknown command")


class Server:
    def __init__(self, args):
        self.args = args
        self.stray = args.stray
        self.log = Logger(args.log)
        self.connections = 0
        self.ended = 0
        self.stop = asyncio.Event()

    async def handle(self, reader, writer):
        self.connections += 1
        number = self.connections
        self.log(number, "--", "connection opened")
        try:
            await Session(self, number, reader, writer).run()
        except (ConnectionError, OSError) as e:
            self.log(number, "--", "connection error: %s" % e)
        finally:
            writer.close()
            self.log(number, "--", "connection closed")
            self.ended += 1
            if self.args.max_connections and self.ended >= self.args.max_connections:
                self.stop.set()

    async def main(self):
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        if self.args.unix:
            if os.path.exists(self.args.unix):
                os.unlink(self.args.unix)
            server = await asyncio.start_unix_server(self.handle, path=self.args.unix, limit=MAX_LINE)
            os.chmod(self.args.unix, 0o666)
            where = self.args.unix
        else:
            server = await asyncio.start_server(
                self.handle, self.args.host, self.args.port, limit=MAX_LINE, reuse_address=True
            )
            where = "%s:%d" % (self.args.host, self.args.port)
        if self.args.pidfile:
            with open(self.args.pidfile, "w") as f:
                f.write("%d\n" % os.getpid())
        position = "after" if self.args.stray_after else "before"
        self.log(0, "--", "listening on %s (stray: %r, %s the end-of-data replies, delay %gs)"
                 % (where, self.stray, position, self.args.stray_delay))
        try:
            await asyncio.wait_for(self.stop.wait(), self.args.timeout)
            self.log(0, "--", "stopping")
        except asyncio.TimeoutError:
            self.log(0, "--", "timeout after %ss, stopping" % self.args.timeout)
        server.close()
        await server.wait_closed()
        if self.args.unix and os.path.exists(self.args.unix):
            os.unlink(self.args.unix)
        if self.args.pidfile and os.path.exists(self.args.pidfile):
            os.unlink(self.args.pidfile)


def parse_args(argv):
    p = argparse.ArgumentParser(description="Fake Dovecot-like LMTP server for tests.")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", type=int, help="TCP port on --host")
    where.add_argument("--unix", help="unix socket path")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--stray", help='extra reply line before the first message\'s end-of-data replies, e.g. "350 lockers"')
    p.add_argument("--stray-after", action="store_true", help="write the stray line after the per-recipient replies")
    p.add_argument("--stray-delay", type=float, default=0, help="seconds between the stray line and the end-of-data replies")
    p.add_argument("--timeout", type=float, default=300, help="exit after this many seconds (default 300)")
    p.add_argument("--max-connections", type=int, default=0, help="exit after this many connections ended")
    p.add_argument("--pidfile", help="write the pid here (removed on exit)")
    p.add_argument("--log", help="append the session log here (default stderr)")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(Server(parse_args(sys.argv[1:])).main())
