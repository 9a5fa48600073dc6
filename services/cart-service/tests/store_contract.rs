//! One contract, every store: the same tests run against the in-memory store and against a
//! real Cassandra (`cargo xtask cassandra start`). CI sets REQUIRE_CASSANDRA=1, so there the
//! CQL half fails instead of being passed over when the database is missing.

use std::collections::HashSet;
use std::sync::Arc;

use cart_service::store::{AddOutcome, CartStore, NewItem};
use futures_util::future::join_all;
use shop_common::faults::{FaultCreate, Faults};
use shop_common::models::cart::Cart;
use shop_common::models::order::MAX_ORDER_LINES;
use shop_common::store_contract;
use shop_common::testing::StoreContract;
use uuid::Uuid;

static CONTRACT: StoreContract<dyn CartStore> = StoreContract {
    service: "cart-service",
    keyspace_prefix: "test_carts",
    stores: &cart_service::store::STORES,
};

fn item(product_id: Uuid, name: &str, unit_price_cents: i64, quantity: i64) -> NewItem {
    NewItem {
        product_id,
        name: name.to_owned(),
        unit_price_cents,
        quantity,
    }
}

async fn add(store: &dyn CartStore, user_id: Uuid, new: NewItem) -> Cart {
    match store.add_item(user_id, new).await.unwrap() {
        AddOutcome::Added(cart) => cart,
        refused => panic!("refused: {refused:?}"),
    }
}

/// (product, quantity) of each line, in the cart's order.
fn lines(cart: &Cart) -> Vec<(Uuid, i64)> {
    cart.items
        .iter()
        .map(|i| (i.product_id, i.quantity))
        .collect()
}

store_contract!(CONTRACT, a_new_user_has_an_empty_cart);
async fn a_new_user_has_an_empty_cart(store: Arc<dyn CartStore>) {
    let user = Uuid::new_v4();
    let cart = store.get(user).await.unwrap();
    assert_eq!(cart.user_id, user);
    assert!(cart.items.is_empty());
    assert_eq!((cart.total_cents, cart.item_count, cart.version), (0, 0, 0));
    assert_eq!(
        store.get(user).await.unwrap(),
        cart,
        "reading changes nothing"
    );
}

store_contract!(CONTRACT, adding_a_product_again_merges_it_into_its_line);
async fn adding_a_product_again_merges_it_into_its_line(store: Arc<dyn CartStore>) {
    let user = Uuid::new_v4();
    let (mug, lamp) = (Uuid::new_v4(), Uuid::new_v4());
    let first = add(store.as_ref(), user, item(mug, "Mug", 250, 2)).await;
    assert_eq!(lines(&first), [(mug, 2)]);
    let mug_line = first.items[0].id;

    let merged = add(store.as_ref(), user, item(mug, "Mug, blue", 300, 3)).await;
    assert_eq!(lines(&merged), [(mug, 5)]);
    let line = &merged.items[0];
    assert_eq!(line.id, mug_line, "the same line");
    assert_eq!(
        (
            line.name.as_str(),
            line.unit_price_cents,
            line.line_total_cents
        ),
        ("Mug, blue", 300, 1500),
        "the line takes the latest name and price"
    );

    let both = add(store.as_ref(), user, item(lamp, "Lamp", 4999, 1)).await;
    assert_eq!(
        lines(&both),
        [(mug, 5), (lamp, 1)],
        "lines in the order added"
    );
    assert_eq!((both.total_cents, both.item_count), (1500 + 4999, 6));
    assert_eq!(
        store.get(user).await.unwrap(),
        both,
        "the cart a change returns is the cart stored"
    );
}

