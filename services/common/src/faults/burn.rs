//! The `cpu_burn` fault: plain OS threads spinning until the fault expires or is removed,
//! away from the async runtime's workers (which they would otherwise starve unevenly).

use std::hint::black_box;

use super::lifetime::Lifetime;

/// Starts `threads` spinning threads. When one cannot start, the caller stops the fault, and
/// with it those that did.
pub(super) fn start(threads: u8, lifetime: &Lifetime) -> std::io::Result<()> {
    for index in 0..threads {
        let lifetime = lifetime.clone();
        std::thread::Builder::new()
            .name(format!("fault-cpu-burn-{index}"))
            .spawn(move || spin(&lifetime))?;
    }
    Ok(())
}

fn spin(lifetime: &Lifetime) {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    while !lifetime.is_over() {
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
