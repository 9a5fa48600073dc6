//! `--orders-log`: every order a client saw acknowledged (201), and what the client saw of
//! it afterwards, one JSON object a line, for `loadtester audit --orders-log` to check
//! against the shop. Each line is written with one `write` on a file opened for
//! appending, so workers sharing the file, or a run killed mid-way, never leave half a
//! line between whole ones.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a client learnt about one of its orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    /// The shop answered 201 to the checkout: the order exists, in `status`.
    Acknowledged,
    /// The client read the order in `status`.
    Seen,
    /// The client asked to cancel it; whatever the answer, it may be cancelled from now on.
    CancelSent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub order_id: Uuid,
    /// The owner, who can read it with the load tester's shopper password.
    pub username: String,
    pub event: Event,
    /// The status the client saw; none for [`Event::CancelSent`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    pub at: DateTime<Utc>,
}

/// The log file, shared by every journey of a run.
pub struct OrdersLog {
    file: Mutex<File>,
}

impl OrdersLog {
    /// Opens `path` for appending, creating it when missing.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open the orders log {}", path.display()))?;
        Ok(Self {
            file: Mutex::new(file),
        })
    }

    pub fn record(&self, order_id: Uuid, username: &str, event: Event, status: Option<&str>) {
        let entry = Entry {
            order_id,
            username: username.to_owned(),
            event,
            status: status.map(str::to_owned),
            at: Utc::now(),
        };
        let line = serde_json::to_string(&entry).expect("an entry serializes") + "\n";
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        // One write of the whole line: O_APPEND puts it after every other whole line.
        if let Err(err) = file.write_all(line.as_bytes()) {
            tracing::warn!(%err, "cannot write to the orders log");
        }
    }
}

/// One order as the log tells it: its owner, the last status its client saw, and whether
/// the client asked to cancel it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientView {
    pub order_id: Uuid,
    pub username: String,
    pub last_seen: String,
    pub cancel_sent: bool,
}

/// The log read back: each acknowledged order's client view, in the order they were
/// acknowledged, and the lines that could not be read (a torn or foreign line).
#[derive(Debug, Default)]
pub struct Read {
    pub orders: Vec<ClientView>,
    pub unreadable: Vec<(usize, String)>,
}

pub fn read(path: &Path) -> anyhow::Result<Read> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the orders log {}", path.display()))?;
    Ok(parse(&text))
}

pub fn parse(text: &str) -> Read {
    let mut read = Read::default();
    let mut index: HashMap<Uuid, usize> = HashMap::new();
    let mut early: Vec<Entry> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let entry: Entry = match serde_json::from_str(line) {
            Ok(entry) => entry,
            Err(err) => {
                read.unreadable.push((number + 1, err.to_string()));
                continue;
            }
        };
        match (entry.event, index.get(&entry.order_id)) {
            (Event::Acknowledged, None) => {
                index.insert(entry.order_id, read.orders.len());
                read.orders.push(ClientView {
                    order_id: entry.order_id,
                    username: entry.username,
                    last_seen: entry.status.unwrap_or_else(|| "pending".into()),
                    cancel_sent: false,
                });
            }
            (_, Some(&at)) => apply(&mut read.orders[at], &entry),
            // Only acknowledged orders are promised; a line about an order before its
            // acknowledgement (two workers' lines interleaved) is applied once it comes.
            (_, None) => early.push(entry),
        }
    }
    for entry in early {
        if let Some(&at) = index.get(&entry.order_id) {
            apply(&mut read.orders[at], &entry);
        }
    }
    read
}

fn apply(view: &mut ClientView, entry: &Entry) {
    match entry.event {
        Event::CancelSent => view.cancel_sent = true,
        Event::Acknowledged | Event::Seen => {
            if let Some(status) = &entry.status {
                view.last_seen = status.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: Uuid, event: Event, status: Option<&str>) -> String {
        serde_json::to_string(&Entry {
            order_id: id,
            username: "lt-shopper-1".into(),
            event,
            status: status.map(str::to_owned),
            at: Utc::now(),
        })
        .unwrap()
    }

    #[test]
    fn the_last_status_seen_and_a_cancel_sent_are_kept_per_order() {
        let (a, b, stray) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let text = [
            line(a, Event::Acknowledged, Some("pending")),
            line(b, Event::Acknowledged, Some("pending")),
            line(a, Event::Seen, Some("processing")),
            line(b, Event::CancelSent, None),
            line(stray, Event::Seen, Some("shipped")),
            "{\"order_id\": \"torn".to_owned(),
        ]
        .join("\n");
        let read = parse(&text);
        assert_eq!(read.orders.len(), 2, "only acknowledged orders: {read:?}");
        assert_eq!(read.orders[0].last_seen, "processing");
        assert!(!read.orders[0].cancel_sent);
        assert_eq!(read.orders[1].last_seen, "pending");
        assert!(read.orders[1].cancel_sent);
        assert_eq!(read.unreadable.len(), 1);
        assert_eq!(read.unreadable[0].0, 6);
    }

    #[test]
    fn lines_written_by_the_log_read_back_whole() {
        let path = std::env::temp_dir().join(format!("orders-{}.jsonl", Uuid::new_v4()));
        let log = OrdersLog::open(&path).unwrap();
        let id = Uuid::new_v4();
        log.record(id, "lt-a", Event::Acknowledged, Some("pending"));
        log.record(id, "lt-a", Event::Seen, Some("cancelled"));
        let read = read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(read.unreadable.is_empty());
        assert_eq!(read.orders[0].last_seen, "cancelled");
        assert_eq!(read.orders[0].username, "lt-a");
    }
}
