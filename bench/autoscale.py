"""`concierge autoscale`'s own footprint: CPU (share of one core) and RSS of the controller
(the shipped `dist` build) while idle and while watching a fleet of 20 real replicas'
keepalives, in interleaved rounds. The platform is ECS on PyPI's moto server on loopback
(AWS is not reachable here); the broker is a private RabbitMQ node.

    bench/run autoscale [SECONDS] [ROUNDS]
"""
import os
import socket
import statistics
import subprocess
import sys
import time

import lib


def moto():
    """A moto server with cluster `bench` and service `fleet` (created through boto3, which
    moto brings; both in the benchmarks' private venv, this interpreter's)."""
    port = lib.free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = "http://127.0.0.1:%d" % port
    deadline = time.time() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            break
        except OSError:
            if time.time() > deadline:
                raise RuntimeError("moto did not start")
            time.sleep(0.2)
    setup = """
import boto3
c = boto3.client('ecs', endpoint_url='%s', region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y')
c.create_cluster(clusterName='bench')
c.register_task_definition(family='probe', containerDefinitions=[{'name': 'p', 'image': 'concierge', 'memory': 64}])
c.create_service(cluster='bench', serviceName='fleet', taskDefinition='probe', desiredCount=1)
""" % endpoint
    subprocess.run([sys.executable, "-c", setup], check=True)
    return proc, endpoint


def measure(pid, seconds):
    cpu0, t0 = lib.cpu_seconds(pid), time.time()
    time.sleep(seconds)
    cpu1, t1 = lib.cpu_seconds(pid), time.time()
    return (cpu1 - cpu0) / (t1 - t0) * 100, lib.status_kb(pid, "VmRSS") / 1024, lib.status_kb(pid, "VmHWM") / 1024


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    broker = lib.Broker()
    moto_proc, endpoint = moto()
    queue = "roundrobin:bench"
    env = dict(os.environ)
    env.update({"RABBITMQ_URL": broker.url, "SENSU_CLIENT_NAME": "bench-autoscale", "AWS_ENDPOINT_URL": endpoint,
                "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y",
                "AWS_EC2_METADATA_DISABLED": "true", "CONCIERGE_LOG_LEVEL": "warn"})
    controller = subprocess.Popen(
        [lib.CONCIERGE, "autoscale", "--cluster", "bench", "--service", "fleet", "--min", "1", "--max", "30",
         "--queues", queue, "--listen", "127.0.0.1:%d" % lib.free_port()],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    fleet = []
    rows = {"idle": [], "20 replicas": []}
    try:
        time.sleep(5)
        for r in range(rounds):
            rows["idle"].append(measure(controller.pid, seconds))
            fleet = [lib.start_client(broker.url, "bench-probe-%d" % i, [queue]) for i in range(20)]
            lib.wait_consumers(broker.url, queue, 20)
            rows["20 replicas"].append(measure(controller.pid, seconds))
            for proc in fleet:
                lib.stop(proc)
            fleet = []
            assert controller.poll() is None, "the controller exited"
        print("concierge autoscale (dist build), %d rounds of %.0f s, rounds every 15 s:" % (rounds, seconds))
        print("%-12s %14s %10s %10s" % ("", "CPU % of core", "RSS MB", "peak MB"))
        for name, values in rows.items():
            print("%-12s %14.3f %10.1f %10.1f" % (name, statistics.median(v[0] for v in values),
                                                  statistics.median(v[1] for v in values), max(v[2] for v in values)))
    finally:
        for proc in fleet:
            lib.stop(proc)
        lib.stop(controller)
        lib.stop(moto_proc)
        broker.close()


if __name__ == "__main__":
    main()
