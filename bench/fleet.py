"""Fleet benchmarks through RabbitMQ, side by side in one run, medians of interleaved rounds.

1. Throughput: N round-robin check requests published as sensu-server publishes them
   (unique names), results consumed from `results`, for a built-in HTTP check (on the default
   one-thread runtime and on one thread per CPU), a command check running check_http, and a
   command check running `true`; beside them, two reference rows: Concierge answering
   requests without a check (an unknown extension, answered with status 3) and a minimal
   lapin client answering with a fixed result (examples/amqp_echo.rs). Results/s, client
   CPU-seconds per 1,000 checks (children included), peak RSS, p50/p99 of executed - issued.
2. Probe cost against blackbox_exporter: the same N HTTP probes of the same nginx target
   through blackbox's /probe and through Concierge, in the same interleaved rounds; CPU per
   probe of each process.
3. Idle footprint: RSS and CPU% of an idle connected client over IDLE seconds.
4. Fairness: 3 replicas on one round-robin queue, 3,000 requests of varying cost; shares.

With CONCIERGE_BASELINE_BIN set to another build of concierge, the built-in, `true` and
no-check rows are also run with that build, interleaved in the same rounds, and an A/B
table with ratios is printed (a change's effect, measured side by side).

BENCH_VARIANTS=builtin,no-check (comma-separated row names: builtin, builtin-mt, check_http,
true, no-check, amqp-echo, and X@base) runs only those rows.

Usage: bench/run fleet [N] [ROUNDS] [IDLE_SECONDS]"""
import concurrent.futures
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import lib

CHECK_HTTP = "/usr/lib/nagios/plugins/check_http"
BASELINE = os.environ.get("CONCIERGE_BASELINE_BIN")


def collect(broker, queue, expected, timeout, on_result):
    """Consume `expected` results (or until timeout) in a thread; returns the thread."""
    done = threading.Event()

    def run():
        connection, ch = lib.channel(broker.url)
        seen = 0
        deadline = time.time() + timeout
        for _m, _p, body in ch.consume(queue, auto_ack=True, inactivity_timeout=0.5):
            if body is not None:
                on_result(json.loads(body))
                seen += 1
            if seen >= expected or time.time() > deadline:
                break
        ch.cancel()
        connection.close()
        done.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def throughput(broker, nginx, variant, n):
    # "<variant>@base": the same run with the baseline build (CONCIERGE_BASELINE_BIN).
    variant, _, base = variant.partition("@")
    binary = BASELINE if base else None
    rr = lib.unique("roundrobin:bench")
    name = lib.unique("bench-" + variant)
    # "builtin-mt": the same built-in check on a multi-threaded runtime (one thread per CPU).
    env = {"CONCIERGE_WORKER_THREADS": "0"} if variant == "builtin-mt" else {}
    if variant == "check_http":
        # Forked, always: the plugin itself, whatever Concierge runs natively.
        env["CONCIERGE_NATIVE_PLUGINS"] = "false"
    if variant == "amqp-echo":
        # Reference point: a minimal lapin client answering every request with a fixed
        # result (examples/amqp_echo.rs), with Concierge's default prefetch.
        client = subprocess.Popen([lib.AMQP_ECHO, broker.url, rr, "512"], stdout=subprocess.DEVNULL)
    else:
        client = lib.start_client(broker.url, name, [rr], env=env, binary=binary)
    try:
        lib.wait_consumers(broker.url, rr, 1)
        # No publisher confirms, as sensu-server publishes requests: the client, not a
        # confirm round trip per request, sets the pace.
        connection, ch = lib.channel(broker.url, confirm=False)
        lib.declare_exchange(ch, rr, "direct")
        queue = lib.results_queue(ch, lib.unique("bench-results"))
        lags, statuses = [], []
        collector = collect(broker, queue, n, 300, lambda r: (lags.append(r["check"]["executed"] - r["check"]["issued"]),
                                                           statuses.append(r["check"]["status"])))
        port = nginx.port
        cpu0 = lib.cpu_seconds(client.pid)
        started = time.time()
        issued = int(time.time())
        for i in range(n):
            if variant.startswith("builtin"):
                request = {"name": "c%d" % i, "extension": "http", "http": {"url": nginx.url}, "issued": issued}
            elif variant in ("no-check", "amqp-echo"):
                # Concierge's AMQP path without a check: an unknown extension is answered
                # with a status-3 result ("no-check"); the same requests to amqp-echo.
                request = {"name": "c%d" % i, "extension": "none", "issued": issued}
            elif variant == "check-http.rb":
                # A sensu-plugins command line, run natively (the plugin is not installed).
                request = {"name": "c%d" % i, "command": "check-http.rb -u http://127.0.0.1:%d/ok" % port, "timeout": 10, "issued": issued}
            elif variant in ("check_http", "check_http-native"):
                request = {"name": "c%d" % i, "command": "%s -H 127.0.0.1 -p %d -u /ok" % (CHECK_HTTP, port), "timeout": 10, "issued": issued}
            else:
                request = {"name": "c%d" % i, "command": "true", "issued": issued}
            lib.publish_request(ch, rr, request)
        collector.join()
        wall = time.time() - started
        time.sleep(0.3)
        cpu = lib.cpu_seconds(client.pid) - cpu0
        rss = lib.status_kb(client.pid, "VmHWM") / 1024
        connection.close()
        lags.sort()
        return {"results_per_s": len(lags) / wall, "cpu_per_1000": cpu / max(1, len(lags)) * 1000, "rss_mb": rss,
                "lag_p50": lags[len(lags) // 2] if lags else None, "lag_p99": lags[int(len(lags) * 0.99) - 1] if lags else None,
                "ok": statuses.count(0), "results": len(lags)}
    finally:
        lib.stop(client)


def blackbox_cpu(nginx, n):
    d = tempfile.mkdtemp(prefix="concierge-bench-bb-")
    conf = os.path.join(d, "blackbox.yml")
    with open(conf, "w") as f:
        f.write("modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen(["/usr/bin/prometheus-blackbox-exporter", "--config.file=" + conf,
                             "--web.listen-address=127.0.0.1:%d" % port], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = "http://127.0.0.1:%d/probe?module=http_2xx&target=%s" % (port, nginx.url)
        for _ in range(50):
            try:
                urllib.request.urlopen(url, timeout=2).read()
                break
            except Exception:
                time.sleep(0.1)
        cpu0 = lib.cpu_seconds(proc.pid)
        ok = [0]

        def probe(_):
            body = urllib.request.urlopen(url, timeout=10).read().decode()
            if "probe_success 1" in body:
                ok[0] += 1

        started = time.time()
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(probe, range(n)))
        wall = time.time() - started
        cpu = lib.cpu_seconds(proc.pid) - cpu0
        return {"cpu_per_probe_us": cpu / n * 1e6, "probes_per_s": n / wall, "ok": ok[0],
                "rss_mb": lib.status_kb(proc.pid, "VmHWM") / 1024}
    finally:
        lib.stop(proc)


