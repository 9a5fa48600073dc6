//! What the shop's four services truly share: configuration, problem errors, auth,
//! the inter-service client, health, and the HTTP middleware stack.

pub mod auth;
pub mod background;
pub mod client;
pub mod config;
pub mod connections;
pub mod cql;
pub mod extract;
pub mod faults;
pub mod health;
pub mod models;
pub mod openapi;
pub mod problem;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod testing;
pub mod validate;

pub use problem::{ApiError, ApiResult, Problem};
