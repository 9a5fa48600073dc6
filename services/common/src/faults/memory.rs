//! The `memory_growth` fault: an OS thread holding memory that grows at a steady rate until
//! the fault expires or is removed, then releases all of it to the operating system.
//!
//! A thread rather than a tokio task: filling each chunk is blocking work for the runtime's
//! workers, and faults are also added where no runtime runs (unit tests).
//!
//! The memory is mapped directly (anonymous mappings) rather than taken from the allocator,
//! because only that makes sure the resident memory falls again when the fault ends: glibc
//! does serve a first 1 MiB allocation with its own mapping, but freeing it raises glibc's
//! mmap threshold (up to 32 MiB), so the chunks of the next fault come from its arenas,
//! where other threads' allocations pin them and freeing them leaves RSS where it was.

use std::io;
use std::time::{Duration, Instant};

use memmap2::{MmapMut, MmapOptions};

use super::lifetime::Lifetime;

/// The step memory grows by: at a slow rate it grows less often, not by less.
const CHUNK_BYTES: usize = 1024 * 1024;
/// What each chunk is filled with: any write makes its pages resident; never written, a
/// mapping would be address space only, which RSS does not count.
const FILL: u8 = 0xA5;

pub(super) fn start(bytes_per_second: u64, lifetime: Lifetime) -> io::Result<()> {
    std::thread::Builder::new()
        .name("fault-memory-growth".to_owned())
        .spawn(move || grow(bytes_per_second, &lifetime))?;
    Ok(())
}

/// Adds a chunk each time the rate says one more is due, until the fault is over.
fn grow(bytes_per_second: u64, lifetime: &Lifetime) {
    let started = Instant::now();
    let mut held = Vec::with_capacity(chunks_due(bytes_per_second, lifetime.remaining()) + 1);
    let mut next_chunk_at = started;
    while lifetime.sleep_until(next_chunk_at) {
        let due = chunks_due(bytes_per_second, started.elapsed());
        if let Err(error) = add_chunks(&mut held, due) {
            tracing::warn!(held_bytes = held.len() * CHUNK_BYTES, %error,
                "memory_growth fault: cannot map more memory; holding what it has");
            lifetime.wait_for_end();
            break;
        }
        next_chunk_at = started + time_until_chunk(held.len() + 1, bytes_per_second);
    }
    let released_bytes = held.len() * CHUNK_BYTES;
    drop(held);
    tracing::info!(released_bytes, "memory_growth fault over");
}

fn add_chunks(held: &mut Vec<MmapMut>, due: usize) -> io::Result<()> {
    while held.len() < due {
        held.push(resident_chunk()?);
    }
    Ok(())
}

/// How many whole chunks a fault growing at this rate holds after this long.
fn chunks_due(bytes_per_second: u64, elapsed: Duration) -> usize {
    let bytes = bytes_per_second as f64 * elapsed.as_secs_f64();
    (bytes / CHUNK_BYTES as f64) as usize
}

/// When, counted from the fault's start, it holds `chunks` chunks.
fn time_until_chunk(chunks: usize, bytes_per_second: u64) -> Duration {
    let bytes = (chunks * CHUNK_BYTES) as f64;
    Duration::from_secs_f64(bytes / bytes_per_second.max(1) as f64)
}

/// A new mapping of one chunk, written through so that all of it is resident.
fn resident_chunk() -> io::Result<MmapMut> {
    let mut chunk = MmapOptions::new().len(CHUNK_BYTES).map_anon()?;
    chunk.fill(FILL);
    Ok(chunk)
}
