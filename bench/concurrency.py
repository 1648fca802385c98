"""Scale: N simultaneous slow built-in HTTP checks (a loopback target holding every response
HOLD seconds), one client with its built-in slots raised to N, all requests published at
once through RabbitMQ. Prints results received (lost), wall time, the client's CPU, peak
RSS and open file descriptors at the peak, and its RSS when the last result arrived and 12 s
later (the client gives free memory back every 10 s).

Usage: bench/run concurrency [N] [HOLD_S]"""
import os
import subprocess
import sys
import threading
import time

import lib
import sweep


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    hold = float(sys.argv[2]) if len(sys.argv) > 2 else 5
    broker = lib.Broker()
    port = lib.free_port()
    target = subprocess.Popen([sweep.LOADGEN, "slow", str(port), str(int(hold * 1000))])
    rr = lib.unique("roundrobin:slow")
    client = lib.start_client(broker.url, lib.unique("slow"), [rr],
                              env={"CONCIERGE_BUILTIN_CONCURRENCY": str(n)})
    try:
        lib.wait_consumers(broker.url, rr, 1)
        time.sleep(1)
        rss0 = lib.status_kb(client.pid, "VmRSS") / 1024
        cpu0 = lib.cpu_seconds(client.pid)
        peak_fds = [0]
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                try:
                    peak_fds[0] = max(peak_fds[0], lib.fds(client.pid))
                except OSError:
                    pass
                time.sleep(0.2)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        r = sweep.loadgen("amqp", broker.url, rr, "http", "http://127.0.0.1:%d/slow" % port, 0, n, n)
        stop.set()
        cpu = lib.cpu_seconds(client.pid) - cpu0
        print("%d simultaneous built-in HTTP checks, each held %.0f s by the target; one client, %d cores; %s"
              % (n, hold, os.cpu_count(), time.strftime("%Y-%m-%d")))
        print("results %d of %d (%d OK, %d lost), wall %.1f s, latency p50 %.0f ms p99 %.0f ms" % (
            r["received"], n, r["ok"], n - r["received"], r["wall_s"], r["p50_ms"], r["p99_ms"]))
        print("client: CPU %.2f s (%.0f µs per check), RSS %.1f MB idle, peak RSS %.1f MB, peak open files %d" % (
            cpu, cpu / max(1, r["received"]) * 1e6, rss0, lib.status_kb(client.pid, "VmHWM") / 1024, peak_fds[0]))
        # The client gives free memory back every 10 s (src/client/memory.rs).
        after = [lib.status_kb(client.pid, "VmRSS") / 1024]
        time.sleep(12)
        after.append(lib.status_kb(client.pid, "VmRSS") / 1024)
        print("client: RSS %.1f MB when the last result arrived, %.1f MB 12 s later" % tuple(after))
    finally:
        lib.stop(client)
        lib.stop(target)
        broker.close()


if __name__ == "__main__":
    main()