store_contract!(CONTRACT, too_many_of_a_product_leaves_the_cart_unchanged);
async fn too_many_of_a_product_leaves_the_cart_unchanged(store: Arc<dyn CartStore>) {
    let user = Uuid::new_v4();
    let product = Uuid::new_v4();
    let before = add(store.as_ref(), user, item(product, "Pen", 100, 60)).await;
    assert_eq!(
        store
            .add_item(user, item(product, "Pen", 100, 41))
            .await
            .unwrap(),
        AddOutcome::TooMany { in_cart: 60 }
    );
    assert_eq!(store.get(user).await.unwrap(), before, "version included");
    let full = add(store.as_ref(), user, item(product, "Pen", 100, 40)).await;
    assert_eq!(lines(&full), [(product, 100)], "up to the limit is fine");
}

store_contract!(
    CONTRACT,
    a_line_past_what_an_order_accepts_leaves_the_cart_unchanged
);
async fn a_line_past_what_an_order_accepts_leaves_the_cart_unchanged(store: Arc<dyn CartStore>) {
    let user = Uuid::new_v4();
    let first = Uuid::new_v4();
    let mut full = add(store.as_ref(), user, item(first, "Thing", 100, 1)).await;
    for _ in 1..MAX_ORDER_LINES {
        full = add(store.as_ref(), user, item(Uuid::new_v4(), "Thing", 100, 1)).await;
    }
    let refused = store
        .add_item(user, item(Uuid::new_v4(), "One too many", 100, 1))
        .await
        .unwrap();
    assert_eq!(refused, AddOutcome::CartFull);
    assert_eq!(store.get(user).await.unwrap(), full, "version included");
    let more = add(store.as_ref(), user, item(first, "Thing", 100, 1)).await;
    assert_eq!(
        more.items.len(),
        MAX_ORDER_LINES,
        "an existing line still grows"
    );
}

store_contract!(CONTRACT, unknown_lines_are_none_and_change_nothing);
async fn unknown_lines_are_none_and_change_nothing(store: Arc<dyn CartStore>) {
    let user = Uuid::new_v4();
    assert_eq!(
        store.set_quantity(user, Uuid::new_v4(), 3).await.unwrap(),
        None
    );
    assert_eq!(store.remove_item(user, Uuid::new_v4()).await.unwrap(), None);
    assert_eq!(store.get(user).await.unwrap().version, 0);

    let cart = add(store.as_ref(), user, item(Uuid::new_v4(), "Cup", 500, 1)).await;
    assert_eq!(
        store.set_quantity(user, Uuid::new_v4(), 3).await.unwrap(),
        None
    );
    assert_eq!(store.remove_item(user, Uuid::new_v4()).await.unwrap(), None);
    assert_eq!(store.get(user).await.unwrap(), cart);
}

store_contract!(CONTRACT, lines_change_and_go);
async fn lines_change_and_go(store: Arc<dyn CartStore>) {
    let user = Uuid::new_v4();
    let (cup, jug) = (Uuid::new_v4(), Uuid::new_v4());
    add(store.as_ref(), user, item(cup, "Cup", 500, 1)).await;
    let cart = add(store.as_ref(), user, item(jug, "Jug", 1200, 1)).await;
    let (cup_line, jug_line) = (cart.items[0].id, cart.items[1].id);

    let changed = store
        .set_quantity(user, cup_line, 4)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lines(&changed), [(cup, 4), (jug, 1)]);
    assert_eq!(changed.total_cents, 2000 + 1200);
    assert_eq!(store.get(user).await.unwrap(), changed);

    let removed = store.remove_item(user, jug_line).await.unwrap().unwrap();
    assert_eq!(lines(&removed), [(cup, 4)]);
    assert_eq!(store.get(user).await.unwrap(), removed);
    assert_eq!(store.remove_item(user, jug_line).await.unwrap(), None);
    assert_eq!(store.set_quantity(user, jug_line, 2).await.unwrap(), None);
}

