#!/usr/bin/env bash
# Benchmark `mesh load run --pool N` against wrk and Artillery: requests/s each can drive into the
# same target on the same machine, interleaved, printed as ratios (house rule: ratios to peers
# from one script, medians, no absolute claims).
#
#   target:  nginx, worker_processes 1, serving a 13-byte file on 127.0.0.1 (keep-alive)
#   clients: wrk -t1 -cC -dDs                      (closed loop, C connections)
#            mesh load run --workers 1 --pool C    (the same: C connections, back to back)
#            artillery run (arrivals of users that each send LOOP requests on one connection,
#                           more than it can send, so it runs flat out; Artillery is one
#                           Node.js process and has no connection-pool mode)
#   reps:    REPS repetitions, interleaved (rep -> client), medians and ranges
#   prints:  a markdown table of req/s with the ratio of mesh load to each peer, and the goals
#            (within 10 % of wrk, at least 10x Artillery); then the cost of an Artillery
#            processor hook: CPU time per request (user + system, the Node.js helper included)
#            of the same pool run without hooks and with a no-op afterResponse hook on every
#            request. CPU time, not throughput: it holds on a busy machine.
#
# Everything listens on free 127.0.0.1 ports and is stopped by PID (trap). Bounded: every client
# run is wrapped in `timeout`. Run as root, it installs nginx and wrk with apt-get when missing;
# Artillery comes from tests/peers (npm ci, pinned by its package-lock.json, about 500 MB).
#
# Usage: bench/load.sh [--quick]          (--quick: 1 rep of 3 s, a smoke test)
# Env:   MESH_BIN (default build/mesh), REPS (3), DURATION (10 s), CONNS (50)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MESH=${MESH_BIN:-$ROOT/build/mesh}
REPS=${REPS:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-50}
PEERS=$ROOT/tests/peers
ARTILLERY=$PEERS/node_modules/.bin/artillery
if [[ "${1:-}" == "--quick" ]]; then REPS=1; DURATION=3; fi

BENCH=load.sh
# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"

bench_tools nginx wrk curl npm
[[ -x "$MESH" ]] || { log "no mesh binary at $MESH (build it, or set MESH_BIN)"; exit 1; }
"$MESH" load run -help >/dev/null 2>&1 || { log "$MESH has no 'load run' command"; exit 1; }
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 ARTILLERY_DISABLE_TELEMETRY=true
if [[ ! -x "$ARTILLERY" ]]; then
    log "installing Artillery into tests/peers (npm ci, once)"
    (cd "$PEERS" && npm ci --no-audit --no-fund >/dev/null)
fi

# ---------------------------------------------------------------- the target, stopped by PID

bench_start_tmp loadbench
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
mkdir -p "$TMP/nginx/logs" "$TMP/nginx/www"
chmod 755 "$TMP" # nginx's workers (user nobody when started as root) read the file below
printf 'hello, mesh!\n' >"$TMP/nginx/www/index.html"
cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes 1;
error_log logs/error.log warn;
pid nginx.pid;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 1000000; keepalive_timeout 60s;
  client_body_temp_path tmp_body; proxy_temp_path tmp_proxy; fastcgi_temp_path tmp_fcgi;
  uwsgi_temp_path tmp_uwsgi; scgi_temp_path tmp_scgi;
  server { listen 127.0.0.1:$PORT; root $TMP/nginx/www; }
}
EOF
nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' 2>"$TMP/nginx/stderr" &
PIDS+=("$!")
wait_http "$PORT"

# The scripts: mesh load's pool mode runs the first scenario's flow back to back on each of
# the C connections for the phases' duration; Artillery gets far more arrivals than it can serve.
cat >"$TMP/pool.yml" <<EOF
config:
  target: "$URL"
  phases:
    - duration: $DURATION
      arrivalRate: 1
scenarios:
  - flow:
      - get:
          url: "/"
EOF
cat >"$TMP/artillery.yml" <<EOF
config:
  target: "$URL"
  phases:
    - duration: $DURATION
      arrivalRate: 50
scenarios:
  - flow:
      - loop:
          - get:
              url: "/"
        count: 100
EOF

cat >"$TMP/hooks.js" <<'EOF'
module.exports = { noop(req, res, context, events, next) { return next(); } };
EOF
sed -e 's|^  phases:|  processor: "./hooks.js"\n  phases:|' -e 's|^  - flow:|  - afterResponse: noop\n    flow:|' \
    "$TMP/pool.yml" >"$TMP/hooked.yml"

