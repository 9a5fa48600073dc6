//! The `file_descriptors` fault: an OS thread opens descriptors on `/dev/null` until the
//! process' open descriptors reach a share of its soft limit, and closes them when the fault
//! expires or is removed.
//!
//! A thread rather than a tokio task: opening tens of thousands of files is blocking work
//! for the runtime's workers, and faults are also added where no runtime runs (unit tests).

use std::fs::File;

use super::lifetime::Lifetime;

/// The most descriptors one fault opens. A soft limit that needs more (containers often
/// allow a million) is too far above what the service uses for the fault to be cheap: the
/// operator lowers it with `ulimit -n` instead.
pub(crate) const MAX_EXTRA_DESCRIPTORS: u64 = 65_536;

/// Opened by the fault: always there, and holding it open costs nothing else.
const HELD_FILE: &str = "/dev/null";

/// The process' descriptors, counted like `process_open_fds` and `process_max_fds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DescriptorUsage {
    pub open: u64,
    /// The soft `RLIMIT_NOFILE`; `None` when unlimited.
    pub soft_limit: Option<u64>,
}

impl DescriptorUsage {
    /// Read from `/proc/self` with procfs, as the Prometheus process collector reads them.
    #[cfg(target_os = "linux")]
    pub(crate) fn of_this_process() -> Result<Self, String> {
        use procfs::process::{LimitValue, Process};

        let unreadable = |error: procfs::ProcError| {
            format!("cannot count this process' descriptors in /proc: {error}")
        };
        let process = Process::myself().map_err(unreadable)?;
        let open = process.fd_count().map_err(unreadable)?;
        let soft_limit = match process
            .limits()
            .map_err(unreadable)?
            .max_open_files
            .soft_limit
        {
            LimitValue::Value(limit) => Some(limit),
            LimitValue::Unlimited => None,
        };
        Ok(Self {
            open: u64::try_from(open).unwrap_or(u64::MAX),
            soft_limit,
        })
    }

    #[cfg(not(target_os = "linux"))]
    pub(crate) fn of_this_process() -> Result<Self, String> {
        Err("a file_descriptors fault needs Linux: it counts descriptors in /proc".to_owned())
    }

    /// How many more descriptors bring the open ones to `fraction` of the soft limit: none
    /// when they are there already.
    pub(crate) fn extra_to_reach(&self, fraction: f64) -> Result<u64, String> {
        const ADVICE: &str = "run the service with a lower `ulimit -n`";
        let Some(limit) = self.soft_limit else {
            return Err(format!("the descriptor limit is unlimited: {ADVICE}"));
        };
        // Rounded up, so that the open share reaches the fraction rather than stopping short.
        let target = (fraction * limit as f64).ceil() as u64;
        let extra = target.saturating_sub(self.open);
        if extra > MAX_EXTRA_DESCRIPTORS {
            return Err(format!(
                "reaching {fraction} of the descriptor limit ({limit}) takes {extra} more open \
                 descriptors, over {MAX_EXTRA_DESCRIPTORS}: {ADVICE}"
            ));
        }
        Ok(extra)
    }
}

pub(super) fn start(extra: u64, lifetime: Lifetime) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("fault-file-descriptors".to_owned())
        .spawn(move || {
            let held = open_held_files(extra);
            lifetime.wait_for_end();
            let closed = held.len();
            drop(held);
            tracing::info!(closed, "file_descriptors fault over");
        })?;
    Ok(())
}

/// Opens up to `count` descriptors. When the process runs out (EMFILE, its own use having
/// grown meanwhile) or anything else fails, it keeps those it has: the fault still shows.
fn open_held_files(count: u64) -> Vec<File> {
    let mut held = Vec::new();
    for _ in 0..count {
        match File::open(HELD_FILE) {
            Ok(file) => held.push(file),
            Err(error) => {
                tracing::warn!(opened = held.len(), wanted = count, %error,
                    "file_descriptors fault: cannot open more descriptors; holding those opened");
                break;
            }
        }
    }
    held
}
