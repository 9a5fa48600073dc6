//! One contract, every store: the same tests run against the in-memory store and against a
//! real Cassandra (`cargo xtask cassandra start`). CI sets REQUIRE_CASSANDRA=1, so there the
//! CQL half fails instead of being passed over when the database is missing.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use clap::Parser;
use futures_util::future::join_all;
use shop_common::auth::Role;
use shop_common::models::order::{OrderEvent, OrderStatus};
use shop_common::store_contract;
use shop_common::testing::{StoreContract, contact_point};
use user_service::domain::{StoredUser, User, UserChange};
use user_service::store::{InsertOutcome, ORDER_EVENTS_KEPT, UserStore};
use uuid::Uuid;

static CONTRACT: StoreContract<dyn UserStore> = StoreContract {
    service: "user-service",
    keyspace_prefix: "test_users",
    stores: &user_service::store::STORES,
};

/// Now, to the millisecond: what a CQL timestamp keeps.
fn now_ms() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("a valid time")
}

fn user(username: &str) -> StoredUser {
    StoredUser {
        user: User {
            id: Uuid::new_v4(),
            username: username.to_owned(),
            email: format!("{username}@example.com"),
            full_name: Some(format!("{username} for tests")),
            role: Role::User,
            created_at: now_ms(),
        },
        password_hash: format!("hash of {username}'s password"),
    }
}

fn unique_username(prefix: &str) -> String {
    format!("{prefix}-{}", &Uuid::new_v4().simple().to_string()[..8])
}

fn event(user_id: Uuid, status: OrderStatus, occurred_at: DateTime<Utc>) -> OrderEvent {
    OrderEvent {
        order_id: Uuid::new_v4(),
        user_id,
        status,
        total_cents: 1999,
        occurred_at,
    }
}

fn assert_same_user(found: &StoredUser, expected: &StoredUser) {
    assert_eq!(found.user, expected.user);
    assert_eq!(found.password_hash, expected.password_hash);
}

store_contract!(CONTRACT, users_round_trip_by_id_and_username);
async fn users_round_trip_by_id_and_username(store: Arc<dyn UserStore>) {
    let alice = user("alice");
    assert_eq!(store.insert(&alice).await.unwrap(), InsertOutcome::Inserted);
    assert_same_user(&store.by_id(alice.user.id).await.unwrap().unwrap(), &alice);
    assert_same_user(&store.by_username("alice").await.unwrap().unwrap(), &alice);

    let mut admin = user("root");
    admin.user.role = Role::Admin;
    admin.user.full_name = None;
    assert_eq!(store.insert(&admin).await.unwrap(), InsertOutcome::Inserted);
    let found = store.by_username("root").await.unwrap().unwrap();
    assert_same_user(&found, &admin);
    assert_eq!((found.user.role, found.user.full_name), (Role::Admin, None));
}

store_contract!(CONTRACT, usernames_are_unique);
async fn usernames_are_unique(store: Arc<dyn UserStore>) {
    let first = user("bob");
    let second = user("bob");
    assert_eq!(store.insert(&first).await.unwrap(), InsertOutcome::Inserted);
    assert_eq!(
        store.insert(&second).await.unwrap(),
        InsertOutcome::UsernameTaken
    );
    assert_same_user(&store.by_username("bob").await.unwrap().unwrap(), &first);
    assert!(
        store.by_id(second.user.id).await.unwrap().is_none(),
        "the refused user is not stored"
    );
}

store_contract!(
    CONTRACT,
    concurrent_registrations_of_one_username_insert_exactly_one
);
async fn concurrent_registrations_of_one_username_insert_exactly_one(store: Arc<dyn UserStore>) {
    let candidates: Vec<StoredUser> = (0..24).map(|_| user("popular")).collect();
    let outcomes = join_all(candidates.iter().cloned().map(|candidate| {
        let store = store.clone();
        tokio::spawn(async move { store.insert(&candidate).await.unwrap() })
    }))
    .await;
    let inserted: Vec<&StoredUser> = outcomes
        .into_iter()
        .zip(&candidates)
        .filter(|(outcome, _)| *outcome.as_ref().unwrap() == InsertOutcome::Inserted)
        .map(|(_, candidate)| candidate)
        .collect();
    assert_eq!(inserted.len(), 1, "exactly one registration wins");
    let owner = store.by_username("popular").await.unwrap().unwrap();
    assert_same_user(&owner, inserted[0]);
    for candidate in &candidates {
        let stored = store.by_id(candidate.user.id).await.unwrap();
        assert_eq!(stored.is_some(), candidate.user.id == owner.user.id);
    }
}

