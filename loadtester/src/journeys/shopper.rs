//! Shoppers: sign up, browse, fill and change a cart, check out, read their orders and profile, and sometimes cancel.

use super::*;

pub(super) async fn shopper_start(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    register(ctx, user, SHOPPER).await
}

pub(super) async fn shopper_browse(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    if signed_in(user).is_none() {
        return Ok(());
    }
    let (products, _) = product_page(
        ctx,
        user,
        SHOPPER,
        format!("/api/products/?limit={PAGE_SIZE}"),
    )
    .await?;
    session(user).seen = products.iter().map(|p| p.id).collect();
    let product = ctx.catalogue.pick();
    let mut answer = send(
        ctx,
        user,
        Call::new(
            SHOPPER,
            "view product",
            Method::GET,
            format!("/api/products/{}", product.id),
        ),
    )
    .await?;
    let seen: Product = answer.json(ctx, user)?;
    answer.check(
        ctx,
        user,
        seen.id == product.id && seen.price_cents == product.price_cents,
        || {
            format!(
                "product {} came back as {} at {}",
                product.id, seen.id, seen.price_cents
            )
        },
    )
}

pub(super) async fn get_cart(
    ctx: &Ctx,
    user: &mut GooseUser,
    token: &str,
) -> Result<Cart, Box<TransactionError>> {
    let mut answer = send(
        ctx,
        user,
        Call::new(SHOPPER, "view cart", Method::GET, "/cart-api/cart/".into()).token(token),
    )
    .await?;
    checked_cart(&mut answer, ctx, user)
}

pub(super) fn checked_cart(
    answer: &mut Answer,
    ctx: &Ctx,
    user: &mut GooseUser,
) -> Result<Cart, Box<TransactionError>> {
    let cart: Cart = answer.json(ctx, user)?;
    if let Some(error) = cart.arithmetic_error() {
        return Err(answer.fail(ctx, user, &error));
    }
    let me = session(user).user_id;
    answer.check(ctx, user, me.is_none_or(|me| me == cart.user_id), || {
        format!("someone else's cart ({})", cart.user_id)
    })?;
    Ok(cart)
}

pub(super) async fn fill_cart(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let Some(token) = signed_in(user) else {
        return Ok(());
    };
    let mut cart = get_cart(ctx, user, &token).await?;
    for _ in 0..fastrand::usize(1..=3) {
        let product = ctx.catalogue.pick().clone();
        let quantity = fastrand::i64(1..=3);
        let before = cart.line_for(product.id).map_or(0, |line| line.quantity);
        let mut answer = send(
            ctx,
            user,
            Call::new(
                SHOPPER,
                "add to cart",
                Method::POST,
                "/cart-api/cart/items".into(),
            )
            .token(&token)
            .json(json!({"product_id": product.id, "quantity": quantity}))
            .accept(&[201]),
        )
        .await?;
        cart = checked_cart(&mut answer, ctx, user)?;
        let after = cart.line_for(product.id).map_or(0, |line| line.quantity);
        answer.check(ctx, user, after == before + quantity, || {
            format!(
                "{} in the cart after adding {quantity} to {before}: {after}",
                product.name
            )
        })?;
    }
    Ok(())
}

pub(super) async fn change_cart(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let Some(token) = signed_in(user) else {
        return Ok(());
    };
    let cart = get_cart(ctx, user, &token).await?;
    let Some(line) = cart.items.first().cloned() else {
        return Ok(());
    };
    let quantity = fastrand::i64(1..=4);
    let mut answer = send(
        ctx,
        user,
        Call::new(
            SHOPPER,
            "update cart item",
            Method::PUT,
            format!("/cart-api/cart/items/{}", line.id),
        )
        .token(&token)
        .json(json!({"quantity": quantity})),
    )
    .await?;
    let updated = checked_cart(&mut answer, ctx, user)?;
    let now = updated
        .items
        .iter()
        .find(|i| i.id == line.id)
        .map(|i| i.quantity);
    answer.check(ctx, user, now == Some(quantity), || {
        format!("line {} holds {now:?} after setting {quantity}", line.id)
    })?;
    if updated.items.len() > 1 && fastrand::bool() {
        let last = updated.items.last().cloned().expect("two lines");
        let mut answer = send(
            ctx,
            user,
            Call::new(
                SHOPPER,
                "remove cart item",
                Method::DELETE,
                format!("/cart-api/cart/items/{}", last.id),
            )
            .token(&token),
        )
        .await?;
        let after = checked_cart(&mut answer, ctx, user)?;
        answer.check(
            ctx,
            user,
            after.items.iter().all(|i| i.id != last.id)
                && after.total_cents == updated.total_cents - last.line_total_cents,
            || format!("removing line {} left total {}", last.id, after.total_cents),
        )?;
    }
    Ok(())
}

