"""The courier's memory in the fleet: one N-metric courier shot requested through RabbitMQ, as
sensu-server requests it, from a client joined to a private broker; its metric result and
delivery report consumed from `results`. Per round: the client's RSS idle, its peak (VmHWM)
over the shot, and its RSS 1 s after the report. With CONCIERGE_BASELINE_BIN another build
runs in the same rounds, interleaved. Run through bench/run courier-fleet."""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import courier
import lib


def shot(broker, ch, queue, rr, binary, url):
    ch.queue_purge(queue)
    client = lib.start_client(broker.url, lib.unique("courier"), [rr], binary=binary)
    try:
        lib.wait_consumers(broker.url, rr, 1)
        idle = lib.status_kb(client.pid, "VmRSS")
        lib.publish_request(ch, rr, {"name": "app", "type": "metric", "extension": "courier",
                                                  "courier": {"url": url}, "issued": int(time.time())})
        deadline, sizes, report = time.time() + 120, [], None
        while report is None:
            if time.time() > deadline:
                sys.exit("no delivery report within 120 s")
            method, _, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                time.sleep(0.02)
                continue
            sizes.append(len(body))
            check = json.loads(body)["check"]
            if check["name"] == "app.delivery":
                report = check
        peak = lib.status_kb(client.pid, "VmHWM")
        time.sleep(1)
        after = lib.status_kb(client.pid, "VmRSS")
    finally:
        lib.stop(client)
    if report["status"] != 0:
        sys.exit("the shot failed: %s" % report["output"])
    return {"idle": idle / 1024, "peak": peak / 1024, "after": after / 1024, "metric_bytes": sizes[0],
            "report": report["output"].split(" | ")[0]}


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 340000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    builds = {"concierge": os.environ.get("CONCIERGE_BIN") or lib.CONCIERGE}
    if os.environ.get("CONCIERGE_BASELINE_BIN"):
        builds["baseline"] = os.environ["CONCIERGE_BASELINE_BIN"]
    work = tempfile.mkdtemp(prefix="courier-fleet-bench-")
    body = courier.page(n)
    with open(os.path.join(work, "metrics"), "w") as f:
        f.write(body)
    port = lib.free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", work],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    broker = lib.Broker()
    samples = {k: [] for k in builds}
    try:
        connection, ch = lib.channel(broker.url, confirm=False)
        queue = lib.results_queue(ch)
        rr = lib.unique("roundrobin:courier")
        url = "http://127.0.0.1:%d/metrics" % port
        for r in range(rounds):
            for key, binary in builds.items():
                samples[key].append(shot(broker, ch, queue, rr, binary, url))
                print("round %d %s: %s" % (r + 1, key, samples[key][-1]), file=sys.stderr)
        connection.close()
    finally:
        server.terminate()
        broker.close()
    print("Courier shot through RabbitMQ: %d metrics (%.2f MB of Prometheus text, a %.2f MB metric result), "
          "%d interleaved rounds, medians; %d cores" % (n, len(body) / 1e6, samples["concierge"][0]["metric_bytes"] / 1e6,
                                                       rounds, os.cpu_count()))
    print("%-12s %10s %10s %16s" % ("build", "idle (MiB)", "peak (MiB)", "1 s after (MiB)"))
    med = {k: {m: statistics.median(s[m] for s in v) for m in ("idle", "peak", "after")} for k, v in samples.items()}
    for key, m in med.items():
        print("%-12s %10.1f %10.1f %16.1f" % (key, m["idle"], m["peak"], m["after"]))
    above = med["concierge"]["peak"] - med["concierge"]["idle"]
    print("peak above idle: %.1f MiB, %.1fx the page" % (above, above * 1048576 / len(body)))
    if "baseline" in med:
        print("against the baseline build: peak %.2fx" % (med["concierge"]["peak"] / med["baseline"]["peak"]))


if __name__ == "__main__":
    main()