store_contract!(CONTRACT, updates_change_only_the_given_fields);
async fn updates_change_only_the_given_fields(store: Arc<dyn UserStore>) {
    let carol = user("carol");
    store.insert(&carol).await.unwrap();

    let email = UserChange {
        email: Some("carol@elsewhere.example".to_owned()),
        ..UserChange::default()
    };
    let updated = store.update(carol.user.id, &email).await.unwrap().unwrap();
    assert_eq!(updated.user.email, "carol@elsewhere.example");
    assert_eq!(updated.user.full_name, carol.user.full_name);
    assert_eq!(updated.password_hash, carol.password_hash);

    let rest = UserChange {
        email: None,
        full_name: Some("Carol C.".to_owned()),
        password_hash: Some("a new hash".to_owned()),
    };
    let updated = store.update(carol.user.id, &rest).await.unwrap().unwrap();
    let mut expected = carol.clone();
    expected.user.email = "carol@elsewhere.example".to_owned();
    expected.user.full_name = Some("Carol C.".to_owned());
    expected.password_hash = "a new hash".to_owned();
    assert_same_user(&updated, &expected);
    assert_same_user(
        &store.by_id(carol.user.id).await.unwrap().unwrap(),
        &expected,
    );
    assert_same_user(
        &store.by_username("carol").await.unwrap().unwrap(),
        &expected,
    );
}

store_contract!(CONTRACT, order_events_come_newest_first_and_capped);
async fn order_events_come_newest_first_and_capped(store: Arc<dyn UserStore>) {
    let user_id = Uuid::new_v4();
    let other_user = Uuid::new_v4();
    let start = now_ms() - TimeDelta::hours(1);
    let recorded: Vec<OrderEvent> = (0..ORDER_EVENTS_KEPT + 7)
        .map(|index| {
            let status = OrderStatus::ALL[index % OrderStatus::ALL.len()];
            event(user_id, status, start + TimeDelta::seconds(index as i64))
        })
        .collect();
    for event in &recorded {
        store.record_order_event(event).await.unwrap();
    }
    store
        .record_order_event(&event(other_user, OrderStatus::Pending, now_ms()))
        .await
        .unwrap();

    let found = store.order_events(user_id).await.unwrap();
    let expected: Vec<OrderEvent> = recorded
        .iter()
        .rev()
        .take(ORDER_EVENTS_KEPT)
        .cloned()
        .collect();
    assert_eq!(
        found, expected,
        "the latest {ORDER_EVENTS_KEPT}, newest first"
    );
    assert_eq!(store.order_events(other_user).await.unwrap().len(), 1);
}

store_contract!(CONTRACT, an_event_reported_twice_is_recorded_once);
async fn an_event_reported_twice_is_recorded_once(store: Arc<dyn UserStore>) {
    let user_id = Uuid::new_v4();
    let placed = event(user_id, OrderStatus::Pending, now_ms());
    // A retry after a lost answer delivers the same event again.
    store.record_order_event(&placed).await.unwrap();
    store.record_order_event(&placed).await.unwrap();
    assert_eq!(store.order_events(user_id).await.unwrap(), [placed]);
}

store_contract!(CONTRACT, unknown_ids_and_usernames_find_nothing);
async fn unknown_ids_and_usernames_find_nothing(store: Arc<dyn UserStore>) {
    let unknown = Uuid::new_v4();
    assert!(store.by_id(unknown).await.unwrap().is_none());
    assert!(store.by_username("nobody").await.unwrap().is_none());
    let change = UserChange {
        email: Some("ghost@example.com".to_owned()),
        ..UserChange::default()
    };
    assert!(store.update(unknown, &change).await.unwrap().is_none());
    assert!(
        store.by_id(unknown).await.unwrap().is_none(),
        "updating an unknown user does not create one"
    );
    assert!(store.order_events(unknown).await.unwrap().is_empty());
}

