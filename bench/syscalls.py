"""System calls and context switches per request at a paced rate: where the kernel's share of a
check goes, against the floors.

`perf stat` counts every system call (the `syscalls:sys_enter_*` tracepoints) and context
switch of one process, all its threads, for SECONDS while the native generator
(examples/loadgen.rs) publishes at RATE: Concierge's built-in HTTP check against local nginx,
Concierge without a check (the AMQP path only), the echo (examples/amqp_echo.rs, the least a
lapin client does) and the generator's own bare connect/GET/close (`loadgen get`, the other
half of the floor; its count includes its pacing). Counts are divided by RATE × SECONDS, so
they are per request. The counting starts 2 s into each run. ROUNDS rounds, interleaved;
medians. A run whose generator did not reach RATE fails (the counts would be divided by
requests never made). Needs root (the tracepoints are in tracefs) and Debian's linux-perf
(bench/run installs it).

Usage: bench/run syscalls [ROUNDS] [RATE] [SECONDS]"""
import json
import statistics
import subprocess
import sys
import time

import lib
import sweep

VARIANTS = ("HTTP check", "no check", "echo", "bare GET")


def perf_stat(pid, seconds):
    """{event: count} for process `pid` (all threads) over `seconds`."""
    out = subprocess.run(["perf", "stat", "-x", ",", "-e", "syscalls:sys_enter_*", "-e", "context-switches",
                          "-p", str(pid), "--", "sleep", str(seconds)], capture_output=True, text=True)
    counts = {}
    for line in out.stderr.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[0].strip().isdigit():
            counts[fields[2].replace("syscalls:sys_enter_", "")] = int(fields[0])
    if "context-switches" not in counts:
        raise RuntimeError("perf stat counted nothing (root and linux-perf needed):\n" + out.stderr[-2000:])
    return counts


def calls(counts):
    """All system calls in `counts` (without the context switches)."""
    return sum(x for k, x in counts.items() if k != "context-switches")


def reached(gen, variant, rate):
    """Wait for the generator; fail unless it kept `rate` up."""
    out, _ = gen.communicate()
    report = json.loads(out.strip().splitlines()[-1])
    if report["rate"] < 0.97 * rate or report["received"] < report["sent"]:
        raise RuntimeError("%s: the generator reached %.0f/s of %d/s (%d of %d answered): counts not per request"
                           % (variant, report["rate"], rate, report["received"], report["sent"]))


def counted(broker, nginx, variant, rate, seconds):
    """Counts per request of one variant while the generator runs at `rate`."""
    n = rate * (seconds + 4)
    if variant == "bare GET":
        gen = subprocess.Popen([sweep.LOADGEN, "get", nginx.url, str(rate), str(n)], stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(2)
            counts = perf_stat(gen.pid, seconds)
        finally:
            reached(gen, variant, rate)
        return {k: v / (rate * seconds) for k, v in counts.items()}
    rr = lib.unique("roundrobin:syscalls")
    if variant == "echo":
        proc = subprocess.Popen([lib.AMQP_ECHO, broker.url, rr, "512"], stdout=subprocess.DEVNULL)
    else:
        # Without a check every request logs "unknown check extension".
        proc = lib.start_client(broker.url, lib.unique("syscalls"), [rr], env={"CONCIERGE_LOG_LEVEL": "error"})
    try:
        lib.wait_consumers(broker.url, rr, 1)
        kind = "http" if variant == "HTTP check" else "none"
        gen = subprocess.Popen([sweep.LOADGEN, "amqp", broker.url, rr, kind, nginx.url, str(rate), str(n)],
                               stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(2)
            counts = perf_stat(proc.pid, seconds)
        finally:
            reached(gen, variant, rate)
    finally:
        lib.stop(proc)
    return {k: v / (rate * seconds) for k, v in counts.items()}


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    rate = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    seconds = int(sys.argv[3]) if len(sys.argv) > 3 else 6
    broker, nginx = lib.Broker(), lib.Nginx()
    samples = {v: [] for v in VARIANTS}
    try:
        for r in range(rounds):
            for variant in VARIANTS:
                samples[variant].append(counted(broker, nginx, variant, rate, seconds))
                print("round %d %s: %.1f system calls per request" % (r + 1, variant, calls(samples[variant][-1])),
                      file=sys.stderr)
    finally:
        nginx.close()
        broker.close()
    med = {v: {} for v in VARIANTS}
    for v in VARIANTS:
        for k in set(k for s in samples[v] for k in s):
            med[v][k] = statistics.median(s.get(k, 0.0) for s in samples[v])
    print("System calls and context switches per request at %d/s (perf stat, %d s, %d round(s), medians; %s)"
          % (rate, seconds, rounds, time.strftime("%Y-%m-%d")))
    print("%-18s" % "per request" + "".join("%12s" % v for v in VARIANTS))
    names = sorted({k for v in VARIANTS for k, x in med[v].items() if k != "context-switches" and x >= 0.01},
                   key=lambda k: -max(med[v].get(k, 0.0) for v in VARIANTS))
    for k in ["context-switches"] + names:
        print("%-18s" % k + "".join("%12.2f" % med[v].get(k, 0.0) for v in VARIANTS))
    print("%-18s" % "all system calls" + "".join("%12.2f" % calls(med[v]) for v in VARIANTS))


if __name__ == "__main__":
    main()
