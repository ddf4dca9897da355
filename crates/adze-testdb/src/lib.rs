//! # adze-testdb
//!
//! A fresh, uniquely named PostgreSQL database for each test that asks, so tests of any
//! crate can run side by side on one server without seeing each other's rows.
//!
//! ## Layout
//! - [`server`]: finding a server: `ADZE_TEST_DATABASE_URL`, else the local one at
//!   127.0.0.1:5432, else a throwaway cluster
//! - [`throwaway`]: clusters of our own, made with the installed PostgreSQL binaries:
//!   one shared and reused by later test processes, or a [`Cluster`] for one test to
//!   stop and start
//!
//! When no server can be had the tests skip, saying so loudly on stderr; with `CI=true`
//! they fail instead, so a CI run never passes by skipping them.

#![forbid(unsafe_code)]

mod server;
mod throwaway;

use std::io::Write;

pub use throwaway::Cluster;

/// A database created for one test, dropped when the value is.
pub struct TestDatabase {
    /// Where to connect: a `postgres://` URL naming the new database.
    pub url: String,
    name: String,
    server_url: String,
    keep: bool,
}

impl TestDatabase {
    /// Keeps the database after this value is gone (for a process that hands the URL on).
    pub fn keep(mut self) -> String {
        self.keep = true;
        self.url.clone()
    }
}

/// A new, empty database, or `None` (after a loud message) when no server can be had.
///
/// # Panics
/// When no server can be had and `CI=true`: on CI that is a failure, not a skip.
pub async fn fresh_database() -> Option<TestDatabase> {
    let outcome = match server::url().await {
        Ok(server_url) => create(&server_url).await,
        Err(reason) => Err(reason),
    };
    match outcome {
        Ok(database) => Some(database),
        Err(reason) => no_database(&reason),
    }
}

/// A cluster of the caller's own, for tests that stop and restart the database; `None`
/// (after a loud message, or a panic on CI) when none can be made.
pub async fn own_cluster() -> Option<Cluster> {
    match Cluster::create().await {
        Ok(cluster) => Some(cluster),
        Err(reason) => no_database(&reason),
    }
}

/// [`fresh_database`] for code outside an async runtime (it must not be called inside one).
pub fn fresh_database_blocking() -> Option<TestDatabase> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for the test database")
        .block_on(fresh_database())
}

async fn create(server_url: &str) -> Result<TestDatabase, String> {
    let name = format!("adze_test_{}", uuid::Uuid::new_v4().simple());
    let client = server::connect(server_url).await?;
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .map_err(|error| format!("creating database {name}: {error}"))?;
    Ok(TestDatabase {
        url: server::with_database(server_url, &name),
        name,
        server_url: server_url.to_owned(),
        keep: false,
    })
}

fn no_database<T>(reason: &str) -> Option<T> {
    let message = format!(
        "no PostgreSQL for the tests: {reason}\n\
         set ADZE_TEST_DATABASE_URL, run a server at 127.0.0.1:5432 (user postgres, trust), \
         or install PostgreSQL so a throwaway cluster can be made"
    );
    if std::env::var("CI").is_ok_and(|value| value == "true") {
        panic!("{message}");
    }
    // Straight to stderr: the test harness swallows `eprintln!` of passing tests, and a
    // skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!! SKIPPING POSTGRESQL TESTS !!!!!!!!\n{message}\n"
    );
    None
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let (server_url, name) = (self.server_url.clone(), self.name.clone());
        // Its own thread and runtime: a drop may run inside a test's runtime, which
        // cannot be blocked on from within.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| error.to_string())?;
            runtime.block_on(async {
                let client = server::connect(&server_url).await?;
                // FORCE ends the connections a test's pool still holds.
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .map_err(|error| error.to_string())
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            let _ = writeln!(
                std::io::stderr(),
                "test database {} was not dropped: {error}",
                self.name
            );
        }
    }
}
