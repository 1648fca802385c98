"""Memory under hostile output: N command checks at once, each printing SIZE MB, through
RabbitMQ to one client; the client's RSS before, at its peak (VmHWM) and a few seconds after
the results are out, with the default output limit and with a limit above the output (what
sensu-client does: keep everything).

Usage: bench/run output [N] [SIZE_MB] [ROUNDS]"""
import json
import os
import statistics
import sys
import time

import fleet
import lib


def burst(broker, n, size_mb, limit):
    rr = lib.unique("roundrobin:output")
    env = {"CONCIERGE_OUTPUT_LIMIT": str(limit)} if limit else {}
    client = lib.start_client(broker.url, lib.unique("bench-output"), [rr], env=env)
    try:
        lib.wait_consumers(broker.url, rr, 1)
        connection, ch = lib.channel(broker.url, confirm=False)
        lib.declare_exchange(ch, rr, "direct")
        queue = lib.results_queue(ch, lib.unique("bench-results"))
        time.sleep(1)
        before = lib.status_kb(client.pid, "VmRSS") / 1024
        sizes = []
        collector = fleet.collect(broker, queue, n, 300, lambda r: sizes.append(len(r["check"]["output"])))
        issued = int(time.time())
        command = "head -c %d /dev/zero | tr '\\0' x; echo" % (size_mb * 1024 * 1024)
        for i in range(n):
            lib.publish_request(ch, rr, {"name": "big%d" % i, "command": command, "timeout": 120, "issued": issued})
        collector.join()
        peak = lib.status_kb(client.pid, "VmHWM") / 1024
        time.sleep(5)
        after = lib.status_kb(client.pid, "VmRSS") / 1024
        connection.close()
        return {"before": before, "peak": peak, "after": after, "results": len(sizes),
                "kept": max(sizes) if sizes else 0}
    finally:
        lib.stop(client)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    size_mb = int(sys.argv[2]) if len(sys.argv) > 2 else 80
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    broker = lib.Broker()
    try:
        variants = (("default limit (2 MiB)", None), ("limit above the output (keep all)", (size_mb + 1) * 1024 * 1024))
        samples = {label: [] for label, _ in variants}
        for r in range(rounds):
            for label, limit in variants:
                samples[label].append(burst(broker, n, size_mb, limit))
                print("round %d %s %s" % (r + 1, label, samples[label][-1]), file=sys.stderr)
        print("%d command checks at once, each printing %d MB, one client through RabbitMQ; %d rounds, medians"
              % (n, size_mb, rounds))
        print("%-36s %10s %10s %10s %12s %10s" % ("output limit", "RSS before", "peak RSS", "RSS after", "output kept", "results"))
        for label, _ in variants:
            med = lambda k: statistics.median(s[k] for s in samples[label])
            print("%-36s %8.1fMB %8.1fMB %8.1fMB %10.1fMB %10d" % (label, med("before"), med("peak"), med("after"),
                                                                  med("kept") / 1048576, min(s["results"] for s in samples[label])))
    finally:
        broker.close()


if __name__ == "__main__":
    main()
