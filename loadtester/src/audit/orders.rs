//! The audit's order checks, against the orders a load test saw acknowledged
//! (`--orders-log`): every one is readable, by id as an admin and as its owner; each is in
//! the status its client last saw or one that may follow it; and every view of it (by id
//! as admin and as owner, the owner's list, the admin's list of all orders, its own
//! history) tells one status.
//!
//! Orders move on by themselves (the order processor steps them towards delivered), so two
//! views read a moment apart may differ because the order moved in between: views that
//! disagree are read again until they agree or the settle time runs out.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;
use uuid::Uuid;

use super::Shop;
use crate::orders_log::{self, ClientView};

/// The statuses an order moves through by itself, in order; `cancelled` branches off the
/// first two.
const LIFE_CYCLE: [&str; 4] = ["pending", "processing", "shipped", "delivered"];
const CANCELLED: &str = "cancelled";
/// Orders a listing returns at most (the order service's own bound).
const LIST_LIMIT: usize = 1000;
const RETRY_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Deserialize)]
struct OrderDoc {
    id: Uuid,
    status: String,
    #[serde(default)]
    history: Vec<StatusChange>,
}

#[derive(Debug, Clone, Deserialize)]
struct StatusChange {
    status: String,
}

/// What is wrong with one acknowledged order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Not found, or not answered, when read by id.
    Unreadable,
    /// In a status that cannot follow the one its client last saw.
    Behind,
    /// Its views, or its history, tell two statuses.
    TwoStates,
    /// A line of the log that could not be read.
    TornLine,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Unreadable => "unreadable",
            Kind::Behind => "not in the status its client last saw or a later one",
            Kind::TwoStates => "in two states",
            Kind::TornLine => "unreadable log line",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub order_id: Option<Uuid>,
    pub kind: Kind,
    pub detail: String,
}

/// The order checks' result.
#[derive(Debug, Default)]
pub struct OrdersAudit {
    pub acknowledged: usize,
    pub owners: usize,
    pub findings: Vec<Finding>,
}

impl OrdersAudit {
    pub fn passed(&self) -> bool {
        self.findings.is_empty()
    }

    pub fn render(&self) -> String {
        let mut out = format!(
            "Orders audit: {} acknowledged orders of {} clients, {} findings: {}\n",
            self.acknowledged,
            self.owners,
            self.findings.len(),
            if self.passed() { "PASSED" } else { "FAILED" }
        );
        for finding in &self.findings {
            let order = finding
                .order_id
                .map_or_else(String::new, |id| format!("order {id} "));
            out += &format!("  {order}{}: {}\n", finding.kind, finding.detail);
        }
        out
    }
}

/// Whether an order its client last saw in `seen` may now be in `now`: the same status, a
/// later one of the life cycle, or cancelled before shipping when the client asked for it.
/// The shop never cancels an acknowledged order by itself: it cancels only orders whose
/// reservation expired before they were acknowledged.
pub fn may_follow(seen: &str, now: &str, cancel_sent: bool) -> bool {
    let rank = |status: &str| LIFE_CYCLE.iter().position(|s| *s == status);
    if seen == now {
        return rank(now).is_some() || now == CANCELLED;
    }
    match (rank(seen), rank(now)) {
        (Some(before), Some(after)) => after > before,
        (Some(before), None) if now == CANCELLED => cancel_sent && before <= 1,
        _ => false,
    }
}

/// Why a history is not one path through the life cycle ending in `status`, if it is not.
pub fn history_error(status: &str, history: &[&str]) -> Option<String> {
    let (first, rest) = history.split_first()?;
    if *first != LIFE_CYCLE[0] {
        return Some(format!("its history starts at {first}"));
    }
    let mut at = *first;
    for next in rest {
        let allowed = LIFE_CYCLE
            .iter()
            .position(|s| *s == at)
            .is_some_and(|i| LIFE_CYCLE.get(i + 1) == Some(next) || (*next == CANCELLED && i <= 1));
        if !allowed {
            return Some(format!("its history goes from {at} to {next}"));
        }
        at = next;
    }
    (at != status).then(|| format!("its history ends at {at} but it is {status}"))
}

