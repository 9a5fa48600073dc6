//! One contract, every store: the same tests run against the in-memory store and against a
//! real Cassandra (`cargo xtask cassandra start`). CI sets REQUIRE_CASSANDRA=1, so there the
//! CQL half fails instead of being passed over when the database is missing.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures_util::future::join_all;
use order_service::store::{CreateOutcome, OrderStore, TransitionOutcome};
use shop_common::faults::{FaultCreate, Faults};
use shop_common::models::order::{Order, OrderItem, OrderStatus, StatusChange};
use shop_common::store_contract;
use shop_common::testing::StoreContract;
use uuid::Uuid;

use OrderStatus::*;

static CONTRACT: StoreContract<dyn OrderStore> = StoreContract {
    service: "order-service",
    keyspace_prefix: "test_orders",
    stores: &order_service::store::STORES,
};

/// Now, to the millisecond: the precision a CQL timestamp keeps.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap()
}

/// A pending order of `user`, placed at `created_at`.
fn order(user_id: Uuid, created_at: DateTime<Utc>) -> Order {
    let items = vec![OrderItem {
        product_id: Uuid::new_v4(),
        name: "mug".to_owned(),
        unit_price_cents: 1250,
        quantity: 2,
        line_total_cents: 2500,
    }];
    Order {
        id: Uuid::new_v4(),
        user_id,
        total_cents: 2500,
        items,
        status: Pending,
        created_at,
        updated_at: created_at,
        history: vec![StatusChange {
            status: Pending,
            at: created_at,
        }],
    }
}

async fn placed(store: &dyn OrderStore, user_id: Uuid, created_at: DateTime<Utc>) -> Order {
    let order = order(user_id, created_at);
    assert_eq!(store.create(&order).await.unwrap(), CreateOutcome::Created);
    order
}

async fn changed(
    store: &dyn OrderStore,
    id: Uuid,
    from: OrderStatus,
    to: OrderStatus,
    at: DateTime<Utc>,
) -> Order {
    match store.transition(id, from, to, at).await.unwrap() {
        TransitionOutcome::Changed(order) => order,
        other => panic!(
            "{} -> {} did not apply: {other:?}",
            from.as_str(),
            to.as_str()
        ),
    }
}

fn ids(orders: &[Order]) -> Vec<Uuid> {
    orders.iter().map(|o| o.id).collect()
}

store_contract!(CONTRACT, orders_round_trip);
async fn orders_round_trip(store: Arc<dyn OrderStore>) {
    let order = placed(store.as_ref(), Uuid::new_v4(), now()).await;
    assert_eq!(store.get(order.id).await.unwrap(), Some(order));
    assert_eq!(store.get(Uuid::new_v4()).await.unwrap(), None);
}

store_contract!(CONTRACT, a_repeated_id_returns_the_first_order);
async fn a_repeated_id_returns_the_first_order(store: Arc<dyn OrderStore>) {
    let user = Uuid::new_v4();
    let first = placed(store.as_ref(), user, now() - Duration::seconds(5)).await;
    let mut retry = order(user, now());
    retry.id = first.id;
    retry.total_cents = 1;
    assert_eq!(
        store.create(&retry).await.unwrap(),
        CreateOutcome::Exists(first.clone())
    );
    assert_eq!(store.get(first.id).await.unwrap(), Some(first.clone()));
    assert_eq!(
        ids(&store.list_for_user(user, 10).await.unwrap()),
        [first.id],
        "listed once, as first placed"
    );
}

store_contract!(CONTRACT, the_same_order_again_is_reported_created);
async fn the_same_order_again_is_reported_created(store: Arc<dyn OrderStore>) {
    let user = Uuid::new_v4();
    let order = placed(store.as_ref(), user, now()).await;
    assert_eq!(
        store.create(&order).await.unwrap(),
        CreateOutcome::Created,
        "a repeat of this very write (the driver's, on another coordinator) finds itself"
    );
    assert_eq!(store.get(order.id).await.unwrap(), Some(order.clone()));
    assert_eq!(
        ids(&store.list_for_user(user, 10).await.unwrap()),
        [order.id]
    );
}

