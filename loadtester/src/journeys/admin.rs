//! Admins: create, update, restock and retire products, move orders along, list carts.

use super::*;

pub(super) async fn admin_start(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    ctx.metrics.users.inc();
    let token = log_in(ctx, user, ADMIN, &ctx.admin_username, &ctx.admin_password).await?;
    session(user).token = token;
    Ok(())
}

pub(super) async fn admin_create_product(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let Some(token) = signed_in(user) else {
        return Ok(());
    };
    let name = format!(
        "{ADMIN_PREFIX}{}{}",
        ctx.name_prefix,
        &Uuid::new_v4().simple().to_string()[..8]
    );
    let price = fastrand::i64(100..=20_000);
    let stock = fastrand::i64(0..=500);
    let mut answer = send(
        ctx,
        user,
        Call::new(
            ADMIN,
            "create product",
            Method::POST,
            "/api/products/".into(),
        )
        .token(&token)
        .json(json!({
            "name": name,
            "category": "new-arrivals",
            "description": "Added by the load tester's admin journey.",
            "price_cents": price,
            "stock": stock,
        }))
        .accept(&[201]),
    )
    .await?;
    let product: Product = answer.json(ctx, user)?;
    answer.check(
        ctx,
        user,
        product.name == name && product.price_cents == price && product.stock == stock,
        || format!("created {name:?} at {price} x {stock}, got {product:?}"),
    )?;
    session(user).created.push(product.id);
    Ok(())
}

pub(super) async fn admin_update_product(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let Some(token) = signed_in(user) else {
        return Ok(());
    };
    let Some(id) = session(user).created.last().copied() else {
        return Ok(());
    };
    let price = fastrand::i64(100..=20_000);
    let description = format!("Repriced at {price} cents.");
    let mut answer = send(
        ctx,
        user,
        Call::new(
            ADMIN,
            "update product",
            Method::PUT,
            format!("/api/products/{id}"),
        )
        .token(&token)
        .json(json!({"price_cents": price, "description": description})),
    )
    .await?;
    let product: Product = answer.json(ctx, user)?;
    answer.check(
        ctx,
        user,
        product.id == id && product.price_cents == price && product.description == description,
        || format!("updated {id} to {price}, got {product:?}"),
    )
}

pub(super) async fn admin_restock(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let Some(token) = signed_in(user) else {
        return Ok(());
    };
    let product = ctx.catalogue.pick().clone();
    let mut answer = send(
        ctx,
        user,
        Call::new(
            ADMIN,
            "view product",
            Method::GET,
            format!("/api/products/{}", product.id),
        ),
    )
    .await?;
    let current: Product = answer.json(ctx, user)?;
    if current.stock >= crate::seed::CATALOGUE_STOCK / 2 {
        return Ok(());
    }
    let mut answer = send(
        ctx,
        user,
        Call::new(
            ADMIN,
            "restock",
            Method::PUT,
            format!("/api/products/{}", product.id),
        )
        .token(&token)
        .json(json!({"stock": crate::seed::CATALOGUE_STOCK})),
    )
    .await?;
    let restocked: Product = answer.json(ctx, user)?;
    answer.check(
        ctx,
        user,
        restocked.stock == crate::seed::CATALOGUE_STOCK,
        || format!("restocked {} to {}", restocked.name, restocked.stock),
    )
}

pub(super) async fn admin_move_orders(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let Some(token) = signed_in(user) else {
        return Ok(());
    };
    let mut answer = send(
        ctx,
        user,
        Call::new(
            ADMIN,
            "list orders",
            Method::GET,
            "/order-api/orders/?scope=all&limit=50".into(),
        )
        .token(&token),
    )
    .await?;
    let orders: Vec<Order> = answer.json(ctx, user)?;
    if let Some(error) = orders.iter().find_map(Order::arithmetic_error) {
        return Err(answer.fail(ctx, user, &error));
    }
    let movable: Vec<&Order> = orders
        .iter()
        .filter(|o| o.status == "pending" || o.status == "processing")
        .take(2)
        .collect();
    for order in movable {
        let next = if order.status == "pending" {
            "processing"
        } else {
            "shipped"
        };
        let mut answer = send(
            ctx,
            user,
            // 409: the order moved on (or was cancelled) since it was listed.
            Call::new(
                ADMIN,
                "set order status",
                Method::PUT,
                format!("/order-api/orders/{}/status", order.id),
            )
            .token(&token)
            .json(json!({"status": next}))
            .accept(&[200, 409]),
        )
        .await?;
        if answer.status == 200 {
            let moved: Order = answer.json(ctx, user)?;
            answer.check(
                ctx,
                user,
                moved.id == order.id && moved.status == next,
                || {
                    format!(
                        "order {} is {} after moving it to {next}",
                        moved.id, moved.status
                    )
                },
            )?;
        }
    }
    Ok(())
}

pub(super) async fn admin_list_carts(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let Some(token) = signed_in(user) else {
        return Ok(());
    };
    let mut answer = send(
        ctx,
        user,
        Call::new(
            ADMIN,
            "list carts",
            Method::GET,
            "/cart-api/carts/?limit=50".into(),
        )
        .token(&token),
    )
    .await?;
    let carts: Vec<Cart> = answer.json(ctx, user)?;
    match carts.iter().find_map(Cart::arithmetic_error) {
        Some(error) => Err(answer.fail(ctx, user, &error)),
        None => Ok(()),
    }
}

pub(super) async fn admin_retire_product(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    if session(user).created.len() < 3 {
        return Ok(());
    }
    let id = session(user).created.remove(0);
    let Some(token) = signed_in(user) else {
        return Ok(());
    };
    send(
        ctx,
        user,
        Call::new(
            ADMIN,
            "retire product",
            Method::DELETE,
            format!("/api/products/{id}"),
        )
        .token(&token)
        .accept(&[204]),
    )
    .await?;
    Ok(())
}
