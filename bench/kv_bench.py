#!/usr/bin/env python3
"""One run of the Redis row: a server (redis-server or examples/kv) loaded
with KEYS keys of SIZE bytes, redis-benchmark -t set over the same keys,
then a BGSAVE while it runs, then a restart. Prints one CSV row:

    server,run,keys,value_bytes,rss_mib,base_kops,save_kops,ratio,save_s,
    parent_growth_mib,child_private_mib,extra_mib,extra_pct,fork_usec,
    probe_base_max_ms,probe_save_max_ms,first_reply_ms,backend

  throughput  total_commands_processed (INFO) over a window before the save,
              and over the save itself (rdb_bgsave_in_progress 1 -> 0)
  memory      every 20 ms while the save runs: VmRSS of the server minus
              VmRSS just before BGSAVE, and Private_Clean + Private_Dirty
              of each child (smaps_rollup); extra = the largest sum
  pause       INFO latest_fork_usec (Redis: fork(); kv: the instant as the
              event loop saw it), and the longest SET a separate probe
              client waited for, before and during the save
  restart     spawn the server on the saved image, then connect and GET
              until a value comes back (Redis answers -LOADING until the
              whole RDB is read)

    kv_bench.py redis|kv|kv-thp RUN KEYS SIZE KV_BINARY SCRATCH_DIR [KV_BACKEND]
"""
import os
import socket
import subprocess
import sys
import threading
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Conn:
    def __init__(self, port, timeout=60):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(1 << 16)
            if not d:
                raise EOFError
            self.buf += d
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self):
        line = self._line()
        t = line[:1]
        if t == b"$":
            n = int(line[1:])
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                d = self.s.recv(1 << 16)
                if not d:
                    raise EOFError
                self.buf += d
            v, self.buf = self.buf[:n], self.buf[n + 2:]
            return v
        if t == b"-":
            return Exception(line[1:].decode(errors="replace"))
        if t == b":":
            return int(line[1:])
        return line[1:]

    def cmd(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(out))
        return self.reply()

    def shutdown(self):
        """SHUTDOWN NOSAVE: the server closes without a reply."""
        try:
            self.cmd("SHUTDOWN", "NOSAVE")
        except (EOFError, OSError):
            pass

    def info(self):
        r = self.cmd("INFO")
        d = {}
        for line in r.decode().split("\r\n"):
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                d[k] = v
        return d


def start(server, port, d, kv, backend, keys, size):
    log = open(os.path.join(d, server + ".log"), "ab")
    if server == "redis":
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
                "--save", "", "--appendonly", "no", "--dbfilename", "dump.rdb",
                "--daemonize", "no", "--protected-mode", "no"]
    else:  # kv, or kv-thp: the heap on transparent huge pages
        maxmem = (keys * (size + 128) * 3 // 2 >> 20) + 256
        argv = [kv, "--port", str(port), "--dir", d, "--maxmemory", "%dm" % maxmem]
        if backend != "default":
            argv += ["--backend", backend]
        if server == "kv-thp":
            argv.append("--thp")
        argv += os.environ.get("KV_BENCH_KV_ARGS", "").split()
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=log, stderr=log)
    return p, t0


def first_reply(port, p, t0, key):
    """Seconds from spawn to the first GET answered with a value."""
    while True:
        if p.poll() is not None:
            raise RuntimeError("server exited during restart")
        try:
            c = Conn(port, timeout=120)
        except OSError:
            time.sleep(0.001)
            continue
        while True:
            r = c.cmd("GET", key)
            if isinstance(r, bytes):
                return time.monotonic() - t0
            if isinstance(r, Exception) and "LOADING" in str(r):
                time.sleep(0.001)
                continue
            raise RuntimeError("GET after restart: %r" % (r,))


def load(port, keys, size):
    pad = b"." * size
    cli = subprocess.Popen(["redis-cli", "-p", str(port), "--pipe"], stdin=subprocess.PIPE,
                           stdout=subprocess.DEVNULL)
    buf = []
    for i in range(keys):
        k = b"key:%012d" % i
        v = (b"v%d:" % i + pad)[:size]
        buf.append(b"*3\r\n$3\r\nSET\r\n$16\r\n%s\r\n$%d\r\n%s\r\n" % (k, size, v))
        if len(buf) == 20000:
            cli.stdin.write(b"".join(buf))
            buf = []
    cli.stdin.write(b"".join(buf))
    cli.stdin.close()
    if cli.wait() != 0:
        raise RuntimeError("redis-cli --pipe failed")