pub(super) async fn view_cart(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let Some(token) = signed_in(user) else {
        return Ok(());
    };
    let cart = get_cart(ctx, user, &token).await?;
    let mut answer = send(
        ctx,
        user,
        Call::new(
            SHOPPER,
            "cart total",
            Method::GET,
            "/cart-api/cart/total".into(),
        )
        .token(&token),
    )
    .await?;
    let total: CartTotal = answer.json(ctx, user)?;
    answer.check(
        ctx,
        user,
        total.total_cents == cart.total_cents && total.item_count == cart.item_count,
        || {
            format!(
                "total {} cents / {} items, but the cart adds up to {} / {}",
                total.total_cents, total.item_count, cart.total_cents, cart.item_count
            )
        },
    )
}

pub(super) async fn check_out(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let Some(token) = signed_in(user) else {
        return Ok(());
    };
    let cart = get_cart(ctx, user, &token).await?;
    if cart.items.is_empty() {
        return Ok(());
    }
    let mut answer = send(
        ctx,
        user,
        Call::new(
            SHOPPER,
            "check out",
            Method::POST,
            "/user-api/users/me/orders".into(),
        )
        .token(&token)
        .accept(&[201]),
    )
    .await?;
    let order: Order = answer.json(ctx, user)?;
    note_order(
        ctx,
        user,
        order.id,
        Event::Acknowledged,
        Some(&order.status),
    );
    if let Some(error) = order.arithmetic_error() {
        return Err(answer.fail(ctx, user, &error));
    }
    // The order is at the prices of this moment; the seeded catalogue's never change.
    let expected: i64 = cart
        .items
        .iter()
        .map(|i| {
            ctx.catalogue
                .price_of(i.product_id)
                .unwrap_or(i.unit_price_cents)
                * i.quantity
        })
        .sum();
    answer.check(
        ctx,
        user,
        order.total_cents == expected
            && order.status == "pending"
            && order.items.len() == cart.items.len(),
        || {
            format!(
                "order {} of {} lines totals {} ({}), the cart of {} lines {expected}",
                order.id,
                order.items.len(),
                order.total_cents,
                order.status,
                cart.items.len()
            )
        },
    )?;
    session(user).orders.push((order.id, order.total_cents));
    let after = get_cart(ctx, user, &token).await?;
    if !after.items.is_empty() {
        let mut answer = send(
            ctx,
            user,
            Call::new(SHOPPER, "view cart", Method::GET, "/cart-api/cart/".into()).token(&token),
        )
        .await?;
        return Err(answer.fail(ctx, user, "the cart is not empty after checkout"));
    }
    Ok(())
}

pub(super) async fn my_orders(
    ctx: &Ctx,
    user: &mut GooseUser,
    token: &str,
) -> Result<Vec<Order>, Box<TransactionError>> {
    let mut answer = send(
        ctx,
        user,
        Call::new(
            SHOPPER,
            "list orders",
            Method::GET,
            "/user-api/users/me/orders".into(),
        )
        .token(token),
    )
    .await?;
    let orders: Vec<Order> = answer.json(ctx, user)?;
    if let Some(error) = orders.iter().find_map(Order::arithmetic_error) {
        return Err(answer.fail(ctx, user, &error));
    }
    // The list holds the newest 100 orders.
    let mine = session(user).orders.clone();
    let missing = mine
        .iter()
        .rev()
        .take(50)
        .find(|(id, _)| !orders.iter().any(|o| o.id == *id));
    answer.check(ctx, user, missing.is_none(), || {
        format!("order {:?} is missing from the list", missing.map(|m| m.0))
    })?;
    Ok(orders)
}

