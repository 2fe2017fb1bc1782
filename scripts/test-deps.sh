#!/usr/bin/env bash
# Installs what the build and the integration tests need, quickly skipping what is
# already there: the C toolchain pieces librdkafka is built with (`pkg-config`,
# OpenSSL and zlib headers), the real programs the tests drive (util-linux `logger`,
# Prometheus' `promtool`, `logrotate`, `curl`, `openssl`, `python3` for the rotation
# tests' writer, `ss` to see a socket's keepalive timer, `tinyproxy` as the HTTP proxy,
# InfluxDB 1.x `influxd` and VictoriaMetrics for the influxdb sink, Java 17 and Maven
# for the Kafka broker), rsyslog unpacked for the syslog sink, Apache Kafka's jars, and
# moto_server (PyPI) as the CloudWatch Logs endpoint, and aiosmtpd (PyPI) as the SMTP server.
# Called by scripts/test.sh, and by .ci/run before clippy builds anything.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
dpkg -s libssl-dev >/dev/null 2>&1 || need+=(libssl-dev)
dpkg -s zlib1g-dev >/dev/null 2>&1 || need+=(zlib1g-dev)
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
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

# Apache Kafka's jars from Maven Central (a single-node KRaft broker for the Kafka
# tests), copied into target/test-deps/kafka/libs; Maven keeps its download cache.
kafka_libs=target/test-deps/kafka/libs
if [ ! -f "$kafka_libs/kafka-clients-4.1.1.jar" ]; then
  echo "Fetching Apache Kafka's jars into $kafka_libs"
  mvn -q -B -f scripts/kafka/pom.xml dependency:copy-dependencies -DoutputDirectory="$PWD/$kafka_libs"
fi

# moto_server, the CloudWatch Logs endpoint of the aws_cloudwatch_logs sink's tests:
# `moto[server]` from PyPI into a virtualenv under target/test-deps/moto.
moto_venv=target/test-deps/moto
if [ ! -x "$moto_venv/bin/moto_server" ]; then
  if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  echo "Installing moto[server] into $moto_venv"
  rm -rf "$moto_venv"
  python3 -m venv "$moto_venv"
  "$moto_venv/bin/pip" install -q --disable-pip-version-check 'moto[server]==5.2.5'
fi

# aiosmtpd (PyPI), the SMTP server of the email sink's tests, with a small script
# (tests/support/smtp_server.py) that records each mail and offers STARTTLS and AUTH.
smtp_venv=target/test-deps/smtp
if [ ! -x "$smtp_venv/bin/python" ] || ! "$smtp_venv/bin/python" -c 'import aiosmtpd' >/dev/null 2>&1; then
  echo "Installing aiosmtpd into $smtp_venv"
  rm -rf "$smtp_venv"
  python3 -m venv "$smtp_venv"
  "$smtp_venv/bin/pip" install -q --disable-pip-version-check 'aiosmtpd==1.4.6'
fi
