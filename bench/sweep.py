"""The whole load range, against the floors, at controlled rates.

For each offered rate (1,000/s, 3,000/s, 5,000/s and flat out), interleaved and repeated,
the native load generator (examples/loadgen.rs, playing sensu-server) drives through the
private broker:
  (a) Concierge running the built-in HTTP check against local nginx;
  (b) the floors at the same rate: examples/amqp_echo.rs (the least a lapin client does per
      request) and a bare connect/GET/close to the same nginx (loadgen get);
  (c) Concierge without a check (the AMQP path only: an unknown extension, status 3; logging
      at `error`, since every such request logs a warning, as sensu-client does);
  (d) prometheus-blackbox-exporter probing the same target through /probe at that rate.
Prints per rate: Concierge CPU µs per check, the floor (echo + bare GET), their ratio,
blackbox µs per probe and its ratio, latency p50/p99 publish → result (Concierge's, and the
echo's: the AMQP path's own), the share of the machine's CPU time the hypervisor stole during
Concierge's and the echo's runs and Concierge's p99 in its run with the least steal (a host
that stops the VM stops the generator too: its stalls land in every percentile), and whether
the offered rate was achieved; then, for Concierge,
Concierge without a check and the echo, the CPU per check of every process on the box (the
client, the broker, nginx, the generator) and the rate at which their total fills the cores.
Medians over the rounds.

With CONCIERGE_BASELINE_BIN set to another build of concierge, that build runs the same HTTP
check too, in the same interleaved rounds (an A/B of two builds), and a line per rate compares
the two. RATES (comma-separated, 0 = flat out) limits the rates.

Usage: bench/run sweep [ROUNDS] [SECONDS_PER_RUN] [RATES]"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import lib

LOADGEN = os.path.join(lib.ROOT, "target", "dist", "examples", "loadgen")
RATES = (1000, 3000, 5000, 0)
BASELINE = os.environ.get("CONCIERGE_BASELINE_BIN")


def loadgen(*args):
    out = subprocess.run([LOADGEN, *map(str, args)], check=True, capture_output=True, text=True, timeout=600)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    if r.get("steal_pct") is None:  # null: /proc/stat could not be read
        r["steal_pct"] = float("nan")
    return r


def count(rate, seconds):
    return int(rate * seconds) if rate else 20000


def through_amqp(broker, nginx, variant, rate, seconds):
    rr = lib.unique("roundrobin:sweep")
    if variant == "echo":
        proc = subprocess.Popen([lib.AMQP_ECHO, broker.url, rr, "512"], stdout=subprocess.DEVNULL)
    else:
        # Without a check every request logs "unknown check extension" (as sensu-client
        # does): about 9 µs at 1,000/s that is not the AMQP path's.
        env = {"CONCIERGE_LOG_LEVEL": "error"} if variant == "no-check" else None
        proc = lib.start_client(broker.url, lib.unique("sweep"), [rr], env=env,
                                binary=BASELINE if variant == "baseline" else None)
    try:
        lib.wait_consumers(broker.url, rr, 1)
        kind = "http" if variant in ("concierge", "baseline") else "none"
        n = count(rate, seconds)
        cpu0, ng0, bk0 = lib.cpu_seconds(proc.pid), lib.tree_cpu_seconds(nginx.proc.pid), lib.cpu_seconds(broker.pid)
        r = loadgen("amqp", broker.url, rr, kind, nginx.url, rate, n)
        time.sleep(0.2)
        per_check = lambda seconds: seconds / max(1, r["received"]) * 1e6
        r["cpu_us"] = per_check(lib.cpu_seconds(proc.pid) - cpu0)
        r["nginx_us"] = per_check(lib.tree_cpu_seconds(nginx.proc.pid) - ng0)
        r["broker_us"] = per_check(lib.cpu_seconds(broker.pid) - bk0)
        r["loadgen_us"] = per_check(r["self_cpu_s"])
        r["n"] = n
        return r
    finally:
        lib.stop(proc)


def bare_get(nginx, rate, seconds):
    n = count(rate, seconds)
    r = loadgen("get", nginx.url, rate, n)
    r["cpu_us"] = r["self_cpu_s"] / max(1, r["received"]) * 1e6
    r["n"] = n
    return r


class Blackbox:
    """prometheus-blackbox-exporter on a loopback port with the given `modules:` YAML (indented
    under `modules:`), driven through /probe by the native generator."""

    def __init__(self, modules):
        self.dir = tempfile.mkdtemp(prefix="concierge-bench-bb-")
        conf = os.path.join(self.dir, "blackbox.yml")
        with open(conf, "w") as f:
            f.write("modules:\n" + modules)
        self.port = lib.free_port()
        self.proc = subprocess.Popen(["/usr/bin/prometheus-blackbox-exporter", "--config.file=" + conf,
                                      "--web.listen-address=127.0.0.1:%d" % self.port],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def probe(self, module, target, rate, seconds):
        url = "http://127.0.0.1:%d/probe?module=%s&target=%s" % (self.port, module, target)
        for _ in range(50):
            try:
                body = urllib.request.urlopen(url, timeout=2).read()
                if b"probe_success 1" not in body:
                    print("blackbox %s probe of %s failed:\n%s" % (module, target, body.decode()), file=sys.stderr)
                break
            except Exception:
                time.sleep(0.1)
        n = count(rate, seconds) if rate else 5000
        cpu0 = lib.cpu_seconds(self.proc.pid)
        r = loadgen("get", url, rate, n, 64)
        r["cpu_us"] = (lib.cpu_seconds(self.proc.pid) - cpu0) / max(1, r["received"]) * 1e6
        r["n"] = n
        return r

    def close(self):
        lib.stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


HTTP_MODULE = "  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n"


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3
    rates = [int(x) for x in sys.argv[3].split(",")] if len(sys.argv) > 3 else RATES
    variants = ("concierge", "echo", "get", "no-check", "blackbox") + (("baseline",) if BASELINE else ())
    broker, nginx, blackbox = lib.Broker(), lib.Nginx(), Blackbox(HTTP_MODULE)
    samples = {}
    try:
        for r in range(rounds):
            for rate in rates:
                # The two builds swap places every round.
                order = variants if r % 2 == 0 or not BASELINE else ("baseline",) + variants[:-1]
                for variant in order:
                    if variant == "get":
                        s = bare_get(nginx, rate, seconds)
                    elif variant == "blackbox":
                        s = blackbox.probe("http_2xx", nginx.url, rate, seconds)
                    else:
                        s = through_amqp(broker, nginx, variant, rate, seconds)
                    samples.setdefault((rate, variant), []).append(s)
                    print("round %d rate %s %s: %s" % (r + 1, rate or "flat", variant, json.dumps(s)), file=sys.stderr)
        med = lambda rate, v, k: statistics.median(s[k] for s in samples[(rate, v)])
        print("Sweep: built-in HTTP check through RabbitMQ vs the floors, %d interleaved rounds, medians; %d cores; %s"
              % (rounds, os.cpu_count(), time.strftime("%Y-%m-%d")))
        print("%-10s %10s %8s %8s %8s %8s %7s %9s %7s %8s %8s %9s %13s %11s %12s" % (
            "offered/s", "achieved/s", "µs/chk", "echo µs", "GET µs", "floor", "ratio", "no-check", "bb µs", "bb/ours",
            "p50 ms", "p99 ms", "echo p50/p99", "steal %", "quiet p99"))
        for rate in rates:
            ours, echo, get = med(rate, "concierge", "cpu_us"), med(rate, "echo", "cpu_us"), med(rate, "get", "cpu_us")
            floor = echo + get
            bb = med(rate, "blackbox", "cpu_us")
            achieved = med(rate, "concierge", "rate")
            lost = min(s["received"] - s["n"] for s in samples[(rate, "concierge")])
            # The host's steal in Concierge's and the echo's runs, and Concierge's p99 in its
            # run with the least steal: a host that stops the VM stops the generator too.
            quiet = min(samples[(rate, "concierge")], key=lambda s: s["steal_pct"])
            print("%-10s %10.0f %8.0f %8.0f %8.0f %8.0f %7.2f %9.0f %7.0f %8.1f %8.2f %9.2f %13s %11s %12s%s" % (
                rate or "flat out", achieved, ours, echo, get, floor, ours / floor, med(rate, "no-check", "cpu_us"), bb,
                bb / ours, med(rate, "concierge", "p50_ms"), med(rate, "concierge", "p99_ms"),
                "%.2f/%.2f" % (med(rate, "echo", "p50_ms"), med(rate, "echo", "p99_ms")),
                "%.1f/%.1f" % (med(rate, "concierge", "steal_pct"), med(rate, "echo", "steal_pct")),
                "%.2f (%.1f%%)" % (quiet["p99_ms"], quiet["steal_pct"]),
                "" if not rate or achieved >= 0.97 * rate else "  (offered rate NOT achieved)")
                + ("" if lost >= 0 else "  (%d results missing)" % -lost))
        # Where the box's CPU goes per check: the client (Concierge or the echo), the broker,
        # nginx (with its worker) and the generator. cores × 10⁶ ÷ the total is the rate the box
        # could carry if all of it went to this pipeline.
        print("CPU per check of every process on the box (µs, medians), and the rate that fills %d cores:" % os.cpu_count())
        print("%-10s %-10s %10s %8s %8s %8s %8s %8s %12s" % (
            "offered/s", "client", "achieved/s", "client", "broker", "nginx", "loadgen", "total", "cores full at"))
        for rate in rates:
            for variant in ("concierge", "no-check", "echo"):
                parts = [med(rate, variant, k) for k in ("cpu_us", "broker_us", "nginx_us", "loadgen_us")]
                print("%-10s %-10s %10.0f %8.0f %8.0f %8.0f %8.0f %8.0f %10.0f/s" % (
                    rate or "flat out", variant, med(rate, variant, "rate"), *parts, sum(parts),
                    os.cpu_count() * 1e6 / sum(parts)))
        for rate in rates if BASELINE else ():
            ours, base = med(rate, "concierge", "cpu_us"), med(rate, "baseline", "cpu_us")
            print("%-10s baseline %s: %.0f µs/chk, %.0f/s, p50 %.2f p99 %.2f ms; this build %.0f µs/chk, %.0f/s, "
                  "p50 %.2f p99 %.2f ms: %.2f× the baseline's CPU" % (
                      rate or "flat out", BASELINE, base, med(rate, "baseline", "rate"), med(rate, "baseline", "p50_ms"),
                      med(rate, "baseline", "p99_ms"), ours, med(rate, "concierge", "rate"),
                      med(rate, "concierge", "p50_ms"), med(rate, "concierge", "p99_ms"), ours / base))
    finally:
        blackbox.close()
        nginx.close()
        broker.close()


if __name__ == "__main__":
    main()