// CQL-only behaviour: what a real database adds.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_migrations_are_idempotent_and_data_survives_a_restart() {
    let keyspace = CONTRACT.keyspace();
    let Some(first) = CONTRACT.open(&keyspace).await else {
        return;
    };
    let kept = user("kept");
    first.insert(&kept).await.unwrap();
    let news = event(kept.user.id, OrderStatus::Shipped, now_ms());
    first.record_order_event(&news).await.unwrap();
    drop(first);

    let restarted = CONTRACT
        .open(&keyspace)
        .await
        .expect("Cassandra answered a moment ago");
    assert_same_user(
        &restarted.by_username("kept").await.unwrap().unwrap(),
        &kept,
    );
    assert_eq!(restarted.order_events(kept.user.id).await.unwrap(), [news]);
    assert_eq!(
        restarted.insert(&user("kept")).await.unwrap(),
        InsertOutcome::UsernameTaken,
        "the username is still claimed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_two_instances_sharing_one_database_register_a_username_once() {
    let keyspace = CONTRACT.keyspace();
    let Some(one) = CONTRACT.open(&keyspace).await else {
        return;
    };
    let other = CONTRACT
        .open(&keyspace)
        .await
        .expect("Cassandra answered a moment ago");
    let instances = [one.clone(), other];
    let outcomes = join_all((0..20).map(|index| {
        let store = instances[index % 2].clone();
        async move { store.insert(&user("contested")).await.unwrap() }
    }))
    .await;
    let inserted = outcomes
        .iter()
        .filter(|outcome| **outcome == InsertOutcome::Inserted)
        .count();
    assert_eq!(inserted, 1);
    assert!(one.by_username("contested").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_a_registration_that_never_completed_frees_its_username_after_a_while() {
    let keyspace = CONTRACT.keyspace();
    let Some(store) = CONTRACT.open(&keyspace).await else {
        return;
    };
    // Claims without a user row, as a registration leaves them when its process dies
    // between the two writes: one long ago, one just now.
    let session = keyspace.raw_session().await;
    let long_ago = (Utc::now() - TimeDelta::minutes(10)).timestamp_micros();
    for (username, written_at) in [
        ("abandoned", long_ago),
        ("in-progress", Utc::now().timestamp_micros()),
    ] {
        session
            .query_unpaged(
                format!(
                    "INSERT INTO {keyspace}.users_by_username (username, id) VALUES (?, ?) USING TIMESTAMP ?"
                ),
                (username, Uuid::new_v4(), written_at),
            )
            .await
            .unwrap();
    }

    assert!(store.by_username("abandoned").await.unwrap().is_none());
    let newcomer = user("abandoned");
    assert_eq!(
        store.insert(&newcomer).await.unwrap(),
        InsertOutcome::Inserted
    );
    assert_same_user(
        &store.by_username("abandoned").await.unwrap().unwrap(),
        &newcomer,
    );
    assert_eq!(
        store.insert(&user("in-progress")).await.unwrap(),
        InsertOutcome::UsernameTaken,
        "a recent claim may belong to a registration still running"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_the_admin_account_appears_once_the_database_answers() {
    let keyspace = CONTRACT.keyspace();
    // Skip (or fail, with REQUIRE_CASSANDRA) before starting the service.
    let Some(store) = CONTRACT.open(&keyspace).await else {
        return;
    };
    let username = unique_username("boss");
    let config = user_service::Config::try_parse_from([
        "user-service",
        "--storage=cql",
        &format!("--cql-contact-points={}", contact_point()),
        &format!("--cql-keyspace={keyspace}"),
        "--cql-consistency=local_quorum",
        "--bcrypt-cost=4",
        "--service-client-secret=a-test-secret-of-enough-length",
        &format!("--admin-username={username}"),
        "--admin-password=a long admin password",
        "--listen=127.0.0.1:0",
    ])
    .unwrap();
    // The service's store connects in the background: start-up does not wait for it.
    let _first = tokio::time::timeout(Duration::from_secs(10), user_service::app(&config))
        .await
        .expect("start-up does not wait for the database")
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let admin = loop {
        if let Some(admin) = store.by_username(&username).await.unwrap() {
            break admin;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the admin account was not created within a minute"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(admin.user.role, Role::Admin);
    assert!(bcrypt::verify("a long admin password", &admin.password_hash).unwrap());

    // A second instance finds the admin and creates no other.
    let _second = user_service::app(&config).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        store.by_username(&username).await.unwrap().unwrap().user.id,
        admin.user.id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_does_not_wait_for_an_unreachable_database() {
    let config = user_service::Config::try_parse_from([
        "user-service",
        "--storage=cql",
        // Nothing listens on port 1.
        "--cql-contact-points=127.0.0.1:1",
        "--bcrypt-cost=4",
        "--service-client-secret=a-test-secret-of-enough-length",
        "--admin-password=a-test-admin-password",
        "--listen=127.0.0.1:0",
    ])
    .unwrap();
    let _router = tokio::time::timeout(Duration::from_secs(10), user_service::app(&config))
        .await
        .expect("start-up does not wait for the database")
        .expect("start-up does not fail without the database");
}
