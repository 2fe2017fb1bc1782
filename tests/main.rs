//! The integration suite as one test binary: every module drives the real `sluice`
//! binary (and the real programs around it) over real sockets and files.
//!
//! One binary rather than one per file: each test binary links all of sluice (the AWS
//! SDK, VRL, librdkafka), and 26 of them filled CI's disk and spent minutes linking.
//! Run one file's tests with `cargo test --test integration reload::`.

mod support;

mod alert_notifications;
mod alert_transform;
mod cloudwatch_sink;
mod dead_letter;
mod disk_buffer;
mod email_sink;
mod file_rotation;
mod file_source;
mod http_sink;
mod http_source;
mod influxdb_sink;
mod kafka_aggregator;
mod kafka_sink;
mod kafka_source;
mod pipeline;
mod reload;
mod remap;
mod shutdown;
mod syslog_corpus;
mod syslog_framing;
mod syslog_sink;
mod syslog_source;
mod validate;
mod vector_compat;
mod vector_documented_examples;
mod vrl_examples;
