#!/usr/bin/env python3
"""Write a large synthetic lockstep recording (JSON Lines) of conforming LMTP sessions.

Each session: greeting; LHLO with a multi-line reply advertising PIPELINING,
ENHANCEDSTATUSCODES, 8BITMIME, CHUNKING and SIZE; 1-5 transactions, each
MAIL FROM (SIZE=, sometimes BODY=8BITMIME) + 1-10 RCPT TO + DATA sent as one
pipelined client write; replies 250 2.1.0 / 250 2.1.5 / 550 5.1.1 / 354;
dot-stuffed content of 1 KB..100 KB in data events of at most 64 KB; the
terminating CRLF.CRLF; one "250 2.0.0 <rcpt> Saved" per accepted recipient.
A transaction with no accepted recipient gets "503 5.5.1 No valid recipients"
for DATA, no content, and an RSET. RSET also appears between transactions
now and then (alone or at the head of the next pipelined group). QUIT/221,
then the client and server close events and "end".

Between 8 and 32 connections (chosen per file, varying over time) are open at
once and their events are interleaved.

    python3 bench/gen_recording.py --size 1G --out /tmp/rec.jsonl --seed 1

Standard library only. Throughput is roughly 10-20 MB/s of output per core:
message content is assembled from pre-built line pools and JSON-escaped with
the C encoder of the json module, and output goes through a large buffer.
"""

import argparse
import json.encoder
import random
import sys
import time

ESC = json.encoder.encode_basestring_ascii  # C implementation; returns the quoted string

WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at which but have an they "
    "you were her she there been one all we their has would when if so no will more about up out who them some "
    "could what its into time two than other only new then may these any like over after also well work first "
    "people because most even just back before through where much should how our way between many those both "
    "under last never each while same another report meeting invoice quarterly budget server delivery mailbox "
    "queue latency throughput release schedule review deadline customer account payment project update attached "
    "please regards thanks tomorrow agenda minutes draft version patch build test deploy rollback incident "
    "storage network kernel config backup restore ticket support license contract shipment order warehouse"
).split()
WORDS8 = ["café", "Grüße", "naïve", "façade", "Müller", "Zürich", "señor", "déjà", "Ærø", "smörgåsbord", "crème"]
DOMAINS = ["example.test", "mail.example.test", "corp.example.test", "lists.example.test", "example.org.test"]
NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "oscar",
         "peggy", "rupert", "sybil", "trent", "victor", "walter", "info", "support", "noreply", "billing"]
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def make_line_pools(rng):
    """Pools of raw content lines (no CRLF). Lines that start with '.' are stored
    already dot-stuffed, together with their unstuffed length."""
    def sentence(words, lo, hi):
        n = rng.randint(lo, hi)
        s = " ".join(rng.choice(words) for _ in range(n))
        return s[:1].upper() + s[1:] + rng.choice([".", ".", ",", ":", "?", "!", ""])

    text = []
    for _ in range(6000):
        r = rng.random()
        if r < 0.08:
            line = ""                                              # paragraph break
        elif r < 0.70:
            line = sentence(WORDS, 4, 13)                          # ordinary wrapped text, < 78 chars
        elif r < 0.78:
            line = "> " + sentence(WORDS, 3, 11)                   # quoted reply
        elif r < 0.83:
            line = "\t" + sentence(WORDS, 2, 8)                    # tab-indented
        elif r < 0.87:
            line = 'He said "%s" \\ path C:\\%s\\%s' % (sentence(WORDS, 2, 5), rng.choice(WORDS), rng.choice(WORDS))
        elif r < 0.92:
            line = "." + sentence(WORDS, 1, 6)                     # starts with a dot: must be stuffed
        elif r < 0.93:
            line = ".."                                            # two dots: stuffed to three
        elif r < 0.97:
            line = "".join(rng.choice(B64) for _ in range(76))     # base64 attachment line
        else:                                                      # long HTML-ish line, < 1000 octets
            line = "<p>" + " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 150)))[:980] + "</p>"
        text.append(line)
    eight = []
    for _ in range(1500):
        ws = [rng.choice(WORDS8) if rng.random() < 0.3 else rng.choice(WORDS) for _ in range(rng.randint(4, 12))]
        eight.append(" ".join(ws) + ".")
    return [stuff(l) for l in text], [stuff(l) for l in eight]


def stuff(line):
    """(wire line with CRLF, unstuffed size with CRLF)."""
    size = len(line) + 2
    if line.startswith("."):
        line = "." + line
    return line + "\r\n", size


