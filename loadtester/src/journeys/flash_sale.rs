//! A flash sale: buyers race for the few units of one product.

use super::*;

pub(super) async fn flash_start(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    register(ctx, user, FLASH_SALE).await
}

pub(super) async fn flash_grab(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let Some(token) = signed_in(user) else {
        // A buyer whose sign-up failed signs up again instead of queueing without a token.
        return sign_up(ctx, user, FLASH_SALE).await;
    };
    let flash = ctx.catalogue.flash.clone();
    let mut answer = send(
        ctx,
        user,
        Call::new(
            FLASH_SALE,
            "view deal",
            Method::GET,
            format!("/api/products/{}", flash.id),
        ),
    )
    .await?;
    let product: Product = answer.json(ctx, user)?;
    answer.check(
        ctx,
        user,
        product.id == flash.id && product.stock >= 0,
        || format!("the deal came back as {product:?}"),
    )?;
    let mut answer = send(
        ctx,
        user,
        // 409: sold out before it reached the cart; expected first when the deal showed no
        // stock, so goose's error table lists only the races lost after seeing stock.
        Call::new(
            FLASH_SALE,
            "add deal to cart",
            Method::POST,
            "/cart-api/cart/items".into(),
        )
        .token(&token)
        .json(json!({"product_id": flash.id, "quantity": 1}))
        .accept(if product.stock > 0 {
            &[201, 409]
        } else {
            &[409, 201]
        }),
    )
    .await?;
    if answer.status == 409 {
        return sold_out(ctx, user, &mut answer);
    }
    let cart = checked_cart(&mut answer, ctx, user)?;
    let checkout = send(
        ctx,
        user,
        // 409: another shopper checked out the last unit first.
        Call::new(
            FLASH_SALE,
            "check out",
            Method::POST,
            "/user-api/users/me/orders".into(),
        )
        .token(&token)
        .accept(&[201, 409]),
    )
    .await;
    let mut answer = match checkout {
        Ok(answer) => answer,
        // A checkout that failed leaves the deal in the cart, and every later add would ask
        // for one unit more than the stock and be refused: this buyer would never race again.
        Err(failed) => return empty_cart(ctx, user, &token).await.and(Err(failed)),
    };
    if answer.status == 409 {
        sold_out(ctx, user, &mut answer)?;
        return empty_cart(ctx, user, &token).await;
    }
    let order: Order = answer.json(ctx, user)?;
    note_order(
        ctx,
        user,
        order.id,
        Event::Acknowledged,
        Some(&order.status),
    );
    let units: i64 = order
        .items
        .iter()
        .filter(|i| i.product_id == flash.id)
        .map(|i| i.quantity)
        .sum();
    answer.check(
        ctx,
        user,
        order.arithmetic_error().is_none()
            && order.total_cents == cart.total_cents
            && units == cart.line_for(flash.id).map_or(0, |l| l.quantity),
        || {
            format!(
                "the deal's order {} totals {} for {units} units",
                order.id, order.total_cents
            )
        },
    )?;
    // Some buyers change their minds: each cancellation puts a unit back, which the
    // waiting crowd races for again, as in a real flash sale.
    if fastrand::u32(..100) < ctx.cancel_percent {
        cancel(ctx, user, FLASH_SALE, order.id).await?;
    }
    Ok(())
}

/// Empties the buyer's cart, so that its next round starts from nothing.
async fn empty_cart(ctx: &Ctx, user: &mut GooseUser, token: &str) -> TxResult {
    let mut answer = send(
        ctx,
        user,
        Call::new(
            FLASH_SALE,
            "empty cart",
            Method::DELETE,
            "/cart-api/cart/".into(),
        )
        .token(token),
    )
    .await?;
    let emptied = checked_cart(&mut answer, ctx, user)?;
    answer.check(ctx, user, emptied.items.is_empty(), || {
        format!("{} lines left after emptying the cart", emptied.items.len())
    })
}

/// A 409 in a flash sale must say why: out of stock.
pub(super) fn sold_out(ctx: &Ctx, user: &mut GooseUser, answer: &mut Answer) -> TxResult {
    let problem: Problem = answer.json(ctx, user)?;
    answer.check(
        ctx,
        user,
        problem.status == 409 && problem.kind.contains("conflict"),
        || format!("a sold-out answer should be a conflict problem: {problem:?}"),
    )?;
    let _ = &problem.detail;
    Ok(())
}
