#!/usr/bin/env bash
# Where a proxied request's time goes, for `mesh lb` and HAProxy side by side: the costs that a
# busy machine hardly moves, so the figures can be taken while others use the cores.
#
#   backends: the two nginx of bench/lb.sh; targets: mesh lb -workers 1, HAProxy nbthread 1
#             (bench/lb-peers.sh, the same configuration as bench/lb.sh)
#   client:   wrk -t1 -cCONNS -dDURATION, after a 1 s warm-up, REPS repetitions interleaved
#   prints, per proxied request (medians of the reps):
#     CPU us     utime + stime of the target (/proc/PID/stat, every thread) over the run
#     syscalls   raw_syscalls:sys_enter counted by `perf stat -p PID`, with the main ones apart
#     instr      user-space instructions, counted by callgrind on a separate run under valgrind
#                (collection switched on for the wrk run only): exact, whatever the load; the
#                top functions of both targets follow
#   and, with --perf, `perf record -g` (cpu-clock) of mesh lb under wrk: where its cycles go,
#   the kernel's included.
#
# CPU time and system calls per request hold on a loaded machine far better than requests per
# second do; instructions do not depend on the load at all. Each figure is a ratio of counts
# taken over the same run, so a slower run serves fewer requests at about the same cost each.
#
# Everything listens on free 127.0.0.1 ports and is stopped by PID (trap); every wrk and perf
# run is wrapped in `timeout`. Run as root, it installs haproxy, nginx, wrk, valgrind and perf
# with apt-get when missing. Use an optimised build with symbols (RelWithDebInfo).
#
# Usage: bench/lb-profile.sh [--quick] [--no-callgrind] [--perf]
# Env:   MESH_BIN (default build/mesh), REPS (3), DURATION (5 s), CONNS (50), CG_DURATION (4 s)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MESH=${MESH_BIN:-$ROOT/build/mesh}
REPS=${REPS:-3}
DURATION=${DURATION:-5}
CONNS=${CONNS:-50}
CG_DURATION=${CG_DURATION:-4}
CALLGRIND=1
PERF_RECORD=0
for a in "$@"; do
    case $a in
    --quick) REPS=1; DURATION=2; CG_DURATION=2 ;;
    --no-callgrind) CALLGRIND=0 ;;
    --perf) PERF_RECORD=1 ;;
    *) echo "usage: $0 [--quick] [--no-callgrind] [--perf]" >&2; exit 2 ;;
    esac
done

BENCH=lb-profile.sh
# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"

bench_tools haproxy nginx wrk curl valgrind perf:linux-perf
[[ -x "$MESH" ]] || { log "no mesh binary at $MESH (build it, or set MESH_BIN)"; exit 1; }
"$MESH" lb -help >/dev/null 2>&1 || { log "$MESH has no 'lb' command"; exit 1; }

bench_start_tmp lbprofile
# shellcheck source=bench/lb-peers.sh
. "$ROOT/bench/lb-peers.sh"
start_backends

declare -A PORT PID
TARGETS=(mesh haproxy)
start_mesh_lb mesh 1
PID[mesh]=$LAST_PID; PORT[mesh]=$LAST_PORT
start_haproxy haproxy 1
PID[haproxy]=$LAST_PID; PORT[haproxy]=$LAST_PORT
for t in "${TARGETS[@]}"; do wait_http "${PORT[$t]}"; done
sleep 2 # let the health checks settle

# The main system calls, counted apart (the total is raw_syscalls:sys_enter).
SYSCALLS=(read write readv writev recvfrom sendto recvmsg sendmsg epoll_wait epoll_pwait
          epoll_ctl accept4 connect close setsockopt getsockopt futex)
PERF_EVENTS=raw_syscalls:sys_enter
for s in "${SYSCALLS[@]}"; do PERF_EVENTS+=",syscalls:sys_enter_$s"; done

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# wrk_requests WRK_OUTPUT: the number of requests it completed
wrk_requests() { awk '/requests in/ { print $1 }' <<<"$1"; }

