//! The `cpu_burn` fault: plain OS threads spinning until the fault expires or is removed,
//! away from the async runtime's workers (which they would otherwise starve unevenly).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Starts `threads` spinning threads; if one cannot start, stops those that did.
pub(super) fn start(threads: u8, until: Instant, stop: &Arc<AtomicBool>) -> std::io::Result<()> {
    for index in 0..threads {
        let stop_flag = stop.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("fault-cpu-burn-{index}"))
            .spawn(move || spin(until, &stop_flag));
        if let Err(err) = spawned {
            stop.store(true, Ordering::Relaxed);
            return Err(err);
        }
    }
    Ok(())
}

fn spin(until: Instant, stop: &AtomicBool) {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
        // About a millisecond of arithmetic between checks.
        for _ in 0..200_000 {
            state = black_box(
                state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407),
            );
        }
    }
}
