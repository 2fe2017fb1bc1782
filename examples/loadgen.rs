//! Load generator for `scripts/loadtest.sh`: writes RFC 5424 messages (about 170 bytes,
//! with structured data and a sequence number) to a syslog TCP listener over several
//! connections as fast as the receiver reads them.
//!
//! `cargo run --release --example loadgen -- 127.0.0.1:5514 2000000 4 [octet]`

use std::io::Write;
use std::net::TcpStream;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:5514".into());
    let total: usize = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    let conns: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(4).max(1);
    let octet = args.get(4).is_some_and(|s| s == "octet");
    let per = total / conns;
    // `LOADGEN_PROCS=N`: the PROCID cycles through N values (default 5000), so a test
    // can choose how many (host, procid) groups the traffic makes.
    let procs: usize = std::env::var("LOADGEN_PROCS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5000)
        .max(1);
    // Build each connection's payload up front so generation costs nothing while measuring.
    let payloads: Vec<Vec<u8>> = (0..conns)
        .map(|c| {
            let mut buf = Vec::with_capacity(per * 180);
            let mut line = String::with_capacity(200);
            for i in 0..per {
                line.clear();
                use std::fmt::Write as _;
                let _ = write!(
                    line,
                    "<134>1 2026-11-22T14:20:{:02}.{:03}Z web-{c:02}.example.com nginx {} ACCESS [req@32473 id=\"{:08x}\" status=\"200\" ua=\"curl/8.4\"] GET /api/v1/items/{} HTTP/1.1 200 512 seq={i}",
                    i % 60,
                    i % 1000,
                    1000 + i % procs,
                    i * 2654435761 % 0xffff_ffff,
                    i % 10_000,
                );
                if octet {
                    let _ = write!(buf, "{} {}", line.len(), line);
                } else {
                    buf.extend_from_slice(line.as_bytes());
                    buf.push(b'\n');
                }
            }
            buf
        })
        .collect();
    let bytes: usize = payloads.iter().map(Vec::len).sum();
    // The load test measures from here, not from process start (building takes a while).
    if let Ok(path) = std::env::var("LOADGEN_START_FILE") {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let _ = std::fs::write(path, format!("{now:.6}"));
    }
    let start = Instant::now();
    let threads: Vec<_> = payloads
        .into_iter()
        .map(|p| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut s = match TcpStream::connect(&addr) {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("connect {addr}: {e}");
                        std::process::exit(1);
                    }
                };
                if let Err(e) = s.write_all(&p) {
                    eprintln!("write: {e}");
                    std::process::exit(1);
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "sent {} messages, {:.1} MiB ({} bytes/msg avg) in {:.2}s",
        per * conns,
        bytes as f64 / 1048576.0,
        bytes / (per * conns).max(1),
        secs
    );
}
