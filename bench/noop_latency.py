#!/usr/bin/env python3
"""Round-trip latency of one LMTP NOOP, directly to smtp-sink and through relays.

    python3 bench/noop_latency.py -n 2000 direct=127.0.0.1:2525 socat=127.0.0.1:2526 ...

Opens one connection per target, reads the greeting, sends LHLO, then does N
round trips (send "NOOP\\r\\n", read the whole reply) on each connection, and
finally QUIT. The targets are interleaved: iteration i does one round trip on
every target, in an order that rotates with i, so drift in machine load hits all
targets alike. The first target is the baseline ("direct").

Output: one TSV line per target on stdout:
    name  n  p50_us  p90_us  p99_us  mean_us  added_p50_us  added_p99_us
where added_* is the target's percentile minus the baseline's. With --raw FILE
the individual samples (microseconds, one column per target) go to FILE.
Standard library only.
"""

import argparse
import socket
import sys
import time


def read_reply(sock, buf):
    """Reads one complete (possibly multi-line) reply; returns (reply_bytes, rest)."""
    while True:
        start = 0
        while True:
            i = buf.find(b"\r\n", start)
            if i < 0:
                break
            line = buf[start:i]
            start = i + 2
            if len(line) < 4 or line[3:4] != b"-":  # last line of the reply
                return buf[:start], buf[start:]
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed while waiting for a reply")
        buf += chunk


def percentile(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    k = (len(sorted_vals) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=2000, help="measured round trips per target (default 2000)")
    ap.add_argument("--warmup", type=int, default=200, help="unmeasured round trips first (default 200)")
    ap.add_argument("--timeout", type=float, default=10.0, help="socket timeout in seconds")
    ap.add_argument("--raw", help="write the samples here (TSV, microseconds)")
    ap.add_argument("targets", nargs="+", help="name=host:port; the first is the baseline")
    a = ap.parse_args()

    names, conns = [], []
    for t in a.targets:
        name, _, addr = t.partition("=")
        host, _, port = addr.rpartition(":")
        s = socket.create_connection((host, int(port)), timeout=a.timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        greet, buf = read_reply(s, buf)
        if not greet.startswith(b"220"):
            sys.exit(f"{name}: unexpected greeting {greet!r}")
        s.sendall(b"LHLO bench.example\r\n")
        rep, buf = read_reply(s, buf)
        if not rep.startswith(b"250"):
            sys.exit(f"{name}: LHLO got {rep!r}")
        names.append(name)
        conns.append([s, buf])

    k = len(conns)
    samples = [[] for _ in range(k)]
    clock = time.perf_counter_ns
    noop = b"NOOP\r\n"
    for i in range(a.warmup + a.n):
        for j in range(k):
            idx = (i + j) % k
            s, buf = conns[idx]
            t0 = clock()
            s.sendall(noop)
            rep, buf = read_reply(s, buf)
            t1 = clock()
            conns[idx][1] = buf
            if not rep.startswith(b"250"):
                sys.exit(f"{names[idx]}: NOOP got {rep!r}")
            if i >= a.warmup:
                samples[idx].append((t1 - t0) / 1000.0)

    for s, buf in conns:
        try:
            s.sendall(b"QUIT\r\n")
            read_reply(s, buf)
        except OSError:
            pass
        s.close()

    if a.raw:
        with open(a.raw, "w") as f:
            f.write("\t".join(names) + "\n")
            for row in zip(*samples):
                f.write("\t".join(f"{v:.1f}" for v in row) + "\n")

    stats = []
    for j in range(k):
        v = sorted(samples[j])
        stats.append((percentile(v, 50), percentile(v, 90), percentile(v, 99), sum(v) / len(v)))
    b50, b99 = stats[0][0], stats[0][2]
    for j in range(k):
        p50, p90, p99, mean = stats[j]
        print(f"{names[j]}\t{len(samples[j])}\t{p50:.1f}\t{p90:.1f}\t{p99:.1f}\t{mean:.1f}\t{p50 - b50:.1f}\t{p99 - b99:.1f}")


if __name__ == "__main__":
    main()
