#!/usr/bin/env python3
"""Builds the seed corpora of the fuzz targets from the real-peer transcripts, the Postfix
logs, the scenario library and the fault presets, into corpus/<target>/ (files named by
the SHA-1 of their content; existing seeds are kept). Minimise afterwards with
fuzz/minimise.sh (libFuzzer -merge=1).

  fuzz/seeds.py [REPO]
"""
import hashlib, json, os, re, sys

repo = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
corpus = os.path.join(repo, "corpus")
added = {}


def put(target, data):
    if isinstance(data, str):
        data = data.encode("latin-1")
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, hashlib.sha1(data).hexdigest())
    if not os.path.exists(p):
        with open(p, "wb") as f:
            f.write(data)
        added[target] = added.get(target, 0) + 1


def socat_blocks(path):
    """(dir, bytes) per read of a socat -v dump: dir 'c' for '>' blocks, 's' for '<'."""
    blocks, cur = [], None
    for line in open(path, encoding="latin-1"):
        m = re.match(r"^([<>]) \d{4}/\d\d/\d\d \S+\s+length=(\d+)", line)
        if m:
            cur = ["c" if m.group(1) == ">" else "s", ""]
            blocks.append(cur)
            continue
        if cur is None or line.startswith("#"):
            continue
        text = line[:-1] if line.endswith("\n") else line
        cur[1] += text[:-2] + "\r\n" if text.endswith("\\r") else text + "\n"
    return [(d, b) for d, b in blocks]


def script(blocks):
    """The session target's format: per segment a byte (bit 7 server, bits 0-6 length)."""
    out = bytearray()
    for d, b in blocks:
        raw = b.encode("latin-1")
        for i in range(0, len(raw), 127):
            part = raw[i:i + 127]
            out.append((0x80 if d == "s" else 0) | len(part))
            out += part
    return bytes(out)


def jsonl(blocks):
    t = 1795238727000000
    ev = [{"t": t, "conn": "1", "ev": "open", "client": "127.0.0.1:40000", "server": "127.0.0.1:24"}]
    for i, (d, b) in enumerate(blocks):
        ev.append({"t": t + 100 * (i + 1), "conn": "1", "ev": "data", "dir": d, "data": b})
    ev.append({"t": t + 100 * (len(blocks) + 2), "conn": "1", "ev": "end"})
    return "".join(json.dumps(e, ensure_ascii=True) + "\n" for e in ev)


transcripts = os.path.join(repo, "tests/fixtures/transcripts")
for name in sorted(os.listdir(transcripts)):
    path = os.path.join(transcripts, name)
    blocks = socat_blocks(path)
    client = "".join(b for d, b in blocks if d == "c")
    server = "".join(b for d, b in blocks if d == "s")
    put("framer_client", b"\x00" + client.encode("latin-1"))
    put("framer_server", b"\x00" + server.encode("latin-1"))
    put("reply_parser", server)
    for line in client.split("\r\n"):
        if re.match(r"^[A-Za-z]{4}\b", line):
            put("command_parser", line)
    put("session", script(blocks))
    put("importer_socat", open(path, "rb").read())
    put("importer_jsonl", jsonl(blocks))

for sub in ("tests/fixtures/postfix", "tests/fixtures/incidents"):
    d = os.path.join(repo, sub)
    for name in sorted(os.listdir(d)):
        if name.endswith(".log"):
            data = open(os.path.join(d, name), "rb").read()
            put("importer_postfix", data[:64 << 10])

for root, _, files in os.walk(os.path.join(repo, "scenarios")):
    for name in sorted(files):
        if name.endswith(".yaml"):
            data = open(os.path.join(root, name), "rb").read()
            if len(data) < 16 << 10:
                put("scenario", data)

for req in ("GET\n/faults\n\n", "GET\n/sessions\n\n", "GET\n/presets\n\n", "DELETE\n/faults/x\n\n",
            'POST\n/faults\nBearer s3cret\n{"name":"lockers","spec":"cyrus-lockers"}',
            'POST\n/faults\n\n{"name":"d","type":"delay","attributes":{"ms":5},"toxicity":0.5}',
            "POST\n/faults\n\n{", "PUT\n/faults\n\n[]", "GET\n/faults/cyrus-lockers\nBearer nope\n"):
    put("control", req)

for k, v in sorted(added.items()):
    print(f"{k}: {v} new seed(s)")
