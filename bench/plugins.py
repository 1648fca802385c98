"""Plugin command lines run natively against the plugin forked, through RabbitMQ, side by side.

N round-robin requests per run, interleaved rounds, medians: `check-http.rb -u URL` run
natively by Concierge (Ruby is not even installed) against Debian's `check_http -H -p -u`
forked by Concierge (CONCIERGE_NATIVE_PLUGINS=false), and the same `check_http` line run
natively, all against the same local nginx.
Client CPU (children included) per check, results/s, peak RSS, and the ratio.

Usage: bench/run plugins [N] [ROUNDS]"""
import os
import statistics
import sys

import fleet
import lib


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    broker = lib.Broker()
    nginx = lib.Nginx()
    try:
        samples = {v: [] for v in ("check-http.rb", "check_http-native", "check_http")}
        for r in range(rounds):
            for variant in samples:
                samples[variant].append(fleet.throughput(broker, nginx, variant, n))
                print("round %d %s %s" % (r + 1, variant, samples[variant][-1]), file=sys.stderr)
        med = lambda v, k: statistics.median(s[k] for s in samples[v])
        for v in samples:
            ok = min(s["ok"] for s in samples[v])
            if ok != n:
                print("WARNING: %s answered only %d of %d requests OK in some round" % (v, ok, n))
        print("Plugin command lines through RabbitMQ: %d requests per run, %d interleaved rounds, medians; %d cores" % (n, rounds, os.cpu_count()))
        print("%-44s %12s %14s %12s" % ("command line (one client)", "results/s", "CPU us/check", "peak RSS MB"))
        for v, label in (("check-http.rb", "check-http.rb -u URL, native"), ("check_http-native", "check_http -H -p -u, native"),
                         ("check_http", "check_http -H -p -u, forked")):
            print("%-44s %12.0f %14.0f %12.1f" % (label, med(v, "results_per_s"), med(v, "cpu_per_1000") * 1000, med(v, "rss_mb")))
        native, forked = med("check-http.rb", "cpu_per_1000"), med("check_http", "cpu_per_1000")
        print("check-http.rb natively costs %.1fx less CPU per check than forking check_http, at %.1fx the rate"
              % (forked / native, med("check-http.rb", "results_per_s") / med("check_http", "results_per_s")))
        print("check_http natively costs %.1fx less CPU per check than forking it"
              % (forked / med("check_http-native", "cpu_per_1000")))
    finally:
        nginx.close()
        broker.close()


if __name__ == "__main__":
    main()
