# shellcheck shell=bash
# Shared pieces of bench/run and bench/pressure. Sourced, not executed.
#
# Rules kept here: traffic goes to 127.0.0.0/8 only; every process started is
# bounded in time (timeout) and stopped by its PID; every loop is bounded.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$(cd "$ROOT/.." && pwd)/shared/bench}
OUT=${OUT:-$BENCH_DIR/out}
HPBENCH_PREFIX=/tmp/hpbench          # fixed by shared/bench/nginx.conf
NGINX_PORT=18080                     # fixed by shared/bench/nginx.conf
HEADPROBE=${HEADPROBE:-$ROOT/target/release/headprobe}
TIME_FMT='%e %U %S %M'               # wall s, user s, sys s, peak RSS KiB

NGINX_PID=
NGINX_WORKERS=
CHILD=                               # the bounded child currently waited on

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- installation -----------------------------------------------------------

APT_UPDATED=
apt_install() { # apt_install PKG... (apt-get update once per run)
    if [[ $(id -u) != 0 ]]; then die "need root to apt-get install $*"; fi
    if [[ -z $APT_UPDATED ]]; then
        log "apt-get update"
        timeout 600 apt-get update -qq >"$OUT/apt-update.log" 2>&1 \
            || die "apt-get update failed (see $OUT/apt-update.log)"
        APT_UPDATED=1
    fi
    log "apt-get install -y $*"
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -q "$@" \
        >>"$OUT/apt-install.log" 2>&1 || die "apt-get install $* failed (see $OUT/apt-install.log)"
}

