//! Anonymous browsers: the catalogue page by page, and product pages.

use super::*;

/// Reads one page of the catalogue and checks each product; returns the page and the next
/// page's path.
pub(super) async fn product_page(
    ctx: &Ctx,
    user: &mut GooseUser,
    scenario: &'static str,
    path: String,
) -> Result<(Vec<Product>, Option<String>), Box<TransactionError>> {
    let mut answer = send(
        ctx,
        user,
        Call::new(scenario, "list products", Method::GET, path),
    )
    .await?;
    let products: Vec<Product> = answer.json(ctx, user)?;
    if let Some(bad) = products
        .iter()
        .find(|p| p.name.is_empty() || p.price_cents < 0 || p.stock < 0)
    {
        return Err(answer.fail(ctx, user, &format!("invalid product {}", bad.id)));
    }
    answer.check(ctx, user, products.len() <= PAGE_SIZE, || {
        format!("{} products on a page of {PAGE_SIZE}", products.len())
    })?;
    let next = next_page(&mut answer, ctx, user)?;
    if next.is_some() {
        answer.check(ctx, user, products.len() == PAGE_SIZE, || {
            format!("a short page ({}) with a next page", products.len())
        })?;
    }
    Ok((products, next))
}

/// The next page from `Link: <...>; rel="next"`, checked against `X-Next-Cursor`.
pub(super) fn next_page(
    answer: &mut Answer,
    ctx: &Ctx,
    user: &mut GooseUser,
) -> Result<Option<String>, Box<TransactionError>> {
    let link = answer.header("link").map(str::to_owned);
    let cursor = answer.header("x-next-cursor").map(str::to_owned);
    let next = link.as_deref().and_then(|link| {
        link.split(',').find_map(|part| {
            let (target, params) = part.split_once(';')?;
            params.contains("rel=\"next\"").then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
        })
    });
    match (&next, &cursor) {
        (None, None) => Ok(None),
        (Some(next), Some(cursor)) if next.contains(&format!("cursor={cursor}")) => {
            // The link may be absolute; keep its path and query.
            let path = match next.find("/api/") {
                Some(start) => next[start..].to_owned(),
                None => next.clone(),
            };
            Ok(Some(path))
        }
        _ => Err(answer.fail(
            ctx,
            user,
            &format!("Link {link:?} and X-Next-Cursor {cursor:?} disagree"),
        )),
    }
}

pub(super) async fn browse_catalogue(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let mut path = Some(format!("/api/products/?limit={PAGE_SIZE}"));
    let mut ids = HashSet::new();
    let mut pages = 0;
    let wanted_pages = fastrand::usize(1..=MAX_PAGES);
    while let Some(current) = path.take() {
        let (products, next) = product_page(ctx, user, BROWSER, current).await?;
        for product in &products {
            if !ids.insert(product.id) {
                // A product on two pages: cursor pagination is broken.
                let mut answer = send(
                    ctx,
                    user,
                    Call::new(
                        BROWSER,
                        "list products",
                        Method::GET,
                        format!("/api/products/{}", product.id),
                    ),
                )
                .await?;
                return Err(answer.fail(
                    ctx,
                    user,
                    &format!("product {} on two pages", product.id),
                ));
            }
        }
        pages += 1;
        if pages < wanted_pages {
            path = next;
        }
    }
    let seen: Vec<Uuid> = ids.into_iter().collect();
    session(user).seen = seen;
    Ok(())
}

pub(super) async fn view_product(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let seen = session(user).seen.clone();
    for _ in 0..fastrand::usize(1..=3) {
        let id = if seen.is_empty() {
            ctx.catalogue.pick().id
        } else {
            seen[fastrand::usize(..seen.len())]
        };
        let mut answer = send(
            ctx,
            user,
            // An admin may retire one of its own products between the list and the view.
            Call::new(
                BROWSER,
                "view product",
                Method::GET,
                format!("/api/products/{id}"),
            )
            .accept(&[200, 404]),
        )
        .await?;
        if answer.status == 404 {
            continue;
        }
        let product: Product = answer.json(ctx, user)?;
        answer.check(ctx, user, product.id == id, || {
            format!("asked for {id}, got {}", product.id)
        })?;
        if let Some(price) = ctx.catalogue.price_of(id)
            && id != ctx.catalogue.flash.id
        {
            answer.check(ctx, user, product.price_cents == price, || {
                format!(
                    "{} costs {} instead of {price}",
                    product.name, product.price_cents
                )
            })?;
        }
    }
    Ok(())
}
