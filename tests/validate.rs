//! `sluice validate` and `sluice graph` on good and broken configs: every kind of problem
//! is reported at once, each line naming the file, the component and the key.

use crate::support;

use std::path::Path;
use std::process::Command;

fn validate(files: &[(&str, &str)]) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    let out = Command::new(support::bin())
        .arg("validate")
        .arg("--config")
        .arg(dir.path())
        .env("SLUICE_TEST_SET", "set")
        .output()
        .expect("run");
    let norm =
        |b: &[u8]| String::from_utf8_lossy(b).replace(&dir.path().display().to_string(), "DIR");
    (
        out.status.code().unwrap_or(-1),
        norm(&out.stdout),
        norm(&out.stderr),
    )
}

/// `sluice validate FLAG PATH`, its output whatever the status.
fn validate_path(flag: &str, path: &Path) -> std::process::Output {
    Command::new(support::bin())
        .args(["validate", flag])
        .arg(path)
        .output()
        .expect("run")
}

const SRC: &str = "[sources.in]\ntype = \"syslog\"\nmode = \"tcp\"\naddress = \"127.0.0.1:6514\"\n";
const SINK: &str = "[sinks.out]\ntype = \"blackhole\"\ninputs = [\"in\"]\n";

fn assert_invalid(files: &[(&str, &str)], expected: &[&str]) {
    let (code, _, err) = validate(files);
    assert_eq!(code, 78, "expected EX_CONFIG; stderr:\n{err}");
    for e in expected {
        assert!(err.contains(e), "missing {e:?} in:\n{err}");
    }
}

