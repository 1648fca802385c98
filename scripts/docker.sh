#!/usr/bin/env bash
# Private, throw-away Docker engine with a one-node Swarm, for Concierge's container tests.
#
#   scripts/docker.sh install        install Debian's docker.io and debootstrap (idempotent)
#   scripts/docker.sh start DIR      start a private dockerd with all its state under DIR, and a
#                                    one-node Swarm on 127.0.0.1 (a free port)
#   scripts/docker.sh base DIR       make (once per machine) and import the Debian base image
#   scripts/docker.sh image DIR [BIN]
#                                    build the image as concierge:test with that engine: the
#                                    Dockerfile's runtime stage with a host-built binary (BIN, else
#                                    the target/dist build), on a Debian base image made from
#                                    Debian packages
#   scripts/docker.sh stop DIR       remove its services and containers, leave the Swarm, stop the
#                                    daemon and its containerd, unmount what is left (idempotent)
#
# After `start`, DIR/env holds `export` lines for the tests:
#   CONCIERGE_TEST_DOCKER_HOST   unix://DIR/d.sock (never the system socket)
#   CONCIERGE_TEST_DOCKER        /usr/bin/docker: Debian's client, of the engine's version
#   CONCIERGE_TEST_IMAGE         concierge:test (once `image` ran)
#
# The engine never touches the host's networking: no bridge, no iptables rules; containers
# and Swarm services use the host network, so all traffic stays on 127.0.0.1. No registry is
# reachable here: the base image is Debian bookworm (debootstrap --variant=minbase from the
# apt mirror), kept as a tarball under /var/cache/concierge so it is made once per machine,
# and imported into each engine as concierge-base:bookworm.
set -euo pipefail

DOCKER=/usr/bin/docker
DOCKERD=/usr/sbin/dockerd
CACHE=${CONCIERGE_DOCKER_CACHE:-/var/cache/concierge}
BASE_TAR=$CACHE/debian-bookworm-minbase.tar
BASE_IMAGE=concierge-base:bookworm
IMAGE=concierge:test
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)

die() { echo "docker.sh: $*" >&2; exit 1; }
log() { echo "docker.sh: $*" >&2; }