class Gen:
    def __init__(self, seed, size, out):
        self.rng = random.Random(seed)
        self.target = size
        self.out = out
        self.buf = []
        self.buflen = 0
        self.written = 0
        self.t = 1795238727000000
        self.next_conn = 1
        self.text_pool, self.eight_pool = make_line_pools(self.rng)
        self.stats = {"sessions": 0, "transactions": 0, "rcpts": 0, "rejected": 0, "no_rcpt": 0,
                      "messages": 0, "content_bytes": 0, "rset": 0, "data_events": 0}

    # ------------------------------------------------------------------ output
    def emit(self, s):
        self.buf.append(s)
        self.buflen += len(s)
        if self.buflen >= 8 << 20:
            self.flush()

    def flush(self):
        if self.buf:
            data = "".join(self.buf).encode("latin-1")  # every char is U+0000..U+007F here
            self.out.write(data)
            self.written += len(data)
            self.buf = []
            self.buflen = 0

    def tick(self, lo=5, hi=400):
        self.t += self.rng.randint(lo, hi)
        return self.t

    # ------------------------------------------------------------------ content
    def message(self, sender, rcpts, eight):
        rng = self.rng
        # Log-uniform size between 1 KB and 100 KB: most mail is small.
        target = int(1024 * (100 ** rng.random()))
        mid = "%x.%x@%s" % (rng.getrandbits(48), rng.getrandbits(24), rng.choice(DOMAINS))
        hdr = [
            "Received: from client.example.test (client.example.test [192.0.2.%d])" % rng.randint(1, 254),
            "\tby mx.example.test (Postfix) with ESMTPS id %X" % rng.getrandbits(40),
            "\tfor <%s>; Tue, 18 Nov 2026 10:%02d:%02d +0000" % (rcpts[0], rng.randint(0, 59), rng.randint(0, 59)),
            "From: %s <%s>" % (sender.split("@")[0].capitalize(), sender),
            "To: " + ", ".join("<%s>" % r for r in rcpts[:4]),
            "Subject: %s %s %s" % (rng.choice(WORDS).capitalize(), rng.choice(WORDS), rng.choice(WORDS)),
            "Date: Tue, 18 Nov 2026 10:%02d:%02d +0000" % (rng.randint(0, 59), rng.randint(0, 59)),
            "Message-ID: <%s>" % mid,
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=%s" % ("iso-8859-1" if eight else "us-ascii"),
            "Content-Transfer-Encoding: %s" % ("8bit" if eight else "7bit"),
            "",
        ]
        head = "".join(h + "\r\n" for h in hdr)
        size = len(head)
        pool = self.eight_pool if eight else self.text_pool
        avg = 62
        parts = [head]
        while size < target:
            k = max(1, (target - size) // avg)
            picked = rng.choices(pool, k=k)
            parts.extend(p[0] for p in picked)
            size += sum(p[1] for p in picked)
        wire = "".join(parts)
        return wire, size

    # ------------------------------------------------------------------ sessions
    def session(self, conn):
        """Yields JSON lines (without the time stamp prefix being fixed yet: each
        yield is (kind, payload))."""
        rng = self.rng
        host = rng.choice(["lmtp.example.test", "mda1.example.test", "dovecot.example.test"])
        self.stats["sessions"] += 1
        yield ("open", "127.0.0.1:%d" % rng.randint(32768, 60999))
        yield ("s", "220 %s LMTP ready\r\n" % host)
        yield ("c", "LHLO mx%d.example.test\r\n" % rng.randint(1, 9))
        caps = ["PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "CHUNKING", "SIZE 104857600"]
        rng.shuffle(caps)
        lines = [host] + caps
        yield ("s", "".join("250%s%s\r\n" % ("-" if i < len(lines) - 1 else " ", l) for i, l in enumerate(lines)))
        ntx = rng.randint(1, 5)
        need_rset = False
        for tx in range(ntx):
            self.stats["transactions"] += 1
            sender = "%s@%s" % (rng.choice(NAMES), rng.choice(DOMAINS))
            if rng.random() < 0.03:
                sender = ""                       # null reverse-path (bounce)
            nr = rng.randint(1, 10)
            rcpts = ["%s%d@%s" % (rng.choice(NAMES), rng.randint(1, 999), rng.choice(DOMAINS)) for _ in range(nr)]
            # Some recipients are unknown; now and then all of them.
            if rng.random() < 0.04:
                ok = [False] * nr
            else:
                ok = [rng.random() >= 0.15 for _ in range(nr)]
            accepted = [r for r, a in zip(rcpts, ok) if a]
            eight = rng.random() < 0.1
            if accepted:
                wire, size = self.message(sender or "mailer-daemon@example.test", accepted, eight)
            else:
                wire, size = "", rng.randint(1024, 102400)
            rset_first = need_rset or (tx > 0 and rng.random() < 0.15)
            group = []
            if rset_first and rng.random() < 0.5:
                # RSET as its own round trip.
                self.stats["rset"] += 1
                yield ("c", "RSET\r\n")
                yield ("s", "250 2.0.0 OK\r\n")
                rset_first = False
            if rset_first:
                self.stats["rset"] += 1
                group.append("RSET\r\n")
            mail = "MAIL FROM:<%s> SIZE=%d" % (sender, size)
            if eight:
                mail += " BODY=8BITMIME"
            group.append(mail + "\r\n")
            group.extend("RCPT TO:<%s>\r\n" % r for r in rcpts)
            group.append("DATA\r\n")
            yield ("c", "".join(group))
            replies = []
            if rset_first:
                replies.append("250 2.0.0 OK\r\n")
            replies.append("250 2.1.0 OK\r\n")
            for r, a in zip(rcpts, ok):
                self.stats["rcpts"] += 1
                if a:
                    replies.append("250 2.1.5 OK\r\n")
                else:
                    self.stats["rejected"] += 1
                    replies.append("550 5.1.1 <%s> User doesn't exist: %s\r\n" % (r, r))
            replies.append("354 OK\r\n" if accepted else "503 5.5.1 No valid recipients\r\n")
            # The server flushes its replies in one write, or in two.
            if len(replies) > 2 and rng.random() < 0.3:
                cut = rng.randint(1, len(replies) - 1)
                yield ("s", "".join(replies[:cut]))
                yield ("s", "".join(replies[cut:]))
            else:
                yield ("s", "".join(replies))
            if not accepted:
                self.stats["no_rcpt"] += 1
                need_rset = True
                continue
            need_rset = False
            self.stats["messages"] += 1
            self.stats["content_bytes"] += size
            wire += ".\r\n"
            for off in range(0, len(wire), 65536):
                self.stats["data_events"] += 1
                yield ("c", wire[off:off + 65536])
            saved = ["250 2.0.0 <%s> %s Saved\r\n" % (r, "%016x" % rng.getrandbits(64)) for r in accepted]
            if rng.random() < 0.5:
                yield ("s", "".join(saved))
            else:
                for s in saved:
                    yield ("s", s)
        yield ("c", "QUIT\r\n")
        yield ("s", "221 2.0.0 Bye\r\n")
        yield ("close", "c")
        yield ("close", "s")
        yield ("end", None)

    def run(self):
        rng = self.rng
        emit = self.emit
        emit('{"t":%d,"ev":"meta","format":"lockstep-recording","v":1,"lockstep":"0.1.0"}\n' % self.t)
        active = []   # [conn id string, generator]
        width = rng.randint(8, 32)
        done = False
        while True:
            if not done and self.written + self.buflen >= self.target:
                done = True                        # stop opening sessions; let the open ones finish
            if not done:
                if rng.random() < 0.002:
                    width = rng.randint(8, 32)     # vary the concurrency over time
                while len(active) < width:
                    c = str(self.next_conn)
                    self.next_conn += 1
                    active.append([c, self.session(c)])
            if not active:
                break
            i = rng.randrange(len(active))
            conn, g = active[i]
            try:
                kind, payload = next(g)
            except StopIteration:
                active[i] = active[-1]
                active.pop()
                continue
            t = self.tick()
            if kind == "c" or kind == "s":
                emit('{"t":%d,"conn":"%s","ev":"data","dir":"%s","data":%s}\n' % (t, conn, kind, ESC(payload)))
            elif kind == "open":
                emit('{"t":%d,"conn":"%s","ev":"open","client":"%s","server":"127.0.0.1:24"}\n' % (t, conn, payload))
            elif kind == "close":
                emit('{"t":%d,"conn":"%s","ev":"close","dir":"%s"}\n' % (t, conn, payload))
            else:
                emit('{"t":%d,"conn":"%s","ev":"end"}\n' % (t, conn))
        self.flush()


def parse_size(s):
    s = s.strip().upper().rstrip("B")
    mult = 1
    for suffix, m in (("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30)):
        if s.endswith(suffix):
            s, mult = s[:-1], m
            break
    return int(float(s) * mult)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="1G", help="approximate output size, e.g. 5M, 1G (default 1G)")
    ap.add_argument("--out", required=True, help="output file ('-' for standard output)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    t0 = time.time()
    out = sys.stdout.buffer if a.out == "-" else open(a.out, "wb", buffering=0)
    g = Gen(a.seed, parse_size(a.size), out)
    g.run()
    if out is not sys.stdout.buffer:
        out.close()
    if not a.quiet:
        dt = time.time() - t0
        st = " ".join("%s=%d" % kv for kv in g.stats.items())
        print("wrote %d bytes in %.1f s (%.1f MB/s); %s" % (g.written, dt, g.written / dt / 1e6, st), file=sys.stderr)


if __name__ == "__main__":
    main()
