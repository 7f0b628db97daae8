#!/usr/bin/env python3
"""Scale-out benchmark (issue 20): the same load through four deployments on this machine.

  python3 benches/scale.py [--bin target/release/cloudsentinel] [--events 200000]

- `sqlite`: one process (role all), SQLite, in-process queue: the default.
- `postgres`: one process (role all) on PostgreSQL.
- `bus-1`: api + ingest + 1 detect process, PostgreSQL and RabbitMQ.
- `bus-2`: the same with 2 detect processes (one consumes at a time; the other stands by).

`cloudsentinel loadgen` sends the events (batches of 1,000 synthetic CloudTrail records, 4
connections, as fast as the service answers) to the process that ingests. For each deployment it
prints the ingest rate (202s per second: committed for role all, confirmed by the broker for an
ingest process), the end-to-end rate (events stored and alerted per second, from the first request
until the detect processes have committed every batch), and the CPU seconds each process used per
1,000 events (from /proc), which is what the capacity model in docs/SCALING.md is built on.

Needs PostgreSQL on 127.0.0.1:5432 (trust auth) and RabbitMQ on 127.0.0.1:5672 (guest/guest).
The load generator runs on the same cores as the service. The CPU of PostgreSQL's and RabbitMQ's
processes (everything they did meanwhile, on this machine) is given per 1,000 events too.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def cpu_of(names):
    """CPU seconds used so far by every process whose command is one of `names` (PostgreSQL's
    backends, RabbitMQ's Erlang VM)."""
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
            if comm in names:
                total += cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return total


SERVERS = {"postgresql": ("postgres",), "rabbitmq": ("beam.smp", "erl_child_setup", "epmd")}


def metric(base, name):
    text = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise SystemExit(f"no {name} at {base}")


def psql(sql, db="postgres"):
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-qtAc", sql], check=True,
                   stdout=subprocess.DEVNULL)


class Proc:
    def __init__(self, binary, role, data, env):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.p = subprocess.Popen(
            [binary, "serve", "--role", role, "--listen", f"127.0.0.1:{self.port}", "--data-dir", data],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.p.stdout.readline()
        if not line.startswith("CloudSentinel listening"):
            raise SystemExit(f"{role} did not start: {line!r}")
        self.role = role
        self.cpu0 = cpu_seconds(self.p.pid)

    def cpu(self):
        return cpu_seconds(self.p.pid) - self.cpu0

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.p.kill()


def request(base, path, body=None, token=None):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    return json.loads(urllib.request.urlopen(req, timeout=30).read())


def run(binary, name, events, workers):
    work = tempfile.mkdtemp(prefix=f"cs-scale-{name}-")
    env = dict(os.environ, CLOUDSENTINEL_ADMIN_USER="admin", CLOUDSENTINEL_ADMIN_PASSWORD="bench-password-1",
               CLOUDSENTINEL_LOG="warn", CLOUDSENTINEL_DETECTION__ANOMALY="false")
    db = f"cs_bench_{os.getpid()}_{name.replace('-', '_')}"
    queue = f"cs.bench.{os.getpid()}.{name}"
    if name != "sqlite":
        psql(f"DROP DATABASE IF EXISTS {db}")
        psql(f"CREATE DATABASE {db}")
        env.update(CLOUDSENTINEL_STORAGE__BACKEND="postgres",
                   CLOUDSENTINEL_STORAGE__POSTGRES_URL=f"postgres://postgres@127.0.0.1:5432/{db}")
    if workers:
        env.update(CLOUDSENTINEL_BUS__KIND="amqp", CLOUDSENTINEL_BUS__URL="amqp://guest@127.0.0.1:5672/%2f",
                   CLOUDSENTINEL_BUS__QUEUE=queue)
        procs = [Proc(binary, "api", work, env)]
        procs += [Proc(binary, "detect", work, env) for _ in range(workers)]
        procs.append(Proc(binary, "ingest", work, env))
        front, detect = procs[-1], procs[1:-1]
    else:
        procs = [Proc(binary, "all", work, env)]
        front, detect = procs[0], []
    token = request(procs[0].base, "/api/v1/auth/login", {"username": "admin", "password": "bench-password-1"})["access_token"]
    key = request(procs[0].base, "/api/v1/api-keys", {"name": "bench"}, token)["key"]
    for p in procs:
        p.cpu0 = cpu_seconds(p.p.pid)
    servers0 = {k: cpu_of(v) for k, v in SERVERS.items()}
    started = time.time()
    out = subprocess.run([binary, "loadgen", "--url", front.base, "--api-key", key, "--events", str(events),
                          "--duration", "900", "--batch", "1000", "--connections", "4"],
                         check=True, capture_output=True, text=True)
    load = json.loads(out.stdout)
    if detect:
        published = metric(front.base, "cloudsentinel_bus_published_total")
        while sum(metric(d.base, "cloudsentinel_bus_committed_total") for d in detect) < published:
            time.sleep(0.05)
    seconds = time.time() - started
    stored = load["events_accepted"]
    servers = {k: round((cpu_of(v) - servers0[k]) / stored * 1e6, 1) for k, v in SERVERS.items()}
    result = {
        "deployment": name,
        "ingest_events_per_sec": load["events_per_sec"],
        "ingest_p99_ms": load["latency_ms"]["p99"],
        "end_to_end_events_per_sec": round(stored / seconds),
        "cpu_ms_per_1000_events": {f"{p.role}{i}": round(p.cpu() / stored * 1e6, 1) for i, p in enumerate(procs)},
        "server_cpu_ms_per_1000_events": servers,
    }
    for p in procs:
        p.stop()
    if name != "sqlite":
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    if workers:
        for q in (queue, queue + ".dead"):
            subprocess.run(["rabbitmqctl", "-q", "delete_queue", q], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/cloudsentinel")
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--only", default="sqlite,postgres,bus-1,bus-2")
    args = ap.parse_args()
    plans = {"sqlite": 0, "postgres": 0, "bus-1": 1, "bus-2": 2}
    for name in args.only.split(","):
        print(json.dumps(run(args.bin, name, args.events, plans[name])), flush=True)


if __name__ == "__main__":
    main()
