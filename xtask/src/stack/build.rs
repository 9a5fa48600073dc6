//! What the stack builds or prepares before it starts: the services' binaries, Jaeger,
//! and the docs server's root.

use std::fs;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::components::SERVICES;
use super::layout::Layout;
use super::which;
use crate::supervisor::remove_file_if_exists;

/// The service binaries, built together (each package is named like its service), and the
/// load tester with them: cargo unifies dependency features per invocation, so built
/// apart, the load tester's first `cargo run -p loadtester` against the stack would
/// compile the shared crates and the services over again in a variant of their own.
pub fn build_services(layout: &Layout) -> Result<()> {
    let mut command = Command::new("cargo");
    command.current_dir(&layout.root).args(["build", "--bins"]);
    for service in &SERVICES {
        command.args(["-p", service.name()]);
    }
    command.args(["-p", "loadtester"]);
    println!("building the services and the load tester (cargo build --bins, debug profile) ...");
    let status = command.status().context("could not run cargo")?;
    if !status.success() {
        bail!("cargo build of the services failed ({status})");
    }
    Ok(())
}

/// Builds Jaeger v2 into target/stack/bin unless the binary there was built from the
/// current xtask/jaeger/go.mod. The Go caches make a rebuild after a go.mod change fast.
pub fn build_jaeger(layout: &Layout) -> Result<()> {
    let module = layout.root.join("xtask/jaeger");
    let go_mod = fs::read_to_string(module.join("go.mod"))
        .with_context(|| format!("reading {}", module.join("go.mod").display()))?;
    // The stamp is written last, so an interrupted build is never taken as complete.
    let stamp = layout.bin.join("jaeger.go.mod.done");
    if layout.bin.join("jaeger").is_file()
        && fs::read_to_string(&stamp).is_ok_and(|done| done == go_mod)
    {
        return Ok(());
    }
    if which("go").is_none() {
        bail!("Jaeger is built with Go, and `go` is not on PATH; install Go 1.24 or later");
    }
    println!(
        "building Jaeger v2 from {} into {} (the first time takes several minutes) ...",
        module.join("go.mod").display(),
        layout.bin.display()
    );
    let started = Instant::now();
    let status = Command::new("go")
        .current_dir(&module)
        .args(["install", "-buildvcs=false", "tool"])
        .env("GOBIN", &layout.bin)
        .status()
        .context("could not run go")?;
    if !status.success() {
        bail!("building Jaeger failed ({status}); is the Go module proxy reachable?");
    }
    fs::write(stamp, go_mod)?;
    println!("built Jaeger in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The docs server serves target/stack/docs-root, where `docs` links to target/site: the
/// gateway passes `/docs/...` through unchanged. False when there is no site to serve.
pub fn prepare_docs(layout: &Layout) -> Result<bool> {
    let site = layout.site();
    if !site.is_dir() {
        return Ok(false);
    }
    let root = layout.work.join("docs-root");
    fs::create_dir_all(&root)?;
    let link = root.join("docs");
    if fs::read_link(&link).ok().as_deref() != Some(site.as_path()) {
        remove_file_if_exists(&link)?;
        std::os::unix::fs::symlink(&site, &link)
            .with_context(|| format!("linking {} to {}", link.display(), site.display()))?;
    }
    Ok(true)
}
