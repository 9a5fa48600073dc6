//! Cart arithmetic and the rules for what may go into a cart.

use shop_common::ApiError;
use shop_common::models::cart::{Cart, MAX_ITEM_QUANTITY};
use shop_common::validate::Validator;
use uuid::Uuid;

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

    #[test]
    fn quantities_are_bounded() {
        assert!(check_quantity(0).is_err());
        assert!(check_quantity(101).is_err());
        assert!(check_quantity(100).is_ok());
    }
}
