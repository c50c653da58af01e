# Shared by the bench scripts (sourced after they set BENCH, e.g. BENCH=lb.sh): messages, the
# peer tools, a temporary directory and the processes started in it (stopped by PID on exit),
# free ports, waiting for HTTP and medians. bash only.

log() { echo "$BENCH: $*" >&2; }

# bench_tools TOOL[:PACKAGE]...: installs the missing ones with apt-get when root (the package
# named like the tool unless given, e.g. perf:linux-perf), else exits saying so.
bench_tools() {
    local t need=()
    for t in "$@"; do command -v "${t%%:*}" >/dev/null || need+=("${t#*:}"); done
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

# The machine must be quiet for a figure to mean anything. The 1-minute load average says so
# before the first run, but cannot between runs: it still remembers the bench's own previous run
# for minutes. So between runs, with the bench's processes idle, the CPU time the whole machine
# spends in one second is measured instead: anything above MAX_BUSY percent is other work.
# MESH_BENCH_IGNORE_LOAD=1 goes on anyway (to check a script, never for figures to publish).
MAX_LOAD=${MAX_LOAD:-0.5}
MAX_BUSY=${MAX_BUSY:-15}

load1() { awk '{ print $1 }' /proc/loadavg; }

# busy_percent: the share of all CPUs' time spent not idle over the next second.
busy_percent() {
    local a b
    a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
    sleep 1
    b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
        busy = y[1] - x[1]; idle = y[2] - x[2];
        printf "%.0f", (busy + idle > 0) ? 100 * busy / (busy + idle) : 0 }'
}

# refuse_busy WHY: exit 3 without a report, unless MESH_BENCH_IGNORE_LOAD=1.
refuse_busy() {
    if [[ ${MESH_BENCH_IGNORE_LOAD:-0} == 1 ]]; then
        log "$1: going on (MESH_BENCH_IGNORE_LOAD=1), the figures are not publishable"
        return 0
    fi
    log "REFUSED: $1: the machine is busy, so the figures would be worthless." \
        "Run it on a quiet machine."
    exit 3
}

# bench_check_start: before anything starts, the 1-minute load average must be <= MAX_LOAD.
bench_check_start() {
    local l
    l=$(load1)
    if awk -v l="$l" -v m="$MAX_LOAD" 'BEGIN { exit !(l > m) }'; then
        refuse_busy "the 1-minute load average is $l (> $MAX_LOAD)"
    fi
    log "1-minute load average at start: $l"
}

# bench_check_between WHAT: prints the machine's busy percent over one second (bench idle).
bench_check_between() {
    local b
    b=$(busy_percent)
    ((b <= MAX_BUSY)) || refuse_busy "the CPUs were ${b}% busy (> ${MAX_BUSY}%) before $1" >&2
    echo "$b"
}
