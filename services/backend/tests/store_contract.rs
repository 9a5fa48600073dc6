//! One contract, every store: the same tests run against the in-memory store and against a
//! real Cassandra (`cargo xtask cassandra start`). CI sets REQUIRE_CASSANDRA=1, so there the
//! CQL half fails instead of being passed over when the database is missing.

use std::collections::HashSet;
use std::sync::Arc;

use backend::domain::{
    CommitOutcome, Product, ProductCreate, ProductLedger, ProductUpdate, ReservationState,
    ReserveOutcome, StockAudit, StockLine,
};
use backend::store::ProductStore;
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use shop_common::faults::{FaultCreate, Faults};
use shop_common::store_contract;
use shop_common::testing::{StoreContract, TestKeyspace};
use uuid::Uuid;

static CONTRACT: StoreContract<dyn ProductStore> = StoreContract {
    service: "backend",
    keyspace_prefix: "test_backend",
    stores: &backend::store::STORES,
};

fn product(name: &str, price_cents: i64, stock: i64) -> Product {
    ProductCreate {
        name: name.to_owned(),
        description: "for tests".to_owned(),
        category: "test".to_owned(),
        price_cents,
        stock,
    }
    .into_product(Utc::now())
}

/// An expiry no test reaches.
fn later() -> DateTime<Utc> {
    Utc::now() + chrono::Duration::minutes(10)
}

/// An expiry the sweeper has passed: it reads expiries a minute at a time, once the
/// minute is over.
fn expired() -> DateTime<Utc> {
    Utc::now() - chrono::Duration::minutes(3)
}

fn ledger(audit: &StockAudit, product_id: Uuid) -> &ProductLedger {
    audit
        .products
        .iter()
        .find(|books| books.product_id == product_id)
        .expect("every product has books")
}

fn line(product_id: Uuid, quantity: i64) -> StockLine {
    StockLine {
        product_id,
        quantity,
    }
}

async fn stock(store: &dyn ProductStore, id: Uuid) -> i64 {
    store
        .get(id)
        .await
        .unwrap()
        .expect("the product exists")
        .stock
}

store_contract!(CONTRACT, products_round_trip);
async fn products_round_trip(store: Arc<dyn ProductStore>) {
    let mug = product("Mug", 1250, 7);
    store.create(&mug).await.unwrap();
    let read = store.get(mug.id).await.unwrap().unwrap();
    assert_eq!(
        (read.name.as_str(), read.price_cents, read.stock),
        ("Mug", 1250, 7)
    );

    let update = ProductUpdate {
        price_cents: Some(1500),
        ..ProductUpdate::default()
    };
    let updated = store.update(mug.id, &update).await.unwrap().unwrap();
    assert_eq!(
        (updated.name.as_str(), updated.price_cents, updated.stock),
        ("Mug", 1500, 7)
    );
    assert_eq!(store.get(mug.id).await.unwrap().unwrap().price_cents, 1500);

    assert!(store.delete(mug.id).await.unwrap());
    assert!(
        !store.delete(mug.id).await.unwrap(),
        "deleting twice finds nothing"
    );
    assert!(store.get(mug.id).await.unwrap().is_none());
    assert!(store.update(mug.id, &update).await.unwrap().is_none());
}

store_contract!(CONTRACT, lists_every_product_once_across_pages);
async fn lists_every_product_once_across_pages(store: Arc<dyn ProductStore>) {
    let mut created = HashSet::new();
    for index in 0..7 {
        let item = product(&format!("item {index}"), 100, 1);
        store.create(&item).await.unwrap();
        created.insert(item.id);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.list(cursor.as_deref(), 3).await.unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|p| p.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), created.len(), "no product twice");
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), created);
    assert!(store.list(Some("not a cursor!"), 3).await.is_err());
}

