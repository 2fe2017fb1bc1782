//! Splitting a byte stream into messages, shared by every source that reads one (syslog
//! over TCP, stdin, later Kafka-free TCP inputs): RFC 6587 framing, or plain newlines.
//! Each connection starts by looking at its first bytes: `<digits> <space>` means octet counting, anything else newline framing (LF, or
//! NUL as some senders use). Frames may arrive split across reads in any way. Memory per
//! connection stays bounded by `max_length`: an overlong message is cut to `max_length`
//! (on a UTF-8 character boundary) and the rest of it is skipped, never buffered.
//!
//! Every byte fed in is accounted for by exactly one [`Decoded`]: as frame content, as
//! framing overhead (length prefix, delimiter) or as skipped overflow.

use bytes::{Buf, Bytes, BytesMut};

/// The longest MSG-LEN prefix we accept (10 digits is already past 4 GB).
const MAX_LEN_DIGITS: usize = 10;

/// Which framing a connection uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Not decided yet: waiting for the first bytes.
    Detect,
    /// RFC 6587 §3.4.1: `MSG-LEN SP MSG`.
    OctetCounting,
    /// RFC 6587 §3.4.2: MSG followed by LF (or NUL).
    Newline,
}

/// A problem in the byte stream that did not lose message text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FramingError {
    /// Octet counting expected `MSG-LEN SP` and found something else; the connection
    /// continues with newline framing so the text still arrives.
    BadLengthPrefix,
    /// The connection closed in the middle of an octet-counted frame; what arrived is kept.
    IncompleteFrame,
}

/// One step of decoding.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The message bytes, if this step yields a message.
    pub frame: Option<Bytes>,
    /// The message was longer than `max_length` and was cut.
    pub truncated: bool,
    /// Bytes of the input this step used up (frame, overhead and skipped bytes).
    pub consumed: usize,
    /// Bytes of message text skipped because the message was too long.
    pub skipped: usize,
    /// A framing problem seen at this step.
    pub error: Option<FramingError>,
}

impl Decoded {
    fn frame(frame: Bytes, consumed: usize) -> Self {
        Self {
            frame: Some(frame),
            truncated: false,
            consumed,
            skipped: 0,
            error: None,
        }
    }

