#!/usr/bin/env bash
# What the kernel does per proxied request, for `mesh lb` and HAProxy side by side: TCP segments
# and bytes (nstat), and the system calls that carry the data (perf stat on the syscall
# tracepoints). Counts, not times: they hold on a busy machine.
#
#   setup:   the two nginx backends, mesh lb -workers 1 and HAProxy nbthread 1 of
#            bench/lb-peers.sh, all in a network namespace of the script's own, so that the
#            namespace's counters count this traffic alone
#   client:  wrk -t1 -cCONNS -dDURATION after a 1 s warm-up, REPS repetitions interleaved
#   prints:  per request, for each target and repetition: segments sent (and those with data),
#            delayed-ACK timer expiries, connections opened, bytes on the wire (IP headers
#            included), and read / recvfrom / sendto / sendmsg / write / writev / epoll_wait /
#            epoll_ctl calls
#
# Run as root (ip netns, perf); every process is stopped by PID and the namespace deleted on
# exit. Use an optimised build.
#
# Usage: bench/lb-kernel.sh
# Env:   MESH_BIN (default build/mesh), REPS (2), DURATION (3 s), CONNS (50)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z ${LB_KERNEL_NETNS:-} ]]; then
    [[ $(id -u) == 0 ]] || { echo "lb-kernel.sh: run as root (ip netns, perf)" >&2; exit 1; }
    ns=lbkernel-$$
    ip netns add "$ns"
    trap 'ip netns delete "$ns"' EXIT
    rc=0
    LB_KERNEL_NETNS=$ns ip netns exec "$ns" "$0" "$@" || rc=$?
    exit "$rc"
fi

MESH=${MESH_BIN:-$ROOT/build/mesh}
REPS=${REPS:-2}
DURATION=${DURATION:-3}
CONNS=${CONNS:-50}
BENCH=lb-kernel.sh
# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"

bench_tools haproxy nginx wrk curl perf:linux-perf nstat:iproute2
[[ -x "$MESH" ]] || { log "no mesh binary at $MESH (build it, or set MESH_BIN)"; exit 1; }

ip link set lo up
bench_start_tmp lbkernel
# shellcheck source=bench/lb-peers.sh
. "$ROOT/bench/lb-peers.sh"
start_backends
start_mesh_lb mesh 1
MESH_PORT=$LAST_PORT MESH_PID=$LAST_PID
start_haproxy haproxy 1
HAPROXY_PORT=$LAST_PORT HAPROXY_PID=$LAST_PID
wait_http "$MESH_PORT"
wait_http "$HAPROXY_PORT"
sleep 2.5 # both see their servers UP

CALLS=(read recvfrom sendto sendmsg write writev epoll_wait epoll_ctl)
EVENTS=$(printf 'syscalls:sys_enter_%s,' "${CALLS[@]}")
COUNTERS=(TcpOutSegs TcpExtTCPOrigDataSent TcpExtDelayedACKs TcpActiveOpens IpExtOutOctets)

# measure NAME PORT PID: one repetition, one line of per-request figures
measure() {
    local name=$1 port=$2 pid=$3 out n perf_pid c
    timeout 30 wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$port/" >/dev/null
    nstat -n
    timeout $((DURATION + 20)) perf stat -x, -e "${EVENTS%,}" -p "$pid" \
        -o "$TMP/perf.out" -- sleep $((DURATION + 1)) &
    perf_pid=$!
    out=$(timeout $((DURATION + 20)) wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$port/")
    wait "$perf_pid" || true
    nstat >"$TMP/nstat.out"
    n=$(awk '/requests in/ { print $1 }' <<<"$out")
    [[ -n $n && $n -gt 0 ]] || { log "$name: wrk completed no request"; return 1; }
    printf '%-8s %8d' "$name" "$n"
    for c in "${COUNTERS[@]}"; do
        awk -v k="$c" -v n="$n" '$1 == k { v = $2 } END { printf " %9.3f", v / n }' \
            "$TMP/nstat.out"
    done
    for c in "${CALLS[@]}"; do
        awk -F, -v k="syscalls:sys_enter_$c" -v n="$n" \
            '$3 == k { v = $1 } END { printf " %8.3f", v / n }' "$TMP/perf.out"
    done
    echo
}

log "per proxied request; wrk -t1 -c$CONNS -d${DURATION}s, $REPS repetitions, $MESH"
printf '%-8s %8s' target requests
printf ' %9s' segs data-segs delack opens bytes
printf ' %8s' "${CALLS[@]}"
echo
for _ in $(seq "$REPS"); do
    measure mesh "$MESH_PORT" "$MESH_PID"
    measure haproxy "$HAPROXY_PORT" "$HAPROXY_PID"
done
