//! The store's integration tests: one conformance suite that every backend must pass,
//! run here against SQLite, plus what is particular to the embedded backend.

mod conformance;
mod sqlite;
