#!/usr/bin/env bash
# End-to-end load test: starts the release `sluice` with syslog TCP -> blackhole and then
# syslog TCP -> file, pushes MESSAGES RFC 5424 messages over CONNECTIONS connections with
# the `loadgen` example, and prints events/s, MiB/s and the peak and idle RSS of sluice.
# The clock runs from the first byte sent until the sink's sent-events counter reaches
# MESSAGES, so it measures delivery, not just acceptance.
# Then (TRANSFORM_CASES=1) syslog TCP -> remap -> filter -> file and syslog TCP -> route
# (4 routes) -> 4 blackholes; (ALERT_CASES=1) syslog TCP -> alert (three rules over
# 1,000 and 10,000 groups) -> blackhole; (BUFFER_CASES=1) the blackhole and file sinks
# behind a disk buffer, fsync per write and per second; (RELOAD_CASE=1) the longest
# pause in delivery when a reload changes the file sink under load; (HTTP_CASES=1) syslog TCP -> http sink into a second sluice, and HTTP NDJSON ingest
# driven by wrk; (INFLUX_CASES=1) into a real influxd; (KAFKA_CASES=1) syslog TCP -> kafka
# into a local broker and kafka -> blackhole; (SYSLOG_FORWARD_CASES=1) the syslog sink into
# rsyslog beside rsyslog's own forwarding; (CLOUDWATCH_CASES=1) the CloudWatch Logs sink
# into an endpoint that answers every call at once, and into moto_server; then
# (FILE_CASES=1) the file source cases and the idle cost.
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES=${MESSAGES:-2000000}
CONNECTIONS=${CONNECTIONS:-4}
FRAMING=${FRAMING:-newline}   # or "octet"
REPEAT=${REPEAT:-3}           # runs per case; the median run is reported
PORT=${PORT:-15514}
API=${API:-127.0.0.1:19598}

cargo build --release --quiet --bin sluice --example loadgen --example http_blackhole
T=${CARGO_TARGET_DIR:-target}
BIN=${SLUICE_BIN:-$T/release/sluice}   # another build, to compare in one window
GEN=$T/release/examples/loadgen
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

metric() { # metric NAME COMPONENT -> value or 0
  curl -s "http://$API/metrics" | awk -v n="$1" -v c="component_id=\"$2\"" \
    'index($0, n"{")==1 && index($0, c) { v=$NF } END { printf "%.0f\n", v }'
}

received_by() { # received_by "COMPONENT..." -> events the listed components took in, summed
  local total=0 c
  for c in $1; do total=$(( total + $(metric sluice_component_received_events_total "$c") )); done
  echo "$total"
}

sent_by() { # sent_by "SINK..." -> events the listed sinks sent, summed
  local total=0 c
  for c in $1; do total=$(( total + $(metric sluice_component_sent_events_total "$c") )); done
  echo "$total"
}

run_case() { # run_case NAME SINK_TOML: REPEAT runs, prints each and the median. SINK_TOML
  # is the table of a sink `out` reading `in`, or (starting with `[`) a whole graph after
  # the source, whose sinks SINKS (default "out") must together send every event.
  local name=$1 sink=$2 i
  : > "$work/results"
  for i in $(seq "$REPEAT"); do
    rm -f "$work/out.jsonl"
    run_once "$name" "$sink" | tee -a "$work/results" | sed 's/^/  run: /'
  done
  sort -t'|' -k2 -n "$work/results" | awk -v m=$(( (REPEAT + 1) / 2 )) 'NR == m' | cut -d'|' -f1
}

run_once() {
  local name=$1 sink=$2
  cat > "$work/$name.toml" <<TOML
data_dir = "$work"
[api]
address = "$API"
[sources.in]
type = "syslog"
mode = "tcp"
address = "127.0.0.1:$PORT"
TOML
  if [ "${sink:0:1}" = "[" ]; then
    printf '%s\n' "$sink" >> "$work/$name.toml"
  else
    printf '[sinks.out]\ninputs = ["in"]\n%s\n' "$sink" >> "$work/$name.toml"
  fi
  "$BIN" run --config "$work/$name.toml" --log-level warn &
  local pid=$!
  for _ in $(seq 100); do curl -sf "http://$API/health" >/dev/null && break; sleep 0.05; done
  sleep 1
  local idle_rss
  idle_rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  local start end cpu0 cpu1
  cpu0=$(awk '{print $14 + $15}' /proc/$pid/stat)
  LOADGEN_START_FILE="$work/start" "$GEN" "127.0.0.1:$PORT" "$MESSAGES" "$CONNECTIONS" "$FRAMING" > "$work/gen.out"
  local want=$(( MESSAGES / CONNECTIONS * CONNECTIONS ))
  while [ "$(${DONE_BY:-sent_by} "${SINKS:-out}")" -lt "$want" ]; do sleep 0.02; done
  end=$(date +%s.%N)
  start=$(cat "$work/start")
  local bytes peak
  bytes=$(metric sluice_component_received_bytes_total in)
  peak=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  cpu1=$(awk '{print $14 + $15}' /proc/$pid/stat)
  [ -n "${CW_REQUESTS_FILE:-}" ] && cw_per_request > "$CW_REQUESTS_FILE"
  kill -TERM $pid; wait $pid || true
  awk -v n="$want" -v b="$bytes" -v s="$start" -v e="$end" -v p="$peak" -v i="$idle_rss" -v name="$name" -v c="$CONNECTIONS" -v f="$FRAMING" -v cpu=$(( cpu1 - cpu0 )) -v hz="$(getconf CLK_TCK)" 'BEGIN {
    t = e - s
    printf "%-22s %8d ev in %5.2fs %8.0f ev/s %6.1f MiB/s  CPU %4.2f us/ev  peak RSS %5.1f MiB  idle %4.1f MiB  (%d conns, %s)|%f\n",
      name, n, t, n / t, b / t / 1048576, cpu / hz / n * 1e6, p / 1024, i / 1024, c, f, n / t }'
}

