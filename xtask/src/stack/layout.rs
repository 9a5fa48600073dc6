//! Where the stack keeps what it writes: everything under `target/stack/`.

use std::path::{Path, PathBuf};

pub struct Layout {
    pub(super) root: PathBuf,
    pub(super) work: PathBuf,
    pub(super) bin: PathBuf,
    pub(super) logs: PathBuf,
    pub(super) run: PathBuf,
}

impl Layout {
    pub fn new() -> Self {
        let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = xtask
            .parent()
            .expect("xtask lives inside the workspace")
            .to_path_buf();
        let work = root.join("target/stack");
        Self {
            bin: work.join("bin"),
            logs: work.join("logs"),
            run: work.join("run"),
            work,
            root,
        }
    }

    pub(super) fn log(&self, name: &str) -> PathBuf {
        self.logs.join(format!("{name}.log"))
    }

    pub(super) fn pid_file(&self, name: &str) -> PathBuf {
        self.run.join(format!("{name}.pid"))
    }

    pub(super) fn site(&self) -> PathBuf {
        self.root.join("target/site")
    }

    pub(super) fn nginx_prefix(&self) -> PathBuf {
        self.work.join("nginx")
    }

    /// nginx's configuration as the stack runs it: the repository's nginx.conf beside the
    /// upstreams generated for the replica count (see [`super::replicas`]).
    pub(super) fn nginx_conf_dir(&self) -> PathBuf {
        self.nginx_prefix().join("conf")
    }

    /// Where `up --time-scale N` generates Prometheus' configuration and rules.
    pub(super) fn scaled_prometheus(&self) -> PathBuf {
        self.work.join("prometheus-scaled")
    }

    /// The time scale of the Prometheus last started, for `status` and `up`.
    pub(super) fn time_scale_file(&self) -> PathBuf {
        self.work.join("time-scale")
    }

    /// How many replicas of each service the stack runs (`up --replicas N`).
    pub(super) fn replicas_file(&self) -> PathBuf {
        self.work.join("replicas")
    }

    pub(super) fn prometheus_config(&self, time_scale: u32) -> PathBuf {
        if time_scale == 1 {
            self.root.join("observability/prometheus/prometheus.yml")
        } else {
            self.scaled_prometheus().join("prometheus.yml")
        }
    }
}
