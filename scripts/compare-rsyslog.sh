#!/usr/bin/env bash
# Measures rsyslog the way scripts/loadtest.sh measures sluice: imtcp -> omfile with a
# JSON template of the same fields, the same loadgen messages and connections, clock from
# first byte sent to last line written. rsyslog is unpacked from Debian's package
# (`apt-get download rsyslog && dpkg -x`, so nothing conflicts with an installed syslog);
# its two libraries are installed with apt.
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES=${MESSAGES:-2000000}
CONNECTIONS=${CONNECTIONS:-4}
PORT=${PORT:-15516}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -f "$work/pid" ] && kill "$(cat "$work/pid")" 2>/dev/null; rm -rf "$work"' EXIT

if [ ! -x "$work/root/usr/sbin/rsyslogd" ]; then
  (cd "$work" && apt-get download rsyslog >/dev/null 2>&1 && dpkg -x rsyslog_*.deb root)
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libestr0 libfastjson4 >/dev/null
fi
cargo build --release --quiet --example loadgen
mods="$work/root/usr/lib/x86_64-linux-gnu/rsyslog"
mkdir -p "$work/spool"
cat > "$work/rsyslog.conf" <<CONF
global(workDirectory="$work/spool" maxMessageSize="102400")
module(load="imtcp" MaxSessions="200")
input(type="imtcp" port="$PORT")
template(name="json" type="list") {
  constant(value="{\"appname\":\"") property(name="app-name" format="json")
  constant(value="\",\"facility\":\"") property(name="syslogfacility-text" format="json")
  constant(value="\",\"host\":\"") property(name="hostname" format="json")
  constant(value="\",\"hostname\":\"") property(name="hostname" format="json")
  constant(value="\",\"message\":\"") property(name="msg" format="json")
  constant(value="\",\"msgid\":\"") property(name="msgid" format="json")
  constant(value="\",\"procid\":\"") property(name="procid" format="json")
  constant(value="\",\"sd\":\"") property(name="structured-data" format="json")
  constant(value="\",\"severity\":\"") property(name="syslogseverity-text" format="json")
  constant(value="\",\"source_ip\":\"") property(name="fromhost-ip" format="json")
  constant(value="\",\"timestamp\":\"") property(name="timereported" dateFormat="rfc3339" format="json")
  constant(value="\"}\n")
}
action(type="omfile" file="$work/out.jsonl" template="json" asyncWriting="on" ioBufferSize="256k" flushOnTXEnd="off")
CONF
"$work/root/usr/sbin/rsyslogd" -n -f "$work/rsyslog.conf" -M "$mods" -i "$work/pid" &
rpid=$!
sleep 1.5
LOADGEN_START_FILE="$work/start" target/release/examples/loadgen "127.0.0.1:$PORT" "$MESSAGES" "$CONNECTIONS" > /dev/null
want=$(( MESSAGES / CONNECTIONS * CONNECTIONS ))
while [ "$(wc -l < "$work/out.jsonl" 2>/dev/null || echo 0)" -lt "$want" ]; do sleep 0.05; done
end=$(date +%s.%N)
peak=$(awk '/VmHWM/ {print $2}' /proc/$rpid/status)
awk -v n="$want" -v s="$(cat "$work/start")" -v e="$end" -v p="$peak" -v c="$CONNECTIONS" 'BEGIN {
  printf "rsyslog imtcp->omfile(json)  %d events in %.2fs  %.0f events/s  peak RSS %.1f MiB  (%d conns)\n", n, e - s, n / (e - s), p / 1024, c }'
