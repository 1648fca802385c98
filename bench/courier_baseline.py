"""The classic courier, as a Python script: fetch a Prometheus page, parse it with the
official prometheus-client parser, and print every sample as a Graphite line with one
timestamp (the same conversion Concierge's courier does). Used by bench/courier.py as the
baseline."""
import sys
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def safe(s):
    return "".join(c if c.isalnum() or c in "_-:" else "_" for c in s)


def main(url, scheme):
    started = time.process_time()
    body = urllib.request.urlopen(url, timeout=10).read().decode("utf-8")
    ts = int(time.time())
    out = []
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            value = sample.value
            if value != value or value in (float("inf"), float("-inf")):
                continue
            path = scheme + "." + sample.name
            for k, v in sample.labels.items():
                path += "." + safe(k) + "." + safe(v)
            out.append("%s %s %d\n" % (path, repr(float(value)) if value != int(value) else int(value), ts))
    sys.stdout.write("".join(out))
    sys.stderr.write("baseline: %d metrics, %.3f s CPU in-process\n" % (len(out), time.process_time() - started))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "bench.courier")
