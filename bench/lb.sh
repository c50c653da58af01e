#!/usr/bin/env bash
# Benchmark `mesh lb` against HAProxy (Debian's) and nginx as a reverse proxy, in one script,
# interleaved (house rule: ratios to peers run in the same script, medians, no absolute claims).
#
#   backends: two nginx (worker_processes 1) answering 200 "ok from PORT\n"
#   targets:  mesh lb -workers 1|2, HAProxy nbthread 1|2 (docs/benchmarks.md config),
#             nginx proxy worker_processes 1|2 (upstream keepalive 256)
#   client:   wrk -t1 -cC -d8s --latency, C = 50 and 200, one 1 s warm-up per run,
#             5 repetitions interleaved (rep -> conns -> threads -> mesh lb, HAProxy, nginx)
#   prints:   a markdown table of req/s, p50, p99, errors, and the ratio to HAProxy taken per
#             repetition (mesh lb's run against the HAProxy run right after it, same threads and
#             conns) with its median and range; the machine's idle-time CPU use before each run;
#             RSS of mesh lb and HAProxy sampled halfway into the c200 runs.
#
# A figure taken on a busy machine is worthless: the 1-minute load average must be <= MAX_LOAD
# (0.5) at start, and before every run the CPUs may be at most MAX_BUSY (15) percent busy over a
# second while the bench is idle; otherwise the script says so and exits 3 without a report
# (bench/common.sh). MESH_BENCH_IGNORE_LOAD=1 runs anyway (never for figures to publish).
#
# Everything listens on free 127.0.0.1 ports and is stopped by PID (trap). Bounded: each wrk is
# wrapped in `timeout`, and the whole run stops after MAX_SECONDS (default 900).
# Run as root, it installs haproxy, nginx and wrk with apt-get when missing.
#
# Usage: bench/lb.sh [--quick]          (--quick: 1 rep of 3 s, a smoke test)
# Env:   MESH_BIN (default build/mesh), REPS, DURATION (s), MAX_SECONDS, MAX_LOAD, MAX_BUSY,
#        MESH_BENCH_IGNORE_LOAD
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MESH=${MESH_BIN:-$ROOT/build/mesh}
REPS=${REPS:-5}
DURATION=${DURATION:-8}
MAX_SECONDS=${MAX_SECONDS:-900}
CONNS=(50 200)
if [[ "${1:-}" == "--quick" ]]; then REPS=1; DURATION=3; fi

BENCH=lb.sh
# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"

bench_tools haproxy nginx wrk curl
bench_check_start
START_LOAD=$(load1)
[[ -x "$MESH" ]] || { log "no mesh binary at $MESH (build it, or set MESH_BIN)"; exit 1; }
"$MESH" lb -help >/dev/null 2>&1 || { log "$MESH has no 'lb' command"; exit 1; }

# ---------------------------------------------------------------- processes, stopped by PID

bench_start_tmp lbbench

# shellcheck source=bench/lb-peers.sh
. "$ROOT/bench/lb-peers.sh"
start_backends

declare -A PORT PID
TARGETS=()
for n in 1 2; do
    start_mesh_lb "mesh-$n" "$n"
    PID[mesh-$n]=$LAST_PID; PORT[mesh-$n]=$LAST_PORT; TARGETS+=("mesh-$n")
    start_haproxy "haproxy-$n" "$n"
    PID[haproxy-$n]=$LAST_PID; PORT[haproxy-$n]=$LAST_PORT; TARGETS+=("haproxy-$n")
    start_nginx_proxy "proxy-$n" "$n"
    PID[nginx-$n]=$LAST_PID; PORT[nginx-$n]=$LAST_PORT; TARGETS+=("nginx-$n")
done
for t in "${TARGETS[@]}"; do wait_http "${PORT[$t]}"; done
sleep 2 # let the health checks settle

# ---------------------------------------------------------------- runs

to_ms() { # "1.75ms" | "850.00us" | "1.02s" -> milliseconds
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0;
                           else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'
}

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

