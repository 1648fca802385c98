"""Replicas on one round-robin subscription: does a second and a third Concierge add throughput?

1, 2 and 3 Concierge clients (separate processes) consume ONE round-robin subscription;
the native load generator (examples/loadgen.rs, playing sensu-server) publishes N built-in
HTTP checks against local nginx flat out (at most 1,000 outstanding) through the private
broker. Interleaved and repeated; per replica count: the total achieved rate, the replicas'
CPU summed per check, the broker's (beam.smp) and nginx's CPU per check, latency p50/p99
publish → result, the host's steal during the runs, and how the results were shared. Medians
over the rounds. Everything runs on the same cores, so this shows what more replicas buy on
one box, not across boxes.

Usage: bench/run replicas [ROUNDS] [N]"""
import json
import os
import statistics
import sys
import time

import lib
from sweep import loadgen

REPLICAS = (1, 2, 3)


def run(broker, nginx, replicas, n):
    rr = lib.unique("roundrobin:replicas")
    clients = [lib.start_client(broker.url, lib.unique("replica"), [rr]) for _ in range(replicas)]
    try:
        lib.wait_consumers(broker.url, rr, replicas)
        pids = [c.pid for c in clients]
        cpu0 = [lib.cpu_seconds(p) for p in pids]
        broker0, nginx0 = lib.cpu_seconds(broker.pid), lib.tree_cpu_seconds(nginx.proc.pid)
        r = loadgen("amqp", broker.url, rr, "http", nginx.url, 0, n, 1000)
        time.sleep(0.2)
        per = [lib.cpu_seconds(p) - c for p, c in zip(pids, cpu0)]
        got = max(1, r["received"])
        r["cpu_us"] = sum(per) / got * 1e6
        r["broker_us"] = (lib.cpu_seconds(broker.pid) - broker0) / got * 1e6
        r["nginx_us"] = (lib.tree_cpu_seconds(nginx.proc.pid) - nginx0) / got * 1e6
        r["replica_cpu_s"] = per
        r["n"] = n
        return r
    finally:
        for c in clients:
            lib.stop(c)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    broker, nginx = lib.Broker(), lib.Nginx()
    samples = {}
    try:
        for r in range(rounds):
            for replicas in REPLICAS:
                s = run(broker, nginx, replicas, n)
                samples.setdefault(replicas, []).append(s)
                print("round %d replicas %d: %s" % (r + 1, replicas, json.dumps(s)), file=sys.stderr)
        med = lambda k, key: statistics.median(s[key] for s in samples[k])
        print("Replicas on one round-robin subscription, built-in HTTP flat out (window 1,000), %d checks a run, "
              "%d interleaved rounds, medians; %d cores; %s" % (n, rounds, os.cpu_count(), time.strftime("%Y-%m-%d")))
        print("%-8s %10s %8s %10s %9s %9s %8s %9s %8s %s" % (
            "replicas", "checks/s", "vs one", "µs/chk", "broker µs", "nginx µs", "p50 ms", "p99 ms", "steal %", "OK"))
        one = med(1, "rate")
        for k in REPLICAS:
            mine = samples[k]
            lost = min(s["received"] - s["n"] for s in mine)
            print("%-8d %10.0f %8.2f %10.0f %9.0f %9.0f %8.1f %9.1f %8.1f %d/%d%s" % (
                k, med(k, "rate"), med(k, "rate") / one, med(k, "cpu_us"), med(k, "broker_us"), med(k, "nginx_us"),
                med(k, "p50_ms"), med(k, "p99_ms"), med(k, "steal_pct"), sum(s["ok"] for s in mine), sum(s["n"] for s in mine),
                "" if lost >= 0 else "  (%d results missing)" % -lost))
    finally:
        nginx.close()
        broker.close()


if __name__ == "__main__":
    main()