ensure_tools() { # ensure_tools wrk|core
    local want=()
    command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || want+=(nginx-light)
    [[ -x /usr/bin/time ]] || want+=(time)
    command -v python3 >/dev/null 2>&1 || want+=(python3)
    if [[ ${1:-} == wrk ]]; then command -v wrk >/dev/null 2>&1 || want+=(wrk); fi
    if ((${#want[@]})); then apt_install "${want[@]}"; fi
    command -v nginx >/dev/null 2>&1 || PATH=$PATH:/usr/sbin
    command -v nginx >/dev/null 2>&1 || die "nginx still missing"
}

# --- file descriptors -------------------------------------------------------

raise_nofile() {
    local hard
    hard=$(ulimit -Hn)
    if [[ $hard == unlimited ]]; then hard=1048576; fi
    ulimit -Sn "$hard" 2>/dev/null || log "warning: could not raise ulimit -n to $hard"
    log "ulimit -n: soft $(ulimit -Sn), hard $(ulimit -Hn)"
}

# --- nginx ------------------------------------------------------------------

port_open() { # port_open IP PORT -> 0 when something accepts there
    # shellcheck disable=SC2016
    timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

nginx_start() {
    if port_open 127.0.1.1 "$NGINX_PORT"; then
        die "something already listens on 127.0.1.1:$NGINX_PORT; stop it first (not ours to kill)"
    fi
    mkdir -p "$HPBENCH_PREFIX"
    cp "$SHARED_BENCH/nginx.conf" "$HPBENCH_PREFIX/nginx.conf"
    chmod u+w "$HPBENCH_PREFIX/nginx.conf"
    # NGINX_LISTEN_EXTRA (e.g. "http2": cleartext HTTP/2 only) joins the listen line.
    if [[ -n ${NGINX_LISTEN_EXTRA:-} ]]; then
        sed -i "s/listen $NGINX_PORT /listen $NGINX_PORT $NGINX_LISTEN_EXTRA /" "$HPBENCH_PREFIX/nginx.conf"
    fi
    : >"$HPBENCH_PREFIX/error.log"
    log "starting nginx (prefix $HPBENCH_PREFIX, port $NGINX_PORT)"
    nginx -p "$HPBENCH_PREFIX/" -e "$HPBENCH_PREFIX/error.log" \
        -c "$HPBENCH_PREFIX/nginx.conf" </dev/null >>"$OUT/nginx.stdout" 2>&1 &
    NGINX_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do          # at most ~10 s
        if ! kill -0 "$NGINX_PID" 2>/dev/null; then
            NGINX_PID=
            cat "$HPBENCH_PREFIX/error.log" >&2
            die "nginx exited at start"
        fi
        if port_open 127.0.1.1 "$NGINX_PORT"; then break; fi
        sleep 0.1
    done
    port_open 127.0.1.1 "$NGINX_PORT" || die "nginx did not start listening within 10 s"
    NGINX_WORKERS=$(pgrep -P "$NGINX_PID" | tr '\n' ' ')
    log "nginx up: master pid $NGINX_PID, worker pid(s) ${NGINX_WORKERS:-?}"
}

nginx_stop() {
    [[ -n $NGINX_PID ]] || return 0
    local pid=$NGINX_PID i
    NGINX_PID=
    [[ -n $NGINX_WORKERS ]] || NGINX_WORKERS=$(pgrep -P "$pid" | tr '\n' ' ')
    log "stopping nginx (pid $pid)"
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do           # at most ~5 s, then SIGKILL
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "nginx ignored SIGTERM; SIGKILL $pid $NGINX_WORKERS"
        # shellcheck disable=SC2086
        kill -KILL "$pid" $NGINX_WORKERS 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    local w
    for w in $NGINX_WORKERS; do                # orphaned workers, if any
        kill -0 "$w" 2>/dev/null && kill -KILL "$w" 2>/dev/null
    done
    NGINX_WORKERS=
}

# --- bounded, measured children ------------------------------------------------

stop_child() {
    [[ -n $CHILD ]] || return 0
    local pid=$CHILD i
    CHILD=
    # timeout(1) forwards the signal to its process group (it leads it).
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 30; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    stop_child
    nginx_stop
    exit "$rc"
}

install_traps() {
    trap cleanup EXIT
    trap 'log "interrupted"; exit 130' INT
    trap 'log "terminated"; exit 143' TERM HUP
}

# cpu_snapshot -> "busy_ticks nginx_ticks": all CPUs' non-idle time (/proc/stat; niced
# processes included: a nice-19 CPU hog still halves wrk's rate here) and the
# nginx workers' user+sys time, in clock ticks, so that a row can tell how busy the
# server was and how much CPU went to neither the client nor nginx (other work).
cpu_snapshot() {
    local busy w ng=0 f
    busy=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8; exit }' /proc/stat)
    for w in $NGINX_WORKERS; do
        f=$(cut -d')' -f2- "/proc/$w/stat" 2>/dev/null) || continue
        # fields after "pid (comm)": 1=state ... 12=utime 13=stime
        ng=$((ng + $(awk '{ print $12 + $13 }' <<<"$f")))
    done
    echo "$busy $ng"
}

# wait_idle MAX_S [QUIET_S]: wait (at most MAX_S seconds, sampling each second) until the
# CPUs were less than 15% busy (niced processes included) for QUIET_S (default 3)
# seconds in a row. Prints the busy % of the last second.
wait_idle() {
    local max=$1 need=${2:-3} i a b pct=100 quiet=0
    for ((i = 0; i < max; i++)); do
        a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9; exit }' /proc/stat)
        sleep 1
        b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9; exit }' /proc/stat)
        pct=$(awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ")
            t = y[2] - x[2]; printf "%d", (t > 0 ? 100 * (y[1] - x[1]) / t : 0) }')
        if ((pct < 15)); then quiet=$((quiet + 1)); else quiet=0; fi
        ((quiet >= need)) && break
    done
    echo "$pct"
}

# measure NAME TIMEOUT_S STDIN STDOUT -- CMD...
#   Runs CMD under timeout(1) and /usr/bin/time, in the background so that
#   Ctrl-C reaches our trap at once. STDIN is a file, or "pipe:SHELL-COMMAND"
#   whose output is piped in (its cost is not counted: time wraps CMD only).
#   Leaves $OUT/NAME.time ("wall user sys maxrss_kib"), $OUT/NAME.stderr,
#   and sets RC (the exit status; 124 = timed out).
measure() {
    local name=$1 tmo=$2 in=$3 out=$4
    shift 5
    local tf="$OUT/$name.time" ef="$OUT/$name.stderr" before after
    rm -f "$tf"
    before=$(cpu_snapshot)
    if [[ $in == pipe:* ]]; then
        # shellcheck disable=SC2016
        timeout -k 5 "$tmo" bash -c '
            gen=$1 tf=$2 fmt=$3; shift 3
            bash -c "$gen" | /usr/bin/time -o "$tf" -f "$fmt" "$@"
        ' _ "${in#pipe:}" "$tf" "$TIME_FMT" "$@" </dev/null >"$out" 2>"$ef" &
    else
        timeout -k 5 "$tmo" /usr/bin/time -o "$tf" -f "$TIME_FMT" "$@" \
            <"$in" >"$out" 2>"$ef" &
    fi
    CHILD=$!
    wait "$CHILD"
    RC=$?
    CHILD=
    echo "$RC" >"$OUT/$name.rc"
    after=$(cpu_snapshot)
    # NAME.cpu: "busy_s nginx_s" over the row (all CPUs; clock ticks -> s)
    awk -v hz="$(getconf CLK_TCK)" -v b="$before" -v a="$after" 'BEGIN {
        split(b, x, " "); split(a, y, " ")
        printf "%.2f %.2f\n", (y[1] - x[1]) / hz, (y[2] - x[2]) / hz }' >"$OUT/$name.cpu"
    if [[ $RC == 124 || $RC == 137 ]]; then log "$name: TIMED OUT after ${tmo}s"; fi
}

# median VALUE... -> the median (the mean of the middle two for an even count)
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

# cpu_fields NAME -> "busy_s nginx_s" (or "- -")
cpu_fields() {
    local f="$OUT/$1.cpu"
    if [[ -s $f ]]; then cat "$f"; else echo "- -"; fi
}

# time_fields NAME -> "wall user sys maxrss" (last line of the time file, or "- - - -")
time_fields() {
    local tf="$OUT/$1.time" last
    if [[ -s $tf ]]; then
        last=$(grep -E '^[0-9.]+ [0-9.]+ [0-9.]+ [0-9]+$' "$tf" | tail -n 1)
    fi
    echo "${last:-- - - -}"
}
