//! Cart arithmetic and the rules for what may go into a cart.

use chrono::{DateTime, Utc};
use shop_common::ApiError;
use shop_common::models::cart::{Cart, CartItem, MAX_CART_LINES, MAX_ITEM_QUANTITY};
use shop_common::validate::Validator;
use uuid::Uuid;

use crate::store::NewItem;

pub fn empty_cart(user_id: Uuid) -> Cart {
    Cart {
        user_id,
        items: Vec::new(),
        total_cents: 0,
        item_count: 0,
        version: 0,
    }
}

/// Derives line totals and the cart's totals from its lines.
pub fn recompute(cart: &mut Cart) {
    for item in &mut cart.items {
        item.line_total_cents = item.unit_price_cents * item.quantity;
    }
    cart.total_cents = cart.items.iter().map(|i| i.line_total_cents).sum();
    cart.item_count = cart.items.iter().map(|i| i.quantity).sum();
}

/// Why a product was not added: its line would hold too many units, or the cart too many lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddRefusal {
    LineFull { in_cart: i64 },
    CartFull,
}

/// Adds `item` to its product's line, or as a new line with `new_id`; the line's id. Every
/// store applies this to the cart as read, inside its own atomic change.
pub fn add_line(
    cart: &mut Cart,
    item: &NewItem,
    new_id: Uuid,
    added_at: DateTime<Utc>,
) -> Result<Uuid, AddRefusal> {
    let lines = cart.items.len();
    let line = cart
        .items
        .iter_mut()
        .find(|i| i.product_id == item.product_id);
    match line {
        Some(existing) if existing.quantity + item.quantity > MAX_ITEM_QUANTITY => {
            Err(AddRefusal::LineFull {
                in_cart: existing.quantity,
            })
        }
        Some(existing) => {
            existing.quantity += item.quantity;
            existing.unit_price_cents = item.unit_price_cents;
            existing.name.clone_from(&item.name);
            Ok(existing.id)
        }
        None if lines >= MAX_CART_LINES => Err(AddRefusal::CartFull),
        None => {
            cart.items.push(CartItem {
                id: new_id,
                product_id: item.product_id,
                name: item.name.clone(),
                unit_price_cents: item.unit_price_cents,
                quantity: item.quantity,
                line_total_cents: 0,
                added_at,
            });
            Ok(new_id)
        }
    }
}

pub fn check_quantity(quantity: i64) -> Result<(), ApiError> {
    Validator::new()
        .range("quantity", quantity, 1, MAX_ITEM_QUANTITY)
        .finish()
}

/// The order id a checkout of this cart version gets: the same cart checked out twice
/// (a retry, a double click) yields one order.
pub fn checkout_key(cart: &Cart) -> String {
    format!("cart-{}-v{}", cart.user_id, cart.version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use shop_common::models::cart::CartItem;

    #[test]
    fn totals_follow_the_lines() {
        let mut cart = empty_cart(Uuid::new_v4());
        for (price, quantity) in [(250, 2), (1999, 1)] {
            cart.items.push(CartItem {
                id: Uuid::new_v4(),
                product_id: Uuid::new_v4(),
                name: "thing".into(),
                unit_price_cents: price,
                quantity,
                line_total_cents: 0,
                added_at: Utc::now(),
            });
        }
        recompute(&mut cart);
        assert_eq!((cart.total_cents, cart.item_count), (2499, 3));
        assert_eq!(cart.items[0].line_total_cents, 500);
    }

    fn thing(product_id: Uuid) -> NewItem {
        NewItem {
            product_id,
            name: "thing".into(),
            unit_price_cents: 100,
            quantity: 1,
        }
    }

    #[test]
    fn a_cart_holds_as_many_lines_as_an_order_accepts() {
        let mut cart = empty_cart(Uuid::new_v4());
        let first = Uuid::new_v4();
        add_line(&mut cart, &thing(first), Uuid::new_v4(), Utc::now()).unwrap();
        while cart.items.len() < MAX_CART_LINES {
            add_line(
                &mut cart,
                &thing(Uuid::new_v4()),
                Uuid::new_v4(),
                Utc::now(),
            )
            .unwrap();
        }
        let full = cart.clone();
        let refused = add_line(
            &mut cart,
            &thing(Uuid::new_v4()),
            Uuid::new_v4(),
            Utc::now(),
        );
        assert_eq!(refused, Err(AddRefusal::CartFull));
        assert_eq!(cart, full);
        assert_eq!(
            add_line(&mut cart, &thing(first), Uuid::new_v4(), Utc::now()),
            Ok(full.items[0].id),
            "more of a product in the cart is no new line"
        );
    }

    #[test]
    fn quantities_are_bounded() {
        assert!(check_quantity(0).is_err());
        assert!(check_quantity(101).is_err());
        assert!(check_quantity(100).is_ok());
    }
}