/// Checks the orders of the log at `path` against the shop, reading disagreeing views again
/// until `deadline`.
pub async fn audit(
    shop: &Shop<'_>,
    path: &Path,
    owner_password: &str,
    deadline: Instant,
) -> anyhow::Result<OrdersAudit> {
    let read = orders_log::read(path)?;
    let mut audit = OrdersAudit {
        acknowledged: read.orders.len(),
        ..OrdersAudit::default()
    };
    for (line, error) in &read.unreadable {
        audit.findings.push(Finding {
            order_id: None,
            kind: Kind::TornLine,
            detail: format!("line {line} of {}: {error}", path.display()),
        });
    }
    // An owner who cannot log in cannot read their orders: a finding about each of them.
    let mut owners: Owners = HashMap::new();
    for order in &read.orders {
        if !owners.contains_key(order.username.as_str()) {
            let token = shop.log_in(&order.username, owner_password).await;
            owners.insert(&order.username, token.map_err(|err| format!("{err:#}")));
        }
    }
    audit.owners = owners.len();
    let mut pending: Vec<&ClientView> = read.orders.iter().collect();
    loop {
        let views = Views::read(shop, &owners, &pending).await?;
        let last_look = Instant::now() + RETRY_EVERY > deadline;
        let mut still = Vec::new();
        for order in pending {
            match views.judge(order) {
                Judgement::Sound => {}
                Judgement::Moving(_) if !last_look => still.push(order),
                Judgement::Moving(finding) | Judgement::Wrong(finding) => {
                    audit.findings.push(finding)
                }
            }
        }
        pending = still;
        if pending.is_empty() {
            return Ok(audit);
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
}

enum Judgement {
    Sound,
    /// Wrong now, and possibly right once the order stops moving.
    Moving(Finding),
    /// Wrong whatever happens next.
    Wrong(Finding),
}

/// Each owner's bearer token, or why they could not log in.
type Owners<'a> = HashMap<&'a str, Result<String, String>>;

/// Every view of the orders under audit, read in one pass.
struct Views {
    /// The list of all orders, or why it could not be read.
    all: Result<HashMap<Uuid, String>, String>,
    own: HashMap<Uuid, String>,
    /// Owners whose list of orders could not be read, and why.
    unlisted: HashMap<String, String>,
    by_id: HashMap<Uuid, Result<OrderDoc, String>>,
    owner_by_id: HashMap<Uuid, Result<OrderDoc, String>>,
}

impl Views {
    async fn read(
        shop: &Shop<'_>,
        owners: &Owners<'_>,
        orders: &[&ClientView],
    ) -> anyhow::Result<Self> {
        let list = |docs: Vec<OrderDoc>| docs.into_iter().map(|o| (o.id, o.status)).collect();
        let all_path = format!("/order-api/orders/?scope=all&limit={LIST_LIMIT}");
        let mut views = Self {
            all: shop
                .get_order::<Vec<OrderDoc>>(&all_path, shop.admin_token)
                .await
                .map(list),
            own: HashMap::new(),
            unlisted: HashMap::new(),
            by_id: HashMap::new(),
            owner_by_id: HashMap::new(),
        };
        let own_path = format!("/order-api/orders/?scope=own&limit={LIST_LIMIT}");
        let mut listed: Vec<&str> = orders.iter().map(|o| o.username.as_str()).collect();
        listed.sort_unstable();
        listed.dedup();
        for username in listed {
            let docs = match &owners[username] {
                Ok(token) => shop.get_order::<Vec<OrderDoc>>(&own_path, token).await,
                Err(why) => Err(why.clone()),
            };
            match docs {
                Ok(docs) => views.own.extend(list(docs)),
                Err(why) => {
                    views.unlisted.insert(username.to_owned(), why);
                }
            }
        }
        for order in orders {
            let path = format!("/order-api/orders/{}", order.order_id);
            views.by_id.insert(
                order.order_id,
                shop.get_order(&path, shop.admin_token).await,
            );
            let as_owner = match &owners[order.username.as_str()] {
                Ok(token) => shop.get_order(&path, token).await,
                Err(why) => Err(why.clone()),
            };
            views.owner_by_id.insert(order.order_id, as_owner);
        }
        Ok(views)
    }

    fn judge(&self, order: &ClientView) -> Judgement {
        let id = order.order_id;
        let finding = |kind, detail: String| Finding {
            order_id: Some(id),
            kind,
            detail,
        };
        let (admin, owner) = match (&self.by_id[&id], &self.owner_by_id[&id]) {
            (Ok(admin), Ok(owner)) => (admin, owner),
            (Err(why), _) => {
                return Judgement::Moving(finding(Kind::Unreadable, format!("as admin: {why}")));
            }
            (_, Err(why)) => {
                return Judgement::Moving(finding(
                    Kind::Unreadable,
                    format!("as its owner {}: {why}", order.username),
                ));
            }
        };
        let all = match &self.all {
            Ok(all) => all,
            Err(why) => {
                let detail = format!("the list of all orders: {why}");
                return Judgement::Moving(finding(Kind::Unreadable, detail));
            }
        };
        if let Some(why) = self.unlisted.get(&order.username) {
            return Judgement::Moving(finding(
                Kind::Unreadable,
                format!("its owner {}'s list of orders: {why}", order.username),
            ));
        }
        let history: Vec<&str> = admin.history.iter().map(|c| c.status.as_str()).collect();
        if let Some(error) = history_error(&admin.status, &history) {
            return Judgement::Moving(finding(Kind::TwoStates, error));
        }
        let mut views = vec![("by id as admin", admin.status.as_str())];
        views.push(("by id as its owner", owner.status.as_str()));
        if let Some(status) = self.own.get(&id) {
            views.push(("in its owner's list", status));
        }
        if let Some(status) = all.get(&id) {
            views.push(("in the list of all orders", status));
        }
        if views.iter().any(|(_, status)| *status != admin.status) {
            let told: Vec<String> = views.iter().map(|(v, s)| format!("{s} {v}")).collect();
            return Judgement::Moving(finding(Kind::TwoStates, told.join(", ")));
        }
        if !may_follow(&order.last_seen, &admin.status, order.cancel_sent) {
            let detail = format!(
                "its client last saw it {}{}, and it is {}",
                order.last_seen,
                if order.cancel_sent {
                    " and asked to cancel it"
                } else {
                    ""
                },
                admin.status
            );
            // A status that cannot follow what the client saw does not heal by waiting.
            return Judgement::Wrong(finding(Kind::Behind, detail));
        }
        Judgement::Sound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_life_cycle_and_cancelling_needs_the_client() {
        assert!(may_follow("pending", "pending", false));
        assert!(may_follow("pending", "delivered", false));
        assert!(may_follow("processing", "cancelled", true));
        assert!(may_follow("cancelled", "cancelled", false));
        assert!(
            !may_follow("pending", "cancelled", false),
            "cancelled unasked"
        );
        assert!(
            !may_follow("shipped", "cancelled", true),
            "cancelled after shipping"
        );
        assert!(!may_follow("shipped", "processing", false), "went back");
        assert!(
            !may_follow("cancelled", "pending", true),
            "came back to life"
        );
        assert!(!may_follow("pending", "lost", false));
    }

    #[test]
    fn a_history_is_one_path_ending_in_the_status() {
        assert_eq!(history_error("pending", &["pending"]), None);
        assert_eq!(
            history_error("cancelled", &["pending", "processing", "cancelled"]),
            None
        );
        assert!(history_error("delivered", &["pending", "shipped", "delivered"]).is_some());
        assert!(history_error("shipped", &["pending", "cancelled", "shipped"]).is_some());
        assert!(history_error("processing", &["pending"]).is_some());
        assert!(history_error("pending", &["processing"]).is_some());
    }
}