store_contract!(CONTRACT, lists_a_users_orders_newest_first);
async fn lists_a_users_orders_newest_first(store: Arc<dyn OrderStore>) {
    let user = Uuid::new_v4();
    let start = now();
    let mut mine = Vec::new();
    for minutes in [3, 1, 2] {
        mine.push(placed(store.as_ref(), user, start - Duration::minutes(minutes)).await);
    }
    let other = placed(store.as_ref(), Uuid::new_v4(), start).await;

    let listed = store.list_for_user(user, 10).await.unwrap();
    assert_eq!(ids(&listed), [mine[1].id, mine[2].id, mine[0].id]);
    assert_eq!(listed[0], mine[1]);
    assert_eq!(
        ids(&store.list_for_user(user, 2).await.unwrap()),
        [mine[1].id, mine[2].id]
    );
    assert!(
        store
            .list_for_user(Uuid::new_v4(), 10)
            .await
            .unwrap()
            .is_empty()
    );

    let all = store.list_all(100).await.unwrap();
    assert_eq!(
        ids(&all),
        [other.id, mine[1].id, mine[2].id, mine[0].id],
        "everyone's, newest first"
    );
    assert_eq!(store.list_all(3).await.unwrap().len(), 3);
}

store_contract!(CONTRACT, transitions_are_compare_and_set);
async fn transitions_are_compare_and_set(store: Arc<dyn OrderStore>) {
    let placed_at = now() - Duration::minutes(1);
    let order = placed(store.as_ref(), Uuid::new_v4(), placed_at).await;
    let at = now();
    let processing = changed(store.as_ref(), order.id, Pending, Processing, at).await;
    assert_eq!((processing.status, processing.updated_at), (Processing, at));
    assert_eq!(
        processing.history,
        [
            StatusChange {
                status: Pending,
                at: placed_at
            },
            StatusChange {
                status: Processing,
                at
            }
        ]
    );
    assert_eq!(store.get(order.id).await.unwrap(), Some(processing.clone()));

    match store
        .transition(order.id, Pending, Cancelled, now())
        .await
        .unwrap()
    {
        TransitionOutcome::Conflict(now) => assert_eq!(now, processing),
        other => panic!("a stale status must conflict: {other:?}"),
    }
    assert_eq!(
        store
            .transition(Uuid::new_v4(), Pending, Processing, now())
            .await
            .unwrap(),
        TransitionOutcome::NotFound
    );
    assert_eq!(store.get(order.id).await.unwrap(), Some(processing));
}

store_contract!(
    CONTRACT,
    concurrent_transitions_from_one_status_change_it_once
);
async fn concurrent_transitions_from_one_status_change_it_once(store: Arc<dyn OrderStore>) {
    let order = placed(store.as_ref(), Uuid::new_v4(), now()).await;
    let outcomes = join_all((0..20).map(|index| {
        let store = store.clone();
        let to = if index % 2 == 0 {
            Cancelled
        } else {
            Processing
        };
        async move {
            store
                .transition(order.id, Pending, to, now())
                .await
                .unwrap()
        }
    }))
    .await;
    let winners: Vec<&Order> = outcomes
        .iter()
        .filter_map(|outcome| match outcome {
            TransitionOutcome::Changed(order) => Some(order),
            _ => None,
        })
        .collect();
    assert_eq!(winners.len(), 1, "exactly one change wins: {outcomes:?}");
    let winner = winners[0].clone();
    for outcome in &outcomes {
        if let TransitionOutcome::Conflict(now) = outcome {
            assert_eq!(now.status, winner.status);
        }
    }
    let stored = store.get(order.id).await.unwrap().unwrap();
    assert_eq!(stored, winner);
    assert_eq!(stored.history.len(), 2, "one history entry per change");
}

