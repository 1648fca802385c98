#!/usr/bin/env bash
# Private, throw-away RabbitMQ broker for Concierge's integration tests.
#
#   scripts/rabbitmq.sh install            install the Debian rabbitmq-server package (idempotent)
#   scripts/rabbitmq.sh start DIR [PORT]   start a private node with all state under DIR
#   scripts/rabbitmq.sh stop DIR           stop that node (idempotent)
#   scripts/rabbitmq.sh ctl DIR ARGS...    run rabbitmqctl against that node
#   scripts/rabbitmq.sh status DIR         exit 0 if the node is up
#
# After `start`, `DIR/env` holds `export` lines for the tests:
#   CONCIERGE_TEST_AMQP_URL       amqp://guest:guest@127.0.0.1:PORT/%2f
#   CONCIERGE_TEST_AMQP_PORT      PORT
#   CONCIERGE_TEST_RABBITMQ_NODE  concierge-test-PORT@localhost
#   CONCIERGE_TEST_RABBITMQCTL    DIR/rabbitmqctl (wrapper with -n NODE and the right HOME/cookie)
#
# The node never uses the system broker's files (/etc/rabbitmq, /var/lib/rabbitmq,
# /var/log/rabbitmq) and never binds 5672/25672, so a system broker started by the
# package's postinst can coexist.  The /usr/sbin wrappers (which su to the rabbitmq
# user) are deliberately not used; /usr/lib/rabbitmq/bin/* work fine as root.
set -euo pipefail

RMQ_BIN=/usr/lib/rabbitmq/bin
START_TIMEOUT=${CONCIERGE_RABBITMQ_START_TIMEOUT:-60}
STOP_TIMEOUT=${CONCIERGE_RABBITMQ_STOP_TIMEOUT:-30}

die() { echo "rabbitmq.sh: $*" >&2; exit 1; }
log() { echo "rabbitmq.sh: $*" >&2; }

