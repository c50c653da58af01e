#!/usr/bin/env bash
# Where a proxied request's time goes, for `mesh lb` and HAProxy side by side: the costs that a
# busy machine hardly moves, so the figures can be taken while others use the cores.
#
#   backends: the two nginx of bench/lb.sh; targets: mesh lb -workers 1, HAProxy nbthread 1
#             (bench/lb-peers.sh, the same configuration as bench/lb.sh)
#   client:   wrk -t1 -cCONNS -dDURATION, after a 1 s warm-up, REPS repetitions interleaved
#   prints, per proxied request (medians of the reps):
#     CPU us     utime + stime of the target (/proc/PID/stat, every thread) over a run with
#                nothing attached
#     syscalls   raw_syscalls:sys_enter counted by `perf stat -p PID` over a second run (its
#                tracepoints cost the target CPU time), with the main ones apart
#     kernel     tracepoints counted in the target's context: tasks woken, network softirqs,
#                packets sent to the device, buffers freed; and its context switches
#     instr      user-space instructions, counted by callgrind on a separate run under valgrind
#                (collection switched on for the wrk run only): exact, whatever the load; the
#                top functions of both targets follow
#   and, with --perf, `perf record -g` (cpu-clock) of both targets under wrk, REPS times: CPU
#   time per request by object, along the kernel's main paths, and per function, side by side.
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
# Env:   MESH_BIN (default build/mesh), REPS (3), DURATION (5 s), CONNS (50), CG_DURATION (4 s),
#        LB_IO (epoll or uring: mesh lb's -io; default its own choice, io_uring where allowed)
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
          epoll_ctl io_uring_enter accept4 connect close setsockopt getsockopt futex)
PERF_EVENTS=raw_syscalls:sys_enter
for s in "${SYSCALLS[@]}"; do PERF_EVENTS+=",syscalls:sys_enter_$s"; done
# What the kernel does in the target's context, counted on tracepoints: the tasks it wakes
# (a send wakes the peer's epoll_wait), the network softirqs it runs (loopback delivers a
# send's segment to the receiver in the sender's context), the packets handed to the device,
# and the buffers freed.
KEVENTS=(sched:sched_waking irq:softirq_entry net:net_dev_xmit skb:consume_skb skb:kfree_skb)
for e in "${KEVENTS[@]}"; do PERF_EVENTS+=",$e"; done

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# context switches of every thread of PID: "voluntary involuntary"
ctx_switches() {
    cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ { v += $2 }
        /^nonvoluntary_ctxt_switches/ { i += $2 } END { print v + 0, i + 0 }'
}
HZ=$(getconf CLK_TCK)

# wrk_requests WRK_OUTPUT: the number of requests it completed
wrk_requests() { awk '/requests in/ { print $1 }' <<<"$1"; }