# The issue's chain: remap (three assignments and a `del`) -> filter (drop debug, which
# this traffic has none of) -> file, to set against syslog_tcp->file.
REMAP_CHAIN="[transforms.shape]
type = \"remap\"
inputs = [\"in\"]
source = '''
.env = \"prod\"
.service = .appname
.bytes = 512
del(.procid)
'''
[transforms.no_debug]
type = \"filter\"
inputs = [\"shape\"]
condition = '.severity != \"debug\"'
[sinks.out]
type = \"file\"
inputs = [\"no_debug\"]
path = \"$work/out.jsonl\""
# Four routes on the host (loadgen's connection c sends as web-0c), each to a blackhole:
# every event takes exactly one.
ROUTE4="[transforms.by_host]
type = \"route\"
inputs = [\"in\"]"
for c in 0 1 2 3; do
  ROUTE4="$ROUTE4
route.web$c = '.hostname == \"web-0$c.example.com\"'"
done
for c in 0 1 2 3; do
  ROUTE4="$ROUTE4
[sinks.web$c]
type = \"blackhole\"
inputs = [\"by_host.web$c\"]
print_interval_secs = 0"
done


# syslog TCP -> alert (three rules: count, rate, p99 over (hostname, procid) groups)
# -> blackhole. The alert transform consumes its input, so the clock stops when it has
# taken in every event (DONE_BY=received_by). LOADGEN_PROCS sets the procids per host:
# 250 x 4 connections = 1,000 groups per rule, 2,500 x 4 = 10,000 (the issue's memory
# figure: compare peak RSS with syslog_tcp->blackhole).
alert_graph() {
  printf '%s\n' "[transforms.alerts]
type = \"alert\"
inputs = [\"in\"]
eval_interval_secs = 1
max_groups = 20000"
  for r in 'Errors:agg = "count"
condition = '"'"'.severity == "info"'"'"'' 'Rate:agg = "rate"' 'Slow:agg = "p99"
field = "procid"'; do
    printf '%s\n' "[[transforms.alerts.rules]]
name = \"${r%%:*}\"
group_by = [\"hostname\", \"procid\"]
window_secs = 60
op = \">\"
threshold = 1e12
${r#*:}"
  done
  printf '%s\n' "[sinks.paged]
type = \"blackhole\"
inputs = [\"alerts\"]
print_interval_secs = 0"
}

if [ "${MODE:-}" = "callgrind" ]; then
  # Instructions per event: wall-clock moves 2x within a day here, instruction counts
  # repeat. Runs sluice under callgrind twice on syslog TCP -> file, once idle (start,
  # stop) and once with CG_MESSAGES messages, and divides the difference.
  CG_MESSAGES=${CG_MESSAGES:-200000}
  command -v valgrind >/dev/null || { echo "MODE=callgrind needs valgrind (apt-get install valgrind)"; exit 1; }
  cg_run() { # cg_run MESSAGES -> total instructions
    local n=$1 out="$work/cg.out"
    rm -f "$out" "$work/out.jsonl"
    cat > "$work/cg.toml" <<TOML
data_dir = "$work"
[api]
address = "$API"
[sources.in]
type = "syslog"
mode = "tcp"
address = "127.0.0.1:$PORT"
TOML
    case "${CG_CASE:-file}" in
      file) printf '[sinks.out]\ninputs = ["in"]\ntype = "file"\npath = "%s"\n' "$work/out.jsonl" >> "$work/cg.toml" ;;
      remap) printf '%s\n' "$REMAP_CHAIN" >> "$work/cg.toml" ;;
      blackhole) printf '[sinks.out]\ninputs = ["in"]\ntype = "blackhole"\nprint_interval_secs = 0\n' >> "$work/cg.toml" ;;
      # The same two sinks behind a disk buffer (fsync at most once a second: what the
      # buffer costs in instructions, not how long the disk takes).
      disk-blackhole) printf '[sinks.out]\ninputs = ["in"]\ntype = "blackhole"\nprint_interval_secs = 0\nbuffer.type = "disk"\nbuffer.sync_interval_ms = 1000\n' >> "$work/cg.toml" ;;
      disk-file) printf '[sinks.out]\ninputs = ["in"]\ntype = "file"\npath = "%s"\nbuffer.type = "disk"\nbuffer.sync_interval_ms = 1000\n' "$work/out.jsonl" >> "$work/cg.toml" ;;
      # LOADGEN_PROCS=250: 1,000 groups per rule. Its rules are evaluated every second
      # of (valgrind-slowed) time, so this figure carries far more evaluation per event
      # than a real run: compare it only with itself.
      alert) alert_graph >> "$work/cg.toml" ;;
      *) echo "CG_CASE is file, remap, blackhole, disk-blackhole, disk-file or alert"; exit 1 ;;
    esac
    valgrind --tool=callgrind --callgrind-out-file="$out" "$BIN" run --config "$work/cg.toml" --log-level warn 2>"$work/cg.log" &
    local pid=$!
    for _ in $(seq 600); do curl -sf "http://$API/health" >/dev/null && break; sleep 0.1; done
    if [ "$n" -gt 0 ]; then
      "$GEN" "127.0.0.1:$PORT" "$n" "$CONNECTIONS" "$FRAMING" > "$work/gen.out"
      local want=$(( n / CONNECTIONS * CONNECTIONS ))
      if [ "${CG_CASE:-file}" = "alert" ]; then
        while [ "$(received_by alerts)" -lt "$want" ]; do sleep 0.2; done
      else
        while [ "$(metric sluice_component_sent_events_total out)" -lt "$want" ]; do sleep 0.2; done
      fi
      # What the source took in, so a stray sender would show instead of skewing the figure.
      metric sluice_component_received_events_total in > "$work/cg.events"
    fi
    kill -TERM $pid; wait $pid || true
    [ -n "${CG_KEEP:-}" ] && [ "$n" -gt 0 ] && cp "$out" "$CG_KEEP"
    awk '/^summary:|^totals:/ { print $2; exit }' "$out"
  }
  idle=$(cg_run 0)
  busy=$(cg_run "$CG_MESSAGES")
  want=$(cat "$work/cg.events")
  [ "$want" -eq $(( CG_MESSAGES / CONNECTIONS * CONNECTIONS )) ] || echo "warning: the source received $want events, not $(( CG_MESSAGES / CONNECTIONS * CONNECTIONS ))"
  awk -v i="$idle" -v b="$busy" -v n="$want" -v bin="$BIN" -v cname="${CG_CASE:-file}" 'BEGIN {
    printf "callgrind syslog_tcp->%s: %d events, %.0f instructions/event (busy %.0f, idle %.0f Ir; %s)\n", cname, n, (b - i) / n, b, i, bin }'
  exit 0
fi

echo "sluice load test: $MESSAGES messages, $(nproc) cores, median of $REPEAT runs"
run_case "syslog_tcp->blackhole" 'type = "blackhole"
print_interval_secs = 0'
run_case "syslog_tcp->file" "type = \"file\"
${FILE_EXTRA:-}
path = \"$work/out.jsonl\""
ls -la "$work/out.jsonl" | awk '{ printf "file sink wrote %.1f MiB of JSON lines\n", $5 / 1048576 }'
rm -f "$work/out.jsonl"

if [ "${TRANSFORM_CASES:-1}" = "1" ]; then
  run_case "syslog_tcp->remap->filter->file" "$REMAP_CHAIN"
  rm -f "$work/out.jsonl"
  SINKS="web0 web1 web2 web3" run_case "syslog_tcp->route4->blackholes" "$ROUTE4"
fi

if [ "${BUFFER_CASES:-1}" = "1" ]; then
  # The same two sinks behind a disk buffer: fsync after every write (the default), and
  # at most once a second (sync_interval_ms = 1000). Compare with the memory-buffered
  # cases above, measured in this same run.
  run_case "syslog_tcp->disk->blackhole" 'type = "blackhole"
print_interval_secs = 0
buffer.type = "disk"'
  rm -rf "$work/buffer"
  run_case "syslog_tcp->disk1s->blackhole" 'type = "blackhole"
print_interval_secs = 0
buffer.type = "disk"
buffer.sync_interval_ms = 1000'
  rm -rf "$work/buffer"
  run_case "syslog_tcp->disk->file" "type = \"file\"
path = \"$work/out.jsonl\"
buffer.type = \"disk\""
  rm -rf "$work/buffer" "$work/out.jsonl"
  run_case "syslog_tcp->disk1s->file" "type = \"file\"
path = \"$work/out.jsonl\"
buffer.type = \"disk\"
buffer.sync_interval_ms = 1000"
  rm -rf "$work/buffer" "$work/out.jsonl"
fi

if [ "${RELOAD_CASE:-1}" = "1" ]; then
  # A reload under load: syslog TCP -> file while loadgen sends; halfway through, the
  # sink's path changes and POST /-/reload applies it. A poller reads the sink's sent
  # counter every 2 ms; the longest stretch without progress while events were still
  # coming is the pause the reload caused (compare with the longest one of a run
  # without a reload, printed beside it).
  reload_run() { # reload_run yes|no
    rm -f "$work"/out*.jsonl
    cat > "$work/reload.toml" <<TOML
data_dir = "$work"
[api]
address = "$API"
[sources.in]
type = "syslog"
mode = "tcp"
address = "127.0.0.1:$PORT"
[sinks.out]
inputs = ["in"]
type = "file"
path = "$work/out-a.jsonl"
TOML
    "$BIN" run --config "$work/reload.toml" --log-level warn --no-watch-config &
    local pid=$!
    for _ in $(seq 100); do curl -sf "http://$API/health" >/dev/null && break; sleep 0.05; done
    python3 - "$API" "$MESSAGES" > "$work/gaps" <<'PY' &
import sys, time, urllib.request
api, total = sys.argv[1], int(sys.argv[2])
def sent():
    text = urllib.request.urlopen("http://%s/metrics" % api).read().decode()
    for line in text.splitlines():
        if line.startswith("sluice_component_sent_events_total{") and 'component_id="out"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0
last, since, longest = sent(), None, 0.0
while last < total * 0.99:
    now = time.monotonic()
    n = sent()
    if n > last:
        if since is not None and last > 0:
            longest = max(longest, now - since)
        last, since = n, now
    elif since is None:
        since = now
    time.sleep(0.002)
print("%.0f" % (longest * 1000))
PY
    local poller=$!
    "$GEN" "127.0.0.1:$PORT" "$MESSAGES" "$CONNECTIONS" "$FRAMING" > "$work/gen.out" &
    local gen=$!
    if [ "$1" = yes ]; then
      while [ "$(metric sluice_component_sent_events_total out)" -lt $(( MESSAGES / 2 )) ]; do sleep 0.01; done
      sed -i 's/out-a.jsonl/out-b.jsonl/' "$work/reload.toml"
      curl -s -X POST "http://$API/-/reload" > "$work/reload.out"
    fi
    wait $gen; wait $poller || true
    local peak; peak=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
    kill -TERM $pid; wait $pid || true
    # Every (connection, seq) loadgen sent, across both files: exactly once?
    local once; once=$(cat "$work"/out*.jsonl | python3 -c '
import re, sys
want = int(sys.argv[1]); conns = int(sys.argv[2])
per = want // conns
seen = {}
pat = re.compile(rb"web-([0-9]+)[.]example[.]com.*seq=([0-9]+)")
for line in sys.stdin.buffer:
    m = pat.search(line)
    if m:
        k = (int(m.group(1)), int(m.group(2)))
        seen[k] = seen.get(k, 0) + 1
missing = conns * per - sum(1 for c in range(conns) for i in range(per) if (c, i) in seen)
doubled = sum(1 for v in seen.values() if v > 1)
print("exactly-once" if missing == 0 and doubled == 0 else "%d-missing,%d-doubled" % (missing, doubled))
' "$MESSAGES" "$CONNECTIONS")
    echo "$(cat "$work/gaps") $once $peak"
  }
  read -r g0 o0 p0 <<< "$(reload_run no)"
  read -r g1 o1 p1 <<< "$(reload_run yes)"
  echo "reload under load (syslog_tcp->file, path changed halfway): longest pause in delivery ${g1} ms (${g0} ms in the same run without a reload); $MESSAGES lines over both files: $o1 ($o0 without a reload); peak RSS $((p1 / 1024)) MiB ($((p0 / 1024)) MiB without); $(cat "$work/reload.out")"
fi

if [ "${ALERT_CASES:-1}" = "1" ]; then
  LOADGEN_PROCS=250 DONE_BY=received_by SINKS=alerts run_case "syslog_tcp->alert(3x1k)" "$(alert_graph)"
  LOADGEN_PROCS=2500 DONE_BY=received_by SINKS=alerts run_case "syslog_tcp->alert(3x10k)" "$(alert_graph)"
fi

if [ "${HTTP_CASES:-1}" = "1" ]; then
  # syslog TCP -> http sink (NDJSON) into a receiver that discards bodies: the sink alone.
  BPORT=${BPORT:-15581}
  $T/release/examples/http_blackhole "127.0.0.1:$BPORT" &
  bpid=$!
  sleep 0.2
  run_case "syslog_tcp->http" "type = \"http\"
uri = \"http://127.0.0.1:$BPORT/\"
encoding.codec = \"ndjson\"
${HTTP_EXTRA:-}"
  kill $bpid; wait $bpid 2>/dev/null || true

  # syslog TCP -> http sink (NDJSON) into a second sluice (http_server -> blackhole) on
  # the same machine, which competes for the same two cores.
  RPORT=${RPORT:-15580}
  RAPI=${RAPI:-127.0.0.1:19597}
  cat > "$work/receiver.toml" <<TOML
data_dir = "$work"
[api]
address = "$RAPI"
[sources.in]
type = "http_server"
address = "127.0.0.1:$RPORT"
decoding.codec = "ndjson"
[sinks.out]
inputs = ["in"]
type = "blackhole"
print_interval_secs = 0
TOML
  "$BIN" run --config "$work/receiver.toml" --log-level warn &
  rpid=$!
  for _ in $(seq 100); do curl -sf "http://$RAPI/health" >/dev/null && break; sleep 0.05; done
  run_case "syslog_tcp->http->sluice" "type = \"http\"
uri = \"http://127.0.0.1:$RPORT/\"
encoding.codec = \"ndjson\"
${HTTP_EXTRA:-}"
  echo "  receiver peak RSS $(awk '/VmHWM/ {printf "%.1f MiB", $2 / 1024}' /proc/$rpid/status)"
  kill -TERM $rpid; wait $rpid || true

  # HTTP ingest: wrk -t2 -c4 posting one NDJSON body of 1000 small events (~92 bytes
  # each) over and over into http_server -> blackhole, for HTTP_SECS per run.
  if command -v wrk >/dev/null 2>&1; then
    python3 - "$work/body.ndjson" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(1000):
        f.write(json.dumps({"level": "info", "service": "checkout", "message": "GET /api/cart/%d 200 12ms" % i, "user_id": i * 7}, separators=(",", ":")) + "\n")
PY
    : > "$work/results"
    for i in $(seq "$REPEAT"); do
      "$BIN" run --config "$work/receiver.toml" --log-level warn &
      rpid=$!
      for _ in $(seq 100); do curl -sf "http://$RAPI/health" >/dev/null && break; sleep 0.05; done
      API=$RAPI
      e0=$(metric sluice_component_sent_events_total out); b0=$(metric sluice_component_received_bytes_total in)
      c0=$(awk '{print $14 + $15}' /proc/$rpid/stat); t0=$(date +%s.%N)
      BODY="$work/body.ndjson" wrk -t2 -c4 -d"${HTTP_SECS:-10}s" -s scripts/wrk-post.lua "http://127.0.0.1:$RPORT/" > "$work/wrk.out"
      t1=$(date +%s.%N); c1=$(awk '{print $14 + $15}' /proc/$rpid/stat)
      e1=$(metric sluice_component_sent_events_total out); b1=$(metric sluice_component_received_bytes_total in)
      n503=$(curl -s "http://$RAPI/metrics" | awk '/sluice_http_server_requests_total/ && /status="503"/ { print $NF }')
      peak=$(awk '/VmHWM/ {print $2}' /proc/$rpid/status)
      kill -TERM $rpid; wait $rpid || true
      awk -v n=$(( e1 - e0 )) -v b=$(( b1 - b0 )) -v s="$t0" -v e="$t1" -v p="$peak" -v cpu=$(( c1 - c0 )) -v hz="$(getconf CLK_TCK)" -v r="${n503:-0}" 'BEGIN {
        t = e - s
        printf "%-22s %9d ev in %5.2fs %8.0f ev/s %6.1f MiB/s  CPU %4.2f us/ev  peak RSS %5.1f MiB  (wrk -t2 -c4, 1000-event NDJSON bodies, %d answered 503)|%f\n",
          "http_ndjson->blackhole", n, t, n / t, b / t / 1048576, cpu / hz / n * 1e6, p / 1024, r, n / t }' | tee -a "$work/results" | sed 's/^/  run: /'
    done
    sort -t'|' -k2 -n "$work/results" | awk -v m=$(( (REPEAT + 1) / 2 )) 'NR == m' | cut -d'|' -f1
  else
    echo "http_ndjson->blackhole: skipped (install wrk: apt-get install wrk)"
  fi
fi

if [ "${INFLUX_CASES:-1}" = "1" ]; then
  # syslog TCP -> influxdb sink into a real influxd 1.x (Debian `influxdb`) on this
  # machine: one point per event, so events/s is points/s.
  if command -v influxd >/dev/null 2>&1; then
    IPORT=${IPORT:-18086}
    mkdir -p "$work/influx"
    cat > "$work/influx/influxdb.conf" <<TOML
reporting-disabled = true
bind-address = "127.0.0.1:$((IPORT + 2))"
[meta]
  dir = "$work/influx/meta"
[data]
  dir = "$work/influx/data"
  wal-dir = "$work/influx/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:$IPORT"
  log-enabled = false
[monitor]
  store-enabled = false
TOML
    influxd -config "$work/influx/influxdb.conf" >"$work/influx/log" 2>&1 &
    ipid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$IPORT/ping" >/dev/null && break; sleep 0.1; done
    curl -s -XPOST "http://127.0.0.1:$IPORT/query" --data-urlencode 'q=CREATE DATABASE load' >/dev/null
    run_case "syslog_tcp->influxdb" "type = \"influxdb\"
endpoint = \"http://127.0.0.1:$IPORT\"
api_version = \"v1\"
database = \"load\"
measurement = \"syslog\"
tags = [\"hostname\", \"appname\", \"procid\"]"
    echo "  influxd peak RSS $(awk '/VmHWM/ {printf "%.1f MiB", $2 / 1024}' /proc/$ipid/status)"
    tail -3 "$work/influx/log" | sed "s/^/  influxd: /"
    kill $ipid 2>/dev/null; wait $ipid 2>/dev/null || true
  else
    echo "syslog_tcp->influxdb: skipped (install influxdb: apt-get install influxdb)"
  fi
fi

if [ "${KAFKA_CASES:-1}" = "1" ]; then
  # syslog TCP -> kafka sink into a local single-node KRaft broker (the tests' jars,
  # fetched by scripts/test-deps.sh), then kafka source -> blackhole reading all of it
  # back. The broker shares the two cores: its CPU is reported beside sluice's.
  KLIBS=${KAFKA_LIBS:-target/test-deps/kafka/libs}
  if [ -f "$KLIBS/kafka-clients-4.1.1.jar" ] && command -v java >/dev/null 2>&1; then
    KPORT=${KPORT:-19092}
    mkdir -p "$work/kafka"
    cat > "$work/kafka/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$((KPORT + 1))
listeners=PLAINTEXT://127.0.0.1:$KPORT,CONTROLLER://127.0.0.1:$((KPORT + 1))
advertised.listeners=PLAINTEXT://127.0.0.1:$KPORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$work/kafka/data
num.partitions=6
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Records carry their events' timestamps, which loadgen sets in the past: time-based
# retention would delete them at once.
log.retention.ms=-1
PROPS
    KJAVA=(java -Xms256m -Xmx1g -Dlog4j2.configurationFile="$PWD/scripts/kafka/log4j2.xml" -cp "$KLIBS/*")
    "${KJAVA[@]}" kafka.tools.StorageTool format -t "$(python3 -c 'import uuid,base64;print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')" \
      -c "$work/kafka/server.properties" --standalone >/dev/null
    "${KJAVA[@]}" kafka.Kafka "$work/kafka/server.properties" >"$work/kafka/log" 2>&1 &
    kpid=$!
    for _ in $(seq 120); do (exec 3<>"/dev/tcp/127.0.0.1/$KPORT") 2>/dev/null && break; sleep 0.5; done
    sleep 2
    kcpu() { awk '{print $14 + $15}' /proc/$kpid/stat; }
    k0=$(kcpu)
    run_case "syslog_tcp->kafka" "type = \"kafka\"
bootstrap_servers = \"127.0.0.1:$KPORT\"
topic = \"load\"
encoding.codec = \"json\"
${KAFKA_EXTRA:-}"
    k1=$(kcpu)
    produced=$(( MESSAGES / CONNECTIONS * CONNECTIONS * REPEAT ))
    awk -v c=$(( k1 - k0 )) -v hz="$(getconf CLK_TCK)" -v n="$produced" 'BEGIN {
      printf "  broker CPU while producing: %.2f us/ev (%d events over %s runs)\n", c / hz / n * 1e6, n, "'"$REPEAT"'" }'
    # The source reads everything the runs produced, in a new group each time; the
    # clock starts at the first event received (group join excluded).
    : > "$work/results"
    for i in $(seq "$REPEAT"); do
      cat > "$work/ksrc.toml" <<TOML
data_dir = "$work"
[api]
address = "$API"
[sources.in]
type = "kafka"
bootstrap_servers = "127.0.0.1:$KPORT"
group_id = "load-$i-$$"
topics = ["load"]
auto_offset_reset = "earliest"
[sinks.out]
type = "blackhole"
inputs = ["in"]
print_interval_secs = 0
TOML
      "$BIN" run --config "$work/ksrc.toml" --log-level warn &
      spid=$!
      for _ in $(seq 100); do curl -sf "http://$API/health" >/dev/null && break; sleep 0.05; done
      while [ "$(metric sluice_component_received_events_total in)" -eq 0 ]; do sleep 0.01; done
      start=$(date +%s.%N); c0=$(awk '{print $14 + $15}' /proc/$spid/stat); b0=$(kcpu)
      while [ "$(metric sluice_component_sent_events_total out)" -lt "$produced" ]; do sleep 0.02; done
      end=$(date +%s.%N); c1=$(awk '{print $14 + $15}' /proc/$spid/stat); b1=$(kcpu)
      peak=$(awk '/VmHWM/ {print $2}' /proc/$spid/status)
      kill -TERM $spid; wait $spid || true
      awk -v n="$produced" -v s="$start" -v e="$end" -v p="$peak" -v cpu=$(( c1 - c0 )) -v bcpu=$(( b1 - b0 )) -v hz="$(getconf CLK_TCK)" 'BEGIN {
        t = e - s
        printf "%-22s %8d ev in %5.2fs %8.0f ev/s  CPU %4.2f us/ev  peak RSS %5.1f MiB  broker CPU %4.2f us/ev|%f\n",
          "kafka->blackhole", n, t, n / t, cpu / hz / n * 1e6, p / 1024, bcpu / hz / n * 1e6, n / t }' | tee -a "$work/results" | sed 's/^/  run: /'
    done
    sort -t'|' -k2 -n "$work/results" | awk -v m=$(( (REPEAT + 1) / 2 )) 'NR == m' | cut -d'|' -f1
    echo "  broker peak RSS $(awk '/VmHWM/ {printf "%.1f MiB", $2 / 1024}' /proc/$kpid/status)"
    kill $kpid 2>/dev/null; wait $kpid 2>/dev/null || true
  else
    echo "kafka cases: skipped (run scripts/test-deps.sh for the broker's jars)"
  fi
