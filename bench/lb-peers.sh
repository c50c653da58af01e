# The setup bench/lb.sh and bench/lb-profile.sh share (sourced after bench/common.sh and
# bench_start_tmp): two nginx backends, and `mesh lb`, HAProxy and nginx as a proxy in front of
# them, configured alike in both scripts. Every process goes into PIDS (stopped on exit); each
# starter sets LAST_PID and LAST_PORT. bash only.

start_nginx() { # start_nginx NAME CONF_BODY
    local dir=$TMP/$1
    mkdir -p "$dir/logs"
    printf '%s\n' "$2" >"$dir/nginx.conf"
    nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' 2>"$dir/stderr" &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

NGINX_COMMON='error_log logs/error.log warn; pid nginx.pid;
events { worker_connections 4096; }'
NGINX_HTTP_COMMON='access_log off; keepalive_requests 1000000; keepalive_timeout 60s;
client_body_temp_path tmp_body; proxy_temp_path tmp_proxy; fastcgi_temp_path tmp_fcgi;
uwsgi_temp_path tmp_uwsgi; scgi_temp_path tmp_scgi;'

# Two nginx backends (worker_processes 1) answering 200 "ok from PORT\n": sets B1 and B2.
start_backends() {
    local b
    B1=$(free_port); B2=$(free_port)
    for b in "$B1" "$B2"; do
        start_nginx "backend-$b" "worker_processes 1; $NGINX_COMMON
http { $NGINX_HTTP_COMMON
  server { listen 127.0.0.1:$b;
    location / { add_header X-Served-By $b; return 200 \"ok from $b\n\"; } } }"
    done
    wait_http "$B1"; wait_http "$B2"
}

# start_mesh_lb NAME WORKERS [WRAPPER...]: mesh lb in front of B1 and B2 (WRAPPER: a command
# it runs under, such as valgrind). LB_IO=epoll|uring in the environment passes -io (default:
# the lb's own, auto: io_uring where the kernel allows it).
start_mesh_lb() {
    local name=$1 n=$2 s
    shift 2
    LAST_PORT=$(free_port); s=$(free_port)
    "$@" "$MESH" lb -bind 127.0.0.1 -port "$LAST_PORT" -workers "$n" -stats-addr 127.0.0.1 \
        -stats-port "$s" -server "127.0.0.1:$B1" -server "127.0.0.1:$B2" -check-inter 1s \
        -check-rise 2 -check-fall 2 -retries 3 ${LB_IO:+-io "$LB_IO"} -log-level warn \
        >"$TMP/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# start_haproxy NAME NBTHREAD [WRAPPER...]: HAProxy with the configuration of docs/benchmarks.md.
start_haproxy() {
    local name=$1 n=$2
    shift 2
    LAST_PORT=$(free_port)
    cat >"$TMP/$name.cfg" <<CFG
global
    nbthread $n
    maxconn 4096
defaults
    mode http
    option http-keep-alive
    http-reuse safe
    retries 3
    option redispatch
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s
frontend fe
    bind 127.0.0.1:$LAST_PORT
    default_backend be
backend be
    balance roundrobin
    option httpchk GET /
    server s1 127.0.0.1:$B1 check inter 1s fall 2 rise 2
    server s2 127.0.0.1:$B2 check inter 1s fall 2 rise 2
CFG
    "$@" haproxy -db -f "$TMP/$name.cfg" >"$TMP/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# start_nginx_proxy NAME WORKERS: nginx as a reverse proxy, a backend pool as large as the
# concurrency (keepalive 256).
start_nginx_proxy() {
    LAST_PORT=$(free_port)
    start_nginx "$1" "worker_processes $2; $NGINX_COMMON
http { $NGINX_HTTP_COMMON
  upstream be { server 127.0.0.1:$B1; server 127.0.0.1:$B2; keepalive 256; }
  server { listen 127.0.0.1:$LAST_PORT;
    location / { proxy_pass http://be; proxy_http_version 1.1;
                 proxy_set_header Connection \"\"; } } }"
}
