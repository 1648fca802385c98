"""Shared pieces of the fleet benchmarks, the chaos run and the soak: a private broker,
concierge client processes, a sensu-server-like publisher and results consumer (pika),
process figures from /proc, and a loopback HTTP target (nginx)."""
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pika

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AMQP_ECHO = os.path.join(ROOT, "target", "dist", "examples", "amqp_echo")
CONCIERGE = os.environ.get("CONCIERGE_BIN") or os.path.join(ROOT, "target", "dist", "concierge")
TICK = os.sysconf("SC_CLK_TCK")


class Broker:
    """A private RabbitMQ node (scripts/rabbitmq.sh), stopped on close()."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="concierge-bench-rmq-")
        subprocess.run([os.path.join(ROOT, "scripts", "rabbitmq.sh"), "install"], check=True)
        subprocess.run([os.path.join(ROOT, "scripts", "rabbitmq.sh"), "start", self.dir], check=True,
                       stdout=subprocess.DEVNULL)
        env = {}
        with open(os.path.join(self.dir, "env")) as f:
            for line in f:
                key, value = line.replace("export ", "").strip().split("=", 1)
                env[key] = value.strip("'")
        self.url = env["CONCIERGE_TEST_AMQP_URL"]
        self.port = int(env["CONCIERGE_TEST_AMQP_PORT"])
        self.ctl = env["CONCIERGE_TEST_RABBITMQCTL"]

    @property
    def pid(self):
        """The broker's own process (beam.smp), from its pid file."""
        with open(os.path.join(self.dir, "pid")) as f:
            return int(f.read().strip())

    def rabbitmqctl(self, *args):
        subprocess.run([self.ctl, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def close(self):
        subprocess.run([os.path.join(ROOT, "scripts", "rabbitmq.sh"), "stop", self.dir], stdout=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)


def channel(url, confirm=True):
    """A pika channel; with `confirm=False` publishes are not confirmed, as sensu-server
    publishes check requests (EventMachine AMQP, no confirm mode)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    ch = connection.channel()
    if confirm:
        ch.confirm_delivery()
    return connection, ch


PROPERTIES = pika.BasicProperties(content_type="application/octet-stream", delivery_mode=1, priority=0)


def declare_exchange(ch, name, kind):
    ch.exchange_declare(exchange=name, exchange_type=kind, durable=False, auto_delete=False)


def results_queue(ch, name="results"):
    """The server's results queue (Sensu's flags), bound to the results exchange."""
    declare_exchange(ch, "results", "direct")
    ch.queue_declare(queue=name, durable=False, exclusive=False, auto_delete=(name != "results"))
    ch.queue_bind(queue=name, exchange="results", routing_key="")
    return name


def publish_request(ch, subscription, request):
    ch.basic_publish(exchange=subscription, routing_key="", body=__import__("json").dumps(request).encode(),
                     properties=PROPERTIES)


def start_client(url, name, subscriptions, env=None, log=None, binary=None):
    full = dict(os.environ)
    full.update({
        "RABBITMQ_URL": url, "SENSU_CLIENT_NAME": name, "SENSU_CLIENT_SUBSCRIPTIONS": ",".join(subscriptions),
        "CONCIERGE_SOCKET_PORT": "0", "CONCIERGE_HTTP_SOCKET_PORT": "0", "CONCIERGE_LOG_LEVEL": "warn",
        "SENSU_LOADED_TEMPFILE_DIR": tempfile.gettempdir(),
    })
    full.update(env or {})
    return subprocess.Popen([binary or CONCIERGE, "run"], env=full, stdout=subprocess.DEVNULL,
                            stderr=log or subprocess.DEVNULL, cwd=tempfile.gettempdir())


def wait_consumers(url, queue, n, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            connection = pika.BlockingConnection(pika.URLParameters(url))
            ok = connection.channel().queue_declare(queue=queue, passive=True)
            connection.close()
            if ok.method.consumer_count >= n:
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError("no %d consumers on %s" % (n, queue))


def stop(proc, sig=signal.SIGTERM, timeout=15):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid):
    """utime + stime + reaped children's, seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / TICK


def tree_cpu_seconds(pid):
    """cpu_seconds of `pid` and its live descendants (nginx's workers, which its master never
    reaps while running)."""
    total = 0.0
    try:
        total = cpu_seconds(pid)
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            children = [int(c) for c in f.read().split()]
    except OSError:
        return total
    return total + sum(tree_cpu_seconds(c) for c in children)


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class Nginx:
    """nginx on a loopback port serving /ok (a small body). Its listen queue holds 4,096 (the
    default 511 overflowed with several replicas' 500 built-in slots each connecting at once,
    and a dropped SYN is sent again after a second)."""

    def __init__(self):
        if not shutil.which("nginx") and not os.path.exists("/usr/sbin/nginx"):
            subprocess.run(["apt-get", "install", "-y", "-q", "nginx-light"], check=True, stdout=subprocess.DEVNULL)
        self.dir = tempfile.mkdtemp(prefix="concierge-bench-nginx-")
        self.port = free_port()
        with open(os.path.join(self.dir, "ok"), "w") as f:
            f.write("ok\n")
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""daemon off; worker_processes 1; pid %(d)s/nginx.pid; error_log %(d)s/error.log;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path %(d)s; proxy_temp_path %(d)s; fastcgi_temp_path %(d)s;
  uwsgi_temp_path %(d)s; scgi_temp_path %(d)s;
  server { listen 127.0.0.1:%(p)d backlog=4096; root %(d)s; location / { } } }
""" % {"d": self.dir, "p": self.port})
        self.proc = subprocess.Popen(["/usr/sbin/nginx", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        self.url = "http://127.0.0.1:%d/ok" % self.port

    def close(self):
        stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


def free_port():
    """A loopback TCP port free now."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])