fi

if [ "${SYSLOG_FORWARD_CASES:-1}" = "1" ]; then
  # Forwarding into a real rsyslog (B: imtcp -> omfile of %rawmsg%), sluice's syslog
  # sink beside rsyslog's own forwarding (A: imtcp -> omfwd, octet-counted), both timed
  # from the first byte sent until B has written every message.
  RSD=${RSYSLOG_ROOT:-$PWD/target/test-deps/rsyslog}
  if [ -x "$RSD/usr/sbin/rsyslogd" ]; then
    RMODS=$(dirname "$(ls "$RSD"/usr/lib/*/rsyslog/imtcp.so)")
    RPORT=${RPORT:-15601}
    rs_start() { # rs_start NAME CONFIG_BODY -> pid
      mkdir -p "$work/$1/spool"
      printf 'global(workDirectory="%s" maxMessageSize="64k")\n%s\n' "$work/$1/spool" "$2" > "$work/$1/rsyslog.conf"
      "$RSD/usr/sbin/rsyslogd" -n -f "$work/$1/rsyslog.conf" -M "$RMODS" -i "$work/$1/pid" >"$work/$1/log" 2>&1 &
      echo $!
    }
    want=$(( MESSAGES / CONNECTIONS * CONNECTIONS ))
    b_lines() { cat "$work"/rsb/out-* 2>/dev/null | wc -l; }
    forward_once() { # forward_once NAME START_SENDER STOP_SENDER
      rm -f "$work"/rsb/out-*
      bpid=$(rs_start rsb "module(load=\"imtcp\")
input(type=\"imtcp\" address=\"127.0.0.1\" port=\"$RPORT\")
template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")
action(type=\"omfile\" file=\"$work/rsb/out-$1\" template=\"raw\" asyncWriting=\"on\" ioBufferSize=\"256k\" flushOnTXEnd=\"off\")")
      sleep 1
      local spid
      spid=$($2)
      sleep 1.5
      local c0; c0=$(awk '{print $14 + $15}' /proc/$spid/stat)
      LOADGEN_START_FILE="$work/start" "$GEN" "127.0.0.1:$PORT" "$MESSAGES" "$CONNECTIONS" "$FRAMING" > "$work/gen.out"
      while [ "$(b_lines)" -lt "$want" ]; do sleep 0.1; done
      local end; end=$(date +%s.%N)
      local c1; c1=$(awk '{print $14 + $15}' /proc/$spid/stat)
      local peak; peak=$(awk '/VmHWM/ {print $2}' /proc/$spid/status)
      kill -TERM "$spid" "$bpid" 2>/dev/null; wait "$spid" "$bpid" 2>/dev/null || true
      awk -v n="$want" -v s="$(cat "$work/start")" -v e="$end" -v p="$peak" -v cpu=$(( c1 - c0 )) -v hz="$(getconf CLK_TCK)" -v name="$1" 'BEGIN {
        t = e - s
        printf "%-28s %8d ev in %5.2fs %8.0f ev/s  CPU %4.2f us/ev  peak RSS %5.1f MiB\n", name, n, t, n / t, cpu / hz / n * 1e6, p / 1024 }'
    }
    sluice_forwarder() {
      cat > "$work/fwd.toml" <<TOML
data_dir = "$work"
[api]
address = "$API"
[sources.in]
type = "syslog"
mode = "tcp"
address = "127.0.0.1:$PORT"
[sinks.out]
type = "syslog"
inputs = ["in"]
address = "127.0.0.1:$RPORT"
TOML
      "$BIN" run --config "$work/fwd.toml" --log-level warn >/dev/null 2>&1 &
      echo $!
    }
    rsyslog_forwarder() {
      rs_start rsa "module(load=\"imtcp\")
input(type=\"imtcp\" address=\"127.0.0.1\" port=\"$PORT\")
action(type=\"omfwd\" target=\"127.0.0.1\" port=\"$RPORT\" protocol=\"tcp\" TCP_Framing=\"octet-counted\" queue.type=\"LinkedList\" queue.size=\"100000\" queue.dequeueBatchSize=\"1024\")"
    }
    for i in $(seq "$REPEAT"); do
      forward_once "syslog_tcp->syslog(rsyslog)" sluice_forwarder
      forward_once "rsyslog imtcp->omfwd(rsyslog)" rsyslog_forwarder
    done
  else
    echo "syslog forwarding cases: skipped (run scripts/test-deps.sh to unpack rsyslog)"
  fi
fi

if [ "${CLOUDWATCH_CASES:-1}" = "1" ]; then
  # The aws_cloudwatch_logs sink, one stream per loadgen connection (hostname web-0c):
  # first into http_blackhole, which answers every PutLogEvents 200 at once (the sink's
  # own cost), then into a real moto_server with CW_MESSAGES messages (moto is slow).
  CPORT=${CPORT:-15582}
  cw_sink() { # cw_sink ENDPOINT
    printf 'type = "aws_cloudwatch_logs"\nendpoint = "%s"\nregion = "us-east-1"\ngroup_name = "/load/syslog"\nstream_name = "{{ hostname }}"\nauth.access_key_id = "AKIDLOAD"\nauth.secret_access_key = "load"\n%s' "$1" "${CW_EXTRA:-}"
  }
  cw_per_request() {
    local ok; ok=$(curl -s "http://$API/metrics" | awk 'index($0, "sluice_cloudwatch_requests_total{") == 1 && index($0, "status=\"ok\"") { v = $NF } END { print v + 0 }')
    echo "$ok"
  }
  $T/release/examples/http_blackhole "127.0.0.1:$CPORT" &
  bpid=$!
  sleep 0.2
  run_case "syslog_tcp->cloudwatch(instant)" "$(cw_sink "http://127.0.0.1:$CPORT")"
  kill $bpid; wait $bpid 2>/dev/null || true
  MOTO=${MOTO_SERVER:-$PWD/target/test-deps/moto/bin/moto_server}
  if [ -x "$MOTO" ]; then
    MPORT=${MPORT:-15583}
    "$MOTO" -H 127.0.0.1 -p "$MPORT" >/dev/null 2>&1 &
    mpid=$!
    for _ in $(seq 100); do curl -s "http://127.0.0.1:$MPORT" >/dev/null && break; sleep 0.1; done
    CW_REQUESTS_FILE="$work/cw_requests" MESSAGES=${CW_MESSAGES:-200000} REPEAT=1 \
      run_case "syslog_tcp->cloudwatch(moto)" "$(cw_sink "http://127.0.0.1:$MPORT")"
    echo "  PutLogEvents calls into moto: $(cat "$work/cw_requests" 2>/dev/null || echo ?)"
    kill $mpid; wait $mpid 2>/dev/null || true
  else
    echo "cloudwatch into moto: skipped (run scripts/test-deps.sh to install moto[server])"
  fi
fi

[ "${FILE_CASES:-1}" = "1" ] || exit 0
# File source: one FILE_MB file of 150-byte lines, then 100 files of FILE_MB/100 each,
# read from the beginning into blackhole and into a file.
FILE_MB=${FILE_MB:-1024}
gen_lines() { # gen_lines PATH MB -> number of lines written
  python3 - "$1" "$2" <<'PY'
import sys
path, mb = sys.argv[1], int(sys.argv[2])
n = mb * 1048576 // 150
pad = "x" * 150
with open(path, "w") as f:
    for i in range(n):
        f.write("2026-11-22T14:20:00Z seq=%08d %s\n" % (i, pad[: 150 - 31]))
print(n)
PY
}
run_file_case() { # run_file_case NAME GLOB LINES BYTES SINK_TOML
  local name=$1 glob=$2 want=$3 bytes=$4 sink=$5
  rm -rf "$work/state" "$work/out.jsonl"; mkdir -p "$work/state"
  cat > "$work/$name.toml" <<TOML
data_dir = "$work/state"
[api]
address = "$API"
[sources.in]
type = "file"
include = ["$glob"]
[sinks.out]
inputs = ["in"]
$sink
TOML
  local start end pid peak cpu
  start=$(date +%s.%N)
  "$BIN" run --config "$work/$name.toml" --log-level warn &
  pid=$!
  until [ "$(metric sluice_component_sent_events_total out)" -ge "$want" ]; do sleep 0.02; done
  end=$(date +%s.%N)
  peak=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  cpu=$(awk '{print $14 + $15}' /proc/$pid/stat)
  kill -TERM $pid; wait $pid || true
  awk -v n="$want" -v b="$bytes" -v s="$start" -v e="$end" -v p="$peak" -v cpu="$cpu" -v hz="$(getconf CLK_TCK)" -v name="$name" 'BEGIN {
    t = e - s
    printf "%-22s %9d lines in %5.2fs %8.0f lines/s %6.1f MiB/s  CPU %4.2f us/line  peak RSS %5.1f MiB (from process start)\n",
      name, n, t, n / t, b / t / 1048576, cpu / hz / n * 1e6, p / 1024 }'
}
mkdir -p "$work/one" "$work/many"
lines=$(gen_lines "$work/one/big.log" "$FILE_MB")
bytes=$(stat -c %s "$work/one/big.log")
echo "file source: one file of $((bytes / 1048576)) MiB, 150-byte lines (page cache warm: $(cat "$work/one/big.log" | wc -l) lines)"
run_file_case "file->blackhole" "$work/one/*.log" "$lines" "$bytes" 'type = "blackhole"
print_interval_secs = 0'
run_file_case "file->file" "$work/one/*.log" "$lines" "$bytes" "type = \"file\"
path = \"$work/out.jsonl\""
per=$(gen_lines "$work/many/f000.log" $(( FILE_MB / 100 > 0 ? FILE_MB / 100 : 1 )))
# Distinct first lines: files that begin with the same line share a fingerprint.
mv "$work/many/f000.log" "$work/body"
for i in $(seq -f %03g 0 99); do { echo "file $i $(printf '%0300d' 0)"; cat "$work/body"; } > "$work/many/f$i.log"; done
rm "$work/body"
mbytes=$(cat "$work"/many/*.log | wc -c)
mlines=$(( (per + 1) * 100 ))
run_file_case "100files->blackhole" "$work/many/*.log" "$mlines" "$mbytes" 'type = "blackhole"
print_interval_secs = 0'
# 100 files written concurrently while sluice tails them: each file gets its distinct
# first line, sluice reads those, then 100 `cat`s append FILE_MB in total at once (in
# 128 KiB writes, so lines are split across reads). The clock runs from the first append
# until every line is delivered.
rm -rf "$work/many"; mkdir -p "$work/many" "$work/state"
per=$(gen_lines "$work/body" $(( FILE_MB / 100 > 0 ? FILE_MB / 100 : 1 )))
for i in $(seq -f %03g 0 99); do echo "file $i $(printf '%0300d' 0)" > "$work/many/f$i.log"; done
rm -rf "$work/state"; mkdir -p "$work/state"
cat > "$work/concurrent.toml" <<TOML
data_dir = "$work/state"
[api]
address = "$API"
[sources.in]
type = "file"
include = ["$work/many/*.log"]
[sinks.out]
inputs = ["in"]
type = "blackhole"
print_interval_secs = 0
TOML
"$BIN" run --config "$work/concurrent.toml" --log-level warn &
pid=$!
until [ "$(metric sluice_component_sent_events_total out)" -ge 100 ]; do sleep 0.02; done
cpu0=$(awk '{print $14 + $15}' /proc/$pid/stat)
start=$(date +%s.%N)
writers=()
for i in $(seq -f %03g 0 99); do cat "$work/body" >> "$work/many/f$i.log" & writers+=($!); done
wait "${writers[@]}"
want=$(( per * 100 + 100 ))
until [ "$(metric sluice_component_sent_events_total out)" -ge "$want" ]; do sleep 0.02; done
end=$(date +%s.%N)
peak=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
cpu1=$(awk '{print $14 + $15}' /proc/$pid/stat)
kill -TERM $pid; wait $pid || true
cbytes=$(( $(stat -c %s "$work/body") * 100 ))
awk -v n="$(( per * 100 ))" -v b="$cbytes" -v s="$start" -v e="$end" -v p="$peak" -v cpu=$(( cpu1 - cpu0 )) -v hz="$(getconf CLK_TCK)" 'BEGIN {
  t = e - s
  printf "%-22s %9d lines in %5.2fs %8.0f lines/s %6.1f MiB/s  CPU %4.2f us/line  peak RSS %5.1f MiB (written while tailed)\n",
    "100written->blackhole", n, t, n / t, b / t / 1048576, cpu / hz / n * 1e6, p / 1024 }'
rm -f "$work/body"

# Idle cost: IDLE_FILES followed files that nobody writes, CPU ticks over IDLE_SECS.
IDLE_FILES=${IDLE_FILES:-1000}
IDLE_SECS=${IDLE_SECS:-60}
if [ "$IDLE_SECS" -gt 0 ]; then
  rm -rf "$work/many" "$work/state"; mkdir -p "$work/many" "$work/state"
  for i in $(seq -f %04g 1 "$IDLE_FILES"); do echo "idle file $i $(printf '%0300d' 0)" > "$work/many/f$i.log"; done
  "$BIN" run --config "$work/concurrent.toml" --log-level warn &
  pid=$!
  until [ "$(metric sluice_component_sent_events_total out)" -ge "$IDLE_FILES" ]; do sleep 0.05; done
  sleep 3 # the first checkpoint write and the acknowledgements settle
  cpu0=$(awk '{print $14 + $15}' /proc/$pid/stat)
  sleep "$IDLE_SECS"
  cpu1=$(awk '{print $14 + $15}' /proc/$pid/stat)
  rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  kill -TERM $pid; wait $pid || true
  awk -v f="$IDLE_FILES" -v s="$IDLE_SECS" -v c=$(( cpu1 - cpu0 )) -v hz="$(getconf CLK_TCK)" -v r="$rss" 'BEGIN {
    printf "idle, %d followed files: %d clock ticks in %ds (%.3f%% of one core), RSS %.1f MiB\n", f, c, s, c / hz / s * 100, r / 1024 }'
fi

t0=$(date +%s.%N); cat "$work/one/big.log" | wc -l > /dev/null; t1=$(date +%s.%N)
awk -v b="$bytes" -v s="$t0" -v e="$t1" 'BEGIN { printf "ceiling: cat | wc -l over the same file from the page cache: %.0f MiB/s\n", b / (e - s) / 1048576 }'
