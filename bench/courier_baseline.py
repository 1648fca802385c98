"""The classic courier, as a Python script: fetch a Prometheus page, parse it with the
official prometheus-client parser, and print every sample as a Graphite line with one
timestamp (the same conversion Concierge's courier does). With --json, fetch a JSON document
and flatten it to dotted paths (as sensu-plugins' metrics-http-json-deep does, and Concierge's
`json` format). Used by bench/courier.py as the baseline."""
import json
import sys
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def safe(s):
    return "".join(c if c.isalnum() or c in "_-:" else "_" for c in s)


def flatten(value, path, out, ts):
    if isinstance(value, bool):
        out.append("%s %d %d\n" % (path or "value", int(value), ts))
    elif isinstance(value, (int, float)):
        out.append("%s %s %d\n" % (path or "value", repr(float(value)) if value != int(value) else int(value), ts))
    elif isinstance(value, dict):
        for k, v in value.items():
            flatten(v, path + "." + k if path else k, out, ts)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            flatten(v, path + "." + str(i) if path else str(i), out, ts)


def main_json(url, scheme):
    started = time.process_time()
    doc = json.loads(urllib.request.urlopen(url, timeout=10).read())
    out = []
    flatten(doc, "", out, int(time.time()))
    sys.stdout.write("".join(scheme + "." + line for line in out))
    sys.stderr.write("baseline: %d metrics, %.3f s CPU in-process\n" % (len(out), time.process_time() - started))


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
    args = [a for a in sys.argv[1:] if a != "--json"]
    (main_json if "--json" in sys.argv else main)(args[0], args[1] if len(args) > 1 else "bench.courier")
