//! What the shop's four services truly share: the service skeleton (`service`), the calls
//! between them (`models`) and the client that makes them (`client`), configuration,
//! problem errors, auth, health, the HTTP middleware stack (`server`), serving and draining
//! on shutdown (`shutdown`), and the support for
//! their tests against Cassandra (`testing`).

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
pub mod service;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod testing;
pub mod topology;
pub mod validate;
pub mod verified_tokens;

pub use problem::{ApiError, ApiResult, Problem};
