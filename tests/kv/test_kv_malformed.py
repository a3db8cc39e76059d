#!/usr/bin/env python3
"""Bad input never crashes kv: each malformed request gets a RESP error (or
the connection closed after one), and the server keeps answering others.

    test_kv_malformed.py KV_BINARY
"""
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def start(kv, d):
    for _ in range(5):
        port = random.randint(20000, 60000)
        log = open(os.path.join(d, "kv.log"), "ab")
        p = subprocess.Popen([kv, "--port", str(port), "--dir", d, "--maxmemory", "64m"],
                             stderr=log)
        for _ in range(200):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                return p, port, s
            except OSError:
                if p.poll() is not None:
                    break
                time.sleep(0.02)
        p.kill()
        p.wait()
    sys.exit("FAIL: kv did not start")


def recv_some(s, want=1, timeout=5.0):
    """Read until at least `want` CRLF-terminated lines or EOF."""
    s.settimeout(timeout)
    buf = b""
    try:
        while buf.count(b"\r\n") < want:
            b = s.recv(65536)
            if not b:
                break
            buf += b
    except socket.timeout:
        pass
    return buf


def main():
    kv = sys.argv[1]
    d = tempfile.mkdtemp(prefix="cowkv.")
    p, port, s0 = start(kv, d)
    failures = []

    def conn():
        return socket.create_connection(("127.0.0.1", port), timeout=5)

    def alive(what):
        s = conn()
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        r = recv_some(s)
        s.close()
        if r != b"+PONG\r\n" or p.poll() is not None:
            failures.append("%s: server no longer answers (%r)" % (what, r))
            return False
        return True

    cases = [
        (b"*1\r\n$1e30\r\nx\r\n", b"-ERR Protocol error: invalid bulk length"),
        (b"*1\r\n$-1\r\n", b"-ERR Protocol error: invalid bulk length"),
        (b"*1\r\n$99999999999999999999999\r\n", b"-ERR Protocol error: invalid bulk length"),
        (b"*1\r\n$536870913\r\n", b"-ERR Protocol error: invalid bulk length"),
        (b"*1e30\r\n", b"-ERR Protocol error: invalid multibulk length"),
        (b"*99999999999\r\n", b"-ERR Protocol error: invalid multibulk length"),
        (b"*-5\r\n", b"-ERR Protocol error: invalid multibulk length"),
        (b"*2\r\n+GET\r\n", b"-ERR Protocol error: expected '$', got '+'"),
        (b"*1\r\n$3\r\nGETXX\r\n", b"-ERR Protocol error: bulk string not followed by CRLF"),
        (b"*1\r\n$\r\n", b"-ERR Protocol error: invalid bulk length"),
        (b"*1\r\n$ 3\r\nGET\r\n", b"-ERR Protocol error: invalid bulk length"),
        (b"*1\r\n$03\r\nGET\r\n", b"-ERR Protocol error: invalid bulk length"),
        (b"*\x00\xff\r\n", b"-ERR Protocol error: invalid multibulk length"),
        (b"*" + b"9" * 100, b"-ERR Protocol error: invalid multibulk length"),
    ]
    for req, want in cases:
        s = conn()
        s.sendall(req)
        r = recv_some(s)
        s.close()
        if not r.startswith(want):
            failures.append("%r: got %r, want %r" % (req, r, want))
        alive(repr(req))

    # Valid framing, wrong use: errors, and the connection stays usable.
    s = conn()
    s.sendall(b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n*1\r\n$3\r\n\x00\xff\x01\r\n"
              b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n\r\n\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
              b"*0\r\n*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n")
    r = recv_some(s, 6)
    want = (b"$-1\r\n-ERR unknown command '???'\r\n+OK\r\n$2\r\n\r\n\r\n"
            b"-ERR value is not an integer or out of range\r\n+PONG\r\n")
    if r != want:
        failures.append("pipelined misuse: got %r, want %r" % (r, want))
    s.close()

    # A request split into single bytes, and one that stops half-way.
    s = conn()
    for b in b"*3\r\n$3\r\nSET\r\n$2\r\nsk\r\n$5\r\nsplit\r\n":
        s.sendall(bytes([b]))
    if recv_some(s) != b"+OK\r\n":
        failures.append("byte-by-byte request not answered")
    s.sendall(b"*2\r\n$3\r\nGET\r\n$100\r\nabc")
    s.close()
    alive("half a request")

    # Random bytes, many connections: no crash, every reply well framed.
    rnd = random.Random(int(os.environ.get("KV_SEED", "18")))
    print("seed", os.environ.get("KV_SEED", "18"))
    for i in range(300):
        n = rnd.randint(1, 200)
        junk = bytes(rnd.getrandbits(8) for _ in range(n))
        if i % 3 == 0:
            junk = b"*" + junk
        elif i % 3 == 1:
            junk = b"*2\r\n$" + junk
        s = conn()
        s.sendall(junk)
        s.shutdown(socket.SHUT_WR)
        r = recv_some(s, 1000, timeout=2)
        s.close()
        for line in r.split(b"\r\n")[:-1]:
            if line and line[:1] not in b"+-:$*" and not line.startswith(b"-"):
                pass  # bulk payloads may hold anything
        if p.poll() is not None:
            failures.append("random input %r crashed the server" % junk)
            break
    alive("random bytes")

    # A huge but legal bulk announced, then the client goes away.
    s = conn()
    s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\n" + b"x" * 65536)
    s.close()
    alive("announced 512 MiB bulk")

    s0.close()
    s = conn()
    s.sendall(b"*1\r\n$8\r\nSHUTDOWN\r\n")
    recv_some(s, timeout=5)
    rc = p.wait(timeout=30)
    if rc != 0:
        failures.append("kv exited %d" % rc)
    shutil.rmtree(d, ignore_errors=True)
    if failures:
        for f in failures:
            print("FAIL:", f)
        sys.exit(1)
    print("ok: %d malformed requests answered with errors, server alive" % len(cases))


if __name__ == "__main__":
    main()