store_contract!(
    CONTRACT,
    due_orders_respect_the_cutoff_and_leave_final_ones_out
);
async fn due_orders_respect_the_cutoff_and_leave_final_ones_out(store: Arc<dyn OrderStore>) {
    let user = Uuid::new_v4();
    let long_ago = now() - Duration::minutes(10);
    let cutoff = now() - Duration::minutes(1);
    let old = placed(store.as_ref(), user, long_ago).await;
    let fresh = placed(store.as_ref(), user, now()).await;
    let delivered = placed(store.as_ref(), user, long_ago).await;
    for (from, to) in [
        (Pending, Processing),
        (Processing, Shipped),
        (Shipped, Delivered),
    ] {
        changed(store.as_ref(), delivered.id, from, to, long_ago).await;
    }
    let cancelled = placed(store.as_ref(), user, long_ago).await;
    changed(store.as_ref(), cancelled.id, Pending, Cancelled, long_ago).await;
    let shipped = placed(store.as_ref(), user, long_ago).await;
    changed(store.as_ref(), shipped.id, Pending, Processing, long_ago).await;
    let shipped = changed(store.as_ref(), shipped.id, Processing, Shipped, long_ago).await;

    let mut due = ids(&store.due_for_processing(cutoff, 100).await.unwrap());
    due.sort();
    let mut expected = vec![old.id, shipped.id];
    expected.sort();
    assert_eq!(due, expected);
    assert_eq!(store.due_for_processing(cutoff, 1).await.unwrap().len(), 1);
    let found = store.due_for_processing(cutoff, 100).await.unwrap();
    assert!(found.contains(&shipped), "due orders come whole");

    // Moved on just now: not due until its next step.
    changed(store.as_ref(), old.id, Pending, Processing, now()).await;
    assert_eq!(
        ids(&store.due_for_processing(cutoff, 100).await.unwrap()),
        [shipped.id]
    );
    assert_eq!(
        store
            .due_for_processing(now() + Duration::seconds(1), 100)
            .await
            .unwrap()
            .len(),
        3,
        "at a later cutoff every active order is due: {:?}",
        fresh.id
    );
}

store_contract!(CONTRACT, backlog_counts_due_orders_and_finds_the_oldest);
async fn backlog_counts_due_orders_and_finds_the_oldest(store: Arc<dyn OrderStore>) {
    let user = Uuid::new_v4();
    let oldest = now() - Duration::minutes(10);
    assert_eq!(store.backlog(now()).await.unwrap(), (0, None));
    placed(store.as_ref(), user, oldest).await;
    placed(store.as_ref(), user, now() - Duration::minutes(5)).await;
    placed(store.as_ref(), user, now()).await;
    let done = placed(store.as_ref(), user, oldest - Duration::minutes(1)).await;
    changed(store.as_ref(), done.id, Pending, Cancelled, oldest).await;

    let cutoff = now() - Duration::minutes(1);
    assert_eq!(store.backlog(cutoff).await.unwrap(), (2, Some(oldest)));
}

store_contract!(CONTRACT, status_counts_count_every_status);
async fn status_counts_count_every_status(store: Arc<dyn OrderStore>) {
    let user = Uuid::new_v4();
    let mut orders = Vec::new();
    for _ in 0..5 {
        orders.push(placed(store.as_ref(), user, now()).await);
    }
    changed(store.as_ref(), orders[1].id, Pending, Processing, now()).await;
    for (from, to) in [
        (Pending, Processing),
        (Processing, Shipped),
        (Shipped, Delivered),
    ] {
        changed(store.as_ref(), orders[2].id, from, to, now()).await;
    }
    changed(store.as_ref(), orders[3].id, Pending, Cancelled, now()).await;
    changed(store.as_ref(), orders[4].id, Pending, Shipped, now()).await;
    // Losing a race changes no count.
    let _ = store
        .transition(orders[3].id, Pending, Cancelled, now())
        .await
        .unwrap();

    let counts = store.status_counts().await.unwrap();
    assert_eq!(
        counts,
        [
            (Pending, 1),
            (Processing, 1),
            (Shipped, 1),
            (Delivered, 1),
            (Cancelled, 1)
        ]
    );
}

store_contract!(CONTRACT, cancellations_await_their_stock_release);
async fn cancellations_await_their_stock_release(store: Arc<dyn OrderStore>) {
    let user = Uuid::new_v4();
    let cancelled = placed(store.as_ref(), user, now()).await;
    let advanced = placed(store.as_ref(), user, now()).await;
    assert!(store.unreleased_cancellations(10).await.unwrap().is_empty());

    changed(store.as_ref(), cancelled.id, Pending, Cancelled, now()).await;
    changed(store.as_ref(), advanced.id, Pending, Processing, now()).await;
    // A cancellation that lost its race has no stock to return.
    let lost = store
        .transition(advanced.id, Pending, Cancelled, now())
        .await
        .unwrap();
    assert!(matches!(lost, TransitionOutcome::Conflict(_)));

    assert_eq!(
        store.unreleased_cancellations(10).await.unwrap(),
        [cancelled.id]
    );
    store.mark_stock_released(cancelled.id).await.unwrap();
    assert!(store.unreleased_cancellations(10).await.unwrap().is_empty());
    store.mark_stock_released(cancelled.id).await.unwrap();
    store.mark_stock_released(Uuid::new_v4()).await.unwrap();
    assert!(store.unreleased_cancellations(10).await.unwrap().is_empty());
}

