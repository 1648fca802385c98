"""Instructions per request, counted by valgrind's callgrind: a figure the host's steal cannot move.

CPU time per check on a shared VM swings by a third from one hour to the next (the host's
steal, and other guests' use of the caches); the instructions a request executes do not.
Each client runs under `valgrind --tool=callgrind` against the private broker while the native
generator (examples/loadgen.rs) publishes requests at 100/s (what a client under valgrind
keeps up with): 300 to warm up, then the counters are zeroed (`callgrind_control -z`),
REQUESTS more, and the counters dumped. Counted: user-space instructions in every thread of
the client (the kernel's work is not), divided by the results received.

Variants, one after the other, ROUNDS times (medians): Concierge's built-in HTTP check
against local nginx, its built-in DNS check against `loadgen dnsd` (one A record over UDP,
`server` given), Concierge without a check (the AMQP path only), and the echo
(examples/amqp_echo.rs, the least a lapin client does). With CONCIERGE_BASELINE_BIN set,
that build runs the HTTP and DNS checks and the no-check path too, and a line per variant
compares the two. The figures vary by ±2 % between runs (timers, heartbeats and keepalives fall in
the window or not): compare builds in the same run.

Usage: bench/run instructions [ROUNDS] [REQUESTS]"""
import glob
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import lib
import sweep
from sweep_tls_dns import DNS_NAME, Dnsd

BASELINE = os.environ.get("CONCIERGE_BASELINE_BIN")
RATE = 100


def counted(broker, target, variant, requests, workdir):
    """Instructions per request of one variant, (build, kind) or "echo", the check's target
    (for loadgen amqp: a URL, or NAME@SERVER for dns) given."""
    rr = lib.unique("roundrobin:instructions")
    out = os.path.join(workdir, lib.unique("callgrind") + ".%p")
    valgrind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out]
    if variant == "echo":
        kind = "none"
        proc = subprocess.Popen([*valgrind, lib.AMQP_ECHO, broker.url, rr, "512"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        binary, kind = variant
        # start_client runs `BINARY run`: the wrapper puts valgrind in front.
        wrapper = os.path.join(workdir, lib.unique("under-valgrind"))
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec %s \"$@\" 2>/dev/null\n" % " ".join(map(shlex.quote, [*valgrind, binary])))
        os.chmod(wrapper, 0o755)
        env = {"CONCIERGE_LOG_LEVEL": "error"}  # without a check, each request logs a warning
        proc = lib.start_client(broker.url, lib.unique("instructions"), [rr], env=env, binary=wrapper)
    try:
        lib.wait_consumers(broker.url, rr, 1, timeout=120)
        sweep.loadgen("amqp", broker.url, rr, kind, target, RATE, 300)
        time.sleep(1)
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
        r = sweep.loadgen("amqp", broker.url, rr, kind, target, RATE, requests)
        time.sleep(0.5)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
    finally:
        lib.stop(proc, timeout=120)
    total = 0
    for dump in glob.glob(out.replace("%p", str(proc.pid)) + ".*"):
        with open(dump) as f:
            for line in f:
                # `totals:` (after `callgrind_control -z`, `summary:` says 0).
                if line.startswith("totals:"):
                    total = int(line.split()[1])
    if not total or r["received"] < requests:
        raise RuntimeError("%s: %d of %d results, %d instructions counted" % (variant, r["received"], requests, total))
    return total / r["received"]


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    requests = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (bench/run installs Debian's valgrind)")
    variants = {"HTTP check": (lib.CONCIERGE, "http"), "DNS check": (lib.CONCIERGE, "dns"),
                "no check": (lib.CONCIERGE, "none"), "echo": "echo"}
    if BASELINE:
        variants.update({"baseline HTTP check": (BASELINE, "http"), "baseline DNS check": (BASELINE, "dns"),
                         "baseline no check": (BASELINE, "none")})
    broker, nginx, dnsd = lib.Broker(), lib.Nginx(), Dnsd()
    targets = {"http": nginx.url, "dns": "%s@%s" % (DNS_NAME, dnsd.address)}
    workdir = tempfile.mkdtemp(prefix="concierge-bench-callgrind-")
    samples = {}
    try:
        for r in range(rounds):
            for name, variant in variants.items():
                target = targets.get(variant[1], nginx.url) if variant != "echo" else nginx.url
                samples.setdefault(name, []).append(counted(broker, target, variant, requests, workdir))
                print("round %d %s: %.0f instructions per request" % (r + 1, name, samples[name][-1]), file=sys.stderr)
        print("Instructions per request (callgrind, user space, all threads), %d requests at %d/s after 300, "
              "%d round(s), medians; %s" % (requests, RATE, rounds, time.strftime("%Y-%m-%d")))
        med = {name: statistics.median(s) for name, s in samples.items()}
        for name in variants:
            print("%-22s %10.0f" % (name, med[name]))
        for name in ("HTTP check", "DNS check", "no check") if BASELINE else ():
            print("%-22s baseline %.0f, this build %.0f: %.3f× the baseline's" % (
                name, med["baseline " + name], med[name], med[name] / med["baseline " + name]))
    finally:
        dnsd.close()
        nginx.close()
        broker.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
