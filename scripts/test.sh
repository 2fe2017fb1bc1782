#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs the real programs the integration
# tests drive (util-linux `logger`, Prometheus' `promtool`, `logrotate`, `curl`, `openssl`,
# `python3` for the rotation tests' writer, `ss` to see a socket's keepalive timer, `tinyproxy` as the HTTP proxy, InfluxDB 1.x `influxd` and VictoriaMetrics
# for the influxdb sink, rsyslog for the syslog sink), quickly skipping what is
# already there, then runs every test. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v logger >/dev/null 2>&1 || need+=(bsdutils)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v logrotate >/dev/null 2>&1 || need+=(logrotate)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v ss >/dev/null 2>&1 || need+=(iproute2)
command -v tinyproxy >/dev/null 2>&1 || need+=(tinyproxy)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v influxd >/dev/null 2>&1 || need+=(influxdb)
command -v victoria-metrics >/dev/null 2>&1 || need+=(victoria-metrics)
# rsyslog's own libraries; rsyslog itself is unpacked below, not installed.
dpkg -s libestr0 >/dev/null 2>&1 || need+=(libestr0)
dpkg -s libfastjson4 >/dev/null 2>&1 || need+=(libfastjson4)
dpkg -s libgnutls30 >/dev/null 2>&1 || need+=(libgnutls30)
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "Installing test dependencies: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# rsyslog (with its gtls TLS driver) for the syslog sink's tests, unpacked from
# Debian's packages into target/test-deps/rsyslog: installing it would start a system
# syslog daemon that owns /dev/log and port 514.
rsyslog_root=target/test-deps/rsyslog
if [ ! -x "$rsyslog_root/usr/sbin/rsyslogd" ] || ! ls "$rsyslog_root"/usr/lib/*/rsyslog/lmnsd_gtls.so >/dev/null 2>&1; then
  echo "Unpacking rsyslog and rsyslog-gnutls into $rsyslog_root"
  debs=$(mktemp -d)
  chmod 777 "$debs"
  if ! (cd "$debs" && apt-get download rsyslog rsyslog-gnutls >/dev/null 2>&1); then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    (cd "$debs" && apt-get download rsyslog rsyslog-gnutls >/dev/null)
  fi
  mkdir -p "$rsyslog_root"
  for deb in "$debs"/*.deb; do dpkg -x "$deb" "$rsyslog_root"; done
  rm -rf "$debs"
fi

if [ ! -d ../shared/corpus ]; then
  echo "The shared test corpus is expected at ../shared/corpus (beside this checkout)." >&2
  exit 1
fi

# Integration tests open many sockets at once.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if cargo nextest --version >/dev/null 2>&1; then
  # nextest does not run doc tests; run them first so the suite's summary comes last.
  cargo test --locked --doc "$@"
  cargo nextest run --locked --no-fail-fast "$@"
else
  cargo test --locked --no-fail-fast "$@"
fi
