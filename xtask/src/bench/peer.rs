//! The seed's stack as a peer: the original design's backend (FastAPI and pydantic on
//! uvicorn, a worker per core, uvloop and httptools), reduced to `GET /api/products/{id}`
//! and serving the product the Rust backend's measurement reads, measured with the same
//! wrk settings in the same run. The fixture is `xtask/bench/peer/`; `.ci/install-bench.sh`
//! installs its pinned packages into target/bench/peer-venv.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::Value;

use super::procs::{self, Proc, Watched};
use super::wrk::Outcome;
use super::{Env, ports};

/// The fixture, relative to the repository.
const FIXTURE: &str = "xtask/bench/peer";
/// The virtualenv `.ci/install-bench.sh` makes, relative to the repository.
const VENV: &str = "target/bench/peer-venv";
/// The packages that make the stack, as the report names them (the rest are theirs).
const STACK: &[&str] = &["fastapi", "pydantic", "uvicorn", "uvloop", "httptools"];

/// What the peer served.
#[derive(Debug, Clone, Serialize)]
pub struct PeerResult {
    /// The stack's packages and their pinned versions, e.g. "fastapi 0.165.0".
    pub stack: Vec<String>,
    /// uvicorn's worker processes: one per core.
    pub workers: usize,
    /// Product by id, directly, on the connections of the Rust backend's run.
    pub outcome: Outcome,
}

/// The product `id` as the Rust backend answers it: the peer serves exactly these fields.
pub fn product(env: &Env, id: &str) -> Result<Value> {
    let url = format!("{}/api/products/{id}", ports::url(ports::BACKEND));
    let response = env
        .http
        .get(&url)
        .send()
        .context("reading the peer's product")?;
    let status = response.status();
    if !status.is_success() {
        bail!("reading the peer's product: {url} answered {status}");
    }
    response.json().context("the backend's product is not JSON")
}

/// Starts the peer with `product` in its store, waits until it serves it, measures it with
/// `run` (a wrk run against [`ports::PEER`], accounting for the `Watched` peer's CPU), and
/// stops it.
pub fn measure(
    env: &Env,
    product: &Value,
    run: impl FnOnce(&Watched) -> Result<Outcome>,
) -> Result<PeerResult> {
    let id = product["id"]
        .as_str()
        .context("the backend's product has no id")?;
    let path = format!("/api/products/{id}");
    let products = env.work.join("peer-products.json");
    fs::write(&products, serde_json::to_vec(&[product])?)
        .with_context(|| format!("writing {}", products.display()))?;
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    println!("== the seed's stack as a peer ({workers} uvicorn workers)");
    let mut peer = vec![start(env, &products, workers, &path)?];
    procs::wait_ready(&env.http, &mut peer)?;
    let outcome = run(&Watched::new(&peer))?;
    drop(peer);
    Ok(PeerResult {
        stack: stack(&read_requirements(&env.root)?),
        workers,
        outcome,
    })
}

fn start(env: &Env, products: &Path, workers: usize, path: &str) -> Result<Proc> {
    let uvicorn = env.root.join(VENV).join("bin/uvicorn");
    if !uvicorn.is_file() {
        bail!(
            "the peer is not installed ({} is missing): run `bash .ci/install-bench.sh`",
            uvicorn.display()
        );
    }
    let mut command = Command::new(uvicorn);
    command
        .arg("--app-dir")
        .arg(env.root.join(FIXTURE))
        .args(["app:app", "--host", "127.0.0.1", "--port"])
        .arg(ports::PEER.to_string())
        .arg("--workers")
        .arg(workers.to_string())
        .args(["--loop", "uvloop", "--http", "httptools"])
        // No line per request: the cheapest configuration the seed's stack has.
        .args(["--no-access-log", "--log-level", "warning"])
        .env("PEER_PRODUCTS", products);
    let ready = format!("{}{path}", ports::url(ports::PEER));
    Proc::spawn("peer", command, &env.log("peer"), ready)
}

fn read_requirements(root: &Path) -> Result<String> {
    let path: PathBuf = root.join(FIXTURE).join("requirements.txt");
    fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// "name version" of each of the stack's packages pinned in `requirements`.
fn stack(requirements: &str) -> Vec<String> {
    let pins: Vec<(&str, &str)> = requirements
        .lines()
        .filter_map(|line| line.split('#').next()?.trim().split_once("=="))
        .collect();
    STACK
        .iter()
        .filter_map(|name| {
            let (_, version) = pins.iter().find(|(pinned, _)| pinned.trim() == *name)?;
            Some(format!("{name} {}", version.trim()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stack_is_named_from_its_pins() {
        let requirements = "# a comment\nuvicorn==0.55.0\nfastapi == 0.165.0  # web\n\
                            anyio==4.16.0\npydantic>=2\n\n";
        assert_eq!(stack(requirements), ["fastapi 0.165.0", "uvicorn 0.55.0"]);
    }

    #[test]
    fn the_fixture_pins_the_whole_stack() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let pinned = stack(&read_requirements(root).unwrap());
        assert_eq!(pinned.len(), STACK.len(), "{pinned:?}");
    }
}
