#!/usr/bin/env bash
# Measures "restart to ready" of dosi: the time from starting `dosi serve` on
# an existing data directory until GET /health answers 200, plus the time
# until the "dosi listening on ..." line (printed once the store is open) and
# the resident memory once ready.
#
# usage: scripts/bench-restart.sh [--stop PID [--kill]] DOSI_BINARY DATA_DIR [ADDR]
#   --stop PID  first stop that server (the one that wrote DATA_DIR), so what
#               is measured is a restart on the data it wrote
#   --kill      stop it with SIGKILL (a crash: the next start replays the WAL
#               tail) instead of SIGTERM (clean: the server checkpoints first)
#   ADDR        listen address, default 127.0.0.1:1326
# The restarted server is left running; its pid is printed.
set -euo pipefail

signal=TERM
old=""
while [[ "${1:-}" == --* ]]; do
    case "$1" in
        --stop) old=${2:?--stop needs a pid}; shift 2 ;;
        --kill) signal=KILL; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
usage="usage: $0 [--stop PID [--kill]] DOSI_BINARY DATA_DIR [ADDR]"
bin=${1:?$usage}
data=${2:?$usage}
addr=${3:-127.0.0.1:1326}
log=${LOG:-/tmp/dosi-restart-$$.log}

now_ms() { date +%s%3N; }

if [[ -n "$old" ]]; then
    stop_start=$(now_ms)
    kill "-$signal" "$old"
    while kill -0 "$old" 2>/dev/null; do sleep 0.05; done
    echo "stopped pid $old with SIG$signal in $(( $(now_ms) - stop_start )) ms"
fi

: >"$log"
start=$(now_ms)
"$bin" serve --http "$addr" --data-dir "$data" >"$log" 2>&1 &
pid=$!
listening=""
while true; do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "server exited; log:" >&2
        cat "$log" >&2
        exit 1
    fi
    if [[ -z "$listening" ]] && grep -q "dosi listening on" "$log"; then
        listening=$(( $(now_ms) - start ))
    fi
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 0.5 "http://$addr/health" || true)
    if [[ "$code" == "200" ]]; then
        ready=$(( $(now_ms) - start ))
        break
    fi
    sleep 0.02
done
[[ -n "$listening" ]] || listening=$ready
rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
hwm_kib=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
echo "pid=$pid stop=SIG$signal listening_ms=$listening ready_ms=$ready rss_mib=$((rss_kib / 1024)) hwm_mib=$((hwm_kib / 1024))"
grep -o '"store open".*\|store open.*' "$log" | head -1 || true
