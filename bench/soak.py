"""Soak: one client on a private broker at a steady request rate for DURATION seconds;
prints RSS and open file descriptors at the start (after warm-up) and the end, and the
growth. Usage: bench/run soak [DURATION_SECONDS] [RATE_PER_SECOND]"""
import json
import sys
import threading
import time

import lib


def main():
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 1800
    rate = float(sys.argv[2]) if len(sys.argv) > 2 else 100
    warmup = min(60.0, duration / 10)
    broker = lib.Broker()
    nginx = lib.Nginx()
    name = lib.unique("soak")
    rr = "roundrobin:soak"
    client = lib.start_client(broker.url, name, [rr])
    received = [0]
    stop = threading.Event()
    try:
        lib.wait_consumers(broker.url, rr, 1)
        connection, ch = lib.channel(broker.url)
        lib.declare_exchange(ch, rr, "direct")
        queue = lib.results_queue(ch)

        def consume():
            c, cch = lib.channel(broker.url)
            for _method, _props, _body in cch.consume(queue, auto_ack=True, inactivity_timeout=1):
                if _body is not None:
                    received[0] += 1
                if stop.is_set():
                    break
            cch.cancel()
            c.close()

        consumer = threading.Thread(target=consume, daemon=True)
        consumer.start()
        started = time.time()
        samples = []
        n = 0
        next_sample = started + warmup
        while time.time() - started < duration:
            kind = n % 3
            if kind == 0:
                request = {"name": "http%d" % (n % 500), "extension": "http", "http": {"url": nginx.url}, "issued": int(time.time())}
            elif kind == 1:
                request = {"name": "cmd%d" % (n % 500), "command": "echo ok", "issued": int(time.time())}
            else:
                request = {"name": "dns%d" % (n % 500), "extension": "dns", "dns": {"name": "localhost"}, "issued": int(time.time())}
            lib.publish_request(ch, rr, request)
            n += 1
            if time.time() >= next_sample:
                samples.append((time.time() - started, lib.status_kb(client.pid, "VmRSS"), lib.fds(client.pid)))
                next_sample += max(10.0, duration / 30)
            time.sleep(max(0.0, started + n / rate - time.time()))
        time.sleep(5)
        samples.append((time.time() - started, lib.status_kb(client.pid, "VmRSS"), lib.fds(client.pid)))
        stop.set()
        consumer.join(3)
        first, last = samples[0], samples[-1]
        growth = (last[1] - first[1]) / first[1] * 100
        # The allocator may still be reaching its working set after a short warm-up; the
        # second half of the run shows whether memory keeps growing.
        middle = next(s for s in samples if s[0] >= duration / 2)
        late = (last[1] - middle[1]) / middle[1] * 100
        print(json.dumps({"samples": samples}), file=sys.stderr)
        print("Soak: %d requests at %.0f/s for %.0f s (%d results); client RSS %.1f MB after %.0f s warm-up -> %.1f MB at the end (%+.1f%%; second half %+.2f%%); fds %d -> %d; peak RSS %.1f MB"
              % (n, rate, duration, received[0], first[1] / 1024, first[0], last[1] / 1024, growth, late, first[2], last[2],
                 lib.status_kb(client.pid, "VmHWM") / 1024))
    finally:
        stop.set()
        lib.stop(client)
        nginx.close()
        broker.close()


if __name__ == "__main__":
    main()
