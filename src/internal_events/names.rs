//! Names of every metric sluice exports, shared by the code that emits them and by
//! [`super::describe_all`], so a renamed metric cannot leave a stale description behind
//! and the test below fails on a description of a metric nothing emits.

/// Events a component took in.
pub const RECEIVED_EVENTS: &str = "sluice_component_received_events_total";

/// Raw bytes a source read off the wire or disk.
pub const RECEIVED_BYTES: &str = "sluice_component_received_bytes_total";

/// Events a component passed on or delivered.
pub const SENT_EVENTS: &str = "sluice_component_sent_events_total";

/// Bytes a sink wrote to its destination.
pub const SENT_BYTES: &str = "sluice_component_sent_bytes_total";

/// Errors by component and `error_type`.
pub const ERRORS: &str = "sluice_component_errors_total";

/// Events dropped, `intentional` or not.
pub const DISCARDED_EVENTS: &str = "sluice_component_discarded_events_total";

/// Events waiting in front of a sink.
pub const BUFFER_EVENTS: &str = "sluice_buffer_events";

/// Room in front of a sink.
pub const BUFFER_MAX_EVENTS: &str = "sluice_buffer_max_events";

/// Seconds since start.
pub const UPTIME: &str = "sluice_uptime_seconds";

/// Always 1, labelled with the version.
pub const BUILD_INFO: &str = "sluice_build_info";

/// Bytes a disk buffer holds on disk.
pub const BUFFER_BYTE_SIZE: &str = "sluice_buffer_byte_size";

/// The most bytes a disk buffer may hold (`buffer.max_size`).
pub const BUFFER_MAX_BYTE_SIZE: &str = "sluice_buffer_max_byte_size";

/// Events a disk buffer lost to corruption (a torn or truncated file, a bad checksum).
pub const BUFFER_CORRUPTED_EVENTS: &str = "sluice_buffer_corrupted_events_total";

/// Events a sink's destination refused for good, by `result`: `written` to the
/// dead-letter file, or `dropped` (the file at its cap, the writer behind, an error).
pub const DEAD_LETTERS: &str = "sluice_dead_letters_total";

/// Config reloads by `result`: `applied`, `rejected` (invalid config), `failed` (could
/// not be applied).
pub const CONFIG_RELOADS: &str = "sluice_config_reloads_total";

/// Answers of an `http_server` source, by status.
pub const HTTP_SERVER_REQUESTS: &str = "sluice_http_server_requests_total";

/// Requests an HTTP sink sent, by status.
pub const HTTP_CLIENT_REQUESTS: &str = "sluice_http_client_requests_total";

/// Time to a response, per attempt.
pub const HTTP_CLIENT_REQUEST_DURATION: &str = "sluice_http_client_request_duration_seconds";

/// Open connections of a socket source.
pub const TCP_CONNECTIONS: &str = "sluice_tcp_connections";

/// Connections a socket source accepted.
pub const TCP_CONNECTIONS_ACCEPTED: &str = "sluice_tcp_connections_total";

/// Files a file source follows or a file sink holds open.
pub const FILES_OPEN: &str = "sluice_files_open";

/// The most files a file source held open at once.
pub const FILES_OPEN_PEAK: &str = "sluice_files_open_peak";

/// Files a file source started following.
pub const FILES_ADDED: &str = "sluice_files_added_total";
/// Busy keys a throttle transform forgot because `max_keys` was reached.
pub const THROTTLE_KEYS_EVICTED: &str = "sluice_throttle_keys_evicted_total";
/// Files the file source deleted after delivering them (`remove_after_secs`).
pub const FILES_REMOVED: &str = "sluice_files_removed_total";

/// Followed files renamed away or deleted.
pub const FILES_ROTATED: &str = "sluice_files_rotated_total";

/// Followed files truncated (copytruncate).
pub const FILES_TRUNCATED: &str = "sluice_files_truncated_total";

/// Full rescans of a file source, by reason.
pub const FILES_RESCANS: &str = "sluice_files_rescans_total";

/// Checkpoint files written.
pub const CHECKPOINT_WRITES: &str = "sluice_checkpoint_writes_total";

/// Datagrams the kernel dropped for a UDP source.
pub const UDP_KERNEL_DROPS: &str = "sluice_udp_kernel_drops_total";

/// Requests a sink sent again after a retryable failure (any network sink, not only HTTP).
pub const SINK_RETRIES: &str = "sluice_sink_retries_total";

/// 1 while a sink only probes a failing destination.
pub const SINK_CIRCUIT_OPEN: &str = "sluice_sink_circuit_open";

/// Time from handing a batch's records to the Kafka producer until the broker
/// acknowledged the last of them.
pub const KAFKA_PRODUCE_LATENCY: &str = "sluice_kafka_produce_latency_seconds";

/// Records a Kafka sink's producer holds: queued or sent, not yet acknowledged.
pub const KAFKA_PRODUCER_QUEUE: &str = "sluice_kafka_producer_queue_records";