#[test]
fn a_valid_config_prints_a_summary() {
    let (code, out, err) = validate(&[("a.toml", &format!("{SRC}{SINK}"))]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Config OK: 1 source, 0 transforms, 1 sink.");
}

#[test]
fn unknown_key_suggests_the_nearest() {
    let text = format!("{}{SINK}", SRC.replace("address", "adress"));
    assert_invalid(
        &[("a.toml", &text)],
        &["DIR/a.toml: [sources.in] key `adress`: unknown key; did you mean `address`?"],
    );
}

#[test]
fn unknown_nested_key_and_top_level_key() {
    let text = format!("data_dri = \"/x\"\n{SRC}{SINK}buffer.max_event = 5\n");
    assert_invalid(
        &[("a.toml", &text)],
        &[
            "DIR/a.toml key `data_dri`: unknown top-level key; did you mean `data_dir`?",
            "DIR/a.toml: [sinks.out] key `buffer.max_event`: unknown key; did you mean `max_events`?",
        ],
    );
}

#[test]
fn wrong_type_names_the_key() {
    let text = format!("{SRC}max_length = \"big\"\n{SINK}");
    assert_invalid(
        &[("a.toml", &text)],
        &["DIR/a.toml: [sources.in] key `max_length`: wrong type: found string \"big\", expected a non-negative integer"],
    );
}

#[test]
fn one_run_reports_every_problem_even_siblings_and_the_graph_beside_key_errors() {
    // The config a new user needed four rounds to fix: now one run names everything.
    let text = format!(
        "{SRC}[sinks.out]\ntype = \"http\"\nuri = \"http://127.0.0.1:1/\"\ninputs = [\"inn\"]\n\
         batch.max_event = 5\nrequest.timeout_secs = \"x\"\nrequest.concurrency = \"y\"\n\
         buffer.max_events = \"2000\"\nbuffer.when_full = \"drop\"\n"
    );
    let (code, _, err) = validate(&[("a.toml", &text)]);
    assert_eq!(code, 78, "{err}");
    for e in [
        "[sinks.out] key `batch.max_event`: unknown key; did you mean `max_events`?",
        "[sinks.out] key `request.timeout_secs`: wrong type: found string \"x\", expected a number",
        "[sinks.out] key `request.concurrency`: wrong type: found string \"y\", expected a non-negative integer",
        "[sinks.out] key `buffer.max_events`: wrong type: found string \"2000\", expected a non-negative integer",
        "[sinks.out] key `buffer.when_full`: unknown value `drop`",
        "[sinks.out] key `inputs`: `inn` is not a source or transform; did you mean `in`?",
    ] {
        assert!(err.contains(e), "missing {e:?} in:\n{err}");
    }
    assert!(
        !err.contains("usize") && !err.contains("f64"),
        "Rust type names leak:\n{err}"
    );
}

#[test]
fn syslog_socket_options_are_checked_against_the_mode() {
    // A unix socket: an address, a relative path and TCP-only options are refused.
    let unix = "[sources.in]\ntype = \"syslog\"\nmode = \"unix\"\naddress = \"127.0.0.1:6514\"\n\
                path = \"dev/log\"\nconnection_limit = 10\nreceive_buffer_bytes = 65536\n\
                tls.enabled = true\ntls.crt_file = \"/c\"\ntls.key_file = \"/k\"\n";
    assert_invalid(
        &[("a.toml", &format!("{unix}{SINK}"))],
        &[
            "[sources.in] key `address`: does not apply to a unix socket; give its `path`",
            "[sources.in] key `connection_limit`: only applies to mode = \"tcp\"",
            "[sources.in] key `receive_buffer_bytes`: only applies to mode = \"tcp\" or \"udp\"",
            "[sources.in] key `tls`: only applies to mode = \"tcp\"",
        ],
    );
    let no_path = "[sources.in]\ntype = \"syslog\"\nmode = \"unix_stream\"\n";
    assert_invalid(
        &[("a.toml", &format!("{no_path}{SINK}"))],
        &["[sources.in] key `path`: missing required key: the socket file"],
    );
    let relative = "[sources.in]\ntype = \"syslog\"\nmode = \"unix\"\npath = \"dev/log\"\n";
    assert_invalid(
        &[("a.toml", &format!("{relative}{SINK}"))],
        &["[sources.in] key `path`: must be an absolute path"],
    );
    // TCP: a socket file mode, or a path, means nothing there.
    let tcp = format!("{SRC}socket_file_mode = 0o666\npath = \"/dev/log\"\n");
    assert_invalid(
        &[("a.toml", &format!("{tcp}{SINK}"))],
        &[
            "[sources.in] key `socket_file_mode`: only applies to mode = \"unix\" or \"unix_stream\"",
            "[sources.in] key `path`: only applies to mode = \"unix\" or \"unix_stream\"",
        ],
    );
}

#[test]
fn syslog_sink_options_are_checked() {
    let udp = "[sinks.fwd]\ntype = \"syslog\"\ninputs = [\"in\"]\naddress = \"logs.example.com\"\n\
               mode = \"udp\"\nframing = \"newline\"\nkeepalive.time_secs = 30\n\
               tls.ca_file = \"/ca.pem\"\nfacility = \"locl0\"\nseverity = \"{{ level\"\n\
               max_datagram_bytes = 100\n";
    assert_invalid(
        &[("a.toml", &format!("{SRC}{udp}"))],
        &[
            "[sinks.fwd] key `address`: `logs.example.com` is not `host:port`",
            "[sinks.fwd] key `severity`: `{{ level` is not a valid template: `{{` without `}}`",
            "[sinks.fwd] key `facility`: `locl0` is not a syslog facility: give a name (such as `local0`) or a number, or a `{{ field }}` template",
            "[sinks.fwd] key `framing`: only applies to mode = \"tcp\" or \"tls\" (UDP sends one message per datagram)",
            "[sinks.fwd] key `keepalive`: only applies to mode = \"tcp\" or \"tls\"",
            "[sinks.fwd] key `max_datagram_bytes`: must be at least 480, what RFC 5426 says every receiver takes",
            "[sinks.fwd] key `tls`: only applies to mode = \"tls\"; set it to send over TLS",
        ],
    );
    let tls = "[sinks.fwd]\ntype = \"syslog\"\ninputs = [\"in\"]\naddress = \"[::1]:6514\"\n\
               mode = \"tls\"\ntls.crt_file = \"/c.pem\"\nmax_datagram_bytes = 9000\nframing = \"lf\"\n";
    assert_invalid(
        &[("a.toml", &format!("{SRC}{tls}"))],
        &["[sinks.fwd] key `framing`: unknown value `lf`"],
    );
    let tls = tls.replace("framing = \"lf\"\n", "");
    assert_invalid(
        &[("a.toml", &format!("{SRC}{tls}"))],
        &[
            "[sinks.fwd] key `max_datagram_bytes`: only applies to mode = \"udp\"",
            "[sinks.fwd] key `tls.key_file`: missing required key (a client certificate needs its key)",
        ],
    );
}

#[test]
fn cloudwatch_options_are_checked() {
    let sink = "[sources.in]\ntype = \"stdin\"\n[sinks.cw]\ntype = \"aws_cloudwatch_logs\"\n\
                inputs = [\"in\"]\ngroup_name = \"my group\"\nstream_name = \"a:b\"\n\
                region = \"us-east-1\"\nretention_days = 10\nbatch.max_events = 20000\n\
                batch.max_bytes = 2000000\nauth.access_key_id = \"AKID\"\n\
                endpoint = \"localhost:5000\"\nencoding.codec = \"ndjson\"\n\
                tls.crt_file = \"/c.pem\"\ntls.key_file = \"/k.pem\"\n\
                auth.imds.max_attempts = 2\n";
    assert_invalid(
        &[("a.toml", sink)],
        &[
            "[sinks.cw] key `group_name`: group_name `my group` may not contain ' '",
            "[sinks.cw] key `stream_name`: stream_name `a:b` may not contain ':'",
            "[sinks.cw] key `retention_days`: 10 is not a retention CloudWatch Logs offers",
            "[sinks.cw] key `batch.max_events`: must be at most 10000",
            "[sinks.cw] key `batch.max_bytes`: must be at most 1048576",
            "[sinks.cw] key `auth.secret_access_key`: is required with auth.access_key_id",
            "[sinks.cw] key `endpoint`: `localhost:5000` is not an http:// or https:// URL",
            "[sinks.cw] key `encoding.codec`: must be `json` or `text`",
            "[sinks.cw] key `tls.crt_file`: is not supported by the AWS client",
            "[sinks.cw] key `auth.imds`: Vector's `auth.imds` is not supported by sluice",
        ],
    );
}

#[test]
fn kafka_options_are_checked() {
    let source = "[sources.k]\ntype = \"kafka\"\nbootstrap_servers = \"\"\ngroup_id = \"g\"\n\
                  topics = [\"^(unclosed\"]\nauto_offset_reset = \"oldest\"\n\
                  sasl.enabled = true\nsasl.mechanism = \"GSSAPI\"\ntls.enabled = true\n\
                  tls.crt_file = \"/c.pem\"\n";
    let sink = "[sinks.out]\ntype = \"kafka\"\ninputs = [\"k\"]\nbootstrap_servers = \"b:9092\"\n\
                topic = \"logs-{{ app\"\nencoding.codec = \"ndjson\"\ncompression = \"brotli\"\n";
    assert_invalid(
        &[("a.toml", &format!("{source}{sink}"))],
        &[
            "[sources.k] key `bootstrap_servers`: names no broker",
            "[sources.k] key `topics`: `^(unclosed` is not a regular expression",
            "[sources.k] key `auto_offset_reset`: `oldest` is not one of smallest, earliest, beginning, largest, latest, end, error",
            "[sources.k] key `sasl.mechanism`: `GSSAPI` is not set up by sluice",
            "[sources.k] key `sasl.username`: missing required key",
            "[sources.k] key `tls.crt_file`: and `tls.key_file` go together",
            "[sinks.out] key `compression`: unknown value `brotli`",
        ],
    );
    let sink = sink.replace("compression = \"brotli\"\n", "");
    let source = "[sources.k]\ntype = \"kafka\"\nbootstrap_servers = \"b:9092\"\ngroup_id = \"g\"\ntopics = [\"t\"]\n";
    assert_invalid(
        &[("a.toml", &format!("{source}{sink}"))],
        &[
            "[sinks.out] key `topic`: `logs-{{ app` is not a valid template",
            "[sinks.out] key `encoding.codec`: `ndjson` frames several events in one body",
        ],
    );
}

#[test]
fn bad_enum_value_lists_the_choices() {
    let text = SRC.replace("\"tcp\"", "\"tpc\"") + SINK;
    assert_invalid(
        &[("a.toml", &text)],
        &["[sources.in] key `mode`: unknown value `tpc`; did you mean `tcp`? (expected one of: udp, tcp, unix, unix_datagram, unix_stream)"],
    );
}

#[test]
fn unknown_component_type_suggests_the_nearest() {
    let text = SRC.replace("\"syslog\"", "\"sislog\"") + SINK;
    assert_invalid(
        &[("a.toml", &text)],
        &["DIR/a.toml: [sources.in] key `type`: unknown source type `sislog`; did you mean `syslog`?"],
    );
}

#[test]
fn dangling_input_and_sink_without_inputs() {
    let text = format!(
        "{SRC}{}[sinks.lonely]\ntype = \"blackhole\"\n",
        SINK.replace("[\"in\"]", "[\"inn\", \"x_*\"]")
    );
    assert_invalid(
        &[("a.toml", &text)],
        &[
            "[sinks.out] key `inputs`: `inn` is not a source or transform; did you mean `in`?",
            "[sinks.out] key `inputs`: `x_*` matches no source or transform",
            "[sinks.lonely] key `inputs`: has no inputs",
        ],
    );
}

#[test]
fn cyclic_inputs_are_refused() {
    let text = format!(
        "{SRC}[transforms.a]\ntype = \"sample\"\nrate = 2\ninputs = [\"in\", \"b\"]\n[transforms.b]\ntype = \"sample\"\nrate = 2\ninputs = [\"a\"]\n{SINK}"
    );
    assert_invalid(
        &[("a.toml", &text)],
        &["key `inputs`: inputs form a cycle: a -> b -> a"],
    );
}

#[test]
fn duplicate_ids_across_files() {
    assert_invalid(
        &[("a.toml", &format!("{SRC}{SINK}")), ("b.toml", &SRC.replace("6514", "6515"))],
        &["DIR/b.toml: [sources.in]: duplicate component ID `in` (already declared in DIR/a.toml)"],
    );
}

#[test]
fn two_listeners_on_one_address() {
    let text = format!("{SRC}{}{SINK}", SRC.replace("sources.in]", "sources.in2]"));
    assert_invalid(
        &[("a.toml", &text)],
        &["[sources.in2] key `address`: 127.0.0.1:6514/tcp is already used by [sources.in]"],
    );
    let api = format!("[api]\naddress = \"0.0.0.0:6514\"\n{SRC}{SINK}");
    assert_invalid(
        &[("a.toml", &api)],
        &["[sources.in] key `address`: 127.0.0.1:6514/tcp is already used by [api]"],
    );
    let unix = |id: &str, mode: &str| {
        format!("[sources.{id}]\ntype = \"syslog\"\nmode = \"{mode}\"\npath = \"/run/sluice-test/log.sock\"\n")
    };
    let two = format!(
        "{}{}{SINK}",
        unix("in", "unix"),
        unix("local", "unix_stream")
    );
    assert_invalid(
        &[("a.toml", &two)],
        &["[sources.local] key `path`: /run/sluice-test/log.sock (unix socket) is already used by [sources.in]"],
    );
}

#[test]
fn environment_variables_are_interpolated_and_missing_ones_named() {
    let ok = SRC.replace("6514", "${SLUICE_TEST_PORT:-6514}") + "# ${NOT_IN_COMMENTS}\n" + SINK;
    assert_eq!(validate(&[("a.toml", &ok)]).0, 0);
    let bad = SRC.replace("6514", "${SLUICE_TEST_UNSET_PORT}") + SINK;
    assert_invalid(
        &[("a.toml", &bad)],
        &["DIR/a.toml: line 4: environment variable `SLUICE_TEST_UNSET_PORT` is not set and has no default"],
    );
}

#[test]
fn broken_toml_names_the_file_and_line() {
    assert_invalid(
        &[("a.toml", "[sources.in\ntype = 1\n")],
        &["DIR/a.toml: invalid TOML: TOML parse error at line 1"],
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = format!(
        "{}max_length = \"x\"\n[sinks.out]\ntype = \"blackhole\"\ninputs = [\"nope\"]\n[sinks.f]\ntype = \"file\"\ninputs = [\"in\"]\npath = \"/x/{{{{ a\"\n",
        SRC.replace("address", "adress")
    );
    let (code, _, err) = validate(&[("a.toml", &text)]);
    assert_eq!(code, 78);
    assert!(err.contains("Config invalid: 5 problems"), "{err}");
    assert!(
        err.contains("key `adress`")
            && err.contains("key `address`: missing required key")
            && err.contains("key `max_length`")
            && err.contains("`nope`"),
        "{err}"
    );
    assert!(err.contains("[sinks.f] key `path`"), "{err}");
}

#[test]
fn graph_prints_dot() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.toml"), format!("{SRC}{SINK}")).expect("write");
    let out = Command::new(support::bin())
        .arg("graph")
        .arg("--config")
        .arg(dir.path().join("a.toml"))
        .output()
        .expect("run");
    let dot = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(dot.starts_with("digraph sluice {"), "{dot}");
    assert!(dot.contains("\"in\" -> \"out\";"), "{dot}");
}

#[test]
fn embedded_default_and_every_example_validate() {
    let out = Command::new(support::bin())
        .arg("validate")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut n = 0;
    for e in std::fs::read_dir(&examples).expect("examples/") {
        let p = e.expect("entry").path();
        if p.extension()
            .is_some_and(|x| x == "toml" || x == "yaml" || x == "json")
        {
            let out = Command::new(support::bin())
                .arg("validate")
                .arg("--config")
                .arg(&p)
                .env("INGEST_TOKEN", "a-token")
                .env("INFLUX_TOKEN", "a-token")
                .env(
                    "SLACK_WEBHOOK_URL",
                    "https://hooks.slack.com/services/T0/B0/x",
                )
                .env(
                    "DISCORD_WEBHOOK_URL",
                    "https://discord.com/api/webhooks/1/x",
                )
                .env("SMTP_PASSWORD", "a-password")
                .output()
                .expect("run");
            assert!(
                out.status.success(),
                "{}: {}",
                p.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            n += 1;
        }
    }
    assert!(n >= 6, "one example per component expected, found {n}");
    // An example never ships a working default credential.
    let out = Command::new(support::bin())
        .args(["validate", "--config"])
        .arg(examples.join("http_ingest.toml"))
        .env_remove("INGEST_TOKEN")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("environment variable `INGEST_TOKEN` is not set: set INGEST_TOKEN"),
        "{err}"
    );
    let packaged = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/sluice.toml");
    let out = Command::new(support::bin())
        .arg("validate")
        .arg("--config")
        .arg(&packaged)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn systemd_unit_passes_systemd_analyze() {
    support::require_tool("systemd-analyze");
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/sluice.service"),
    )
    .expect("unit");
    // systemd-analyze checks that ExecStart exists; point it at the binary under test.
    let unit = unit.replace("/usr/bin/sluice", support::bin());
    let path = dir.path().join("sluice.service");
    std::fs::write(&path, unit).expect("write");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && !text.contains("sluice.service:"),
        "{text}"
    );
}