store_contract!(CONTRACT, clear_empties_the_cart);
async fn clear_empties_the_cart(store: Arc<dyn CartStore>) {
    let user = Uuid::new_v4();
    add(store.as_ref(), user, item(Uuid::new_v4(), "A", 100, 1)).await;
    let full = add(store.as_ref(), user, item(Uuid::new_v4(), "B", 200, 2)).await;
    let cleared = store.clear(user).await.unwrap();
    assert!(cleared.items.is_empty());
    assert_eq!((cleared.total_cents, cleared.item_count), (0, 0));
    assert!(cleared.version > full.version);
    assert_eq!(store.get(user).await.unwrap(), cleared);

    let stranger = Uuid::new_v4();
    let empty = store.clear(stranger).await.unwrap();
    assert!(empty.items.is_empty());
    assert_eq!(store.get(stranger).await.unwrap(), empty);
}

store_contract!(CONTRACT, remove_ordered_keeps_lines_changed_since);
async fn remove_ordered_keeps_lines_changed_since(store: Arc<dyn CartStore>) {
    let user = Uuid::new_v4();
    let (a, b, c, d) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    add(store.as_ref(), user, item(a, "A", 100, 1)).await;
    add(store.as_ref(), user, item(b, "B", 200, 2)).await;
    let ordered = add(store.as_ref(), user, item(c, "C", 300, 3)).await;

    // Meanwhile, in another tab: one line changed, one added.
    store
        .set_quantity(user, ordered.items[1].id, 5)
        .await
        .unwrap()
        .unwrap();
    add(store.as_ref(), user, item(d, "D", 400, 1)).await;

    let after = store.remove_ordered(user, &ordered.items).await.unwrap();
    assert_eq!(lines(&after), [(b, 5), (d, 1)]);
    assert_eq!(after.total_cents, 1000 + 400);
    assert_eq!(store.get(user).await.unwrap(), after);

    let rest = store.remove_ordered(user, &after.items).await.unwrap();
    assert!(rest.items.is_empty());
}

store_contract!(CONTRACT, the_version_increases_on_every_change);
async fn the_version_increases_on_every_change(store: Arc<dyn CartStore>) {
    let user = Uuid::new_v4();
    let product = Uuid::new_v4();
    let mut versions = vec![store.get(user).await.unwrap().version];
    let cart = add(store.as_ref(), user, item(product, "A", 100, 1)).await;
    versions.push(cart.version);
    versions.push(
        add(store.as_ref(), user, item(product, "A", 100, 1))
            .await
            .version,
    );
    let line = cart.items[0].id;
    let changed = store.set_quantity(user, line, 7).await.unwrap().unwrap();
    versions.push(changed.version);
    versions.push(store.get(user).await.unwrap().version);
    let other = add(store.as_ref(), user, item(Uuid::new_v4(), "B", 100, 1)).await;
    versions.push(other.version);
    versions.push(
        store
            .remove_item(user, line)
            .await
            .unwrap()
            .unwrap()
            .version,
    );
    versions.push(store.clear(user).await.unwrap().version);
    versions.push(
        add(store.as_ref(), user, item(product, "A", 100, 1))
            .await
            .version,
    );
    let current = store.get(user).await.unwrap();
    versions.push(
        store
            .remove_ordered(user, &current.items)
            .await
            .unwrap()
            .version,
    );

    // Reads (the fifth entry) change nothing; everything else is a change.
    versions.remove(4);
    assert!(
        versions.windows(2).all(|pair| pair[0] < pair[1]),
        "versions {versions:?} must strictly increase"
    );
}

store_contract!(CONTRACT, concurrent_adds_to_one_cart_all_land);
async fn concurrent_adds_to_one_cart_all_land(store: Arc<dyn CartStore>) {
    let user = Uuid::new_v4();
    let products = [Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4()];
    let adds = 24;
    join_all((0..adds).map(|index| {
        let store = store.clone();
        let product = products[index % products.len()];
        async move {
            add(
                store.as_ref(),
                user,
                item(product, "busy", 100, 1 + (index as i64 % 2)),
            )
            .await
        }
    }))
    .await;
    let cart = store.get(user).await.unwrap();
    let expected: i64 = (0..adds).map(|index| 1 + (index as i64 % 2)).sum();
    assert_eq!(cart.items.len(), products.len(), "one line per product");
    assert_eq!(cart.item_count, expected, "no add lost");
    assert_eq!(cart.version, adds as i64, "one version per change");
}