// CQL-only behaviour: what a real database adds.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_migrations_are_idempotent_and_data_survives_a_restart() {
    let keyspace = CONTRACT.keyspace();
    let Some(first) = CONTRACT.open(&keyspace).await else {
        return;
    };
    let user = Uuid::new_v4();
    let long_ago = now() - Duration::minutes(10);
    let kept = placed(first.as_ref(), user, long_ago).await;
    let kept = changed(first.as_ref(), kept.id, Pending, Processing, long_ago).await;
    let cancelled = placed(first.as_ref(), user, now()).await;
    changed(first.as_ref(), cancelled.id, Pending, Cancelled, now()).await;
    drop(first);

    let restarted = CONTRACT
        .open(&keyspace)
        .await
        .expect("Cassandra answered a moment ago");
    assert_eq!(restarted.get(kept.id).await.unwrap(), Some(kept.clone()));
    assert_eq!(
        ids(&restarted.list_for_user(user, 10).await.unwrap()),
        [cancelled.id, kept.id]
    );
    assert_eq!(
        ids(&restarted
            .due_for_processing(now() - Duration::minutes(1), 10)
            .await
            .unwrap()),
        [kept.id]
    );
    assert_eq!(
        restarted.unreleased_cancellations(10).await.unwrap(),
        [cancelled.id]
    );
    assert_eq!(
        restarted.status_counts().await.unwrap(),
        [
            (Pending, 0),
            (Processing, 1),
            (Shipped, 0),
            (Delivered, 0),
            (Cancelled, 1)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_two_instances_sharing_one_database_change_an_order_once() {
    let keyspace = CONTRACT.keyspace();
    let Some(one) = CONTRACT.open(&keyspace).await else {
        return;
    };
    let other = CONTRACT
        .open(&keyspace)
        .await
        .expect("Cassandra answered a moment ago");
    let order = placed(one.as_ref(), Uuid::new_v4(), now()).await;
    let mut retry = order.clone();
    retry.created_at = now() + Duration::seconds(1);
    assert_eq!(
        other.create(&retry).await.unwrap(),
        CreateOutcome::Exists(order.clone()),
        "idempotent creation holds across instances"
    );
    let instances = [one.clone(), other];
    let outcomes = join_all((0..20).map(|index| {
        let store = instances[index % 2].clone();
        async move {
            store
                .transition(order.id, Pending, Cancelled, now())
                .await
                .unwrap()
        }
    }))
    .await;
    let won = outcomes
        .iter()
        .filter(|o| matches!(o, TransitionOutcome::Changed(_)))
        .count();
    assert_eq!(won, 1);
    assert_eq!(one.unreleased_cancellations(10).await.unwrap(), [order.id]);
}

/// A status change that applied, and whose answer was lost (its coordinator died, or it
/// outran its deadline), is found when the order is read again: reported as made, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_a_status_change_whose_answer_was_lost_is_reported_made_once() {
    let faults = Faults::default();
    let keyspace = CONTRACT.keyspace();
    let Some(store) = CONTRACT.open_with_faults(&keyspace, faults.clone()).await else {
        return;
    };
    let order = placed(store.as_ref(), Uuid::new_v4(), now()).await;
    let lost: FaultCreate = serde_json::from_value(serde_json::json!({
        "kind": "database",
        "statement": "transition_order",
        "fail": true,
        "applied": true,
        "ttl_seconds": 60,
    }))
    .expect("a valid fault");
    faults.add(&lost).unwrap();
    let made = changed(store.as_ref(), order.id, Pending, Cancelled, now()).await;
    let stored = store.get(order.id).await.unwrap().unwrap();
    assert_eq!(stored, made);
    assert_eq!(
        stored.history.iter().map(|c| c.status).collect::<Vec<_>>(),
        [Pending, Cancelled],
        "one history entry for the one change"
    );
    assert_eq!(
        store.unreleased_cancellations(10).await.unwrap(),
        [order.id]
    );
}
