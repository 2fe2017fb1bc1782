//! A real Apache Kafka broker for the Kafka tests: a single-node KRaft broker (broker and
//! controller in one JVM) from the official jars on Maven Central, which
//! `scripts/test.sh` copies into `target/test-deps/kafka/libs`. Formatted and started
//! on free loopback ports with a small heap, stopped by PID; topics are made and read
//! back with librdkafka from the test itself.

use super::{free_port, wait_for};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientConfig;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn libs() -> PathBuf {
    std::env::var_os("SLUICE_KAFKA_LIBS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-deps/kafka/libs")
        })
}

/// A running broker; killed when dropped.
pub struct Kafka {
    child: Option<Child>,
    dir: tempfile::TempDir,
    props: PathBuf,
    /// `127.0.0.1:PORT`, what clients bootstrap from.
    pub bootstrap: String,
    port: u16,
}

impl Kafka {
    /// Formats a new log directory and starts the broker on it.
    pub fn start() -> Kafka {
        let libs = libs();
        assert!(
            libs.join("kafka-clients-4.1.1.jar").is_file(),
            "{} holds no Kafka jars; run the README's test command (scripts/test.sh), which fetches them with Maven",
            libs.display()
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let (port, controller) = (free_port(), free_port());
        let props = dir.path().join("server.properties");
        std::fs::write(
            &props,
            format!(
                "process.roles=broker,controller\n\
                 node.id=1\n\
                 controller.quorum.bootstrap.servers=127.0.0.1:{controller}\n\
                 listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}\n\
                 advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
                 controller.listener.names=CONTROLLER\n\
                 listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
                 log.dirs={}\n\
                 num.partitions=1\n\
                 auto.create.topics.enable=true\n\
                 offsets.topic.replication.factor=1\n\
                 offsets.topic.num.partitions=4\n\
                 transaction.state.log.replication.factor=1\n\
                 transaction.state.log.min.isr=1\n\
                 share.coordinator.state.topic.replication.factor=1\n\
                 share.coordinator.state.topic.min.isr=1\n\
                 group.initial.rebalance.delay.ms=0\n",
                dir.path().join("data").display()
            ),
        )
        .expect("server.properties");
        // A cluster ID is a UUID in URL-safe base64 without padding.
        let cluster = {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
        };
        let out = java(&libs, dir.path())
            .args(["kafka.tools.StorageTool", "format"])
            // One argument: an ID may begin with `-`, which as a separate argument the
            // tool's parser takes for an option.
            .arg(format!("--cluster-id={cluster}"))
            .arg("-c")
            .arg(&props)
            .arg("--standalone")
            .output()
            .expect("java (Kafka's storage tool)");
        assert!(
            out.status.success(),
            "formatting the Kafka log directory failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut k = Kafka {
            child: None,
            dir,
            props,
            bootstrap: format!("127.0.0.1:{port}"),
            port,
        };
        k.restart();
        k
    }

    /// Starts the broker (again) on the same data and ports; waits until it answers
    /// metadata requests.
    pub fn restart(&mut self) {
        let (log, err) = super::append_log(&self.dir.path().join("broker.log"));
        self.child = Some(
            java(&libs(), self.dir.path())
                .arg("kafka.Kafka")
                .arg(&self.props)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(err)
                .spawn()
                .expect("java (the Kafka broker)"),
        );
        let bootstrap = self.bootstrap.clone();
        let port = self.port;
        assert!(
            wait_for(Duration::from_secs(60), || {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && metadata_ok(&bootstrap)
            }),
            "the Kafka broker did not come up: {}",
            self.log_text()
        );
    }

    /// Stops the broker with SIGTERM (a clean shutdown) and waits for it.
    pub fn stop(&mut self) {
        super::stop_child(&mut self.child);
    }

    /// The broker's log.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default()
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        self.create_topic_with(topic, partitions, &[]);
    }

    /// Creates `topic` with `partitions` partitions and topic-level `config`.
    pub fn create_topic_with(&self, topic: &str, partitions: i32, config: &[(&str, &str)]) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .create()
            .expect("admin client");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let results = rt
            .block_on(admin.create_topics(
                &[config.iter().fold(
                    NewTopic::new(topic, partitions, TopicReplication::Fixed(1)),
                    |t, (k, v)| t.set(k, v),
                )],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
            ))
            .expect("create_topics");
        for r in results {
            r.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
        }
    }

    /// Produces `payloads` into `topic` and waits until the broker has every one.
    pub fn produce<P: AsRef<[u8]>>(&self, topic: &str, payloads: impl IntoIterator<Item = P>) {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("linger.ms", "5")
            // Keyless messages spread over every partition, message by message. By
            // default librdkafka sticks to one partition for 10 ms at a time: a fast
            // burst then fell into a few partitions (one of six got 16 of 150,000), and a
            // consumer group member could own partitions that received almost nothing.
            .set("sticky.partitioning.linger.ms", "0")
            .create()
            .expect("producer");
        for p in payloads {
            let mut record = BaseRecord::<(), [u8]>::to(topic).payload(p.as_ref());
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        record = back;
                        producer.poll(Duration::from_millis(10));
                    }
                }
            }
            producer.poll(Duration::ZERO);
        }
        producer.flush(Duration::from_secs(60)).expect("flush");
    }

    /// The offsets `group` has committed on `topic`, by partition (absent: none).
    pub fn committed(&self, group: &str, topic: &str, partitions: i32) -> Vec<Option<i64>> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(topic, p);
        }
        let committed = consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .expect("committed offsets");
        (0..partitions)
            .map(
                |p| match committed.find_partition(topic, p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => Some(o),
                    _ => None,
                },
            )
            .collect()
    }

    /// Reads `topics` from the start until `want` messages arrived or `timeout`
    /// passed; returns their payloads.
    pub fn read(&self, topics: &[&str], want: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("group.id", format!("reader-{}", free_port()))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        consumer.subscribe(topics).expect("subscribe");
        let mut out = Vec::with_capacity(want);
        let start = Instant::now();
        while out.len() < want && start.elapsed() < timeout {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => out.push(m.payload().unwrap_or_default().to_vec()),
                Some(Err(e)) => eprintln!("reading back: {e}"),
                None => {}
            }
        }
        out
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn java(libs: &Path, dir: &Path) -> Command {
    let mut c = Command::new("java");
    c.current_dir(dir)
        .arg("-Xms128m")
        .arg("-Xmx512m")
        .arg("-XX:+UseSerialGC")
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("scripts/kafka/log4j2.xml")
                .display()
        ))
        .arg("-cp")
        .arg(format!("{}/*", libs.display()));
    c
}

fn metadata_ok(bootstrap: &str) -> bool {
    let Ok(consumer) = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create::<BaseConsumer>()
    else {
        return false;
    };
    consumer
        .fetch_metadata(None, Duration::from_secs(2))
        .is_ok_and(|m| !m.brokers().is_empty())
}

/// How many partitions a sluice `kafka` source holds after its latest rebalance, read
/// from its log (`None` before its first assignment). Members of a group are balanced
/// once each one's latest assignment is its share: an earlier one can be superseded
/// when another member joins late.
pub fn assigned_partitions(log: &str) -> Option<usize> {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("Kafka partitions assigned"))?;
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("partitions="))
        .and_then(|n| n.parse().ok())
}
