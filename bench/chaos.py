"""Chaos run: 3 replicas on one round-robin subscription under a steady stream of requests
for DURATION seconds. Every 10-20 s one replica is SIGKILLed and restarted; once the
broker is restarted (stop_app/start_app); once a replica gets SIGTERM in the middle of a
burst. At the end: requests published, results received, requests lost (must be 0),
duplicates, and the longest gap between keepalives of each replica while it lived.

Usage: bench/run chaos [DURATION_SECONDS] [RATE_PER_SECOND]"""
import json
import random
import signal
import sys
import threading
import time

import pika

import lib


class Stream:
    """Publishes requests with confirms, retrying across broker restarts."""

    def __init__(self, broker, rr):
        self.broker, self.rr = broker, rr
        self.connection = self.ch = None
        self.published = []
        self.unroutable = 0

    def connect(self):
        while True:
            try:
                self.connection, self.ch = lib.channel(self.broker.url)
                lib.declare_exchange(self.ch, self.rr, "direct")
                return
            except Exception:
                time.sleep(0.2)

    def publish(self, name):
        request = {"name": name, "command": "sleep 0.%d; echo %s" % (random.randint(1, 5), name), "timeout": 10,
                   "issued": int(time.time())}
        while True:
            try:
                if self.ch is None:
                    self.connect()
                # mandatory: a request no queue takes (all replicas reconnecting after the
                # broker restart) comes back, and is sent again, as the server would at
                # the next interval; only routed requests count as published.
                self.ch.basic_publish(exchange=self.rr, routing_key="", body=json.dumps(request).encode(),
                                      properties=lib.PROPERTIES, mandatory=True)
                self.published.append(name)
                return
            except pika.exceptions.UnroutableError:
                self.unroutable += 1
                time.sleep(0.2)
            except Exception:
                self.ch = None
                time.sleep(0.2)


class Watcher(threading.Thread):
    """Consumes results and keepalives, reconnecting across broker restarts."""

    def __init__(self, broker):
        super().__init__(daemon=True)
        self.broker = broker
        self.results = {}
        self.keepalives = {}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                connection = pika.BlockingConnection(pika.URLParameters(self.broker.url))
                ch = connection.channel()
                lib.results_queue(ch)
                lib.declare_exchange(ch, "keepalives", "direct")
                ch.queue_declare(queue="keepalives", durable=False, auto_delete=True)
                ch.queue_bind(queue="keepalives", exchange="keepalives", routing_key="")

                def on_result(_ch, _m, _p, body):
                    name = json.loads(body)["check"]["name"]
                    self.results[name] = self.results.get(name, 0) + 1

                def on_keepalive(_ch, _m, _p, body):
                    self.keepalives.setdefault(json.loads(body)["name"], []).append(time.time())

                ch.basic_consume("results", on_result, auto_ack=True)
                ch.basic_consume("keepalives", on_keepalive, auto_ack=True)
                while not self.stop.is_set():
                    connection.process_data_events(time_limit=0.2)
                connection.close()
            except Exception:
                time.sleep(0.1)


def main():
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 180
    rate = float(sys.argv[2]) if len(sys.argv) > 2 else 40
    broker = lib.Broker()
    rr = "roundrobin:chaos"
    watcher = Watcher(broker)
    watcher.start()
    time.sleep(1)
    replicas = {}
    lives = {}

    def spawn(slot):
        name = lib.unique("chaos%d" % slot)
        replicas[slot] = (name, lib.start_client(broker.url, name, [rr], {"CONCIERGE_DEREGISTER": "true"}))
        lives[name] = [time.time(), None]

    for slot in range(3):
        spawn(slot)
    lib.wait_consumers(broker.url, rr, 3)
    stream = Stream(broker, rr)
    stream.connect()
    events = []
    started = time.time()
    next_kill = started + random.uniform(10, 20)
    broker_restart_at = started + duration * 0.5
    term_at = started + duration * 0.75
    n = 0
    try:
        while time.time() - started < duration:
            now = time.time()
            if now >= next_kill:
                slot = random.randrange(3)
                name, proc = replicas[slot]
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                lives[name][1] = time.time()
                events.append("%.0fs SIGKILL %s" % (now - started, name))
                spawn(slot)
                next_kill = now + random.uniform(10, 20)
            if broker_restart_at and now >= broker_restart_at:
                events.append("%.0fs broker stop_app/start_app" % (now - started))
                broker.rabbitmqctl("stop_app")
                time.sleep(2)
                broker.rabbitmqctl("start_app")
                stream.ch = None
                broker_restart_at = None
            if term_at and now >= term_at:
                for _ in range(100):
                    stream.publish("burst%d" % n)
                    n += 1
                slot = random.randrange(3)
                name, proc = replicas[slot]
                proc.send_signal(signal.SIGTERM)
                code = proc.wait(20)
                lives[name][1] = time.time()
                events.append("%.0fs SIGTERM %s mid-burst (exit %d)" % (now - started, name, code))
                spawn(slot)
                term_at = None
            stream.publish("req%d" % n)
            n += 1
            time.sleep(max(0.0, started + n / rate - time.time()))
        # Let everything in flight finish.
        settle = time.time() + 60
        while time.time() < settle and len(set(stream.published) - set(watcher.results)) > 0:
            time.sleep(0.5)
    finally:
        watcher.stop.set()
        for name, proc in replicas.values():
            lib.stop(proc)
            lives[name][1] = lives[name][1] or time.time()
        broker.close()
    published = stream.published
    lost = sorted(set(published) - set(watcher.results))
    duplicates = sum(c - 1 for c in watcher.results.values() if c > 1)
    print("\n".join(events), file=sys.stderr)
    print("Chaos run: %.0f s, 3 replicas, %s" % (duration, "; ".join(events)))
    print("requests published: %d, results received: %d, lost: %d, duplicates: %d (unroutable while replicas reconnected, sent again: %d)"
          % (len(published), sum(watcher.results.values()), len(lost), duplicates, stream.unroutable))
    if lost:
        print("lost requests: %s" % lost[:20])
    gaps = []
    for name, (born, died) in lives.items():
        stamps = [t for t in watcher.keepalives.get(name, []) if t <= (died or time.time())]
        if len(stamps) >= 2 and (died or time.time()) - born > 25:
            gaps.append(max(b - a for a, b in zip(stamps, stamps[1:])))
    print("longest keepalive gap per replica that lived > 25 s: %s s" % ", ".join("%.1f" % g for g in gaps))
    sys.exit(1 if lost else 0)


if __name__ == "__main__":
    main()
