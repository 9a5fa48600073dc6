//! The shop's documents as the journeys read them, and the arithmetic they must satisfy.

use serde::Deserialize;
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize)]
pub struct Token {
    pub access_token: String,
    pub token_type: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub role: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CartItem {
    pub id: Uuid,
    pub product_id: Uuid,
    pub unit_price_cents: i64,
    pub quantity: i64,
    pub line_total_cents: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Cart {
    pub user_id: Uuid,
    pub items: Vec<CartItem>,
    pub total_cents: i64,
    pub item_count: i64,
}

impl Cart {
    /// Why the cart's numbers do not add up, if they do not.
    pub fn arithmetic_error(&self) -> Option<String> {
        for item in &self.items {
            if item.unit_price_cents * item.quantity != item.line_total_cents {
                return Some(format!(
                    "line {}: {} x {} != {}",
                    item.id, item.unit_price_cents, item.quantity, item.line_total_cents
                ));
            }
        }
        let total: i64 = self.items.iter().map(|i| i.line_total_cents).sum();
        let count: i64 = self.items.iter().map(|i| i.quantity).sum();
        if total != self.total_cents {
            return Some(format!(
                "cart total {} != sum of lines {total}",
                self.total_cents
            ));
        }
        if count != self.item_count {
            return Some(format!(
                "cart item_count {} != sum of quantities {count}",
                self.item_count
            ));
        }
        None
    }

    pub fn line_for(&self, product: Uuid) -> Option<&CartItem> {
        self.items.iter().find(|i| i.product_id == product)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct CartTotal {
    pub total_cents: i64,
    pub item_count: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OrderItem {
    pub product_id: Uuid,
    pub unit_price_cents: i64,
    pub quantity: i64,
    pub line_total_cents: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    pub id: Uuid,
    pub user_id: Uuid,
    pub items: Vec<OrderItem>,
    pub total_cents: i64,
    pub status: String,
}

impl Order {
    pub fn arithmetic_error(&self) -> Option<String> {
        for item in &self.items {
            if item.unit_price_cents * item.quantity != item.line_total_cents {
                return Some(format!(
                    "order {} line {}: {} x {} != {}",
                    self.id,
                    item.product_id,
                    item.unit_price_cents,
                    item.quantity,
                    item.line_total_cents
                ));
            }
        }
        let total: i64 = self.items.iter().map(|i| i.line_total_cents).sum();
        (total != self.total_cents).then(|| {
            format!(
                "order {} total {} != sum of lines {total}",
                self.id, self.total_cents
            )
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct TotalSpent {
    pub user_id: Uuid,
    pub order_count: i64,
    pub total_spent_cents: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Profile {
    pub user: User,
    pub cart: Cart,
    pub orders: Vec<Order>,
    pub total_spent_cents: i64,
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Deserialize)]
pub struct Problem {
    pub status: u16,
    #[serde(rename = "type")]
    pub kind: String,
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cart_whose_lines_do_not_add_up_is_caught() {
        let line = |unit: i64, quantity: i64, total: i64| CartItem {
            id: Uuid::new_v4(),
            product_id: Uuid::new_v4(),
            unit_price_cents: unit,
            quantity,
            line_total_cents: total,
        };
        let mut cart = Cart {
            user_id: Uuid::new_v4(),
            items: vec![line(250, 2, 500), line(100, 1, 100)],
            total_cents: 600,
            item_count: 3,
        };
        assert_eq!(cart.arithmetic_error(), None);
        cart.total_cents = 601;
        assert!(cart.arithmetic_error().unwrap().contains("601"));
        cart.total_cents = 600;
        cart.items[0].line_total_cents = 499;
        assert!(cart.arithmetic_error().is_some());
    }
}
