# Shared by the bench scripts (sourced after they set BENCH, e.g. BENCH=lb.sh): messages, the
# peer tools, a temporary directory and the processes started in it (stopped by PID on exit),
# free ports, waiting for HTTP and medians. bash only.

log() { echo "$BENCH: $*" >&2; }

# bench_tools TOOL...: installs the missing ones with apt-get when root, else exits saying so.
bench_tools() {
    local t need=()
    for t in "$@"; do command -v "$t" >/dev/null || need+=("$t"); done
    ((${#need[@]})) || return 0
    if [[ $(id -u) != 0 ]]; then
        log "missing: ${need[*]} (run as root, or apt-get install ${need[*]})"
        exit 1
    fi
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${need[@]}" >/dev/null ||
        { apt-get update -q >/dev/null && apt-get install -y -q "${need[@]}" >/dev/null; }
}

# bench_start_tmp PREFIX: sets TMP, and PIDS (append every background PID) stopped on exit.
bench_start_tmp() {
    TMP=$(mktemp -d "/tmp/$1.XXXXXX")
    PIDS=()
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

bench_cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_http PORT: up to 10 s for a 200 on GET /
wait_http() {
    local i
    for i in $(seq 100); do
        curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$1/" 2>/dev/null && return 0
        sleep 0.1
    done
    log "nothing answers on port $1"; return 1
}

# median: of the numbers on stdin, one a line (0 when none)
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0;
    else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
