#!/usr/bin/env bash
# Run the test suite against a private, throw-away RabbitMQ node.
#
#   scripts/test.sh                 -> cargo test
#   scripts/test.sh -- --nocapture  -> cargo test -- --nocapture   (args go to cargo test)
#   CONCIERGE_TEST_CMD='sh -c ...' scripts/test.sh   -> run another command instead of cargo test
#
# The node (see scripts/rabbitmq.sh) gets its own port, data dir and node name, is
# started before and always stopped after the command; CONCIERGE_TEST_* variables
# (AMQP URL/port, node name, rabbitmqctl wrapper) are exported to the command.
# Set CONCIERGE_TEST_RABBITMQ_DIR to keep the broker's files in a known place.
#
# The ECS tests start their own moto server (PyPI's moto[server], installed here into a private
# Python environment if missing: scripts/venv.sh).
# A whole run (no arguments) runs the test binaries side by side: the Swarm/ECS ones (autoscale,
# scale, container: mostly waiting on the engine) each on its own, the two that stop or alarm
# the broker (broker_alarm, broker_restart) on a second private node of their own, the rest
# one after another; each group's output is printed whole after the rest, and the run fails if
# any group failed. With arguments, one `cargo test` as given.
#
# For the container tests (a whole run, or one naming `container`, `scale` or `autoscale`), a private Docker engine
# with a one-node Swarm is started the same way (scripts/docker.sh, as root) and the image is
# built from the Dockerfile's runtime stage with this tree's debug binary; CONCIERGE_TEST_DOCKER*
# variables point the tests at it. Debian's prometheus and prometheus-alertmanager are
# installed then too, for the scheduler's whole loop. Without root (outside CI) the container tests skip.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd "$here/.." && pwd -P)
rmq="$here/rabbitmq.sh"

# The tests compile in the background while packages, the broker and the engine are set up
# (CPU-bound work beside network- and disk-bound work). Its output is not shown: when it
# fails, `cargo test` below fails the same way and says why.
# (Not for CONCIERGE_TEST_CMD, which may need no test build at all.)
build_pid=
if [[ -z ${CONCIERGE_TEST_CMD:-} ]]; then
    (cd "$root" && exec cargo test --no-run --locked -q "$@") >/dev/null 2>&1 &
    build_pid=$!
    # Until the cleanup below takes over: a failed install stops the build too.
    trap 'kill "$build_pid" 2>/dev/null' EXIT
fi
built() {
    [[ -n $build_pid ]] || return 0
    wait "$build_pid" || true
    build_pid=
}

"$rmq" install
# The native plugin tests run Debian's monitoring-plugins side by side with Concierge.
# (check_curl and check_dns are in monitoring-plugins-standard; the package only recommends
# what they need to run: check_dns runs nslookup, check_curl links libcurl and liburiparser.)
plugins=(monitoring-plugins-basic monitoring-plugins-standard bind9-dnsutils libcurl4 liburiparser1)
if { [[ ! -x /usr/lib/nagios/plugins/check_tcp ]] || [[ ! -x /usr/lib/nagios/plugins/check_curl ]] ||
    [[ ! -x /usr/bin/nslookup ]] || [[ $(ldd /usr/lib/nagios/plugins/check_curl 2>&1) == *"not found"* ]]; } &&
    (( EUID == 0 )); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${plugins[@]}" >/dev/null 2>&1 || {
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${plugins[@]}" >/dev/null
    }
fi
# The ECS tests talk to PyPI's moto server on loopback (AWS is not reachable here), from a
# private environment kept between runs (CONCIERGE_TEST_VENV to put it elsewhere).
moto_version=5.2.1
# Outside CI a machine that cannot make it (offline, no python3-venv and not root) still runs
# the rest: the ECS tests say they skip.
venv=${CONCIERGE_TEST_VENV:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/concierge/moto-$moto_version}
if python=$("$here/venv.sh" "$venv" "import flask, moto, sys; sys.exit(moto.__version__ != '$moto_version')" \
    "moto[server]==$moto_version"); then
    # The interpreter on its own (its path may hold spaces): the tests run `PYTHON -m moto.server`.
    export CONCIERGE_TEST_MOTO_PYTHON=$python
elif [[ -n ${CI:-} ]]; then
    exit 1
else
    echo "test.sh: no moto server (see above): the ECS tests will skip" >&2
fi

if [[ -n ${CONCIERGE_TEST_RABBITMQ_DIR:-} ]]; then
    dir=$CONCIERGE_TEST_RABBITMQ_DIR
    cleanup_dir=0
else
    dir=$(mktemp -d /tmp/concierge-rabbitmq.XXXXXX)
    cleanup_dir=1
fi