pub(super) async fn view_orders(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let Some(token) = signed_in(user) else {
        return Ok(());
    };
    let orders = my_orders(ctx, user, &token).await?;
    let Some(latest) = session(user).orders.last().copied() else {
        return Ok(());
    };
    let mut answer = send(
        ctx,
        user,
        Call::new(
            SHOPPER,
            "view order",
            Method::GET,
            format!("/order-api/orders/{}", latest.0),
        )
        .token(&token),
    )
    .await?;
    let order: Order = answer.json(ctx, user)?;
    note_order(ctx, user, order.id, Event::Seen, Some(&order.status));
    let listed = orders
        .iter()
        .find(|o| o.id == latest.0)
        .map(|o| o.total_cents);
    answer.check(
        ctx,
        user,
        order.id == latest.0 && order.total_cents == latest.1 && listed == Some(latest.1),
        || {
            format!(
                "order {} totals {} (listed {listed:?}), placed at {}",
                order.id, order.total_cents, latest.1
            )
        },
    )
}

pub(super) async fn profile(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let Some(token) = signed_in(user) else {
        return Ok(());
    };
    let orders = my_orders(ctx, user, &token).await?;
    if orders.len() >= 100 {
        // Only the newest 100 are listed; the sums below would not compare.
        return Ok(());
    }
    let kept: Vec<&Order> = orders.iter().filter(|o| o.status != "cancelled").collect();
    let spent: i64 = kept.iter().map(|o| o.total_cents).sum();
    let mut answer = send(
        ctx,
        user,
        Call::new(
            SHOPPER,
            "total spent",
            Method::GET,
            "/user-api/users/me/total-spent".into(),
        )
        .token(&token),
    )
    .await?;
    let total: TotalSpent = answer.json(ctx, user)?;
    answer.check(
        ctx,
        user,
        total.total_spent_cents == spent && total.order_count == kept.len() as i64,
        || {
            format!(
                "total spent {} over {} orders; the orders say {spent} over {}",
                total.total_spent_cents,
                total.order_count,
                kept.len()
            )
        },
    )?;
    let mut answer = send(
        ctx,
        user,
        Call::new(
            SHOPPER,
            "profile",
            Method::GET,
            "/user-api/users/me/profile".into(),
        )
        .token(&token),
    )
    .await?;
    let profile: Profile = answer.json(ctx, user)?;
    let username = session(user).username.clone();
    answer.check(
        ctx,
        user,
        profile.user.username == username
            && profile.total_spent_cents == spent
            && profile.cart.arithmetic_error().is_none(),
        || {
            format!(
                "profile of {:?}: spent {} (expected {spent}), {} orders listed",
                profile.user.username,
                profile.total_spent_cents,
                profile.orders.len()
            )
        },
    )
}

pub(super) async fn maybe_cancel(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    if fastrand::u32(..100) >= ctx.cancel_percent {
        return Ok(());
    }
    let Some((id, _)) = session(user).orders.last().copied() else {
        return Ok(());
    };
    cancel(ctx, user, SHOPPER, id).await
}

pub(super) async fn cancel(
    ctx: &Ctx,
    user: &mut GooseUser,
    journey: &'static str,
    id: Uuid,
) -> TxResult {
    let Some(token) = signed_in(user) else {
        return Ok(());
    };
    note_order(ctx, user, id, Event::CancelSent, None);
    let mut answer = send(
        ctx,
        user,
        // 409: it shipped already (or was cancelled), which the shop rightly refuses.
        Call::new(
            journey,
            "cancel order",
            Method::PUT,
            format!("/order-api/orders/{id}/cancel"),
        )
        .token(&token)
        .accept(&[200, 409]),
    )
    .await?;
    if answer.status == 200 {
        let order: Order = answer.json(ctx, user)?;
        note_order(ctx, user, order.id, Event::Seen, Some(&order.status));
        answer.check(
            ctx,
            user,
            order.id == id && order.status == "cancelled",
            || format!("cancelling {id} left it {}", order.status),
        )?;
    } else {
        let problem: Problem = answer.json(ctx, user)?;
        answer.check(ctx, user, problem.status == 409, || {
            format!("problem {problem:?}")
        })?;
    }
    Ok(())
}