# measure TARGET REP: two wrk runs. The first takes CPU time and context switches with
# nothing attached; the second counts system calls and kernel tracepoints with `perf stat`,
# whose every counted event costs the target CPU time, so the first run's times stay clean.
measure() {
    local t=$1 rep=$2 pid=${PID[$1]} url="http://127.0.0.1:${PORT[$1]}/"
    local c0 c1 s0 s1 out n counted perfpid
    timeout 10 wrk -t1 -c"$CONNS" -d1s "$url" >/dev/null 2>&1 || true
    c0=$(cpu_ticks "$pid"); s0=$(ctx_switches "$pid")
    out=$(timeout $((DURATION + 20)) wrk -t1 -c"$CONNS" -d"${DURATION}s" "$url" 2>&1 || true)
    c1=$(cpu_ticks "$pid"); s1=$(ctx_switches "$pid")
    n=$(wrk_requests "$out")
    if [[ -z $n || $n == 0 ]]; then log "$t served nothing: $out"; exit 1; fi
    timeout $((DURATION + 30)) perf stat -x, -e "$PERF_EVENTS" -p "$pid" \
        -o "$TMP/perf-$t-$rep.csv" 2>/dev/null &
    perfpid=$!
    sleep 0.5 # perf attaches to every thread before the run starts
    out=$(timeout $((DURATION + 20)) wrk -t1 -c"$CONNS" -d"${DURATION}s" "$url" 2>&1 || true)
    kill -INT "$perfpid" 2>/dev/null || true
    wait "$perfpid" 2>/dev/null || true
    counted=$(wrk_requests "$out")
    if [[ -z $counted || $counted == 0 ]]; then log "$t served nothing: $out"; exit 1; fi
    awk -F, -v t="$t" -v rep="$rep" -v n="$n" -v m="$counted" -v hz="$HZ" -v c="$((c1 - c0))" \
        -v d="$DURATION" -v s0="$s0" -v s1="$s1" '
        $3 ~ /^(raw_)?syscalls:/ { k = $3; sub(/.*:(sys_enter_)?/, "", k); v[k] = $1 }
        $3 ~ /^(sched|irq|net|skb):/ { v[$3] = $1 }
        END {
            printf "%s\t%s\treq/s\t%.0f\n", t, rep, n / d
            printf "%s\t%s\tcpu_us\t%.2f\n", t, rep, c / hz * 1e6 / n
            split(s0, a, " "); split(s1, b, " ")
            printf "%s\t%s\tvoluntary_switches\t%.3f\n", t, rep, (b[1] - a[1]) / n
            printf "%s\t%s\tpreemptions\t%.3f\n", t, rep, (b[2] - a[2]) / n
            for (k in v) printf "%s\t%s\t%s\t%.3f\n", t, rep, k, v[k] / m
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
for e in "${KEVENTS[@]}"; do row "kernel: $e" "$e" "%.2f"; done
row "context switches: waits (voluntary)" voluntary_switches "%.3f"
row "context switches: preemptions" preemptions "%.3f"
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
    # perf record of each target under the same load, REPS times interleaved, at a fixed
    # sampling period, so that a function's samples x the period / the requests served is its
    # CPU time per request; each figure is the median over the reps. Inclusive figures (a
    # function and all it calls) say what a send or a wake-up costs, self figures where exactly.
    # A sample due while interrupts are off is taken when they are turned back on, so it lands
    # on the function that does that (here the paravirtualised pvm_irq_enable; on bare metal
    # e.g. _raw_spin_unlock_irqrestore): the inclusive figures count it to its callers.
    PERIOD_NS=100000
    : >"$TMP/perf.tsv"
    for rep in $(seq "$REPS"); do
        for t in "${TARGETS[@]}"; do
            url="http://127.0.0.1:${PORT[$t]}/"
            timeout 10 wrk -t1 -c"$CONNS" -d1s "$url" >/dev/null 2>&1 || true
            timeout $((DURATION + 30)) perf record -q -e cpu-clock -c "$PERIOD_NS" -g \
                -p "${PID[$t]}" -o "$TMP/perf.data" 2>/dev/null &
            perfpid=$!
            sleep 0.5
            out=$(timeout $((DURATION + 20)) wrk -t1 -c"$CONNS" -d"${DURATION}s" "$url" 2>&1 ||
                true)
            kill -INT "$perfpid" 2>/dev/null || true
            wait "$perfpid" 2>/dev/null || true
            n=$(wrk_requests "$out")
            log "perf rep $rep $t: $n requests"
            # per symbol: target, rep, inclusive and self us per request; [obj] per object
            { perf report -i "$TMP/perf.data" --children --stdio --sort symbol -g none -n \
                2>/dev/null | awk '!/^#/ && /%/ { print $1, $2, $3, $5 }'
              perf report -i "$TMP/perf.data" --no-children --stdio --sort dso -g none -n \
                2>/dev/null | awk '!/^#/ && /%/ { print $1, $1, 0, "[" $3 "]" }'
            } | awk -v t="$t" -v rep="$rep" -v n="$n" -v p="$PERIOD_NS" '
                { c[NR] = $1; s[NR] = $2; sym[NR] = $4; tot += $3 }
                END { for (i = 1; i <= NR; i++)
                    printf "%s\t%s\t%s\t%.3f\t%.3f\n", t, rep, sym[i],
                        c[i] / 100 * tot * p / 1000 / n, s[i] / 100 * tot * p / 1000 / n }' \
                >>"$TMP/perf.tsv"
        done
    done

    # perf_med TARGET SYMBOL COLUMN (4 inclusive, 5 self): median us per request over the reps
    perf_med() {
        awk -F'\t' -v t="$1" -v s="$2" -v c="$3" '$1 == t && $3 == s { print $c }' \
            "$TMP/perf.tsv" | median
    }
    perf_row() { # perf_row LABEL SYMBOL COLUMN
        local a b
        a=$(perf_med mesh "$2" "$3"); b=$(perf_med haproxy "$2" "$3")
        awk -v l="$1" -v a="$a" -v b="$b" 'BEGIN {
            if (a >= 0.05 || b >= 0.05) printf "| %s | %.2f | %.2f |\n", l, a, b }'
    }
    echo
    echo "perf record -e cpu-clock -g, wrk -t1 -c$CONNS -d${DURATION}s, medians of $REPS:" \
         "CPU us per request"
    echo
    echo "| by object (self) | mesh lb | HAProxy |"
    echo "|---|---|---|"
    for o in '[[kernel.kallsyms]]' '[libc.so.6]' '[mesh]' '[libuv.so.1.0.0]' '[haproxy]'; do
        perf_row "${o:1:-1}" "$o" 5
    done
    echo
    echo "| kernel path (inclusive: the function and all it calls) | mesh lb | HAProxy |"
    echo "|---|---|---|"
    for s in do_syscall_64 __sys_sendto __sys_sendmsg tcp_sendmsg_locked __dev_queue_xmit \
        net_rx_action tcp_v4_rcv tcp_ack sock_def_readable __sys_recvfrom tcp_recvmsg_locked \
        do_epoll_wait ep_send_events ep_item_poll.isra.0 sock_poll ep_poll_callback \
        __alloc_skb skb_release_data exit_to_user_mode_loop __schedule try_to_wake_up fdget \
        pvm_irq_enable; do
        perf_row "$s" "$s" 4
    done
    echo
    echo "| function (self), above 0.1 us in either | mesh lb | HAProxy |"
    echo "|---|---|---|"
    # the candidates: above 0.1 us in some rep
    awk -F'\t' '$3 !~ /^\[/ && $5 >= 0.1 { print $3 }' "$TMP/perf.tsv" | sort -u |
        while read -r s; do
            printf '%s\t%s\t%s\n' "$s" "$(perf_med mesh "$s" 5)" "$(perf_med haproxy "$s" 5)"
        done | awk -F'\t' '$2 >= 0.1 || $3 >= 0.1' | sort -t $'\t' -k2,2gr |
        awk -F'\t' '{ printf "| %s | %.2f | %.2f |\n", $1, $2, $3 }' | head -45
fi
