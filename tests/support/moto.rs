//! `moto_server` (PyPI's `moto[server]`, which `scripts/test-deps.sh` installs into a
//! virtualenv under `target/test-deps/moto`) as a real CloudWatch Logs endpoint on a
//! free loopback port, and a client on sluice's own AWS setup to read back what arrived
//! and to change things under a running sink (delete a stream).

use super::{free_port, wait_for};
use aws_sdk_cloudwatchlogs::Client;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn server() -> PathBuf {
    std::env::var_os("SLUICE_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-deps/moto/bin/moto_server")
        })
}

/// A running moto_server; killed when dropped.
pub struct Moto {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    rt: tokio::runtime::Runtime,
    client: Client,
}

impl Moto {
    /// Starts moto_server and waits until it answers.
    pub fn start() -> Moto {
        let bin = server();
        assert!(
            bin.is_file(),
            "{} is missing; run the README's test command (scripts/test.sh), which installs moto[server]",
            bin.display()
        );
        let port = free_port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let url = format!("http://127.0.0.1:{port}");
        let up = wait_for(Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "moto_server did not listen on {port}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = rt.block_on(async {
            let config = sluice::aws::sdk_config(&sluice::aws::ClientOptions {
                auth: sluice::aws::AwsAuth {
                    access_key_id: Some("AKIDTEST".into()),
                    secret_access_key: Some("test-secret".into()),
                    ..Default::default()
                },
                region: Some("us-east-1".into()),
                endpoint: Some(url.clone()),
                timeout: Duration::from_secs(30),
                ..Default::default()
            })
            .await
            .expect("sdk config");
            Client::new(&config)
        });
        Moto {
            child: Some(child),
            url,
            rt,
            client,
        }
    }

    /// Every event of a stream, oldest first: `(timestamp ms, message)`.
    pub fn events(&self, group: &str, stream: &str) -> Vec<(i64, String)> {
        self.rt.block_on(async {
            let mut out = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let page = self
                    .client
                    .get_log_events()
                    .log_group_name(group)
                    .log_stream_name(stream)
                    .start_from_head(true)
                    .set_next_token(token.clone())
                    .send()
                    .await;
                let Ok(page) = page else { return out };
                let n = page.events().len();
                out.extend(page.events().iter().map(|e| {
                    (
                        e.timestamp().unwrap_or(0),
                        e.message().unwrap_or("").to_string(),
                    )
                }));
                let next = page.next_forward_token().map(str::to_string);
                if n == 0 || next.is_none() || next == token {
                    return out;
                }
                token = next;
            }
        })
    }

    /// The names of a group's streams.
    pub fn streams(&self, group: &str) -> Vec<String> {
        self.rt.block_on(async {
            let r = self
                .client
                .describe_log_streams()
                .log_group_name(group)
                .send()
                .await;
            r.map(|o| {
                o.log_streams()
                    .iter()
                    .filter_map(|s| s.log_stream_name().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
        })
    }

    /// A group's retention in days, if it exists: `Some(None)` for a group kept forever.
    pub fn retention(&self, group: &str) -> Option<Option<i32>> {
        self.rt.block_on(async {
            let o = self
                .client
                .describe_log_groups()
                .log_group_name_prefix(group)
                .send()
                .await
                .ok()?;
            o.log_groups()
                .iter()
                .find(|g| g.log_group_name() == Some(group))
                .map(|g| g.retention_in_days())
        })
    }

    /// Deletes a stream, as an operator (or a cleanup job) might while sluice runs.
    pub fn delete_stream(&self, group: &str, stream: &str) {
        self.rt.block_on(async {
            self.client
                .delete_log_stream()
                .log_group_name(group)
                .log_stream_name(stream)
                .send()
                .await
                .expect("delete stream");
        });
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        super::stop_child(&mut self.child);
    }
}
