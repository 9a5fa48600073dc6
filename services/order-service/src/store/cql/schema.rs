//! The order store's tables and every statement it runs.

use shop_common::cql::{Migration, Schema};

const ORDER_COLUMNS: &str =
    "id, user_id, items, total_cents, status, created_at, updated_at, history";

pub static SCHEMA: Schema = Schema {
    migrations: &[
        Migration {
            version: "0001_orders",
            cql: include_str!("../../../migrations/0001_orders.cql"),
        },
        Migration {
            version: "0002_short_tombstone_grace",
            cql: include_str!("../../../migrations/0002_short_tombstone_grace.cql"),
        },
    ],
    statements: &[
        (
            "select_order",
            const_format::concatcp!("SELECT ", ORDER_COLUMNS, " FROM orders WHERE id = ?"),
        ),
        // The admin list: a token-ordered scan cut at LIMIT, sorted newest first afterwards.
        (
            "list_orders",
            const_format::concatcp!("SELECT ", ORDER_COLUMNS, " FROM orders LIMIT ?"),
        ),
        (
            "insert_order",
            const_format::concatcp!(
                "INSERT INTO orders (",
                ORDER_COLUMNS,
                ") VALUES (?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS"
            ),
        ),
        // Unlogged: both entries are skipped by readers until the order exists, and the
        // write is repeated whole by the driver or the checkout's retry, so the batch log's
        // atomicity buys nothing. It would cost a stall: a logged batch first writes the
        // log to two other nodes and waits for both, so with three nodes, one dead and not
        // yet convicted by the failure detector (about 20 s), every such batch timed out.
        (
            "index_new_active_order",
            "BEGIN UNLOGGED BATCH \
             INSERT INTO orders_by_user (user_id, created_at, order_id) VALUES (?, ?, ?); \
             INSERT INTO active_orders (bucket, order_id, status, updated_at) VALUES (?, ?, ?, ?); \
             APPLY BATCH",
        ),
        (
            "index_new_final_order",
            "INSERT INTO orders_by_user (user_id, created_at, order_id) VALUES (?, ?, ?)",
        ),
        (
            "select_user_orders",
            "SELECT created_at, order_id FROM orders_by_user WHERE user_id = ? LIMIT ?",
        ),
        (
            "delete_user_order",
            "DELETE FROM orders_by_user WHERE user_id = ? AND created_at = ? AND order_id = ?",
        ),
        (
            "transition_order",
            "UPDATE orders SET status = ?, updated_at = ?, history = history + ? WHERE id = ? IF status = ? AND updated_at = ?",
        ),
        (
            "upsert_active_order",
            "INSERT INTO active_orders (bucket, order_id, status, updated_at) VALUES (?, ?, ?, ?)",
        ),
        (
            "delete_active_order",
            "DELETE FROM active_orders WHERE bucket = ? AND order_id = ?",
        ),
        (
            "select_active_orders",
            "SELECT order_id, status, updated_at FROM active_orders WHERE bucket = ?",
        ),
        (
            "insert_unreleased",
            "INSERT INTO unreleased_cancellations (bucket, order_id) VALUES (?, ?)",
        ),
        (
            "select_unreleased",
            "SELECT order_id FROM unreleased_cancellations WHERE bucket = ?",
        ),
        (
            "delete_unreleased",
            "DELETE FROM unreleased_cancellations WHERE bucket = ? AND order_id = ?",
        ),
        (
            "add_status_count",
            "UPDATE order_status_counts SET orders = orders + ? WHERE status = ?",
        ),
        // At most one row per final status.
        (
            "select_status_counts",
            "SELECT status, orders FROM order_status_counts",
        ),
    ],
    // A repeated insert finds its own order, field for field, and reports it created. A
    // repeated transition would see its own status as a race lost.
    retry_safe_conditionals: &["insert_order"],
    browse_reads: &[],
};