# CPU microseconds per request of one `mesh load run` (its children, the helper, included):
# prints "us_per_request requests"
cpu_per_request() {
    python3 - "$MESH" "$1" "$TMP/cpu.json" "$limit" <<'EOF'
import json, resource, subprocess, sys
mesh, script, out, limit = sys.argv[1:5]
before = resource.getrusage(resource.RUSAGE_CHILDREN)
subprocess.run([mesh, "load", "run", "--quiet", "--workers", "1", "--pool", "10", "--output",
                out, script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
               timeout=int(limit))
after = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
n = json.load(open(out))["aggregate"]["counters"].get("http.requests", 0)
print("%.1f\t%d" % (cpu / n * 1e6 if n else 0, n))
EOF
}

# requests/s from a report JSON: http.requests over the time between its first and last counter
report_rps() {
    python3 - "$1" <<'EOF'
import json, sys
a = json.load(open(sys.argv[1]))["aggregate"]
c = a["counters"]
span = (int(a["lastCounterAt"]) - int(a["firstCounterAt"])) / 1000
ok = sum(v for k, v in c.items() if k.startswith("http.codes.2"))
errs = c.get("http.requests", 0) - ok
print("%.0f\t%d" % (c.get("http.requests", 0) / span if span > 0 else 0, errs))
EOF
}

RESULTS=$TMP/results.tsv
: >"$RESULTS"
limit=$((DURATION * 6 + 60))
for rep in $(seq "$REPS"); do
    out=$(timeout "$limit" wrk -t1 -c"$CONNS" -d"${DURATION}s" "$URL/" 2>&1) || true
    rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
    errs=$(awk '/Non-2xx/ { e += $NF } /Socket errors/ { gsub(",", ""); e += $4 + $6 + $8 + $10 }
               END { print e + 0 }' <<<"$out")
    printf 'wrk\t%s\t%s\t%s\n' "$rep" "${rps:-0}" "$errs" >>"$RESULTS"

    rm -f "$TMP/mesh.json"
    timeout "$limit" "$MESH" load run --quiet --workers 1 --pool "$CONNS" \
        --output "$TMP/mesh.json" "$TMP/pool.yml" >"$TMP/mesh.log" 2>&1 || true
    if [[ -s "$TMP/mesh.json" ]]; then
        printf 'mesh\t%s\t%s\n' "$rep" "$(report_rps "$TMP/mesh.json")" >>"$RESULTS"
    else
        log "mesh load run failed:"; tail -5 "$TMP/mesh.log" >&2
        printf 'mesh\t%s\t0\t-1\n' "$rep" >>"$RESULTS"
    fi

    rm -f "$TMP/artillery.json"
    timeout "$limit" "$ARTILLERY" run --output "$TMP/artillery.json" "$TMP/artillery.yml" \
        >"$TMP/artillery.log" 2>&1 || true
    if [[ -s "$TMP/artillery.json" ]]; then
        printf 'artillery\t%s\t%s\n' "$rep" "$(report_rps "$TMP/artillery.json")" >>"$RESULTS"
    else
        log "artillery run failed:"; tail -5 "$TMP/artillery.log" >&2
        printf 'artillery\t%s\t0\t-1\n' "$rep" >>"$RESULTS"
    fi
    log "rep $rep/$REPS done"
done

# ---------------------------------------------------------------- report

col() { awk -F'\t' -v t="$1" -v k="$2" '$1 == t { print $k }' "$RESULTS"; }

mesh_rps=$(col mesh 3 | median)
echo "mesh load --pool $CONNS vs wrk $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }') vs Artillery" \
     "$("$ARTILLERY" version 2>/dev/null | awk '/Artillery:/ { print $2 }'), one client thread" \
     "each, against nginx (1 worker, 13-byte file), ${DURATION}s runs, medians of $REPS," \
     "$(nproc) cores, $(date -u +%Y-%m-%d)"
echo
echo "| client | req/s (median) | req/s range | failed requests | mesh load ÷ client |"
echo "|---|---|---|---|---|"
for t in wrk mesh artillery; do
    case $t in
        wrk) name="wrk -t1 -c$CONNS" ;;
        mesh) name="mesh load run --workers 1 --pool $CONNS" ;;
        artillery) name="artillery run (50 users/s × 100 requests)" ;;
    esac
    r=$(col "$t" 3 | median)
    lo=$(col "$t" 3 | sort -g | head -1)
    hi=$(col "$t" 3 | sort -g | tail -1)
    e=$(col "$t" 4 | awk '{ s += $1 } END { print s + 0 }')
    ratio=$(awk -v a="$mesh_rps" -v b="$r" 'BEGIN { printf (b > 0 ? "%.2f" : "-"), a / b }')
    printf '| %s | %.0f | %.0f–%.0f | %s | %s |\n' "$name" "$r" "$lo" "$hi" "$e" "$ratio"
done
echo
wrk_rps=$(col wrk 3 | median)
art_rps=$(col artillery 3 | median)
awk -v m="$mesh_rps" -v w="$wrk_rps" -v a="$art_rps" 'BEGIN {
    printf "goal: within 10%% of wrk: %s (%.2f); at least 10x Artillery: %s (%.1fx)\n",
        (w > 0 && m >= 0.9 * w) ? "met" : "not met", (w > 0 ? m / w : 0),
        (a > 0 && m >= 10 * a) ? "met" : "not met", (a > 0 ? m / a : 0) }'

# ---------------------------------------------------------------- the cost of a processor hook

if command -v node >/dev/null 2>&1; then
    : >"$TMP/cpu.tsv"
    for rep in $(seq "$REPS"); do
        printf 'plain\t%s\n' "$(cpu_per_request "$TMP/pool.yml")" >>"$TMP/cpu.tsv"
        printf 'hooked\t%s\n' "$(cpu_per_request "$TMP/hooked.yml")" >>"$TMP/cpu.tsv"
    done
    plain=$(awk -F'\t' '$1 == "plain" { print $2 }' "$TMP/cpu.tsv" | median)
    hooked=$(awk -F'\t' '$1 == "hooked" { print $2 }' "$TMP/cpu.tsv" | median)
    echo
    awk -v p="$plain" -v h="$hooked" 'BEGIN {
        printf "processor hook cost (--pool 10, medians of CPU time per request, Node.js helper" \
               " included): no hooks %.1f us, an afterResponse hook on every request %.1f us" \
               " (+%.1f us per hooked request)\n", p, h, h - p }'
else
    log "node not installed: the processor hook cost is not measured"
fi