#[test]
fn influxdb_options_are_checked_against_the_api_version() {
    let sink = |body: &str| {
        format!("{SRC}[sinks.out]\ntype = \"influxdb\"\ninputs = [\"in\"]\nendpoint = \"http://127.0.0.1:8086\"\n{body}")
    };
    assert_invalid(
        &[("a.toml", &sink("api_version = \"v1\"\ntoken = \"t\"\n"))],
        &[
            "[sinks.out] key `database`: is required with api_version = \"v1\"",
            "[sinks.out] key `token`: is not an option of api_version = \"v1\"",
        ],
    );
    assert_invalid(
        &[(
            "a.toml",
            &sink("api_version = \"v2\"\ndatabase = \"x\"\norg = \"o\"\n"),
        )],
        &[
            "[sinks.out] key `bucket`: is required with api_version = \"v2\"",
            "[sinks.out] key `token`: is required with api_version = \"v2\"",
            "[sinks.out] key `database`: is not an option of api_version = \"v2\"",
        ],
    );
    assert_invalid(
        &[("a.toml", &sink(""))],
        &["[sinks.out] key `api_version`: missing required key"],
    );
}

#[test]
fn yaml_and_json_configs_load_and_report_like_toml() {
    // One pipeline split over the three formats, in one directory.
    let (code, out, err) = validate(&[
        (
            "a.yaml",
            "sources:\n  in:\n    type: syslog\n    mode: tcp\n    address: 127.0.0.1:6514\n",
        ),
        (
            "b.json",
            r#"{"transforms": {"half": {"type": "sample", "rate": 2, "inputs": ["in"]}}}"#,
        ),
        (
            "c.toml",
            "[sinks.out]\ntype = \"blackhole\"\ninputs = [\"half\"]\n",
        ),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Config OK: 1 source, 1 transform, 1 sink.");
    // Key errors read as they do for TOML.
    assert_invalid(
        &[("a.yml", "sources:\n  in:\n    type: syslog\n    mode: tcp\n    adress: 127.0.0.1:6514\nsinks:\n  out:\n    type: blackhole\n    inputs: [in]\n")],
        &["DIR/a.yml: [sources.in] key `adress`: unknown key; did you mean `address`?"],
    );
    // Syntax errors name the line.
    assert_invalid(
        &[(
            "a.yaml",
            "sources:\n  in:\n    type: syslog\n   mode: [tcp\n",
        )],
        &["DIR/a.yaml: invalid YAML:", "line"],
    );
    assert_invalid(
        &[("a.json", "{\n\"sources\": }\n")],
        &["DIR/a.json: invalid JSON:", "line 2"],
    );
}

#[test]
fn a_forced_format_wins_over_the_extension() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pipeline.conf");
    std::fs::write(&path, "sources:\n  gen:\n    type: demo\nsinks:\n  out:\n    type: blackhole\n    inputs: [gen]\n").expect("write");
    let out = validate_path("--config-yaml", &path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_config_dir_in_vectors_layout_names_components_by_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    for sub in ["sources", "transforms", "sinks"] {
        std::fs::create_dir_all(d.join(sub)).expect("mkdir");
    }
    std::fs::write(d.join("global.toml"), "[api]\nenabled = false\n").expect("write");
    std::fs::write(
        d.join("sources/syslog_in.yaml"),
        "type: syslog\nmode: tcp\naddress: 127.0.0.1:6514\n",
    )
    .expect("write");
    std::fs::write(
        d.join("transforms/half.json"),
        r#"{"type": "sample", "rate": 2, "inputs": ["syslog_in"]}"#,
    )
    .expect("write");
    std::fs::write(
        d.join("sinks/archive.toml"),
        "type = \"blackhole\"\ninputs = [\"half\"]\n",
    )
    .expect("write");
    let out = validate_path("-C", d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Config OK: 1 source, 1 transform, 1 sink."
    );
    // A mistake names the component the file stands for.
    std::fs::write(
        d.join("sinks/archive.toml"),
        "type = \"blackhole\"\ninputs = [\"halve\"]\n",
    )
    .expect("write");
    let out = validate_path("--config-dir", d);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sinks/archive.toml: [sinks.archive] key `inputs`: `halve` is not a source or transform; did you mean `half`?"),
        "{err}"
    );
}

#[test]
fn vectors_lower_case_http_methods_are_accepted() {
    let text = format!("{SRC}[sinks.out]\ntype = \"http\"\ninputs = [\"in\"]\nuri = \"http://127.0.0.1:1/\"\nmethod = \"put\"\n");
    let (code, _, err) = validate(&[("a.toml", &text)]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn sample_options_are_checked_and_exclude_is_a_vrl_condition() {
    let text = format!("{SRC}[transforms.s]\ntype = \"sample\"\ninputs = [\"in\"]\nrate = 2\nratio = 0.5\nexclude = '.level'\n{}", SINK.replace("[\"in\"]", "[\"s\"]"));
    assert_invalid(
        &[("a.toml", &text)],
        &[
            "[transforms.s] key `ratio`: set only one of `rate` and `ratio`",
            "[transforms.s] key `exclude`: a VRL condition must return a boolean",
        ],
    );
}

#[test]
fn vector_options_sluice_refuses_say_why_in_one_line_and_the_rest_is_still_checked() {
    let http = r#"
[sinks.hook]
type = "http"
inputs = ["in"]
uri = "http://127.0.0.1:9/"
encoding.codec = "avro"
request.concurrency = "adaptive"
request.retry_attempts = -1
dangerously_allow_unconfined_template_resolution = false
"#;
    assert_invalid(
        &[(
            "a.yaml",
            &format!(
                "schema:\n  log_namespace: true\n{}",
                "sources:\n  in:\n    type: stdin\n    log_namespace: true\n"
            ),
        ), ("b.toml", &format!("{SINK}{http}"))],
        &[
            "DIR/a.yaml key `schema.log_namespace`: Vector's `schema.log_namespace = true` is not supported by sluice: ",
            "DIR/a.yaml: [sources.in] key `log_namespace`: Vector's `log_namespace = true` is not supported by sluice: ",
            "DIR/b.toml: [sinks.hook] key `encoding.codec`: Vector's `encoding.codec = \"avro\"` is not supported by sluice: sluice writes `json`, `text` and `raw_message`",
            "DIR/b.toml: [sinks.hook] key `request.concurrency`: Vector's `request.concurrency = \"adaptive\"` is not supported by sluice: sluice runs a fixed number",
            // The rest of the table is still checked.
            "DIR/b.toml: [sinks.hook] key `request.retry_attempts`: ",
        ],
    );
    let (_, _, err) = validate(&[("b.toml", &format!("{SRC}{SINK}{http}"))]);
    assert!(
        !err.contains("dangerously_allow_unconfined_template_resolution"),
        "`false` is what sluice does: accepted silently\n{err}"
    );
}

#[test]
fn file_sink_base_dir_confines_the_literal_path() {
    let sink =
        |extra: &str| format!("{SRC}[sinks.f]\ntype = \"file\"\ninputs = [\"in\"]\n{extra}\n");
    let (code, _, err) = validate(&[(
        "a.toml",
        &sink("path = \"/var/log/app/{{ host }}/%Y.log\"\nbase_dir = \"/var/log/app\""),
    )]);
    assert_eq!(code, 0, "{err}");
    assert_invalid(
        &[(
            "a.toml",
            &sink("path = \"/tmp/{{ host }}.log\"\nbase_dir = \"/var/log/app\"\ntruncate.after_secs = 60"),
        )],
        &[
            "DIR/a.toml: [sinks.f] key `path`: `/tmp/{{ host }}.log` does not lie under base_dir `/var/log/app`",
            "DIR/a.toml: [sinks.f] key `truncate`: Vector's `truncate` is not supported by sluice: ",
        ],
    );
}

#[test]
fn buffer_options_that_do_not_fit_the_buffer_type_name_the_key() {
    let disk = format!(
        "{SRC}{SINK}buffer.type = \"disk\"\nbuffer.max_size = 1048576\nbuffer.max_events = 500\n\
         buffer.sync_interval_ms = 0\n"
    );
    assert_invalid(
        &[("a.toml", &disk)],
        &[
            "DIR/a.toml: [sinks.out] key `buffer.max_size`: 1048576 is below the minimum of 268435456 bytes (256 MiB) for a disk buffer",
            "DIR/a.toml: [sinks.out] key `buffer.max_events`: applies to `type = \"memory\"` only",
            "DIR/a.toml: [sinks.out] key `buffer.sync_interval_ms`: must be at least 1",
        ],
    );
    let memory =
        format!("{SRC}{SINK}buffer.max_size = 268435456\nbuffer.sync_interval_ms = 1000\n");
    assert_invalid(
        &[("a.toml", &memory)],
        &[
            "DIR/a.toml: [sinks.out] key `buffer.max_size`: applies to `type = \"disk\"` only",
            "DIR/a.toml: [sinks.out] key `buffer.sync_interval_ms`: applies to `type = \"disk\"` only",
        ],
    );
}