/// Records sent to Kafka brokers and awaiting their acknowledgement.
pub const KAFKA_IN_FLIGHT: &str = "sluice_kafka_in_flight_records";

/// Messages a Kafka source's partition has that its group has not committed.
pub const KAFKA_CONSUMER_LAG: &str = "sluice_kafka_consumer_lag";

/// Partition assignments and revocations a Kafka source went through.
pub const KAFKA_REBALANCES: &str = "sluice_kafka_rebalances_total";

/// Offsets a Kafka source committed (per commit, not per offset).
pub const KAFKA_COMMITS: &str = "sluice_kafka_commits_total";

/// PutLogEvents calls of a CloudWatch Logs sink (and failed CreateLogGroup/Stream
/// calls), by how they were answered.
pub const CLOUDWATCH_REQUESTS: &str = "sluice_cloudwatch_requests_total";

/// Events CloudWatch Logs would not take (or did not), by reason.
pub const CLOUDWATCH_REJECTED_EVENTS: &str = "sluice_cloudwatch_rejected_events_total";

/// Events sent truncated because they did not fit into one request.
pub const CLOUDWATCH_TRUNCATED_EVENTS: &str = "sluice_cloudwatch_truncated_events_total";

/// Alerts of a rule the outside sees firing.
pub const ALERTS_FIRING: &str = "sluice_alerts_firing";

/// State changes of a rule's alerts, by the state entered.
pub const ALERT_TRANSITIONS: &str = "sluice_alert_transitions_total";

/// Groups (alerts, active or not) a rule keeps.
pub const ALERT_GROUPS: &str = "sluice_alert_groups";

/// Groups a rule forgot or turned away because `max_groups` was reached.
pub const ALERT_GROUPS_EVICTED: &str = "sluice_alert_groups_evicted_total";

/// Notifications of a Slack, Discord or email sink, by what became of them: sent,
/// rate_limited (answered 429), retried, rejected, failed (out of retries), dropped
/// (queue full), merged (replaced by a newer state of their group before being sent).
pub const NOTIFICATIONS: &str = "sluice_notifications_total";

/// Every name above, for the test that each one is emitted somewhere.
pub const ALL: &[&str] = &[
    RECEIVED_EVENTS,
    RECEIVED_BYTES,
    SENT_EVENTS,
    SENT_BYTES,
    ERRORS,
    DISCARDED_EVENTS,
    BUFFER_EVENTS,
    BUFFER_MAX_EVENTS,
    UPTIME,
    BUILD_INFO,
    CONFIG_RELOADS,
    BUFFER_BYTE_SIZE,
    BUFFER_MAX_BYTE_SIZE,
    BUFFER_CORRUPTED_EVENTS,
    DEAD_LETTERS,
    HTTP_SERVER_REQUESTS,
    HTTP_CLIENT_REQUESTS,
    HTTP_CLIENT_REQUEST_DURATION,
    TCP_CONNECTIONS,
    TCP_CONNECTIONS_ACCEPTED,
    FILES_OPEN,
    FILES_OPEN_PEAK,
    FILES_ADDED,
    FILES_REMOVED,
    THROTTLE_KEYS_EVICTED,
    FILES_ROTATED,
    FILES_TRUNCATED,
    FILES_RESCANS,
    CHECKPOINT_WRITES,
    UDP_KERNEL_DROPS,
    SINK_RETRIES,
    SINK_CIRCUIT_OPEN,
    KAFKA_PRODUCE_LATENCY,
    KAFKA_PRODUCER_QUEUE,
    KAFKA_IN_FLIGHT,
    KAFKA_CONSUMER_LAG,
    KAFKA_REBALANCES,
    KAFKA_COMMITS,
    CLOUDWATCH_REQUESTS,
    CLOUDWATCH_REJECTED_EVENTS,
    CLOUDWATCH_TRUNCATED_EVENTS,
    ALERTS_FIRING,
    ALERT_TRANSITIONS,
    ALERT_GROUPS,
    ALERT_GROUPS_EVICTED,
    NOTIFICATIONS,
];

#[cfg(test)]
mod tests {
    /// Each name is used by code outside this module and the descriptions: nothing is
    /// described (and so exported at 0) that no component ever emits.
    #[test]
    fn every_named_metric_is_emitted_somewhere() {
        fn sources(dir: &std::path::Path, out: &mut String) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    sources(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs")
                    && !p.ends_with("internal_events/names.rs")
                {
                    out.push_str(&std::fs::read_to_string(&p).unwrap());
                }
            }
        }
        let mut code = String::new();
        sources(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut code,
        );
        let consts = include_str!("names.rs");
        for line in consts.lines() {
            let Some(rest) = line.strip_prefix("pub const ") else {
                continue;
            };
            let name = rest.split(':').next().unwrap_or_default();
            if name == "ALL" {
                continue;
            }
            let uses = code.matches(&format!("names::{name}")).count();
            // describe_all is one use; an emitter must be another.
            assert!(
                uses >= 2,
                "{name} is described but never emitted ({uses} uses)"
            );
        }
    }
}
