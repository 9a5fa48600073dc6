//! Log output: structured JSON for machines, readable text in a terminal.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt;

/// Installs the global subscriber once; later calls (tests, the all-in-one binary) are no-ops.
/// `LOG_FORMAT` = json | text overrides the terminal detection; `RUST_LOG` sets levels.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match std::env::var("LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => !std::io::stderr().is_terminal(),
    };
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _already_installed = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