store_contract!(CONTRACT, reservations_take_all_lines_or_none);
async fn reservations_take_all_lines_or_none(store: Arc<dyn ProductStore>) {
    let plenty = product("plenty", 300, 10);
    let scarce = product("scarce", 900, 1);
    store.create(&plenty).await.unwrap();
    store.create(&scarce).await.unwrap();

    let too_much = [
        StockLine {
            product_id: plenty.id,
            quantity: 4,
        },
        StockLine {
            product_id: scarce.id,
            quantity: 2,
        },
    ];
    let refused = store
        .reserve(Uuid::new_v4(), &too_much, later())
        .await
        .unwrap();
    assert_eq!(
        refused,
        ReserveOutcome::InsufficientStock {
            product_id: scarce.id,
            available: 1
        }
    );
    assert_eq!(
        stock(store.as_ref(), plenty.id).await,
        10,
        "the first line was put back"
    );

    let unknown = Uuid::new_v4();
    let lines = [
        StockLine {
            product_id: plenty.id,
            quantity: 1,
        },
        StockLine {
            product_id: unknown,
            quantity: 1,
        },
    ];
    assert_eq!(
        store
            .reserve(Uuid::new_v4(), &lines, later())
            .await
            .unwrap(),
        ReserveOutcome::UnknownProduct(unknown)
    );
    assert_eq!(stock(store.as_ref(), plenty.id).await, 10);
}

store_contract!(CONTRACT, reservations_are_idempotent_and_released_once);
async fn reservations_are_idempotent_and_released_once(store: Arc<dyn ProductStore>) {
    let item = product("lamp", 4999, 5);
    store.create(&item).await.unwrap();
    let id = Uuid::new_v4();
    let lines = [StockLine {
        product_id: item.id,
        quantity: 2,
    }];

    let ReserveOutcome::Reserved(first) = store.reserve(id, &lines, later()).await.unwrap() else {
        panic!("the stock is there");
    };
    assert_eq!(first.items[0].unit_price_cents, 4999);
    assert_eq!(first.items[0].name, "lamp");
    let ReserveOutcome::Reserved(again) = store.reserve(id, &lines, later()).await.unwrap() else {
        panic!("a repeated reservation returns the first one");
    };
    assert_eq!(again.items, first.items);
    assert_eq!(stock(store.as_ref(), item.id).await, 3, "stock taken once");

    assert!(store.release(id).await.unwrap());
    assert!(!store.release(id).await.unwrap(), "released once");
    assert_eq!(stock(store.as_ref(), item.id).await, 5);
    assert_eq!(
        store.reserve(id, &lines, later()).await.unwrap(),
        ReserveOutcome::AlreadyReleased
    );
    assert!(
        !store.release(Uuid::new_v4()).await.unwrap(),
        "unknown ids release nothing"
    );
}

store_contract!(CONTRACT, concurrent_reservations_never_oversell);
async fn concurrent_reservations_never_oversell(store: Arc<dyn ProductStore>) {
    let item = product("flash sale", 100, 10);
    store.create(&item).await.unwrap();
    let outcomes = join_all((0..30).map(|_| {
        let store = store.clone();
        async move {
            store
                .reserve(
                    Uuid::new_v4(),
                    &[StockLine {
                        product_id: item.id,
                        quantity: 1,
                    }],
                    later(),
                )
                .await
                .unwrap()
        }
    }))
    .await;
    let reserved = outcomes
        .iter()
        .filter(|o| matches!(o, ReserveOutcome::Reserved(_)))
        .count();
    assert_eq!(reserved, 10);
    assert_eq!(stock(store.as_ref(), item.id).await, 0);
}

store_contract!(CONTRACT, stock_updates_by_admins_do_not_lose_reservations);
async fn stock_updates_by_admins_do_not_lose_reservations(store: Arc<dyn ProductStore>) {
    let item = product("restocked", 100, 5);
    store.create(&item).await.unwrap();
    let reservation = store
        .reserve(
            Uuid::new_v4(),
            &[StockLine {
                product_id: item.id,
                quantity: 2,
            }],
            later(),
        )
        .await
        .unwrap();
    assert!(matches!(reservation, ReserveOutcome::Reserved(_)));
    let renamed = ProductUpdate {
        name: Some("renamed".to_owned()),
        ..ProductUpdate::default()
    };
    let updated = store.update(item.id, &renamed).await.unwrap().unwrap();
    assert_eq!((updated.name.as_str(), updated.stock), ("renamed", 3));
}

