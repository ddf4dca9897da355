//! End-to-end tests of adze-sdk and its examples, each against its own real `adze lite`.

mod lite;
mod release;
mod runs;
mod tls;
mod worker;
