//! The store's integration tests: one conformance suite that every backend must pass,
//! run here against SQLite and PostgreSQL, plus what is particular to each backend.

mod conformance;
mod postgres;
mod postgres_throughput;
mod sqlite;