store_contract!(CONTRACT, list_shows_only_non_empty_carts);
async fn list_shows_only_non_empty_carts(store: Arc<dyn CartStore>) {
    let (one, emptied, two, looked) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    let first = add(store.as_ref(), one, item(Uuid::new_v4(), "A", 100, 1)).await;
    add(store.as_ref(), emptied, item(Uuid::new_v4(), "B", 100, 1)).await;
    store.clear(emptied).await.unwrap();
    add(store.as_ref(), two, item(Uuid::new_v4(), "C", 100, 1)).await;
    let second = add(store.as_ref(), two, item(Uuid::new_v4(), "D", 100, 2)).await;
    let removed = store.remove_item(two, second.items[0].id).await.unwrap();
    let second = removed.unwrap();
    store.get(looked).await.unwrap();

    let mut listed = store.list(100).await.unwrap();
    listed.sort_by_key(|cart| cart.user_id);
    let mut expected = vec![first, second];
    expected.sort_by_key(|cart| cart.user_id);
    assert_eq!(listed, expected);

    let limited = store.list(1).await.unwrap();
    assert_eq!(limited.len(), 1);
    assert!(
        [one, two].contains(&limited[0].user_id),
        "only non-empty carts"
    );
    assert!(store.list(0).await.unwrap().is_empty());
}

