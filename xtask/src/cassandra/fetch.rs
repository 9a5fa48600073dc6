//! Cassandra and the Prometheus JMX exporter's java agent, from Maven Central.
//!
//! Only Java 17 and Maven are required: the official `cassandra-all` jar and its
//! dependencies, and `jmx_prometheus_javaagent`, come from Maven Central (the one artifact
//! source that every developer machine and CI can reach), so there is no tarball or Docker
//! image. Each is named in a pom.xml under xtask/cassandra/.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::node::Workspace;

/// The fetched jars: Cassandra's classpath and the exporter agent's directory.
pub struct Artifacts {
    pub lib: PathBuf,
    agent: PathBuf,
}

impl Artifacts {
    /// Fetches what is missing or was fetched for another version.
    pub fn fetch(workspace: &Workspace) -> Result<Self> {
        let poms = Path::new(env!("CARGO_MANIFEST_DIR")).join("cassandra");
        let artifacts = Self {
            lib: workspace.root.join("lib"),
            agent: workspace.root.join("jmx-exporter"),
        };
        copy_dependencies(&poms.join("pom.xml"), &artifacts.lib, "Cassandra")?;
        copy_dependencies(
            &poms.join("jmx-exporter/pom.xml"),
            &artifacts.agent,
            "the Prometheus JMX exporter",
        )?;
        Ok(artifacts)
    }

    /// The agent's jar: the one jar its directory holds.
    pub fn jmx_exporter(&self) -> Result<PathBuf> {
        let mut jars = fs::read_dir(&self.agent)
            .with_context(|| format!("reading {}", self.agent.display()))?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "jar"));
        match (jars.next(), jars.next()) {
            (Some(jar), None) => Ok(jar),
            _ => bail!(
                "expected one agent jar in {}; delete the directory to fetch it again",
                self.agent.display()
            ),
        }
    }
}

/// Copies the artifacts named in `pom` into `dir`, unless a previous run already did so
/// for the same pom.xml.
fn copy_dependencies(pom: &Path, dir: &Path, what: &str) -> Result<()> {
    let pom_text = fs::read_to_string(pom).with_context(|| format!("reading {}", pom.display()))?;
    // The stamp is written last, so an interrupted download is never taken as complete.
    let stamp = dir.join("pom.xml.done");
    if fs::read_to_string(&stamp).is_ok_and(|done| done == pom_text) {
        return Ok(());
    }
    println!(
        "Fetching {what} from Maven Central ({}) into {} ...",
        pom.display(),
        dir.display()
    );
    // A fresh directory, so jars of a previous version do not end up on the classpath.
    super::remove_dir_if_exists(dir)?;
    super::check(
        Command::new("mvn")
            .args(["--batch-mode", "--quiet", "--file"])
            .arg(pom)
            .arg("dependency:copy-dependencies")
            .arg(format!("-DoutputDirectory={}", dir.display())),
    )
    .with_context(|| {
        format!(
            "could not fetch {what} with Maven; is `mvn` installed and Maven Central reachable?"
        )
    })?;
    fs::write(stamp, pom_text)?;
    Ok(())
}
