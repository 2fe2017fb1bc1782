//! A local HTTP/1.1 server for sink tests: a real listener on a free port that records
//! every request (time, method, path, headers, body, gunzipped when it says gzip) and
//! answers by a script the test sets: 2xx, any status with headers and a body, hanging
//! past the client's timeout, closing the connection, or passing the request on to a
//! real server (as a fault-injecting proxy in front of it). Scripts may be kept per
//! AWS operation (`X-Amz-Target`), so only PutLogEvents calls are throttled. It also tracks how many
//! requests were in flight at once, per path, to prove retries never overlap.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the receiver answers one request.
#[derive(Clone, Debug)]
pub enum Answer {
    /// This status, these headers, this body.
    Status(u16, Vec<(String, String)>, String),
    /// Read the request, then say nothing for this long (past the client's timeout).
    Hang(Duration),
    /// Read the request, then close the connection without an answer.
    Close,
    /// Send it on to this base URL and answer what that server answered.
    Forward(String),
}

impl Answer {
    /// `200 OK` with an empty body.
    pub fn ok() -> Answer {
        Answer::Status(200, Vec::new(), String::new())
    }
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Received {
    /// When its body was complete.
    pub at: Instant,
    /// The method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: HashMap<String, String>,
    /// The body, decompressed if `Content-Encoding: gzip`.
    pub body: Vec<u8>,
    /// The status it was answered with (0 for hang and close).
    pub answered: u16,
}

#[derive(Default)]
struct State {
    script: VecDeque<Answer>,
    /// Scripts for requests of one AWS operation (the end of `X-Amz-Target`), used
    /// before the general one.
    by_operation: HashMap<String, VecDeque<Answer>>,
    requests: Vec<Received>,
    in_flight: HashMap<String, usize>,
    max_in_flight: HashMap<String, usize>,
    max_total: usize,
    total: usize,
    /// What to answer when the script is empty.
    default: Option<Answer>,
    /// Delay before every answer, to make requests overlap.
    delay: Duration,
    /// Decides before any script: a service model (the Slack and Discord webhooks).
    judge: Option<Judge>,
}

/// Looks at a request (path, headers, body) and answers it, or leaves it to the script.
pub type Judge = Arc<dyn Fn(&str, &HashMap<String, String>, &[u8]) -> Option<Answer> + Send + Sync>;

/// A running receiver; it stops when dropped (its threads end with the process).
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    /// Starts listening on a free port; answers 200 unless scripted.
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let st = st.clone();
                std::thread::spawn(move || serve(stream, st));
            }
        });
        Receiver { addr, state }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers for the next requests, in order; after them, the default.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.lock().unwrap().script.extend(answers);
    }

    /// Answers for the next requests of one AWS operation (e.g. `PutLogEvents`), in
    /// order; other requests are not affected.
    pub fn script_operation(&self, operation: &str, answers: impl IntoIterator<Item = Answer>) {
        self.state
            .lock()
            .unwrap()
            .by_operation
            .entry(operation.to_string())
            .or_default()
            .extend(answers);
    }

    /// The answer once the script is used up (200 unless set).
    pub fn set_default(&self, answer: Answer) {
        self.state.lock().unwrap().default = Some(answer);
    }

    /// Lets `judge` answer every request first (see [`Judge`]).
    pub fn set_judge(&self, judge: Judge) {
        self.state.lock().unwrap().judge = Some(judge);
    }

    /// Holds every answer this long, so concurrent requests would overlap.
    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<Received> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The most requests that were in flight at once on `path`.
    pub fn max_in_flight(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .max_in_flight
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// The most requests in flight at once over all paths.
    pub fn max_in_flight_total(&self) -> usize {
        self.state.lock().unwrap().max_total
    }

    /// Bodies of the requests answered 2xx, in the order they arrived.
    pub fn accepted_bodies(&self) -> Vec<Vec<u8>> {
        self.requests()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .map(|r| r.body)
            .collect()
    }
}