store_contract!(
    CONTRACT,
    reservations_that_expire_uncommitted_are_taken_back
);
async fn reservations_that_expire_uncommitted_are_taken_back(store: Arc<dyn ProductStore>) {
    let item = product("expiring", 100, 5);
    store.create(&item).await.unwrap();
    let (forgotten, ordered, young) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    for (id, expires_at) in [
        (forgotten, expired()),
        (ordered, expired()),
        (young, later()),
    ] {
        let outcome = store.reserve(id, &[line(item.id, 1)], expires_at).await;
        assert!(matches!(outcome.unwrap(), ReserveOutcome::Reserved(_)));
    }
    assert!(matches!(
        store.commit(ordered).await.unwrap(),
        CommitOutcome::Committed(_)
    ));
    let before = store.audit(Utc::now()).await.unwrap();
    let overdue: Vec<Uuid> = before.overdue.iter().map(|f| f.reservation_id).collect();
    assert_eq!(
        overdue,
        [forgotten],
        "only the uncommitted expired one is overdue"
    );
    assert!(!before.passed);
    assert_eq!(ledger(&before, item.id).held, 3);
    assert!(ledger(&before, item.id).conserved);

    let reclaimed = store.reclaim_expired(Utc::now()).await.unwrap();
    assert_eq!(reclaimed, [ReservationState::Reserved]);
    assert_eq!(stock(store.as_ref(), item.id).await, 3);
    assert_eq!(
        store.commit(forgotten).await.unwrap(),
        CommitOutcome::Released
    );
    assert_eq!(
        store
            .reserve(forgotten, &[line(item.id, 1)], later())
            .await
            .unwrap(),
        ReserveOutcome::AlreadyReleased,
        "a retry does not take the stock again"
    );
    assert!(store.reclaim_expired(Utc::now()).await.unwrap().is_empty());

    let after = store.audit(Utc::now()).await.unwrap();
    assert!(after.passed, "{after:?}");
    assert_eq!(
        (ledger(&after, item.id).held, after.committed),
        (2, 1),
        "the order's and the young reservation's units are still held"
    );
    assert!(store.release(ordered).await.unwrap());
    assert_eq!(stock(store.as_ref(), item.id).await, 4);
}

store_contract!(
    CONTRACT,
    commits_are_idempotent_and_only_for_live_reservations
);
async fn commits_are_idempotent_and_only_for_live_reservations(store: Arc<dyn ProductStore>) {
    let item = product("committed", 100, 5);
    store.create(&item).await.unwrap();
    let id = Uuid::new_v4();
    let ReserveOutcome::Reserved(reserved) = store
        .reserve(id, &[line(item.id, 2)], later())
        .await
        .unwrap()
    else {
        panic!("the stock is there");
    };
    for _ in 0..2 {
        let CommitOutcome::Committed(committed) = store.commit(id).await.unwrap() else {
            panic!("a live reservation commits, and again");
        };
        assert_eq!(committed.items, reserved.items);
    }
    assert_eq!(
        store.commit(Uuid::new_v4()).await.unwrap(),
        CommitOutcome::Unknown
    );
    assert!(store.release(id).await.unwrap());
    assert_eq!(store.commit(id).await.unwrap(), CommitOutcome::Released);
    assert_eq!(stock(store.as_ref(), item.id).await, 5);
}

store_contract!(CONTRACT, the_audit_follows_restocks);
async fn the_audit_follows_restocks(store: Arc<dyn ProductStore>) {
    let item = product("restocked books", 100, 5);
    store.create(&item).await.unwrap();
    store
        .reserve(Uuid::new_v4(), &[line(item.id, 2)], later())
        .await
        .unwrap();
    let restock = ProductUpdate {
        stock: Some(10),
        ..ProductUpdate::default()
    };
    store.update(item.id, &restock).await.unwrap();
    let audit = store.audit(Utc::now()).await.unwrap();
    let books = ledger(&audit, item.id);
    assert_eq!(
        (books.stock, books.held, books.received),
        (10, 2, Some(12)),
        "a restock from 3 to 10 received 7 more"
    );
    assert!(audit.passed);
}

