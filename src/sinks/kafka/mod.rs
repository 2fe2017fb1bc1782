//! `kafka` sink: events as records into Apache Kafka topics, through librdkafka's
//! producer: the agent end of the agent → Kafka → aggregator layout. Events are
//! reported delivered only when the broker acknowledged them (`acks = all`).
//!
//! [`config`] holds the options and the producer settings they make; [`sink`] runs
//! the producer and turns delivery reports into acknowledgements.

pub mod config;
pub mod sink;

pub use config::KafkaSinkConfig;
