//! Drills (b) and (c) on the services' replicas: every service loses one replica to
//! SIGKILL at once and gets it back; or every replica of every service is restarted, one
//! at a time, each stopped gracefully (SIGTERM: it drains, then exits) and started again
//! before the next.

use std::thread;
use std::time::Duration;

use anyhow::{Result, bail};
use chrono::Utc;
use shop_topology::{self as topology, Placement};

use super::Fault;
use crate::stack;

/// How long the killed replicas stay dead before they are started again.
const DOWN_FOR: Duration = Duration::from_secs(10);

fn base_url(service: &Placement, replica: u8) -> String {
    format!(
        "http://127.0.0.1:{}{}",
        service.replica_port(replica),
        service.prefix
    )
}

/// How many replicas every service runs, each answering ready; at least two, or the drill
/// would take a whole service away.
pub fn replicas() -> Result<u8> {
    let client = stack::http_client();
    let answers = |replica: u8| {
        topology::ALL.iter().all(|service| {
            let url = format!("{}/health/ready", base_url(service, replica));
            client
                .get(&url)
                .send()
                .is_ok_and(|response| response.status().is_success())
        })
    };
    let count = (1..=topology::MAX_REPLICAS)
        .take_while(|&r| answers(r))
        .count() as u8;
    if count < 2 {
        bail!(
            "this drill needs two replicas of every service at least, each answering ready \
             (`cargo xtask stack up --replicas 2`); replicas answering: {count}"
        );
    }
    Ok(count)
}

/// The requests replica `replica` of a service is serving now, not counting the one that
/// asks (its own `http_server_requests_in_flight`).
fn in_flight(service: &Placement, replica: u8) -> Result<u64> {
    let url = format!("{}/metrics", base_url(service, replica));
    let text = stack::http_client().get(&url).send()?.text()?;
    // `http_server_requests_in_flight{service="backend"} 3`: the value follows the labels.
    let gauge = text
        .lines()
        .filter(|line| line.starts_with("http_server_requests_in_flight"))
        .find_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok());
    match gauge {
        Some(value) => Ok((value as u64).saturating_sub(1)),
        None => bail!("{url} has no http_server_requests_in_flight"),
    }
}

/// The stack's name for one replica of a service: `backend-1`, not `backend`, which
/// would select every replica.
fn component(service: &Placement, replica: u8) -> String {
    format!("{}-{replica}", service.name)
}

pub fn kill_and_restart(replicas: u8, fault: &mut Fault) -> Result<()> {
    let victim = replicas;
    let mut in_flight_total = 0;
    let first_kill = Utc::now();
    for service in &topology::ALL {
        let serving = in_flight(service, victim)?;
        let target = component(service, victim);
        if !stack::kill_component(&target)? {
            bail!("{target} was not running: the drill could not kill it");
        }
        in_flight_total += serving;
        fault
            .killed
            .push(format!("127.0.0.1:{}", service.replica_port(victim)));
        fault.note(format!("SIGKILL {target} ({serving} requests in flight)"));
    }
    fault.in_flight = Some(in_flight_total);
    fault.window = Some((first_kill, Utc::now()));
    thread::sleep(DOWN_FOR);
    for service in &topology::ALL {
        let target = component(service, victim);
        stack::start_component(&target)?;
        fault.note(format!("{target} ready again"));
    }
    Ok(())
}

pub fn rolling_restart(replicas: u8, fault: &mut Fault) -> Result<()> {
    for service in &topology::ALL {
        for replica in 1..=replicas {
            let target = component(service, replica);
            fault.note(format!("SIGTERM {target}"));
            if !stack::stop_component(&target)? {
                bail!("{target} was not running: the drill could not restart it");
            }
            fault.note(format!("{target} stopped; starting it"));
            stack::start_component(&target)?;
            fault.note(format!("{target} ready"));
        }
    }
    Ok(())
}
