//! Orders from reservations, and the rules for order requests.

use chrono::{DateTime, Utc};
use shop_common::ApiError;
use shop_common::models::catalog::Reservation;
use shop_common::models::order::{
    MAX_ORDER_LINES, Order, OrderCreate, OrderItem, OrderStatus, OrderSummary, StatusChange,
};
use shop_common::validate::Validator;
use uuid::Uuid;

pub const MAX_LINE_QUANTITY: i64 = 10_000;

/// Names the ids of orders made with an idempotency key, so a repeated request finds its order.
const ORDER_ID_NAMESPACE: Uuid = Uuid::from_u128(0x5f0c_6d8e_2b41_4c8a_9a57_3e0f_1d2c_7b90);

pub fn validate(create: &OrderCreate) -> Result<(), ApiError> {
    let mut v = Validator::new();
    v.check(
        (1..=MAX_ORDER_LINES).contains(&create.items.len()),
        "items",
        || format!("must hold between 1 and {MAX_ORDER_LINES} lines"),
    );
    for (index, line) in create.items.iter().enumerate() {
        v.range(
            &format!("items.{index}.quantity"),
            line.quantity,
            1,
            MAX_LINE_QUANTITY,
        );
    }
    v.finish()
}

/// A fresh id, or the one this user's idempotency key always maps to.
pub fn order_id(user_id: Uuid, idempotency_key: Option<&str>) -> Uuid {
    match idempotency_key {
        Some(key) => Uuid::new_v5(&ORDER_ID_NAMESPACE, format!("{user_id}/{key}").as_bytes()),
        None => Uuid::new_v4(),
    }
}

/// The order for a reservation: its lines at the prices the reservation recorded.
pub fn order_from(reservation: &Reservation, user_id: Uuid, now: DateTime<Utc>) -> Order {
    let items: Vec<OrderItem> = reservation
        .items
        .iter()
        .map(|line| OrderItem {
            product_id: line.product_id,
            name: line.name.clone(),
            unit_price_cents: line.unit_price_cents,
            quantity: line.quantity,
            line_total_cents: line.unit_price_cents * line.quantity,
        })
        .collect();
    Order {
        id: reservation.id,
        user_id,
        total_cents: items.iter().map(|i| i.line_total_cents).sum(),
        items,
        status: OrderStatus::Pending,
        created_at: now,
        updated_at: now,
        history: vec![StatusChange {
            status: OrderStatus::Pending,
            at: now,
        }],
    }
}

pub fn summarize(user_id: Uuid, orders: &[Order]) -> OrderSummary {
    let kept = orders.iter().filter(|o| o.status != OrderStatus::Cancelled);
    OrderSummary {
        user_id,
        order_count: kept.clone().count() as i64,
        total_spent_cents: kept.map(|o| o.total_cents).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shop_common::models::catalog::ReservedLine;

    #[test]
    fn the_same_key_always_names_the_same_order() {
        let user = Uuid::new_v4();
        assert_eq!(order_id(user, Some("k")), order_id(user, Some("k")));
        assert_ne!(
            order_id(user, Some("k")),
            order_id(Uuid::new_v4(), Some("k"))
        );
        assert_ne!(order_id(user, None), order_id(user, None));
    }

    #[test]
    fn totals_and_summaries_leave_out_cancelled_orders() {
        let reservation = Reservation {
            id: Uuid::new_v4(),
            items: vec![ReservedLine {
                product_id: Uuid::new_v4(),
                name: "mug".into(),
                unit_price_cents: 1250,
                quantity: 3,
            }],
            created_at: Utc::now(),
            expires_at: Utc::now(),
        };
        let user = Uuid::new_v4();
        let kept = order_from(&reservation, user, Utc::now());
        assert_eq!(kept.total_cents, 3750);
        let mut cancelled = kept.clone();
        cancelled.status = OrderStatus::Cancelled;
        let summary = summarize(user, &[kept, cancelled]);
        assert_eq!((summary.order_count, summary.total_spent_cents), (1, 3750));
    }
}