// CQL-only behaviour: what a real database adds.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_migrations_are_idempotent_and_data_survives_a_restart() {
    let keyspace = CONTRACT.keyspace();
    let Some(first) = CONTRACT.open(&keyspace).await else {
        return;
    };
    let kept = product("kept", 100, 3);
    first.create(&kept).await.unwrap();
    drop(first);
    let restarted = CONTRACT
        .open(&keyspace)
        .await
        .expect("Cassandra answered a moment ago");
    assert_eq!(restarted.get(kept.id).await.unwrap().unwrap().name, "kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_two_backend_instances_sharing_one_database_never_oversell() {
    let keyspace = CONTRACT.keyspace();
    let Some(one) = CONTRACT.open(&keyspace).await else {
        return;
    };
    let other = CONTRACT
        .open(&keyspace)
        .await
        .expect("Cassandra answered a moment ago");
    let item = product("contested", 100, 12);
    one.create(&item).await.unwrap();
    let instances = [one.clone(), other];
    let outcomes = join_all((0..40).map(|index| {
        let store = instances[index % 2].clone();
        async move {
            store
                .reserve(
                    Uuid::new_v4(),
                    &[StockLine {
                        product_id: item.id,
                        quantity: 1,
                    }],
                    later(),
                )
                .await
                .unwrap()
        }
    }))
    .await;
    let reserved = outcomes
        .iter()
        .filter(|o| matches!(o, ReserveOutcome::Reserved(_)))
        .count();
    assert_eq!(reserved, 12);
    assert_eq!(stock(one.as_ref(), item.id).await, 0);
}

/// The catalogue's pages read one replica. A node that was down when a product was created
/// and then received a later update of it (a restock's compare-and-set reaches every
/// replica) holds only the updated columns until hints or repair bring the rest: the page
/// leaves such rows out instead of failing, and fills itself up from the rows after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_products_a_replica_holds_only_in_part_are_left_out_of_full_catalogue_pages() {
    let keyspace = CONTRACT.keyspace();
    let Some(store) = CONTRACT.open(&keyspace).await else {
        return;
    };
    let mut whole = HashSet::new();
    for index in 0..5 {
        let item = product(&format!("whole {index}"), 100, 3);
        store.create(&item).await.unwrap();
        whole.insert(item.id);
    }
    // Three, so that however the rows fall in token order, a page without the filling-up
    // would come out short before the last.
    let session = keyspace.raw_session().await;
    for _ in 0..3 {
        session
            .query_unpaged(
                format!(
                    "UPDATE {}.products SET stock = 4, updated_at = toTimestamp(now()) WHERE id = ?",
                    keyspace.name()
                ),
                (Uuid::new_v4(),),
            )
            .await
            .unwrap();
    }
    let mut listed = HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store
            .list(cursor.as_deref(), 2)
            .await
            .expect("a page despite the partial row");
        listed.extend(page.items.iter().map(|p| p.id));
        match page.next_cursor {
            Some(next) => {
                assert_eq!(page.items.len(), 2, "only the last page is short");
                cursor = Some(next);
            }
            None => break,
        }
    }
    assert_eq!(listed, whole);
}

/// A CQL store whose statements suffer the faults added to the returned registry, in a
/// keyspace that lives as long as the returned guard.
async fn cql_store_with_faults() -> Option<(Arc<dyn ProductStore>, Faults, TestKeyspace)> {
    let faults = Faults::default();
    let keyspace = CONTRACT.keyspace();
    let store = CONTRACT.open_with_faults(&keyspace, faults.clone()).await?;
    Some((store, faults, keyspace))
}