usage() {
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# ---------------------------------------------------------------- install ---

apt_locked() {
    # True while another apt/dpkg process holds a lock.  Checking for the
    # processes avoids needing fuser/lsof.
    pgrep -x 'apt-get|apt|dpkg|unattended-upgr' >/dev/null 2>&1
}

wait_for_apt() {
    local waited=0
    while apt_locked; do
        if (( waited == 0 )); then log "waiting for a running apt/dpkg to finish..."; fi
        sleep 2
        waited=$((waited + 2))
        (( waited < 1200 )) || die "apt/dpkg still busy after ${waited}s"
    done
}

installed() {
    [[ -x $RMQ_BIN/rabbitmq-server && -x $RMQ_BIN/rabbitmqctl ]] &&
        [[ $(dpkg-query -W -f='${Status}' rabbitmq-server 2>/dev/null) == "install ok installed" ]] &&
        command -v openssl >/dev/null
}

cmd_install() {
    installed && return 0
    # Perhaps an install is running in the background right now: wait for it rather
    # than fighting over the dpkg lock, then re-check.
    wait_for_apt
    installed && return 0
    export DEBIAN_FRONTEND=noninteractive
    local out
    out=$(mktemp)
    # Only refresh the package lists when apt does not know the package yet.
    if ! apt-cache policy rabbitmq-server openssl 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        apt-get update >"$out" 2>&1 || { cat "$out" >&2; rm -f "$out"; die "apt-get update failed"; }
    fi
    if ! apt-get install -y -q rabbitmq-server openssl >"$out" 2>&1; then
        # A half-configured package (e.g. postinst failed without systemd): retry configure once.
        dpkg --configure -a >>"$out" 2>&1 || true
        apt-get install -y -q rabbitmq-server openssl >>"$out" 2>&1 || { cat "$out" >&2; rm -f "$out"; die "apt-get install rabbitmq-server failed"; }
    fi
    rm -f "$out"
    [[ -x $RMQ_BIN/rabbitmq-server ]] || die "$RMQ_BIN/rabbitmq-server still missing after install"
}

# ----------------------------------------------------------------- helpers ---

port_in_use() {
    local port=$1
    if command -v ss >/dev/null 2>&1; then
        ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && return 0
    fi
    # Fallback / double check: try to connect.
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    return 1
}

pick_free_port() {
    # pick_free_port EXCLUDE... : random free port in 20000-29999
    local i port ex skip
    for i in $(seq 1 200); do
        port=$((20000 + RANDOM % 10000))
        skip=0
        for ex in "$@"; do [[ $port == "$ex" ]] && skip=1; done
        (( skip )) && continue
        port_in_use "$port" || { echo "$port"; return 0; }
    done
    die "could not find a free port in 20000-29999"
}

# PIDs of processes belonging to node NODE, found through their environment
# (RABBITMQ 3.10 starts distribution dynamically, so the node name is not on the
# beam command line).  `node_pids NODE server` = only the broker beam itself;
# `node_pids NODE all` = also the rabbitmq-server launcher, erl_child_setup,
# inet_gethost and any rabbitmqctl clients started through the wrapper (never epmd).
node_pids() {
    local node=$1 which=$2 d pid cmd
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
        grep -qxF "RABBITMQ_NODENAME=$node" <(tr '\0' '\n' 2>/dev/null <"$d/environ") 2>/dev/null || continue
        cmd=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || continue
        [[ -n $cmd ]] || continue
        # epmd is spawned by the first node (inheriting its environment) but is shared
        # by every Erlang node on the host: never count it as ours.
        [[ $cmd == *epmd* ]] && continue
        if [[ $which == server ]]; then
            [[ $cmd == *beam* && $cmd == *"-s rabbit boot"* ]] || continue
        fi
        echo "$pid"
    done
    return 0
}

# A throw-away CA, a server certificate for localhost/127.0.0.1 and a client certificate.
make_tls() {
    local tls=$1
    rm -rf "$tls"; mkdir -p "$tls"
    (
        cd "$tls"
        openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=concierge-test-ca" \
            -keyout ca.key -out ca.pem >/dev/null 2>&1
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
        openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr >/dev/null 2>&1
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
            -extfile server.ext -out server.pem >/dev/null 2>&1
        printf 'extendedKeyUsage=clientAuth\n' >client.ext
        openssl req -newkey rsa:2048 -nodes -subj "/CN=concierge-test-client" -keyout client.key -out client.csr >/dev/null 2>&1
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
            -extfile client.ext -out client.pem >/dev/null 2>&1
        # PKCS#8 key for rustls.
        openssl pkcs8 -topk8 -nocrypt -in client.key -out client.pk8 >/dev/null 2>&1
        chmod 0644 ./*.pem ./*.key ./*.pk8
    ) || die "could not create TLS test certificates (openssl)"
}

# Print the env the node and rabbitmqctl need (used both for the server and for the wrapper).
write_node_env() {
    local dir=$1 node=$2 port=$3 dist_port=$4
    cat <<EOF
export HOME='$dir'
export RABBITMQ_NODENAME='$node'
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT='$port'
export RABBITMQ_DIST_PORT='$dist_port'
export ERL_EPMD_ADDRESS=127.0.0.1
# Bind the Erlang distribution listener to loopback as well (default is 0.0.0.0).
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'
export RABBITMQ_CONF_ENV_FILE='$dir/rabbitmq-env.conf'
export RABBITMQ_CONFIG_FILE='$dir/rabbitmq.conf'
export RABBITMQ_ADVANCED_CONFIG_FILE='$dir/advanced.config'
export RABBITMQ_ENABLED_PLUGINS_FILE='$dir/enabled_plugins'
export RABBITMQ_MNESIA_BASE='$dir/mnesia'
export RABBITMQ_LOG_BASE='$dir/log'
export RABBITMQ_PID_FILE='$dir/pid'
export RABBITMQ_MOTD_FILE='$dir/motd'
# rabbitmqctl's own (hidden) distribution ports; widen the default 10-port range so
# many concurrent rabbitmqctl calls do not run out.
export RABBITMQ_CTL_DIST_PORT_MIN=35672
export RABBITMQ_CTL_DIST_PORT_MAX=35772
EOF
}

# True if PID exists and is not a zombie (kill -0 succeeds on zombies, and PID 1
# in some containers never reaps orphans).
proc_running() {
    local pid=$1 stat
    [[ -n $pid ]] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

load_state() {
    # Sets NODE, PORT, DIST_PORT from DIR/state; returns 1 if there is none.
    local dir=$1
    [[ -f $dir/state ]] || return 1
    NODE='' PORT='' DIST_PORT=''
    # shellcheck disable=SC1091
    . "$dir/state"
    [[ -n $NODE ]]
}

read_pid() {
    local dir=$1 pid=''
    [[ -f $dir/pid ]] && pid=$(tr -dc '0-9' <"$dir/pid" 2>/dev/null || true)
    echo "$pid"
}

# ------------------------------------------------------------------- start ---

cmd_start() {
    [[ $# -ge 1 && $# -le 2 ]] || usage
    local dir=$1 port=${2:-}
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd -P)

    installed || cmd_install

    # Refuse to start a second node on the same DIR.
    if load_state "$dir"; then
        local oldpid
        oldpid=$(read_pid "$dir")
        if [[ -n $(node_pids "$NODE" server) ]]; then
            die "a node ($NODE, pid ${oldpid:-?}) is already running for $dir; run '$0 stop $dir' first"
        fi
        log "cleaning up stale state of $NODE in $dir"
    fi

    if [[ -z $port ]]; then
        port=$(pick_free_port)
    else
        [[ $port =~ ^[0-9]+$ ]] || die "invalid port: $port"
        ! port_in_use "$port" || die "port $port is already in use"
    fi
    local dist_port tls_port
    dist_port=$(pick_free_port "$port")
    tls_port=$(pick_free_port "$port" "$dist_port")
    local node="concierge-test-$port@localhost"
    [[ -z $(node_pids "$node" server) ]] || die "a broker process for $node is already running (another DIR?)"

    # Fresh broker on every start: wipe previous node data/logs, keep nothing from older runs.
    rm -rf "$dir/mnesia" "$dir/log" "$dir/pid" "$dir/env" "$dir/state" "$dir/server.log" \
           "$dir/rabbitmqctl" "$dir/.erlang.cookie"
    mkdir -p "$dir/mnesia" "$dir/log"

    # Erlang cookie: private, mode 0400, in HOME=DIR (used by both node and rabbitmqctl).
    (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr 'a-f' 'A-F' >"$dir/.erlang.cookie")
    chmod 0400 "$dir/.erlang.cookie"

    # TLS listener with a throw-away CA, server certificate (localhost, 127.0.0.1) and a
    # client certificate, for the amqps tests.
    make_tls "$dir/tls"

    # Empty env-conf file so /etc/rabbitmq/rabbitmq-env.conf is never read.
    echo '# intentionally empty: private concierge test node' >"$dir/rabbitmq-env.conf"
    cat >"$dir/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$port
# guest may only connect over loopback by default; we only listen on loopback anyway.
loopback_users = none
disk_free_limit.absolute = 50MB
vm_memory_high_watermark.relative = 0.8
log.file.level = info
listeners.ssl.default = 127.0.0.1:$tls_port
ssl_options.cacertfile = $dir/tls/ca.pem
ssl_options.certfile = $dir/tls/server.pem
ssl_options.keyfile = $dir/tls/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = false
EOF
    echo '[].' >"$dir/advanced.config"
    echo '[].' >"$dir/enabled_plugins"
    : >"$dir/motd"

    write_node_env "$dir" "$node" "$port" "$dist_port" >"$dir/node-env.sh"
    cat >"$dir/state" <<EOF
NODE='$node'
PORT='$port'
DIST_PORT='$dist_port'
EOF

    # rabbitmqctl wrapper for the tests.
    cat >"$dir/rabbitmqctl" <<EOF
#!/bin/sh
# Generated by scripts/rabbitmq.sh: rabbitmqctl for the private node $node
. '$dir/node-env.sh'
exec '$RMQ_BIN/rabbitmqctl' -n '$node' "\$@"
EOF
    chmod 0755 "$dir/rabbitmqctl"

    # Start detached: own session, no controlling terminal, stdin from /dev/null, so
    # the node survives the caller (e.g. a test harness shell) and ignores its signals.
    local t0=$SECONDS
    (
        # shellcheck disable=SC1091
        . "$dir/node-env.sh"
        cd "$dir"
        exec setsid "$RMQ_BIN/rabbitmq-server" </dev/null >"$dir/server.log" 2>&1
    ) &
    local launcher=$!
    echo "$launcher" >"$dir/launcher.pid"
    disown "$launcher" 2>/dev/null || true

    # `rabbitmqctl await_startup` fails at once while the node is not yet registered
    # with epmd, so first wait (cheaply) for the registration, then await the app.
    local ok=0 why=''
    while (( SECONDS - t0 < START_TIMEOUT )); do
        if ! proc_running "$launcher"; then why="rabbitmq-server exited"; break; fi
        if epmd -names 2>/dev/null | grep -q "^name ${node%@*} at port"; then ok=1; break; fi
        sleep 0.2
    done
    if (( ok )); then
        local left=$((START_TIMEOUT - (SECONDS - t0)))
        (( left > 5 )) || left=5
        if ! timeout "$((left + 5))" "$dir/rabbitmqctl" await_startup --timeout "$left" >"$dir/await.log" 2>&1; then
            ok=0 why="await_startup failed"
        fi
    else
        [[ -n $why ]] || why="not registered with epmd after ${START_TIMEOUT}s"
    fi
    if (( ! ok )); then
        log "node $node failed to start ($why); server.log tail:"
        tail -n 40 "$dir/server.log" >&2 || true
        if [[ -s $dir/await.log ]]; then
            log "await_startup output:"
            tail -n 20 "$dir/await.log" >&2 || true
        fi
        local lf
        for lf in "$dir"/log/*.log; do
            [[ -s $lf ]] || continue
            log "--- tail of $lf"
            tail -n 40 "$lf" >&2 || true
        done
        cmd_stop "$dir" >/dev/null 2>&1 || true
        exit 1
    fi

    # Record the node's OS pid (the beam process).
    # The node writes RABBITMQ_PID_FILE (DIR/pid) itself; trust it only if it really
    # is our broker process, otherwise ask the node.
    local ospid
    ospid=$(read_pid "$dir")
    if [[ -z $ospid ]] || ! node_pids "$node" server | grep -qx "$ospid"; then
        ospid=$("$dir/rabbitmqctl" eval 'os:getpid().' 2>/dev/null | tr -dc '0-9' || true)
    fi
    if [[ -z $ospid ]]; then
        ospid=$(node_pids "$node" server | head -n1)
    fi
    [[ -n $ospid ]] || die "node started but its OS pid could not be determined"
    echo "$ospid" >"$dir/pid"

    port_in_use "$port" || die "node $node is up but nothing listens on 127.0.0.1:$port"

    cat >"$dir/env" <<EOF
export CONCIERGE_TEST_AMQP_URL='amqp://guest:guest@127.0.0.1:$port/%2f'
export CONCIERGE_TEST_AMQP_PORT='$port'
export CONCIERGE_TEST_RABBITMQ_NODE='$node'
export CONCIERGE_TEST_RABBITMQCTL='$dir/rabbitmqctl'
export CONCIERGE_TEST_AMQPS_PORT='$tls_port'
export CONCIERGE_TEST_TLS_DIR='$dir/tls'
EOF
    log "started $node (pid $ospid) amqp=127.0.0.1:$port dist=$dist_port in $((SECONDS - t0))s; env: $dir/env"
}

# -------------------------------------------------------------------- stop ---

cmd_stop() {
    [[ $# -eq 1 ]] || usage
    local dir=$1
    [[ -d $dir ]] || return 0
    dir=$(cd "$dir" && pwd -P)
    load_state "$dir" || return 0   # never started (or already stopped): nothing to do

    if [[ -n $(node_pids "$NODE" server) ]]; then
        # Graceful stop; rabbitmqctl stop returns once the node has shut down.
        timeout "$STOP_TIMEOUT" "$dir/rabbitmqctl" stop >"$dir/stop.log" 2>&1 || true
    fi
    # Whatever is left (broker beam, launcher shell, erl_child_setup, inet_gethost,
    # hung rabbitmqctl clients): TERM, then KILL.
    local i pids
    for i in $(seq 1 50); do
        pids=$(node_pids "$NODE" all)
        [[ -n $pids ]] || break
        if (( i == 1 )); then
            # shellcheck disable=SC2086
            kill -TERM $pids 2>/dev/null || true
        elif (( i == 25 )); then
            # shellcheck disable=SC2086
            kill -KILL $pids 2>/dev/null || true
        fi
        sleep 0.2
    done
    pids=$(node_pids "$NODE" all)
    [[ -z $pids ]] || die "could not stop $NODE (pids: $(echo $pids))"
    rm -f "$dir/pid" "$dir/launcher.pid" "$dir/state" "$dir/env"
    # epmd is deliberately left running: it may be shared with other Erlang nodes.
    log "stopped $NODE"
}

# ------------------------------------------------------------- ctl/status ---

cmd_ctl() {
    [[ $# -ge 1 ]] || usage
    local dir=$1; shift
    [[ -x $dir/rabbitmqctl ]] || die "no node was started in $dir"
    exec "$dir/rabbitmqctl" "$@"
}

cmd_status() {
    [[ $# -eq 1 ]] || usage
    local dir=$1
    load_state "$dir" 2>/dev/null || { echo "not running"; return 1; }
    if timeout 20 "$dir/rabbitmqctl" ping >/dev/null 2>&1; then
        echo "running: $NODE amqp=127.0.0.1:$PORT pid=$(read_pid "$dir")"
    else
        echo "not running"
        return 1
    fi
}

[[ $# -ge 1 ]] || usage
sub=$1; shift
case $sub in
    install) cmd_install "$@" ;;
    start)   cmd_start "$@" ;;
    stop)    cmd_stop "$@" ;;
    ctl)     cmd_ctl "$@" ;;
    status)  cmd_status "$@" ;;
    -h|--help|help) usage ;;
    *) usage ;;
esac
