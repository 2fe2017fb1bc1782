//! What one syslog event costs on the heap, to explain peak RSS: every event waiting in a
//! buffer or in a batch being worked on holds this much, so the memory a pipeline needs
//! is roughly (events in flight) × (this). Counts with an allocator of its own; the
//! received frame itself is shared by its events and not counted.
//!
//! `cargo run --release --example event_size`

use bytes::Bytes;
use chrono::Utc;
use sluice::event::{Event, EventMetadata, LogEvent, ObjectMap};
use sluice::sources::syslog::{ip_value, parse_into};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting live bytes and allocations.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's layout contract is passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One of `examples/loadgen.rs`'s messages.
const LINE: &[u8] = b"<134>1 2026-11-22T14:20:05.005Z web-01.example.com nginx 1005 ACCESS [req@32473 id=\"0000abcd\" status=\"200\" ua=\"curl/8.4\"] GET /api/v1/items/5 HTTP/1.1 200 512 seq=5";

fn main() {
    const N: usize = 1000;
    let frame = Bytes::from_static(LINE);
    let ip = ip_value([10, 0, 0, 1].into());
    let mut events: Vec<Event> = Vec::with_capacity(N);
    let (live0, count0) = (
        LIVE.load(Ordering::Relaxed),
        ALLOCATIONS.load(Ordering::Relaxed),
    );
    for _ in 0..N {
        let mut fields = ObjectMap::new();
        parse_into(&frame, Some(&ip), Utc::now(), &mut fields);
        events.push(LogEvent::from_parts(fields, EventMetadata::new("size", Utc::now())).into());
    }
    let fields = match events.first() {
        Some(Event::Log(l)) => l.fields().len(),
        _ => 0,
    };
    println!(
        "a syslog event of {fields} fields: {} heap bytes in {} allocations, plus {} bytes inline",
        (LIVE.load(Ordering::Relaxed) - live0) / N,
        (ALLOCATIONS.load(Ordering::Relaxed) - count0) / N,
        std::mem::size_of::<Event>()
    );
}