# measure TARGET REP: one wrk run with CPU time and system calls taken around it.
measure() {
    local t=$1 rep=$2 pid=${PID[$1]} url="http://127.0.0.1:${PORT[$1]}/"
    local c0 c1 out n perfpid
    timeout 10 wrk -t1 -c"$CONNS" -d1s "$url" >/dev/null 2>&1 || true
    timeout $((DURATION + 30)) perf stat -x, -e "$PERF_EVENTS" -p "$pid" \
        -o "$TMP/perf-$t-$rep.csv" 2>/dev/null &
    perfpid=$!
    sleep 0.5 # perf attaches to every thread before the run starts
    c0=$(cpu_ticks "$pid")
    out=$(timeout $((DURATION + 20)) wrk -t1 -c"$CONNS" -d"${DURATION}s" "$url" 2>&1 || true)
    c1=$(cpu_ticks "$pid")
    kill -INT "$perfpid" 2>/dev/null || true
    wait "$perfpid" 2>/dev/null || true
    n=$(wrk_requests "$out")
    if [[ -z $n || $n == 0 ]]; then log "$t served nothing: $out"; exit 1; fi
    awk -F, -v t="$t" -v rep="$rep" -v n="$n" -v hz="$HZ" -v c="$((c1 - c0))" -v d="$DURATION" '
        $3 ~ /^(raw_)?syscalls:/ { k = $3; sub(/.*:(sys_enter_)?/, "", k); v[k] = $1 }
        END {
            printf "%s\t%s\treq/s\t%.0f\n", t, rep, n / d
            printf "%s\t%s\tcpu_us\t%.2f\n", t, rep, c / hz * 1e6 / n
            for (k in v) printf "%s\t%s\t%s\t%.3f\n", t, rep, k, v[k] / n
        }' "$TMP/perf-$t-$rep.csv" >>"$TMP/results.tsv"
    log "rep $rep $t: $n requests, $(((c1 - c0) * 1000000 / HZ / n)) us CPU each"
}

: >"$TMP/results.tsv"
LOAD_BEFORE=$(load1)
for rep in $(seq "$REPS"); do
    for t in "${TARGETS[@]}"; do measure "$t" "$rep"; done
done
LOAD_AFTER=$(load1)

# median of metric $2 of target $1 over the reps
med() { awk -F'\t' -v t="$1" -v k="$2" '$1 == t && $3 == k { print $4 }' "$TMP/results.tsv" | median; }

# ---------------------------------------------------------------- instructions (callgrind)

# callgrind_run TARGET START_FN: the target under callgrind, collecting during one wrk run
# only; sets CG_IR (instructions) and CG_N (requests), leaves the profile in $TMP/cg-TARGET.out.
callgrind_run() {
    local t=$1 out n i
    "$2" "cg-$t" 1 valgrind --tool=callgrind --instr-atstart=no \
        --callgrind-out-file="$TMP/cg-$t.out"
    local pid=$LAST_PID url="http://127.0.0.1:$LAST_PORT/"
    for i in $(seq 300); do
        curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && break
        sleep 0.1
    done
    timeout 20 wrk -t1 -c"$CONNS" -d1s "$url" >/dev/null 2>&1 || true
    # callgrind_control finds the valgrind process by its PID (its vgdb link)
    timeout 30 callgrind_control -i on "$pid" >/dev/null
    out=$(timeout $((CG_DURATION + 30)) wrk -t1 -c"$CONNS" -d"${CG_DURATION}s" "$url" 2>&1 || true)
    timeout 30 callgrind_control -i off "$pid" >/dev/null
    kill -TERM "$pid"
    for i in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    n=$(wrk_requests "$out")
    i=$(awk '/^totals:/ { print $2 }' "$TMP/cg-$t.out")
    CG_IR=${i:-0}; CG_N=${n:-0}
}

if [[ $CALLGRIND == 1 ]]; then
    callgrind_run mesh start_mesh_lb; MESH_IR=$CG_IR; MESH_IR_N=$CG_N
    callgrind_run haproxy start_haproxy; HAP_IR=$CG_IR; HAP_IR_N=$CG_N
