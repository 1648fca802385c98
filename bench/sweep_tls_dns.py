"""The built-in TLS and DNS checks against their floors, as `bench/run sweep` does for HTTP.

At 1,000/s (or the rates given), interleaved and repeated, the native load generator
(examples/loadgen.rs, playing sensu-server) drives through the private broker:
  (a) Concierge running the built-in `tls` check (handshake, chain verified against the bench
      CA, certificate read) against local nginx serving TLS with a certificate from a private
      CA (openssl, ECDSA P-256, SAN IP:127.0.0.1), and the built-in `dns` check (one A
      question over UDP) against a local DNS server (`loadgen dnsd`, hickory-server);
  (b) the floors at the same rate: examples/amqp_echo.rs (the least a lapin client does per
      request) plus a bare connect/TLS handshake/close to the same nginx (`loadgen tls`, rustls,
      the same CA) or a bare UDP query to the same DNS server (`loadgen dns`);
  (c) prometheus-blackbox-exporter probing the same target through /probe at that rate: the
      `tcp` prober with `tls: true` (the same CA) and the `dns` prober (UDP, A).
Prints per check and rate: Concierge CPU µs per check, the floor (echo + bare handshake or
query), their ratio, blackbox µs per probe and its ratio, latency p50/p99 publish → result
and the host's steal during those runs, the achieved rate, and how many results were OK
(status 0); then a line with the CPU per check of every process on the box (Concierge, the
broker, the target server, the generator).
Medians over the rounds.

With CONCIERGE_BASELINE_BIN set to another build of concierge, that build runs too, in the
same interleaved rounds, and a line per check and rate compares the two.

Usage: bench/run sweep-tls-dns [ROUNDS] [SECONDS_PER_RUN] [RATES]   RATES: e.g. 1000,0 (0: flat out)"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import lib
from sweep import LOADGEN, Blackbox, count, loadgen

DNS_NAME = "www.bench.concierge."
BASELINE = os.environ.get("CONCIERGE_BASELINE_BIN")


class TlsNginx:
    """nginx serving TLS on a loopback port with a leaf certificate (SAN IP:127.0.0.1) from
    a private CA, both made here by openssl; `ca` is the CA's PEM file."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="concierge-bench-tls-")
        d = lambda name: os.path.join(self.dir, name)
        quiet = {"check": True, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        subprocess.run(["openssl", "req", "-x509", *ec, "-keyout", d("ca.key"), "-out", d("ca.pem"), "-days", "365",
                        "-subj", "/CN=Concierge bench CA"], **quiet)
        subprocess.run(["openssl", "req", *ec, "-keyout", d("key.pem"), "-out", d("leaf.csr"),
                        "-subj", "/CN=127.0.0.1"], **quiet)
        with open(d("leaf.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        subprocess.run(["openssl", "x509", "-req", "-in", d("leaf.csr"), "-CA", d("ca.pem"), "-CAkey", d("ca.key"),
                        "-CAcreateserial", "-days", "90", "-extfile", d("leaf.ext"), "-out", d("cert.pem")], **quiet)
        self.ca = d("ca.pem")
        self.port = lib.free_port()
        self.address = "127.0.0.1:%d" % self.port
        conf = d("nginx.conf")
        with open(conf, "w") as f:
            f.write("""daemon off; worker_processes 1; pid %(d)s/nginx.pid; error_log %(d)s/error.log crit;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path %(d)s; proxy_temp_path %(d)s; fastcgi_temp_path %(d)s;
  uwsgi_temp_path %(d)s; scgi_temp_path %(d)s;
  server { listen 127.0.0.1:%(p)d ssl; ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate %(d)s/cert.pem; ssl_certificate_key %(d)s/key.pem;
    root %(d)s; location / { } } }
""" % {"d": self.dir, "p": self.port})
        self.proc = subprocess.Popen(["/usr/sbin/nginx", "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        time.sleep(0.5)

    def close(self):
        lib.stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


class Dnsd:
    """`loadgen dnsd`: hickory-server on a loopback UDP port, one A record (DNS_NAME)."""

    def __init__(self):
        self.proc = subprocess.Popen([LOADGEN, "dnsd", "0"], stdout=subprocess.PIPE, text=True)
        self.address = self.proc.stdout.readline().strip()

    def close(self):
        lib.stop(self.proc)


def blackbox_modules(ca):
    """The `tcp` prober with TLS (the bench CA) and the `dns` prober (A over UDP)."""
    return """  tls:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
      tls: true
      tls_config:
        ca_file: %s
  dns:
    prober: dns
    timeout: 5s
    dns:
      query_name: %s
      query_type: A
      transport_protocol: udp
      preferred_ip_protocol: ip4
""" % (ca, DNS_NAME)


def through_amqp(broker, server_pid, variant, kind, target, rate, seconds):
    rr = lib.unique("roundrobin:sweep")
    if variant == "echo":
        proc = subprocess.Popen([lib.AMQP_ECHO, broker.url, rr, "512"], stdout=subprocess.DEVNULL)
    else:
        binary = BASELINE if variant == "baseline" else None
        proc = lib.start_client(broker.url, lib.unique("sweep"), [rr], binary=binary)
    try:
        lib.wait_consumers(broker.url, rr, 1)
        n = count(rate, seconds)
        cpu0, server0, broker0 = lib.cpu_seconds(proc.pid), lib.tree_cpu_seconds(server_pid), lib.cpu_seconds(broker.pid)
        r = loadgen("amqp", broker.url, rr, "none" if variant == "echo" else kind, target, rate, n)
        time.sleep(0.2)
        per_check = lambda seconds: seconds / max(1, r["received"]) * 1e6
        r["cpu_us"] = per_check(lib.cpu_seconds(proc.pid) - cpu0)
        r["server_us"] = per_check(lib.tree_cpu_seconds(server_pid) - server0)
        r["broker_us"] = per_check(lib.cpu_seconds(broker.pid) - broker0)
        r["loadgen_us"] = per_check(r["self_cpu_s"])
        r["n"] = n
        return r
    finally:
        lib.stop(proc)


def bare(args, rate, seconds):
    n = count(rate, seconds)
    r = loadgen(*args(rate, n))
    r["cpu_us"] = r["self_cpu_s"] / max(1, r["received"]) * 1e6
    r["n"] = n
    return r


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3
    rates = [int(x) for x in sys.argv[3].split(",")] if len(sys.argv) > 3 else [1000]
    broker, nginx, dnsd = lib.Broker(), TlsNginx(), Dnsd()
    blackbox = Blackbox(blackbox_modules(nginx.ca))
    checks = {
        # kind: (the built-in's target for loadgen amqp, the server's pid, the bare floor, blackbox module, target)
        "tls": ("%s,%s" % (nginx.address, nginx.ca), nginx.proc.pid,
                lambda rate, n: ("tls", nginx.address, rate, n, 64, nginx.ca), "tls", nginx.address),
        "dns": ("%s@%s" % (DNS_NAME, dnsd.address), dnsd.proc.pid,
                lambda rate, n: ("dns", dnsd.address, DNS_NAME, rate, n, 64), "dns", dnsd.address),
    }
    samples = {}
    try:
        for r in range(rounds):
            for kind, (target, server_pid, floor, module, bb_target) in checks.items():
                for rate in rates:
                    for variant in ("concierge", "echo", "floor", "blackbox") + (("baseline",) if BASELINE else ()):
                        if variant == "floor":
                            s = bare(floor, rate, seconds)
                        elif variant == "blackbox":
                            s = blackbox.probe(module, bb_target, rate, seconds)
                        else:
                            s = through_amqp(broker, server_pid, variant, kind, target, rate, seconds)
                        samples.setdefault((kind, rate, variant), []).append(s)
                        print("round %d %s rate %s %s: %s" % (r + 1, kind, rate or "flat", variant, json.dumps(s)),
                              file=sys.stderr)
        med = lambda kind, rate, v, k: statistics.median(s[k] for s in samples[(kind, rate, v)])
        print("Built-in TLS and DNS checks through RabbitMQ vs the floors, %d interleaved rounds, medians; %d cores; "
              "%s" % (rounds, os.cpu_count(), time.strftime("%Y-%m-%d")))
        print("%-5s %-10s %10s %8s %8s %9s %8s %7s %7s %8s %8s %9s %8s %s" % (
            "check", "offered/s", "achieved/s", "µs/chk", "echo µs", "bare µs", "floor", "ratio", "bb µs", "bb/ours",
            "p50 ms", "p99 ms", "steal %", "OK"))
        for kind in checks:
            for rate in rates:
                ours, echo = med(kind, rate, "concierge", "cpu_us"), med(kind, rate, "echo", "cpu_us")
                bare_us = med(kind, rate, "floor", "cpu_us")
                floor = echo + bare_us
                bb = med(kind, rate, "blackbox", "cpu_us")
                achieved = med(kind, rate, "concierge", "rate")
                mine = samples[(kind, rate, "concierge")]
                lost = min(s["received"] - s["n"] for s in mine)
                ok = "%d/%d" % (sum(s["ok"] for s in mine), sum(s["n"] for s in mine))
                not_ok = [v for v in ("floor", "blackbox")
                          if any(s["ok"] < s["received"] for s in samples[(kind, rate, v)])]
                print("%-5s %-10s %10.0f %8.0f %8.0f %9.0f %8.0f %7.2f %7.0f %8.1f %8.2f %9.2f %8.1f %s%s%s%s" % (
                    kind, rate or "flat out", achieved, ours, echo, bare_us, floor, ours / floor, bb, bb / ours,
                    med(kind, rate, "concierge", "p50_ms"), med(kind, rate, "concierge", "p99_ms"),
                    med(kind, rate, "concierge", "steal_pct"), ok,
                    "" if not rate or achieved >= 0.97 * rate else "  (offered rate NOT achieved)",
                    "" if lost >= 0 else "  (%d results missing)" % -lost,
                    "" if not not_ok else "  (not all OK: %s)" % ", ".join(not_ok)))
                print("      CPU per check on the box: Concierge %.0f, broker %.0f, %s server %.0f, generator %.0f µs "
                      "(the echo's run: broker %.0f, generator %.0f)" % (
                          ours, med(kind, rate, "concierge", "broker_us"), kind, med(kind, rate, "concierge", "server_us"),
                          med(kind, rate, "concierge", "loadgen_us"), med(kind, rate, "echo", "broker_us"),
                          med(kind, rate, "echo", "loadgen_us")))
                if BASELINE:
                    base = med(kind, rate, "baseline", "cpu_us")
                    print("      baseline %s: %.0f µs/check, %.0f/s achieved, p99 %.2f ms; this build ÷ baseline %.2f" % (
                        BASELINE, base, med(kind, rate, "baseline", "rate"), med(kind, rate, "baseline", "p99_ms"),
                        ours / base))
    finally:
        blackbox.close()
        dnsd.close()
        nginx.close()
        broker.close()


if __name__ == "__main__":
    main()