fn database_fault(statement: &str, fault: serde_json::Value) -> FaultCreate {
    let mut body =
        serde_json::json!({"kind": "database", "statement": statement, "ttl_seconds": 60});
    body.as_object_mut()
        .unwrap()
        .extend(fault.as_object().unwrap().clone());
    serde_json::from_value(body).expect("a valid fault")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_a_stock_move_whose_answer_was_lost_is_applied_once() {
    let Some((store, faults, _keyspace)) = cql_store_with_faults().await else {
        return;
    };
    let item = product("lost answers", 100, 5);
    store.create(&item).await.unwrap();
    // Every stock move applies, then reports a timeout.
    let lost = serde_json::json!({"fail": true, "applied": true});
    let fault = faults.add(&database_fault("move_stock", lost)).unwrap();
    let id = Uuid::new_v4();
    let outcome = store.reserve(id, &[line(item.id, 2)], later()).await;
    assert!(matches!(outcome.unwrap(), ReserveOutcome::Reserved(_)));
    assert_eq!(stock(store.as_ref(), item.id).await, 3, "taken once");
    assert!(store.release(id).await.unwrap());
    assert_eq!(stock(store.as_ref(), item.id).await, 5, "returned once");
    faults.remove(fault.id);
    assert!(store.audit(Utc::now()).await.unwrap().passed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_a_reservation_cut_off_half_way_is_finished_by_a_retry_or_taken_back() {
    let Some((store, faults, _keyspace)) = cql_store_with_faults().await else {
        return;
    };
    let (a, b) = (product("cut a", 100, 5), product("cut b", 100, 5));
    store.create(&a).await.unwrap();
    store.create(&b).await.unwrap();
    let lines = [line(a.id, 1), line(b.id, 1)];
    // Its lines are taken, then the caller gives up while it is being marked reserved.
    let slow = serde_json::json!({"delay_ms": 5000});
    let fault = faults.add(&database_fault("set_reserved", slow)).unwrap();
    let (retried, abandoned) = (Uuid::new_v4(), Uuid::new_v4());
    for (id, expires_at) in [(retried, later()), (abandoned, expired())] {
        let cut = tokio::time::timeout(
            std::time::Duration::from_millis(2000),
            store.reserve(id, &lines, expires_at),
        )
        .await;
        assert!(cut.is_err(), "the call was cut off");
    }
    faults.remove(fault.id);
    assert_eq!(
        stock(store.as_ref(), a.id).await,
        3,
        "both took their lines"
    );
    let midway = store
        .audit(Utc::now() - chrono::Duration::minutes(10))
        .await
        .unwrap();
    assert_eq!(midway.in_flight, 2);
    assert!(
        midway.passed,
        "half-made reservations hold what they took: {midway:?}"
    );

    let ReserveOutcome::Reserved(finished) = store.reserve(retried, &lines, later()).await.unwrap()
    else {
        panic!("a retry finishes the reservation instead of answering 'being made' for ever");
    };
    assert_eq!(finished.items.len(), 2);
    assert_eq!(
        stock(store.as_ref(), b.id).await,
        3,
        "the retry took nothing more"
    );

    let reclaimed = store.reclaim_expired(Utc::now()).await.unwrap();
    assert_eq!(reclaimed, [ReservationState::Pending]);
    assert_eq!(stock(store.as_ref(), a.id).await, 4);
    assert_eq!(stock(store.as_ref(), b.id).await, 4);
    assert!(store.audit(Utc::now()).await.unwrap().passed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_a_release_cut_off_half_way_is_finished_by_the_next() {
    let Some((store, faults, _keyspace)) = cql_store_with_faults().await else {
        return;
    };
    let (a, b) = (product("release a", 100, 5), product("release b", 100, 5));
    store.create(&a).await.unwrap();
    store.create(&b).await.unwrap();
    let id = Uuid::new_v4();
    let outcome = store
        .reserve(id, &[line(a.id, 2), line(b.id, 2)], later())
        .await;
    assert!(matches!(outcome.unwrap(), ReserveOutcome::Reserved(_)));
    assert!(matches!(
        store.commit(id).await.unwrap(),
        CommitOutcome::Committed(_)
    ));
    // The release starts (its state changes), then its caller hears a timeout.
    let lost = serde_json::json!({"fail": true, "applied": true});
    let fault = faults
        .add(&database_fault("set_reservation_state", lost))
        .unwrap();
    assert!(store.release(id).await.is_err());
    faults.remove(fault.id);

    assert!(store.release(id).await.unwrap(), "the retry finishes it");
    assert_eq!(
        (
            stock(store.as_ref(), a.id).await,
            stock(store.as_ref(), b.id).await
        ),
        (5, 5)
    );
    assert!(
        !store.release(id).await.unwrap(),
        "and nothing is returned twice"
    );
    assert_eq!(stock(store.as_ref(), a.id).await, 5);
    assert!(store.audit(Utc::now()).await.unwrap().passed);
}