// CQL-only behaviour: what a real database adds.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_carts_and_their_versions_survive_a_restart() {
    let keyspace = CONTRACT.keyspace();
    let Some(first) = CONTRACT.open(&keyspace).await else {
        return;
    };
    let user = Uuid::new_v4();
    add(first.as_ref(), user, item(Uuid::new_v4(), "kept", 100, 3)).await;
    let gone = add(first.as_ref(), user, item(Uuid::new_v4(), "gone", 100, 1)).await;
    let before = first
        .remove_item(user, gone.items[1].id)
        .await
        .unwrap()
        .unwrap();
    let emptied = Uuid::new_v4();
    add(first.as_ref(), emptied, item(Uuid::new_v4(), "x", 100, 1)).await;
    let cleared = first.clear(emptied).await.unwrap();
    drop(first);

    let restarted = CONTRACT
        .open(&keyspace)
        .await
        .expect("Cassandra answered a moment ago");
    assert_eq!(restarted.get(user).await.unwrap(), before);
    let next = add(
        restarted.as_ref(),
        user,
        item(Uuid::new_v4(), "new", 100, 1),
    )
    .await;
    assert_eq!(next.version, before.version + 1, "the version carries on");
    assert_eq!(
        restarted.get(emptied).await.unwrap().version,
        cleared.version,
        "an emptied cart keeps its version, so no checkout key repeats"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_two_instances_sharing_one_database_lose_no_change() {
    let keyspace = CONTRACT.keyspace();
    let Some(one) = CONTRACT.open(&keyspace).await else {
        return;
    };
    let other = CONTRACT
        .open(&keyspace)
        .await
        .expect("Cassandra answered a moment ago");
    let user = Uuid::new_v4();
    let product = Uuid::new_v4();
    let instances = [one.clone(), other];
    let returned = join_all((0..20).map(|index| {
        let store = instances[index % 2].clone();
        async move { add(store.as_ref(), user, item(product, "shared", 100, 1)).await }
    }))
    .await;
    let cart = one.get(user).await.unwrap();
    assert_eq!(lines(&cart), [(product, 20)]);
    assert_eq!(cart.version, 20);
    let versions: HashSet<i64> = returned.iter().map(|cart| cart.version).collect();
    assert_eq!(
        versions,
        (1..=20).collect(),
        "every change got a version of its own"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_removed_lines_leave_no_rows_and_left_over_rows_are_ignored() {
    let keyspace = CONTRACT.keyspace();
    let Some(store) = CONTRACT.open(&keyspace).await else {
        return;
    };
    let session = keyspace.raw_session().await;
    let line_rows = |user: Uuid| {
        let session = &session;
        let keyspace = &keyspace;
        async move {
            session
                .query_unpaged(
                    format!("SELECT item_id FROM {keyspace}.cart_items WHERE user_id = ?"),
                    (user,),
                )
                .await
                .unwrap()
                .into_rows_result()
                .unwrap()
                .rows::<(Option<Uuid>,)>()
                .unwrap()
                .filter_map(|row| row.unwrap().0)
                .collect::<HashSet<Uuid>>()
        }
    };

    let user = Uuid::new_v4();
    add(store.as_ref(), user, item(Uuid::new_v4(), "A", 100, 1)).await;
    add(store.as_ref(), user, item(Uuid::new_v4(), "B", 100, 1)).await;
    let cart = add(store.as_ref(), user, item(Uuid::new_v4(), "C", 100, 1)).await;
    store.remove_item(user, cart.items[0].id).await.unwrap();
    assert_eq!(
        line_rows(user).await,
        cart.items[1..].iter().map(|i| i.id).collect()
    );
    store.clear(user).await.unwrap();
    assert!(line_rows(user).await.is_empty());

    // A row whose deletion failed (not in item_ids) is not part of the cart, and the cart's
    // next change deletes it.
    let left_over = Uuid::new_v4();
    session
        .query_unpaged(
            format!(
                "INSERT INTO {keyspace}.cart_items (user_id, item_id, product_id, name, \
                 unit_price_cents, quantity, added_at) VALUES (?, ?, ?, 'ghost', 1, 1, 0)"
            ),
            (user, left_over, Uuid::new_v4()),
        )
        .await
        .unwrap();
    assert!(store.get(user).await.unwrap().items.is_empty());
    assert!(store.list(10).await.unwrap().is_empty());
    let next = add(store.as_ref(), user, item(Uuid::new_v4(), "D", 100, 1)).await;
    assert_eq!(next.items.len(), 1);
    assert_eq!(line_rows(user).await, HashSet::from([next.items[0].id]));
}

/// A fault that makes `statement` apply and then report a timeout, as when its coordinator
/// dies or it outruns its deadline after the write.
fn answer_lost(statement: &str) -> FaultCreate {
    serde_json::from_value(serde_json::json!({
        "kind": "database",
        "statement": statement,
        "fail": true,
        "applied": true,
        "ttl_seconds": 60,
    }))
    .expect("a valid fault")
}

/// A cart change that was made, and whose answer was lost, is found when the cart is read
/// again: reported made, and made once (an add merged into its line twice would show).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_a_cart_change_whose_answer_was_lost_is_reported_made_once() {
    let faults = Faults::default();
    let keyspace = CONTRACT.keyspace();
    let Some(store) = CONTRACT.open_with_faults(&keyspace, faults.clone()).await else {
        return;
    };
    let user = Uuid::new_v4();
    let mug = Uuid::new_v4();
    add(store.as_ref(), user, item(mug, "mug", 1_250, 2)).await;

    let put_line = faults.add(&answer_lost("put_line")).unwrap();
    let merged = add(store.as_ref(), user, item(mug, "mug", 1_250, 3)).await;
    assert_eq!(lines(&merged), [(mug, 5)], "added once");
    assert_eq!(store.get(user).await.unwrap(), merged);
    faults.remove(put_line.id);

    faults.add(&answer_lost("remove_lines")).unwrap();
    let line = merged.items[0].id;
    let emptied = store.remove_item(user, line).await.unwrap();
    let emptied = emptied.expect("the line was in the cart");
    assert!(emptied.items.is_empty());
    assert_eq!(emptied.version, merged.version + 1, "one change");
    assert_eq!(store.get(user).await.unwrap(), emptied);
}