fn serve(stream: TcpStream, state: Arc<Mutex<State>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if headers.get("content-encoding").map(String::as_str) == Some("gzip") {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&body[..])
                .read_to_end(&mut out)
                .expect("the client sent invalid gzip");
            body = out;
        }
        let key = path.split('?').next().unwrap_or("").to_string();
        let (answer, delay) = {
            let mut s = state.lock().unwrap();
            *s.in_flight.entry(key.clone()).or_default() += 1;
            let now = s.in_flight[&key];
            let m = s.max_in_flight.entry(key.clone()).or_default();
            *m = (*m).max(now);
            s.total += 1;
            s.max_total = s.max_total.max(s.total);
            let operation = operation(&headers);
            let judged = s.judge.as_ref().and_then(|j| j(&path, &headers, &body));
            let answer = judged
                .or_else(|| {
                    s.by_operation
                        .get_mut(&operation)
                        .and_then(VecDeque::pop_front)
                })
                .or_else(|| s.script.pop_front())
                .or_else(|| s.default.clone())
                .unwrap_or_else(Answer::ok);
            (answer, s.delay)
        };
        std::thread::sleep(delay);
        let answer = match answer {
            Answer::Forward(base) => forward(&base, &method, &path, &headers, &body),
            other => other,
        };
        let answered = match &answer {
            Answer::Status(code, ..) => *code,
            _ => 0,
        };
        {
            let mut s = state.lock().unwrap();
            s.requests.push(Received {
                at: Instant::now(),
                method,
                path,
                headers,
                body,
                answered,
            });
        }
        let done = |state: &Arc<Mutex<State>>| {
            let mut s = state.lock().unwrap();
            if let Some(n) = s.in_flight.get_mut(&key) {
                *n -= 1;
            }
            s.total -= 1;
        };
        match answer {
            Answer::Status(code, hdrs, text) => {
                let mut resp = format!("HTTP/1.1 {code} X\r\nContent-Length: {}\r\n", text.len());
                for (k, v) in hdrs {
                    resp.push_str(&format!("{k}: {v}\r\n"));
                }
                resp.push_str("\r\n");
                resp.push_str(&text);
                done(&state);
                if writer.write_all(resp.as_bytes()).is_err() {
                    return;
                }
            }
            Answer::Hang(d) => {
                std::thread::sleep(d);
                done(&state);
                return;
            }
            Answer::Close | Answer::Forward(_) => {
                done(&state);
                let _ = writer.shutdown(std::net::Shutdown::Both);
                return;
            }
        }
    }
}

/// The AWS operation a request calls: the end of its `X-Amz-Target`
/// (`Logs_20140328.PutLogEvents`), or empty.
pub fn operation(headers: &HashMap<String, String>) -> String {
    headers
        .get("x-amz-target")
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or("")
        .to_string()
}

/// Sends a request on to `base` and turns the answer into one to give back; a server
/// that cannot be reached answers 502.
fn forward(
    base: &str,
    method: &str,
    path: &str,
    headers: &HashMap<String, String>,
    body: &[u8],
) -> Answer {
    let mut req = ureq::request(method, &format!("{base}{path}"));
    for (k, v) in headers {
        if !matches!(k.as_str(), "host" | "content-length" | "connection") {
            req = req.set(k, v);
        }
    }
    let resp = match req.send_bytes(body) {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Answer::Status(502, Vec::new(), format!("forwarding failed: {e}")),
    };
    let status = resp.status();
    let hdrs: Vec<(String, String)> = resp
        .headers_names()
        .into_iter()
        .filter(|n| {
            !matches!(
                n.as_str(),
                "content-length" | "connection" | "transfer-encoding"
            )
        })
        .filter_map(|n| resp.header(&n).map(|v| (n.clone(), v.to_string())))
        .collect();
    let text = resp.into_string().unwrap_or_default();
    Answer::Status(status, hdrs, text)
}