RESULTS=$TMP/results.tsv
RSS=$TMP/rss.tsv
: >"$RESULTS"; : >"$RSS"
START=$SECONDS
for rep in $(seq "$REPS"); do
    for c in "${CONNS[@]}"; do
        for t in "${TARGETS[@]}"; do
            if ((SECONDS - START > MAX_SECONDS)); then log "time bound reached"; break 3; fi
            url="http://127.0.0.1:${PORT[$t]}/"
            load=$(bench_check_between "rep $rep c$c $t") || exit 3
            timeout 10 wrk -t1 -c"$c" -d1s "$url" >/dev/null 2>&1 || true
            sampler=
            if [[ $c == 200 && $t != nginx-* ]]; then
                (sleep $((DURATION / 2)); echo -e "$t\t$(rss_kb "${PID[$t]}")" >>"$RSS") &
                sampler=$!
            fi
            out=$(timeout $((DURATION + 20)) wrk -t1 -c"$c" -d"${DURATION}s" --latency "$url" \
                  2>&1 || true)
            [[ -z $sampler ]] || wait "$sampler"
            rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
            p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
            p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
            errs=$(awk '/Non-2xx/ { e += $NF } /Socket errors/ { gsub(",", ""); e += $4 + $6 + $8 + $10 }
                        END { print e + 0 }' <<<"$out")
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$c" "$rep" "${rps:-0}" "$p50" \
                "$p99" "$errs" "$load" >>"$RESULTS"
            log "rep $rep c$c $t (busy $load%, load average $(load1)): ${rps:-0} req/s p50 ${p50} ms p99 ${p99} ms" \
                "errors $errs"
        done
    done
done
for t in "${TARGETS[@]}"; do
    kill -0 "${PID[$t]}" 2>/dev/null || log "WARNING: $t died during the run (log in $TMP)"
done

# ---------------------------------------------------------------- report

col() { awk -F'\t' -v t="$1" -v c="$2" -v k="$3" '$1 == t && $2 == c { print $k }' "$RESULTS"; }

# The ratio of target $1 to HAProxy per repetition (same threads $2 and conns $3), one a line.
rep_ratios() {
    awk -F'\t' -v t="$1-$2" -v h="haproxy-$2" -v c="$3" '
        $2 == c && $1 == t { a[$3] = $4 } $2 == c && $1 == h { b[$3] = $4 }
        END { for (r = 1; r in a || r in b; r++) if (b[r] > 0 && r in a) printf "%.3f\n", a[r] / b[r] }' \
        "$RESULTS"
}

load_summary() {
    awk -F'\t' '{ print $8 }' "$RESULTS" | sort -g |
        awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s%% to %s%% over %d runs", lo, hi, NR }'
}

echo
echo "mesh lb vs HAProxy $(haproxy -v | awk 'NR == 1 { print $3 }') vs nginx" \
     "$(nginx -v 2>&1 | sed 's|.*/||'), wrk -t1 -d${DURATION}s, medians of $REPS," \
     "$(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "| target | threads | conns | req/s (median) | req/s range | p50 ms | p99 ms | errors |" \
     "vs HAProxy, per rep: median (range) |"
echo "|---|---|---|---|---|---|---|---|---|"
for c in "${CONNS[@]}"; do
    for n in 1 2; do
        for kind in mesh haproxy nginx; do
            t=$kind-$n
            r=$(col "$t" "$c" 4 | median)
            lo=$(col "$t" "$c" 4 | sort -g | head -1)
            hi=$(col "$t" "$c" 4 | sort -g | tail -1)
            p50=$(col "$t" "$c" 5 | median)
            p99=$(col "$t" "$c" 6 | median)
            e=$(col "$t" "$c" 7 | awk '{ s += $1 } END { print s + 0 }')
            case $kind in mesh) name="mesh lb -workers $n";; haproxy) name="HAProxy nbthread $n";;
                          nginx) name="nginx proxy, $n worker(s)";; esac
            ratios=$(rep_ratios "$kind" "$n" "$c")
            ratio=$(printf '%.2f (%.2f–%.2f)' "$(median <<<"$ratios")" \
                    "$(sort -g <<<"$ratios" | head -1)" "$(sort -g <<<"$ratios" | tail -1)")
            [[ $kind != haproxy ]] || ratio=1
            printf '| %s | %s | %s | %.0f | %.0f–%.0f | %s | %s | %s | %s |\n' "$name" "$n" "$c" \
                "$r" "$lo" "$hi" "$p50" "$p99" "$e" "$ratio"
        done
    done
done
echo
echo "Per repetition, mesh lb / HAProxy req/s (each mesh lb run against the HAProxy run that"
echo "follows it):"
echo
for c in "${CONNS[@]}"; do
    for n in 1 2; do
        printf -- '- c%s, %s thread(s): %s\n' "$c" "$n" \
            "$(rep_ratios mesh "$n" "$c" | paste -sd' ' -)"
    done
done
echo
echo "1-minute load average at start: $START_LOAD; CPUs busy in the idle second before each run: $(load_summary)"
echo
echo "RSS under -c200 (sampled $((DURATION / 2)) s into each run, median):"
echo
echo "| process | RSS MB |"
echo "|---|---|"
for t in mesh-1 mesh-2 haproxy-1 haproxy-2; do
    kb=$(awk -F'\t' -v t="$t" '$1 == t { print $2 }' "$RSS" | median)
    printf '| %s | %.1f |\n' "$t" "$(awk -v k="$kb" 'BEGIN { print k / 1024 }')"
done
log "done in $((SECONDS - START)) s of runs"
