//! Flows across services: the whole customer journey, concurrency, and authorization.

#[path = "../support/mod.rs"]
mod support;

mod authorization;
mod concurrency;
mod journey;
mod security;