docker_dir=
# The tests that need the engine (and, in a whole run, each run on their own).
engine=(autoscale scale container)
# A whole run's second node (for the tests that stop or alarm theirs) and its groups' output.
whole=0
[[ $# -eq 0 && -z ${CONCIERGE_TEST_CMD:-} ]] && whole=1
own_dir=
logs=
declare -A group=()
cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    # Groups still running (the run was interrupted): their test binaries, then cargo.
    for pid in "${!group[@]}"; do
        pkill -TERM -P "$pid" 2>/dev/null || true
        kill "$pid" 2>/dev/null || true
    done
    if [[ -n $build_pid ]]; then
        kill "$build_pid" 2>/dev/null || true
        wait "$build_pid" 2>/dev/null || true
    fi
    if [[ -n $docker_dir ]]; then
        "$here/docker.sh" stop "$docker_dir" || rc=1
        rm -rf "$docker_dir"
    fi
    if [[ -n $own_dir ]]; then
        "$rmq" stop "$own_dir" || rc=1
        (( rc != 0 )) || rm -rf "$own_dir"
    fi
    [[ -z $logs ]] || rm -rf "$logs"
    "$rmq" stop "$dir" || rc=1
    if (( cleanup_dir && rc == 0 )); then rm -rf "$dir"; fi
    (( rc == 0 )) || echo "test.sh: broker files kept in $dir${own_dir:+ and $own_dir}" >&2
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$rmq" start "$dir"
own_started=
if (( whole )); then
    # Started while the engine is set up; waited for before the tests run.
    own_dir=$(mktemp -d /tmp/concierge-rabbitmq.XXXXXX)
    "$rmq" start "$own_dir" &
    own_started=$!
fi
# shellcheck disable=SC1091
. "$dir/env"

cd "$root"
# The tests that need the engine (container, scale, autoscale) run when the whole suite runs, or when named.
wants_docker=1
for arg in "$@"; do
    case $arg in --test | --lib | --bins | --doc | --examples | --benches) wants_docker=0 ;; esac
done
for arg in "$@"; do [[ " ${engine[*]} " == *" $arg "* ]] && wants_docker=1; done
if (( wants_docker )) && (( EUID == 0 )); then
    "$here/docker.sh" install
    # The scheduler's whole loop (tests/scale.rs) runs Debian's Prometheus and Alertmanager.
    if ! command -v prometheus >/dev/null || ! command -v prometheus-alertmanager >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            prometheus prometheus-alertmanager >/dev/null 2>&1 || {
            apt-get update -q >/dev/null
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                prometheus prometheus-alertmanager >/dev/null
        }
    fi
    docker_dir=$(mktemp -d /tmp/concierge-docker.XXXXXX)
    "$here/docker.sh" start "$docker_dir"
    "$here/docker.sh" base "$docker_dir"
    built
    # The image carries this tree's debug build (the binary the other tests run, without its
    # debug info): the shipped `dist` build's whole-program LTO would add minutes to every run.
    cargo build --locked -q --bin concierge
    "$here/docker.sh" image "$docker_dir" "$root/target/debug/concierge"
    # shellcheck disable=SC1091
    . "$docker_dir/env"
fi
built
if [[ -n ${CONCIERGE_TEST_CMD:-} ]]; then
    bash -c "$CONCIERGE_TEST_CMD" concierge-test "$@"
elif (( ! whole )); then
    cargo test --no-fail-fast "$@"
else
    wait "$own_started"
    logs=$(mktemp -d /tmp/concierge-test-logs.XXXXXX)
    own_broker=(broker_alarm broker_restart)
    rest=() own_args=()
    for name in "${own_broker[@]}"; do own_args+=(--test "$name"); done
    for file in tests/*.rs; do
        name=$(basename "$file" .rs)
        [[ " ${engine[*]} ${own_broker[*]} " == *" $name "* ]] || rest+=(--test "$name")
    done
    for name in "${engine[@]}"; do
        cargo test --no-fail-fast --test "$name" >"$logs/$name" 2>&1 &
        group[$!]=$name
    done
    # shellcheck disable=SC1091
    (. "$own_dir/env" && exec cargo test --no-fail-fast "${own_args[@]}") >"$logs/broker" 2>&1 &
    group[$!]=broker
    failed=()
    cargo test --no-fail-fast --lib --bins "${rest[@]}" || failed+=("the rest")
    cargo test --doc || failed+=("doc tests")
    for pid in "${!group[@]}"; do
        rc=0
        wait "$pid" || rc=$?
        name=${group[$pid]}
        [[ $name != broker ]] || name="${own_broker[*]} (their own node)"
        echo "==== ${name}: $( (( rc == 0 )) && echo passed || echo "FAILED (exit $rc)" ) ===="
        cat "$logs/${group[$pid]}"
        unset "group[$pid]"
        (( rc == 0 )) || failed+=("$name")
    done
    if (( ${#failed[@]} )); then
        echo "test.sh: failed: ${failed[*]}" >&2
        exit 1
    fi
fi