def kib(path, fields):
    total = 0
    try:
        with open(path) as f:
            for line in f:
                k = line.split(":", 1)[0]
                if k in fields:
                    total += int(line.split()[1])
    except OSError:
        pass
    return total


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


class Probe(threading.Thread):
    """A writer of its own: SET in a loop, the longest wait per window."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.c = Conn(port)
        self.stop = False
        self.lock = threading.Lock()
        self.max = 0.0

    def run(self):
        i = 0
        while not self.stop:
            t = time.monotonic()
            self.c.cmd("SET", "probe:%d" % (i % 1000), "x" * 100)
            dt = time.monotonic() - t
            with self.lock:
                self.max = max(self.max, dt)
            i += 1
            time.sleep(0.0005)

    def take(self):
        with self.lock:
            m, self.max = self.max, 0.0
        return m


def main():
    server, run, keys, size, kv, d = sys.argv[1:7]
    backend = sys.argv[7] if len(sys.argv) > 7 else "auto"
    run, keys, size = int(run), int(keys), int(size)
    port = free_port()
    p, _ = start(server, port, d, kv, backend, keys, size)
    for _ in range(500):
        try:
            c = Conn(port)
            break
        except OSError:
            time.sleep(0.01)
    else:
        raise RuntimeError("%s did not start" % server)
    load(port, keys, size)
    time.sleep(1)
    bench = subprocess.Popen(["redis-benchmark", "-p", str(port), "-t", "set", "-r", str(keys),
                              "-d", str(size), "-n", "2000000000", "-c", "50", "-q"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    probe = Probe(port)
    probe.start()
    time.sleep(2)  # warm up
    probe.take()
    base_w = 5.0
    n0, t0 = int(c.info()["total_commands_processed"]), time.monotonic()
    time.sleep(base_w)
    n1, t1 = int(c.info()["total_commands_processed"]), time.monotonic()
    base_rate = (n1 - n0) / (t1 - t0)
    probe_base = probe.take()

    rss0 = kib("/proc/%d/status" % p.pid, ("VmRSS",))
    n0 = int(c.info()["total_commands_processed"])
    s0 = time.monotonic()
    r = c.cmd("BGSAVE")
    if isinstance(r, Exception):
        raise RuntimeError("BGSAVE: %s" % r)
    growth = child = extra = 0
    last_info = time.monotonic()
    while True:
        rss = kib("/proc/%d/status" % p.pid, ("VmRSS",))
        priv = sum(kib("/proc/%d/smaps_rollup" % ch, ("Private_Clean", "Private_Dirty"))
                   for ch in children(p.pid))
        growth, child = max(growth, rss - rss0), max(child, priv)
        extra = max(extra, rss - rss0 + priv)
        time.sleep(0.02)
        if time.monotonic() - last_info >= 0.05:
            last_info = time.monotonic()
            info = c.info()
            if info.get("rdb_bgsave_in_progress") == "0":
                break
    s1 = time.monotonic()
    n1 = int(info["total_commands_processed"])
    probe_save = probe.take()
    save_rate = (n1 - n0) / (s1 - s0)
    probe.stop = True
    bench.terminate()
    bench.wait()
    probe.join()
    if info.get("rdb_last_bgsave_status") != "ok":
        raise RuntimeError("BGSAVE failed: %s" % info.get("cow_save_last_error", "see log"))
    fork_usec = int(info["latest_fork_usec"])
    ran = info.get("cow_save_backend", "fork")
    c.shutdown()
    p.wait(timeout=120)

    p, t0 = start(server, port, d, kv, backend, keys, size)
    first = first_reply(port, p, t0, "key:000000000001")
    Conn(port).shutdown()
    p.wait(timeout=120)
    for f in ("dump.rdb", "kv.img"):
        try:
            os.unlink(os.path.join(d, f))
        except OSError:
            pass
    rss_mib = rss0 / 1024
    print("%s,%d,%d,%d,%.0f,%.1f,%.1f,%.3f,%.2f,%.0f,%.0f,%.0f,%.1f,%d,%.2f,%.2f,%.2f,%s" % (
        server, run, keys, size, rss_mib, base_rate / 1e3, save_rate / 1e3,
        save_rate / base_rate, s1 - s0, growth / 1024, child / 1024, extra / 1024,
        100.0 * extra / rss0, fork_usec, probe_base * 1e3, probe_save * 1e3, first * 1e3,
        ran), flush=True)


if __name__ == "__main__":
    main()
