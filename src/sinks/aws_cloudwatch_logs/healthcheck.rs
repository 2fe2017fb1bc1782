//! The `aws_cloudwatch_logs` sink's healthcheck: DescribeLogGroups on the group's name
//! as a prefix (one call at start, never on the data path). It proves the endpoint
//! answers and the credentials work; a missing group passes only when the sink may
//! create it.

use aws_config::SdkConfig;
use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;

/// Looks for `group`; `Err` says what came back instead (never a credential).
pub async fn healthcheck(config: &SdkConfig, group: &str, may_create: bool) -> Result<(), String> {
    let client = aws_sdk_cloudwatchlogs::Client::new(config);
    let out = client
        .describe_log_groups()
        .log_group_name_prefix(group)
        .send()
        .await
        .map_err(|e| match e.code() {
            Some(code) => format!(
                "DescribeLogGroups: {code}: {}",
                e.message().unwrap_or_default()
            ),
            None => format!("DescribeLogGroups: {}", super::service::error_chain(&e)),
        })?;
    let found = out
        .log_groups()
        .iter()
        .any(|g| g.log_group_name() == Some(group));
    if found || may_create {
        Ok(())
    } else {
        Err(format!(
            "log group {group} does not exist and create_missing_group is false"
        ))
    }
}