fi

# ---------------------------------------------------------------- report

echo
echo "Per proxied request: mesh lb -workers 1 vs HAProxy $(haproxy -v | awk 'NR == 1 { print $3 }')" \
     "nbthread 1, wrk -t1 -c$CONNS -d${DURATION}s, medians of $REPS, $(nproc) CPUs," \
     "$(date -u '+%Y-%m-%d %H:%M UTC'), load average $LOAD_BEFORE before, $LOAD_AFTER after"
echo
echo "| per request | mesh lb | HAProxy | mesh / HAProxy |"
echo "|---|---|---|---|"
row() { # row LABEL METRIC FORMAT
    local a b
    a=$(med mesh "$2"); b=$(med haproxy "$2")
    printf "| %s | $3 | $3 | %s |\n" "$1" "$a" "$b" \
        "$(awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
}
row "CPU us (user + system)" cpu_us "%.1f"
row "system calls" sys_enter "%.2f"
for s in "${SYSCALLS[@]}"; do
    a=$(med mesh "$s"); b=$(med haproxy "$s")
    if awk -v a="$a" -v b="$b" 'BEGIN { exit !(a >= 0.005 || b >= 0.005) }'; then
        row "- $s" "$s" "%.2f"
    fi
done
if [[ $CALLGRIND == 1 ]]; then
    per() { awk -v i="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.0f", i / n; else print 0 }'; }
    a=$(per "$MESH_IR" "$MESH_IR_N"); b=$(per "$HAP_IR" "$HAP_IR_N")
    printf '| user-space instructions (callgrind, %s and %s requests) | %s | %s | %s |\n' \
        "$MESH_IR_N" "$HAP_IR_N" "$a" "$b" \
        "$(awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
fi
row "req/s (noise on a busy machine)" "req/s" "%.0f"

if [[ $CALLGRIND == 1 ]]; then
    for t in mesh haproxy; do
        n=$([[ $t == mesh ]] && echo "$MESH_IR_N" || echo "$HAP_IR_N")
        echo
        echo "Top functions of $t, instructions per request (self, callgrind):"
        echo
        callgrind_annotate --threshold=100 "$TMP/cg-$t.out" 2>/dev/null |
            awk -v n="$n" '/file:function/ { on = 1; next }
                on && $1 ~ /^[0-9,]+$/ { ir = $1; gsub(",", "", ir); fn = $0
                    sub(/^ *[0-9,]+ +\( *[0-9.]+%\) +/, "", fn); sub(/ .*/, "", fn)
                    sub(/^.*\//, "", fn); printf "    %8.0f  %s\n", ir / n, fn
                    if (++k == 20) exit }' || true # the early exit is a SIGPIPE upstream
    done
fi

if [[ $PERF_RECORD == 1 ]]; then
    url="http://127.0.0.1:${PORT[mesh]}/"
    timeout $((DURATION + 30)) perf record -q -e cpu-clock -g -p "${PID[mesh]}" \
        -o "$TMP/perf.data" 2>/dev/null &
    perfpid=$!
    sleep 0.5
    timeout $((DURATION + 20)) wrk -t1 -c"$CONNS" -d"${DURATION}s" "$url" >/dev/null 2>&1 || true
    kill -INT "$perfpid" 2>/dev/null || true
    wait "$perfpid" 2>/dev/null || true
    echo
    echo "mesh lb under wrk, perf record -e cpu-clock -g: where its CPU time goes, by object:"
    echo
    perf report -i "$TMP/perf.data" --no-children --stdio --sort dso -g none 2>/dev/null |
        awk '/%/ && !/^#/ { printf "    %s  %s\n", $1, $2 }' | head -8 || true
    echo
    echo "and by function (self time, kernel included):"
    echo
    perf report -i "$TMP/perf.data" --no-children --stdio --sort symbol --percent-limit 1 \
        -g none 2>/dev/null | awk '/%/ && !/^#/ { print "    " $0 }' | head -40 || true
fi