def idle(broker, seconds):
    name = lib.unique("idle")
    client = lib.start_client(broker.url, name, ["linux"])
    try:
        time.sleep(5)
        cpu0, t0 = lib.cpu_seconds(client.pid), time.time()
        time.sleep(seconds)
        cpu = lib.cpu_seconds(client.pid) - cpu0
        return {"rss_mb": lib.status_kb(client.pid, "VmRSS") / 1024, "cpu_percent": cpu / (time.time() - t0) * 100}
    finally:
        lib.stop(client)


def fairness(broker, nginx, n=3000):
    rr = lib.unique("roundrobin:fair")
    names = [lib.unique("fair%d" % i) for i in range(3)]
    clients = [lib.start_client(broker.url, name, [rr]) for name in names]
    try:
        lib.wait_consumers(broker.url, rr, 3)
        connection, ch = lib.channel(broker.url)
        lib.declare_exchange(ch, rr, "direct")
        queue = lib.results_queue(ch, lib.unique("fair-results"))
        counts = {}
        collector = collect(broker, queue, n, 300, lambda r: counts.__setitem__(r["client"], counts.get(r["client"], 0) + 1))
        for i in range(n):
            kind = i % 3
            if kind == 0:
                request = {"name": "f%d" % i, "extension": "http", "http": {"url": nginx.url}}
            elif kind == 1:
                request = {"name": "f%d" % i, "command": "true"}
            else:
                request = {"name": "f%d" % i, "command": "sleep 0.02"}
            request["issued"] = int(time.time())
            lib.publish_request(ch, rr, request)
        collector.join()
        connection.close()
        shares = [counts.get(name, 0) for name in names]
        return {"shares": shares, "max_min": max(shares) / max(1, min(shares)), "total": sum(shares)}
    finally:
        for c in clients:
            lib.stop(c)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    idle_seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 60
    broker = lib.Broker()
    nginx = lib.Nginx()
    try:
        variants = ["builtin", "builtin-mt", "check_http", "true", "no-check", "amqp-echo"]
        if BASELINE:
            # Each baseline run right after the same run with this build.
            for v in ("no-check", "true", "builtin"):
                variants.insert(variants.index(v) + 1, v + "@base")
        if os.environ.get("BENCH_VARIANTS"):
            # Only these rows (comma-separated), e.g. for a focused A/B.
            variants = [v for v in variants if v in os.environ["BENCH_VARIANTS"].split(",")]
        samples = {v: [] for v in variants}
        blackbox = []
        for r in range(rounds):
            for variant in samples:
                samples[variant].append(throughput(broker, nginx, variant, n))
                print("round %d %s %s" % (r + 1, variant, samples[variant][-1]), file=sys.stderr)
            blackbox.append(blackbox_cpu(nginx, n))
            print("round %d blackbox %s" % (r + 1, blackbox[-1]), file=sys.stderr)
        bb = {k: statistics.median(b[k] for b in blackbox) for k in ("cpu_per_probe_us", "probes_per_s")}
        idle_fig = idle(broker, idle_seconds)
        fair = fairness(broker, nginx)
        med = lambda v, k: statistics.median(s[k] for s in samples[v])
        print("Fleet benchmarks through RabbitMQ: %d requests per run, %d interleaved rounds, medians; %d cores" % (n, rounds, os.cpu_count()))
        print("%-34s %12s %18s %14s %10s %10s" % ("1. check kind (one client)", "results/s", "CPU-s per 1000", "peak RSS MB", "lag p50", "lag p99"))
        for v, label in (("builtin", "built-in http"), ("builtin-mt", "built-in http, 1 thread per CPU"),
                         ("check_http", "command: check_http"), ("true", "command: true"),
                         ("no-check", "no check: AMQP path only"), ("amqp-echo", "reference: minimal lapin echo")):
            if v not in samples:
                continue
            print("%-34s %12.0f %18.3f %14.1f %9.0fs %9.0fs" % (label, med(v, "results_per_s"), med(v, "cpu_per_1000"), med(v, "rss_mb"), med(v, "lag_p50"), med(v, "lag_p99")))
        concierge_us = med("builtin", "cpu_per_1000") * 1000 if "builtin" in samples else float("nan")
        print("2. HTTP probe CPU (medians of %d interleaved rounds): concierge %.0f us/check end to end through RabbitMQ,"
              " blackbox_exporter %.0f us/probe through /probe -> %.1fx less"
              % (rounds, concierge_us, bb["cpu_per_probe_us"], bb["cpu_per_probe_us"] / concierge_us))
        print("   where the built-in's CPU goes: AMQP path without a check %.0f us (a minimal lapin echo: %.0f us);"
              " `bench/run http` measures the HTTP exchange and a bare connect/GET/close beside it"
              % (med("no-check", "cpu_per_1000") * 1000 if "no-check" in samples else float("nan"),
                 med("amqp-echo", "cpu_per_1000") * 1000 if "amqp-echo" in samples else float("nan")))
        print("3. idle connected client over %.0f s: RSS %.1f MB, CPU %.2f%%" % (idle_seconds, idle_fig["rss_mb"], idle_fig["cpu_percent"]))
        print("4. fairness, 3 replicas, %d requests of varying cost: shares %s, max/min %.2f" % (fair["total"], fair["shares"], fair["max_min"]))
        if BASELINE:
            print("5. A/B against the baseline build %s (same rounds, interleaved; medians)" % BASELINE)
            print("%-28s %14s %14s %8s %14s %14s" % ("check kind", "us/check now", "us/check base", "ratio", "results/s now", "results/s base"))
            for v, label in (("builtin", "built-in http"), ("true", "command: true"), ("no-check", "no check: AMQP path only")):
                if v not in samples:
                    continue
                now, was = med(v, "cpu_per_1000") * 1000, med(v + "@base", "cpu_per_1000") * 1000
                print("%-28s %14.0f %14.0f %7.2fx %14.0f %14.0f" % (label, now, was, now / was, med(v, "results_per_s"), med(v + "@base", "results_per_s")))
    finally:
        nginx.close()
        broker.close()


if __name__ == "__main__":
    main()
