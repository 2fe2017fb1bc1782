//! Sinks: where events leave the graph. Register a new one with one line below.

pub mod aws_cloudwatch_logs;
pub mod blackhole;
pub mod console;
pub mod discord;
pub mod email;
pub mod file;
pub mod http;
pub mod influxdb;
pub mod kafka;
pub mod slack;
pub mod syslog;
pub mod util;

use crate::topology::component::{sink, Registration, SinkConfig};

/// Every sink type by its `type` name.
pub static REGISTRY: &[Registration<dyn SinkConfig>] = &[
    sink::<file::FileSinkConfig>("file"),
    sink::<console::ConsoleConfig>("console"),
    sink::<blackhole::BlackholeConfig>("blackhole"),
    sink::<http::HttpSinkConfig>("http"),
    sink::<influxdb::InfluxDbConfig>("influxdb"),
    sink::<influxdb::vector::InfluxDbLogsConfig>("influxdb_logs"),
    sink::<influxdb::vector::InfluxDbMetricsConfig>("influxdb_metrics"),
    sink::<syslog::SyslogSinkConfig>("syslog"),
    sink::<kafka::KafkaSinkConfig>("kafka"),
    sink::<aws_cloudwatch_logs::CloudwatchLogsConfig>("aws_cloudwatch_logs"),
    sink::<slack::SlackConfig>("slack"),
    sink::<discord::DiscordConfig>("discord"),
    sink::<email::EmailConfig>("email"),
];
