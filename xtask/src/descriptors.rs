//! Open files inherited from whoever ran `cargo xtask`, kept from the servers it starts.
//!
//! The stack's servers and Cassandra's nodes outlive this command. A descriptor they
//! inherit stays open for as long as they run: a script run under `flock lockfile ...`
//! would leave its lock held by a database node until someone stopped the node, and every
//! other holder of that lock would wait for ever. Rust opens its own files close-on-exec,
//! so only inherited descriptors need it.

use std::fs;
use std::os::fd::{BorrowedFd, RawFd};

use rustix::io::{FdFlags, fcntl_getfd, fcntl_setfd};

const FIRST_INHERITED: RawFd = 3;

/// Marks every inherited descriptor past stdin, stdout and stderr close-on-exec: this
/// process keeps it, no program it starts gets it.
pub fn keep_from_children() {
    let Ok(entries) = fs::read_dir("/proc/self/fd") else {
        return;
    };
    let descriptors: Vec<RawFd> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd >= FIRST_INHERITED)
        .collect();
    for fd in descriptors {
        // SAFETY: the descriptor is only borrowed for the two calls below, while nothing
        // else in this single-threaded start-up closes it; the listing's own descriptor,
        // closed by now, fails them with EBADF, which is ignored.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        if let Ok(flags) = fcntl_getfd(fd) {
            let _ = fcntl_setfd(fd, flags | FdFlags::CLOEXEC);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::process::Command;

    use super::*;

    const MARKER: &str = "xtask-descriptors-test";

    #[test]
    fn an_inherited_descriptor_does_not_reach_a_started_program() {
        let file = unlinked_temp_file();
        let inherited = file.as_fd();
        let flags = fcntl_getfd(inherited).unwrap();
        fcntl_setfd(inherited, flags - FdFlags::CLOEXEC).unwrap();
        assert!(
            a_child_s_open_files().contains(MARKER),
            "without the call, a child inherits the file"
        );

        keep_from_children();

        assert!(!a_child_s_open_files().contains(MARKER));
        assert!(fcntl_getfd(inherited).is_ok(), "this process keeps it open");
    }

    fn a_child_s_open_files() -> String {
        let output = Command::new("ls").args(["-l", "/proc/self/fd/"]).output();
        String::from_utf8(output.unwrap().stdout).unwrap()
    }

    fn unlinked_temp_file() -> fs::File {
        let path = std::env::temp_dir().join(format!("{MARKER}-{}", std::process::id()));
        let file = fs::File::create(&path).unwrap();
        fs::remove_file(&path).unwrap();
        file
    }
}