    fn nothing(consumed: usize) -> Self {
        Self {
            frame: None,
            truncated: false,
            consumed,
            skipped: 0,
            error: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Skip {
    None,
    /// Skip this many more bytes of an oversized octet-counted frame.
    Octets(usize),
    /// Skip up to and including the next delimiter of an overlong line.
    Line,
}

/// A per-connection decoder. Feed it a buffer that grows with each read.
#[derive(Debug)]
pub struct Framer {
    mode: Mode,
    max_length: usize,
    skip: Skip,
    /// How far the current line was already searched for a delimiter.
    scanned: usize,
}

fn is_delim(b: u8) -> bool {
    b == b'\n' || b == 0
}

/// The largest length not above `max` that does not split a UTF-8 character.
pub fn char_boundary(bytes: &[u8], max: usize) -> usize {
    if bytes.len() <= max {
        return bytes.len();
    }
    let mut end = max;
    // Step back over at most three continuation bytes (10xxxxxx).
    while end > 0 && max - end < 3 && (bytes[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    if (bytes[end] & 0xC0) == 0x80 {
        max
    } else {
        end
    }
}

impl Framer {
    /// A framer that auto-detects; `max_length` is the longest message kept whole.
    pub fn new(max_length: usize) -> Self {
        Self::with_mode(Mode::Detect, max_length)
    }

    /// A framer fixed to one framing.
    pub fn with_mode(mode: Mode, max_length: usize) -> Self {
        Self {
            mode,
            max_length: max_length.max(1),
            skip: Skip::None,
            scanned: 0,
        }
    }

    /// The framing in use.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The next step, or `None` when more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Option<Decoded> {
        loop {
            match self.skip {
                Skip::Octets(n) => {
                    if buf.is_empty() {
                        return None;
                    }
                    let k = n.min(buf.len());
                    buf.advance(k);
                    self.skip = if k == n {
                        Skip::None
                    } else {
                        Skip::Octets(n - k)
                    };
                    return Some(Decoded {
                        skipped: k,
                        ..Decoded::nothing(k)
                    });
                }
                Skip::Line => {
                    if buf.is_empty() {
                        return None;
                    }
                    return Some(match buf.iter().position(|b| is_delim(*b)) {
                        Some(i) => {
                            buf.advance(i + 1);
                            self.skip = Skip::None;
                            Decoded {
                                skipped: i,
                                ..Decoded::nothing(i + 1)
                            }
                        }
                        None => {
                            let k = buf.len();
                            buf.advance(k);
                            Decoded {
                                skipped: k,
                                ..Decoded::nothing(k)
                            }
                        }
                    });
                }
                Skip::None => {}
            }
            match self.mode {
                Mode::Detect => {
                    self.mode = match detect(buf)? {
                        true => Mode::OctetCounting,
                        false => Mode::Newline,
                    };
                }
                Mode::Newline => return self.decode_line(buf),
                Mode::OctetCounting => match parse_len(buf) {
                    LenPrefix::Incomplete => return None,
                    LenPrefix::Invalid => {
                        self.mode = Mode::Newline;
                        self.scanned = 0;
                        return Some(Decoded {
                            error: Some(FramingError::BadLengthPrefix),
                            ..Decoded::nothing(0)
                        });
                    }
                    LenPrefix::Len { len, header } => {
                        if len <= self.max_length {
                            if buf.len() < header + len {
                                buf.reserve(header + len - buf.len());
                                return None;
                            }
                            buf.advance(header);
                            let frame = buf.split_to(len).freeze();
                            return Some(Decoded::frame(frame, header + len));
                        }
                        if buf.len() < header + self.max_length {
                            buf.reserve(header + self.max_length - buf.len());
                            return None;
                        }
                        buf.advance(header);
                        let keep = char_boundary(&buf[..], self.max_length);
                        let frame = buf.split_to(keep).freeze();
                        self.skip = Skip::Octets(len - keep);
                        return Some(Decoded {
                            truncated: true,
                            ..Decoded::frame(frame, header + keep)
                        });
                    }
                },
            }
        }
    }

    fn decode_line(&mut self, buf: &mut BytesMut) -> Option<Decoded> {
        let start = self.scanned.min(buf.len());
        let Some(off) = memchr::memchr2(b'\n', 0, &buf[start..]) else {
            if buf.len() > self.max_length {
                // Emit the first `max_length` bytes now and skip the rest of the line, so
                // a huge line never sits in memory whole.
                let keep = char_boundary(&buf[..], self.max_length);
                let frame = buf.split_to(keep).freeze();
                self.scanned = 0;
                self.skip = Skip::Line;
                return Some(Decoded {
                    truncated: true,
                    ..Decoded::frame(frame, keep)
                });
            }
            self.scanned = buf.len();
            return None;
        };
        let i = start + off;
        self.scanned = 0;
        if i > self.max_length {
            let keep = char_boundary(&buf[..i], self.max_length);
            let frame = buf.split_to(keep).freeze();
            let skipped = i - keep;
            buf.advance(skipped + 1);
            return Some(Decoded {
                truncated: true,
                skipped,
                ..Decoded::frame(frame, i + 1)
            });
        }
        let frame = buf.split_to(i).freeze();
        buf.advance(1);
        if frame.is_empty() {
            // Blank lines between messages are framing, not data.
            return Some(Decoded::nothing(1));
        }
        Some(Decoded::frame(frame, i + 1))
    }

    /// The next step once the peer has closed: like [`Framer::decode`], then whatever is
    /// left becomes a last message (an unterminated final line, or the part of an
    /// octet-counted frame that arrived).
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<Decoded> {
        if let Some(d) = self.decode(buf) {
            return Some(d);
        }
        if buf.is_empty() {
            return None;
        }
        let n = buf.len();
        match self.skip {
            Skip::Octets(_) | Skip::Line => {
                buf.advance(n);
                self.skip = Skip::None;
                return Some(Decoded {
                    skipped: n,
                    ..Decoded::nothing(n)
                });
            }
            Skip::None => {}
        }
        self.scanned = 0;
        let (header, error) = match (self.mode, parse_len(buf)) {
            (Mode::OctetCounting, LenPrefix::Len { header, .. }) => {
                (header, Some(FramingError::IncompleteFrame))
            }
            _ => (0, None),
        };
        buf.advance(header);
        let keep = char_boundary(&buf[..], self.max_length);
        let frame = buf.split_to(keep).freeze();
        let skipped = buf.len();
        buf.advance(skipped);
        Some(Decoded {
            frame: (!frame.is_empty()).then_some(frame),
            truncated: skipped > 0,
            consumed: n,
            skipped,
            error,
        })
    }
}

/// `Some(true)` for an octet-counting start, `Some(false)` for anything else, `None` when
/// the bytes so far are all digits and could still be either.
fn detect(buf: &[u8]) -> Option<bool> {
    match buf.first()? {
        b'1'..=b'9' => {}
        _ => return Some(false),
    }
    for (i, b) in buf.iter().enumerate() {
        match b {
            b'0'..=b'9' if i < MAX_LEN_DIGITS => {}
            b' ' => return Some(true),
            _ => return Some(false),
        }
    }
    None
}

enum LenPrefix {
    Incomplete,
    Invalid,
    Len { len: usize, header: usize },
}

fn parse_len(buf: &[u8]) -> LenPrefix {
    let mut len: usize = 0;
    for (i, b) in buf.iter().enumerate() {
        match b {
            b'1'..=b'9' if i == 0 => len = (b - b'0') as usize,
            b'0'..=b'9' if i > 0 && i < MAX_LEN_DIGITS => {
                len = len * 10 + (b - b'0') as usize;
            }
            b' ' if i > 0 => return LenPrefix::Len { len, header: i + 1 },
            _ => return LenPrefix::Invalid,
        }
    }
    LenPrefix::Incomplete
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(framer: &mut Framer, input: &[u8], chunk: usize) -> (Vec<Vec<u8>>, usize) {
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        let mut consumed = 0;
        for part in input.chunks(chunk.max(1)) {
            buf.extend_from_slice(part);
            while let Some(d) = framer.decode(&mut buf) {
                consumed += d.consumed;
                frames.extend(d.frame.map(|f| f.to_vec()));
            }
        }
        while let Some(d) = framer.decode_eof(&mut buf) {
            consumed += d.consumed;
            frames.extend(d.frame.map(|f| f.to_vec()));
        }
        (frames, consumed)
    }

    #[test]
    fn octet_counting_split_at_every_byte() {
        let input = b"16 <1>1 - - - - - -17 <2>12 A B C D E -";
        for chunk in 1..input.len() {
            let (frames, consumed) = run(&mut Framer::new(1024), input, chunk);
            assert_eq!(
                frames,
                vec![b"<1>1 - - - - - -".to_vec(), b"<2>12 A B C D E -".to_vec()]
            );
            assert_eq!(consumed, input.len());
        }
    }

    #[test]
    fn oversized_octet_frame_is_truncated_and_the_next_frame_survives() {
        let input = b"16 <1>1 - - - - - -3 abc";
        let (frames, consumed) = run(&mut Framer::new(10), input, 3);
        assert_eq!(frames, vec![b"<1>1 - - -".to_vec(), b"abc".to_vec()]);
        assert_eq!(consumed, input.len());
    }

    #[test]
    fn overlong_line_is_cut_without_buffering_it_whole() {
        let mut line = vec![b'x'; 5000];
        line.extend_from_slice(b"\nnext\n");
        let mut f = Framer::new(100);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for part in line.chunks(64) {
            buf.extend_from_slice(part);
            while let Some(d) = f.decode(&mut buf) {
                frames.extend(d.frame);
            }
            assert!(buf.len() <= 164, "buffer grew to {}", buf.len());
        }
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].len(), 100);
        assert_eq!(&frames[1][..], b"next");
    }

    #[test]
    fn truncation_respects_utf8_boundaries() {
        let s = "aé".repeat(10); // 'é' is two bytes
        let cut = char_boundary(s.as_bytes(), 5);
        assert!(std::str::from_utf8(&s.as_bytes()[..cut]).is_ok());
        assert_eq!(cut, 4);
        assert_eq!(char_boundary(s.as_bytes(), 4), 4);
    }

    #[test]
    fn bad_prefix_falls_back_to_lines_and_keeps_the_text() {
        let (frames, consumed) = run(&mut Framer::new(1024), b"16 <1>1 - - - - - -xaaa", 4);
        assert_eq!(frames, vec![b"<1>1 - - - - - -".to_vec(), b"xaaa".to_vec()]);
        assert_eq!(consumed, 23);
    }
}
