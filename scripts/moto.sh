# Sourced by scripts/test and scripts/replay-moto: start_moto runs moto_server
# from .venv on a free loopback port and exports SIGNALBOX_MOTO_ENDPOINT;
# stop_moto ends it. start_moto fails (and so does the caller) when moto does
# not answer within 30 s.

start_moto() {
  local port log
  port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  log="${TMPDIR:-/tmp}/signalbox-moto-$port.log"
  .venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  MOTO_PID=$!
  export SIGNALBOX_MOTO_ENDPOINT="http://127.0.0.1:$port"
  for _ in $(seq 1 300); do
    if .venv/bin/python -c "import urllib.request,sys; urllib.request.urlopen('$SIGNALBOX_MOTO_ENDPOINT/moto-api/', timeout=1)" 2>/dev/null; then
      echo "moto listening at $SIGNALBOX_MOTO_ENDPOINT (pid $MOTO_PID, log $log)"
      return 0
    fi
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then
      echo "moto_server exited; its log:" >&2; cat "$log" >&2; return 1
    fi
    sleep 0.1
  done
  echo "moto_server did not answer on $SIGNALBOX_MOTO_ENDPOINT within 30 s; its log:" >&2
  cat "$log" >&2
  return 1
}

stop_moto() {
  if [ -n "${MOTO_PID:-}" ]; then
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
    MOTO_PID=
  fi
}
