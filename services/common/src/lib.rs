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

/// The allocator of every binary that links this crate: the services, the all-in-one
/// `shop` and the load tester. With glibc's, the allocator was about a tenth of a
/// request's CPU on the services' hot paths, much of it for the request telemetry's
/// short-lived allocations; with mimalloc's thread-local heaps the backend spends about a
/// fifth less CPU per product read (see docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
