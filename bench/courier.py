"""Courier benchmark: the full 34,000-metric shot through `concierge check` (scrape,
parse, convert, write) versus the classic Python courier (prometheus-client parser),
each run as its own process against the same loopback endpoint, interleaved, medians.
CPU comes from wait4(), peak RSS from GNU time. Run through bench/run courier."""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def page(n):
    lines = []
    for f in range(n // 100):
        lines.append("# HELP family_%d A family.\n# TYPE family_%d gauge\n" % (f, f))
        for i in range(100):
            lines.append('family_%d{instance="i%d",job="app"} %d.5\n' % (f, i, f * 100 + i))
    return "".join(lines)


def page_json(n):
    """A JSON document of n numbers: {"app": {"family_F": {"instance_I": {"count": C, "mean": M}}}}."""
    return json.dumps({"app": {"family_%d" % f: {"instance_%d" % i: {"count": f * 100 + i, "mean": (f * 100 + i) / 4.0}
                                                   for i in range(50)} for f in range(n // 100)}})


def run(cmd, env=None):
    """Run `cmd` to the end: wall time, CPU (wait4) and peak RSS. The peak is what GNU time reads
    from its own child: a child of this process would report at least this process's own
    peak, as Linux keeps a peak RSS through exec and Python starts children with vfork (this
    process, holding the generated page, read as 89 MB where the courier peaked at 62)."""
    started = time.monotonic()
    with open(os.devnull, "wb") as devnull, tempfile.NamedTemporaryFile("r") as peak:
        proc = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", peak.name] + cmd, stdout=devnull,
                                stderr=subprocess.PIPE, env=env)
        stderr = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        report = peak.read()
    wall = time.monotonic() - started
    if status != 0:
        sys.exit("%s failed (exit %d): %s%s" % (cmd[0], os.waitstatus_to_exitcode(status),
                                                stderr.decode(errors="replace"), report))
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": int(report.split()[-1]) / 1024.0}


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 34000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    kind = sys.argv[3] if len(sys.argv) > 3 else "prometheus"
    if kind not in ("prometheus", "json"):
        sys.exit("usage: bench/run courier [N] [ROUNDS] [prometheus|json]")
    concierge = os.environ.get("CONCIERGE_BIN") or os.path.join(ROOT, "target", "dist", "concierge")
    # Another build of Concierge run in the same rounds (an A/B of a change).
    baseline = os.environ.get("CONCIERGE_BASELINE_BIN")
    python = sys.executable
    work = tempfile.mkdtemp(prefix="courier-bench-")
    body = page(n) if kind == "prometheus" else page_json(n)
    with open(os.path.join(work, "metrics"), "w") as f:
        f.write(body)
    server = subprocess.Popen([python, "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", work],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = server.stdout.readline()
    port = int(line.split("port ")[1].split(" ")[0])
    url = "http://127.0.0.1:%d/metrics" % port
    check = os.path.join(work, "courier.json")
    with open(check, "w") as f:
        json.dump({"checks": {"app": {"type": "metric", "extension": "courier", "courier": {"url": url}}}}, f)
    env = dict(os.environ, SENSU_CLIENT_NAME="bench", SENSU_LOADED_TEMPFILE_DIR=work, CONCIERGE_LOG_LEVEL="warn")
    samples = {"concierge": [], "python": []}
    if baseline:
        samples["baseline"] = []
    try:
        for r in range(rounds):
            samples["concierge"].append(run([concierge, "check", check], env))
            samples["python"].append(run([python, os.path.join(ROOT, "bench", "courier_baseline.py"), url, "bench.app"]
                                         + (["--json"] if kind == "json" else []), env))
            if baseline:
                samples["baseline"].append(run([baseline, "check", check], env))
            print("round %d: concierge %s | python %s" % (r + 1, samples["concierge"][-1], samples["python"][-1]), file=sys.stderr)
    finally:
        server.terminate()
    med = {k: {m: statistics.median(s[m] for s in v) for m in ("wall", "cpu", "rss_mb")} for k, v in samples.items()}
    print("Courier shot: %d metrics (%.2f MB of %s), %d interleaved rounds, medians; %d cores"
          % (n, len(body) / 1e6, "Prometheus text" if kind == "prometheus" else "JSON", rounds, os.cpu_count()))
    print("%-44s %10s %12s %14s" % ("path (whole process)", "wall (ms)", "CPU (ms)", "peak RSS (MB)"))
    rows = [("concierge", "concierge check (courier, graphite)"), ("python", "python prometheus-client courier" if kind == "prometheus" else "python json courier")]
    if baseline:
        rows.append(("baseline", "baseline build (CONCIERGE_BASELINE_BIN)"))
    for key, label in rows:
        m = med[key]
        print("%-44s %10.1f %12.1f %14.1f" % (label, m["wall"] * 1000, m["cpu"] * 1000, m["rss_mb"]))
    print("ratio: concierge uses %.1fx less CPU and is %.1fx faster"
          % (med["python"]["cpu"] / med["concierge"]["cpu"], med["python"]["wall"] / med["concierge"]["wall"]))
    if baseline:
        print("against the baseline build: CPU %.2fx, peak RSS %.2fx"
              % (med["concierge"]["cpu"] / med["baseline"]["cpu"], med["concierge"]["rss_mb"] / med["baseline"]["rss_mb"]))


if __name__ == "__main__":
    main()
