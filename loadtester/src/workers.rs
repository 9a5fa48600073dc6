//! One process of N sharing a load test: its share of the users or of the arrival rate, and
//! its own metrics port. Kubernetes' Indexed Jobs give each pod `JOB_COMPLETION_INDEX`.

use std::net::SocketAddr;

use clap::Args;

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Distributed workers")]
pub struct WorkerOptions {
    /// Make this process one of N workers: it runs 1/N of --users or of the arrival rate.
    #[arg(
        long,
        env = "LOADTEST_WORKERS",
        default_value_t = 1,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub workers: u32,
    /// This worker's index, 0 to N-1 [default: $JOB_COMPLETION_INDEX, else 0]. Its metrics
    /// listen on --metrics-listen's port plus the index.
    #[arg(long, env = "LOADTEST_WORKER_INDEX", value_name = "I")]
    pub worker_index: Option<u32>,
    /// Keep serving /metrics this long after the run, so that Prometheus scrapes the final
    /// counts before the process exits (at least one scrape interval when a verdict
    /// follows), e.g. 20s.
    #[arg(
        long,
        env = "LOADTEST_LINGER",
        default_value = "0s",
        value_name = "DURATION",
        value_parser = humantime_serde::re::humantime::parse_duration
    )]
    pub linger: std::time::Duration,
}

impl WorkerOptions {
    pub fn defaults() -> Self {
        Self {
            workers: 1,
            worker_index: None,
            linger: std::time::Duration::ZERO,
        }
    }

    pub fn worker(&self) -> anyhow::Result<Worker> {
        let index = match self.worker_index {
            Some(index) => index,
            None => match std::env::var("JOB_COMPLETION_INDEX") {
                Ok(text) => text.trim().parse().map_err(|_| {
                    anyhow::anyhow!(
                        "--worker-index: JOB_COMPLETION_INDEX={text:?} is not a worker index"
                    )
                })?,
                Err(_) => 0,
            },
        };
        if index >= self.workers {
            anyhow::bail!(
                "--worker-index {index} must be below --workers {} (indexes count from 0)",
                self.workers
            );
        }
        Ok(Worker {
            count: self.workers,
            index,
        })
    }
}

/// This process's place among the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Worker {
    pub count: u32,
    pub index: u32,
}

impl Worker {
    pub const ALONE: Worker = Worker { count: 1, index: 0 };

    /// Its share of `total` users: the remainder goes one each to the first workers.
    pub fn users(&self, total: usize) -> usize {
        let (count, index) = (self.count as usize, self.index as usize);
        total / count + usize::from(index < total % count)
    }

    /// Where its metrics listen: the given port plus its index (port 0 stays any port).
    pub fn metrics_listen(&self, mut listen: SocketAddr) -> anyhow::Result<SocketAddr> {
        if listen.port() != 0 {
            let port = u16::try_from(u32::from(listen.port()) + self.index).map_err(|_| {
                anyhow::anyhow!(
                    "--metrics-listen: port {} plus worker index {} is past 65535",
                    listen.port(),
                    self.index
                )
            })?;
            listen.set_port(port);
        }
        Ok(listen)
    }

    /// Where its evenly spaced arrivals fall between the fleet's, so workers interleave.
    pub fn phase(&self) -> f64 {
        f64::from(self.index) / f64::from(self.count)
    }

    /// A prefix that makes this worker's usernames and keys its own (`w1-`), empty alone.
    pub fn prefix(&self) -> String {
        if self.count > 1 {
            format!("w{}-", self.index)
        } else {
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_shared_out_whole() {
        let shares: Vec<usize> = (0..3)
            .map(|index| Worker { count: 3, index }.users(10))
            .collect();
        assert_eq!(shares, vec![4, 3, 3]);
    }

    #[test]
    fn an_index_past_the_workers_is_refused() {
        let options = WorkerOptions {
            workers: 2,
            worker_index: Some(2),
            ..WorkerOptions::defaults()
        };
        let err = options.worker().unwrap_err().to_string();
        assert!(
            err.starts_with("--worker-index 2 must be below --workers 2"),
            "{err}"
        );
        let options = WorkerOptions {
            workers: 2,
            worker_index: Some(1),
            ..WorkerOptions::defaults()
        };
        assert_eq!(options.worker().unwrap(), Worker { count: 2, index: 1 });
    }

    #[test]
    fn each_worker_has_its_own_metrics_port() {
        let worker = Worker { count: 2, index: 1 };
        let listen = worker
            .metrics_listen("127.0.0.1:9464".parse().unwrap())
            .unwrap();
        assert_eq!(listen.port(), 9465);
        assert_eq!(worker.prefix(), "w1-");
        assert_eq!(Worker::ALONE.prefix(), "");
    }
}
