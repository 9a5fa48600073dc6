//! The shapes that cross service boundaries: one definition, served by one service and
//! read by the others.

pub mod cart;
pub mod catalog;
pub mod order;
