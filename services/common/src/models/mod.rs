//! The shapes that cross service boundaries, and the calls that carry them: one definition,
//! served by one service and used by the others. Each call between services is a type
//! implementing [`Operation`](operation::Operation), next to the shapes it carries.

pub mod cart;
pub mod catalog;
pub mod identity;
pub mod operation;
pub mod order;