usage() {
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

wait_for_apt() {
    local waited=0
    while pgrep -x 'apt-get|apt|dpkg|unattended-upgr' >/dev/null 2>&1; do
        sleep 2
        waited=$((waited + 2))
        (( waited < 1200 )) || die "apt/dpkg still busy after ${waited}s"
    done
}

cmd_install() {
    [[ -x $DOCKERD && -x $DOCKER && -x /usr/sbin/debootstrap ]] && command -v openssl >/dev/null && return 0
    (( EUID == 0 )) || die "installing docker.io needs root"
    export DEBIAN_FRONTEND=noninteractive
    wait_for_apt
    apt-get install -y -q docker.io debootstrap openssl >/dev/null 2>&1 || {
        apt-get update -q >/dev/null
        apt-get install -y -q docker.io debootstrap openssl >/dev/null
    }
    [[ -x $DOCKERD ]] || die "docker.io did not install dockerd"
}

port_in_use() {
    ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

pick_free_port() {
    local port
    for _ in $(seq 1 200); do
        port=$((30000 + RANDOM % 10000))
        port_in_use "$port" || { echo "$port"; return 0; }
    done
    die "could not find a free port in 30000-39999"
}

d() { DOCKER_HOST="unix://$1/d.sock" "$DOCKER" "${@:2}"; }

# A throw-away CA, the engine's certificate for 127.0.0.1 and a client certificate, laid out
# as the docker CLI reads DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem in client/).
make_tls() {
    local tls=$1
    mkdir -p "$tls/client"
    (
        cd "$tls"
        openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=concierge-docker-ca" \
            -keyout ca.key -out ca.pem >/dev/null 2>&1
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
        openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server-key.pem -out server.csr >/dev/null 2>&1
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
            -extfile server.ext -out server-cert.pem >/dev/null 2>&1
        printf 'extendedKeyUsage=clientAuth\n' >client.ext
        openssl req -newkey rsa:2048 -nodes -subj "/CN=concierge-test" -keyout client/key.pem -out client.csr >/dev/null 2>&1
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
            -extfile client.ext -out client/cert.pem >/dev/null 2>&1
        cp ca.pem client/ca.pem
    ) || die "could not create the engine's TLS certificates (openssl)"
}

cmd_start() {
    local dir=$1 port tls_port i
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd -P)
    [[ ! -e $dir/d.pid ]] || ! kill -0 "$(cat "$dir/d.pid")" 2>/dev/null || die "an engine already runs for $dir"
    # Besides its socket, the engine listens on loopback with TLS and client certificates
    # (DOCKER_TLS_VERIFY), as a remote manager would.
    make_tls "$dir/tls"
    tls_port=$(pick_free_port)
    # Short paths: containerd's sockets live under the exec root (unix socket paths are short).
    "$DOCKERD" --data-root "$dir/data" --exec-root "$dir/x" --host "unix://$dir/d.sock" \
        --host "tcp://127.0.0.1:$tls_port" --tlsverify --tlscacert "$dir/tls/ca.pem" \
        --tlscert "$dir/tls/server-cert.pem" --tlskey "$dir/tls/server-key.pem" \
        --pidfile "$dir/d.pid" --bridge=none --iptables=false --ip6tables=false \
        --log-level=warn >"$dir/dockerd.log" 2>&1 &
    echo $! >"$dir/d.launcher"
    for i in $(seq 1 120); do
        d "$dir" info >/dev/null 2>&1 && break
        kill -0 "$(cat "$dir/d.launcher")" 2>/dev/null || { tail -n 20 "$dir/dockerd.log" >&2; die "dockerd exited"; }
        sleep 0.5
    done
    d "$dir" info >/dev/null 2>&1 || { tail -n 20 "$dir/dockerd.log" >&2; die "dockerd did not answer within 60 s"; }
    port=$(pick_free_port)
    d "$dir" swarm init --advertise-addr "127.0.0.1:$port" --listen-addr "127.0.0.1:$port" >/dev/null
    {
        echo "export CONCIERGE_TEST_DOCKER_HOST='unix://$dir/d.sock'"
        echo "export CONCIERGE_TEST_DOCKER='$DOCKER'"
        echo "export CONCIERGE_TEST_DOCKER_TLS_HOST='tcp://127.0.0.1:$tls_port'"
        echo "export CONCIERGE_TEST_DOCKER_CERT_PATH='$dir/tls/client'"
    } >"$dir/env"
    log "started a private engine and a one-node Swarm (127.0.0.1:$port) in $dir; env: $dir/env"
}

base_image() {
    local dir=$1 rootfs mirror
    if [[ ! -s $BASE_TAR ]]; then
        mkdir -p "$CACHE"
        rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
        mirror=$(awk '/^URIs:/ {print $2; exit} /^deb / {print $2; exit}' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true)
        mirror=${mirror:-http://deb.debian.org/debian}
        log "making the base image from Debian packages (debootstrap --variant=minbase bookworm, $mirror)"
        debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$CACHE/debootstrap.log" 2>&1 ||
            { tail -n 20 "$CACHE/debootstrap.log" >&2; rm -rf "$rootfs"; die "debootstrap failed"; }
        tar -C "$rootfs" -cf "$BASE_TAR.tmp" . && mv "$BASE_TAR.tmp" "$BASE_TAR"
        rm -rf "$rootfs"
    fi
    d "$dir" image inspect "$BASE_IMAGE" >/dev/null 2>&1 || d "$dir" import - "$BASE_IMAGE" <"$BASE_TAR" >/dev/null
}

cmd_image() {
    local dir ctx binary=${2:-}
    dir=$(cd "$1" && pwd -P)
    [[ -S $dir/d.sock ]] || die "no engine in $dir (scripts/docker.sh start $dir)"
    base_image "$dir"
    if [[ -z $binary ]]; then
        # The shipped build of the current tree (a no-op when it is up to date).
        (cd "$root" && cargo build --profile dist --locked -q --bin concierge)
        binary=$root/target/dist/concierge
    fi
    [[ -x $binary ]] || die "no binary at $binary"
    # A small build context: the Dockerfile and the binary (the `prebuilt` stage's COPY),
    # without debug info (a debug build's is most of its size).
    ctx=$(mktemp -d "$dir/ctx.XXXXXX")
    mkdir -p "$ctx/target/dist"
    cp "$root/Dockerfile" "$ctx/"
    objcopy --strip-debug "$binary" "$ctx/target/dist/concierge" 2>/dev/null || cp "$binary" "$ctx/target/dist/concierge"
    # BuildKit builds only the stages the target needs; host networking lets the runtime
    # stage's apt-get reach the Debian mirror.
    DOCKER_BUILDKIT=1 d "$dir" build --network host --build-arg "BASE=$BASE_IMAGE" --build-arg BINARY=prebuilt \
        --target runtime -t "$IMAGE" "$ctx" >"$dir/build.log" 2>&1 || { tail -n 30 "$dir/build.log" >&2; die "image build failed"; }
    rm -rf "$ctx"
    grep -q CONCIERGE_TEST_IMAGE "$dir/env" || echo "export CONCIERGE_TEST_IMAGE='$IMAGE'" >>"$dir/env"
    log "built $IMAGE (Dockerfile runtime stage, $binary, base $BASE_IMAGE)"
}

cmd_stop() {
    local dir=$1 pid i
    [[ -d $dir ]] || return 0
    dir=$(cd "$dir" && pwd -P)
    if [[ -S $dir/d.sock ]] && d "$dir" info >/dev/null 2>&1; then
        # Services first (Swarm would restart their containers), then containers, then the swarm.
        d "$dir" service ls -q 2>/dev/null | xargs -r env DOCKER_HOST="unix://$dir/d.sock" "$DOCKER" service rm >/dev/null 2>&1 || true
        d "$dir" ps -aq 2>/dev/null | xargs -r env DOCKER_HOST="unix://$dir/d.sock" "$DOCKER" rm -f >/dev/null 2>&1 || true
        d "$dir" swarm leave --force >/dev/null 2>&1 || true
    fi
    for file in d.pid d.launcher; do
        [[ -s $dir/$file ]] || continue
        pid=$(cat "$dir/$file")
        kill -TERM "$pid" 2>/dev/null || continue
        for i in $(seq 1 60); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    # The engine's own containerd and shims, if any survived it.
    pkill -KILL -f -- "$dir/x/" 2>/dev/null || true
    # Mounts left under DIR (overlay layers, shm, netns), deepest first.
    awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
    rm -f "$dir/d.pid" "$dir/d.launcher" "$dir/d.sock"
    log "stopped the engine of $dir"
}

[[ $# -ge 1 ]] || usage
cmd=$1
shift
case $cmd in
install) cmd_install ;;
start) [[ $# -eq 1 ]] || usage; cmd_start "$1" ;;
base) [[ $# -eq 1 ]] || usage; base_image "$(cd "$1" && pwd -P)" ;;
image) [[ $# -eq 1 || $# -eq 2 ]] || usage; cmd_image "$@" ;;
stop) [[ $# -eq 1 ]] || usage; cmd_stop "$1" ;;
*) usage ;;
esac
