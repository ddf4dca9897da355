//! The conformance suite on SQLite, and what only the embedded backend has: reopening
//! the same directory and refusing a newer schema.

use std::sync::Arc;

use adze_store::Store;
use adze_store::sqlite::SqliteStore;

use crate::conformance::Fixture;

fn fresh() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    Fixture {
        store: Arc::new(SqliteStore::open(dir.path()).unwrap()),
        _resources: Box::new(dir),
    }
}

mod suite {
    use super::fresh;

    crate::store_conformance!(Some(fresh()));
}

#[tokio::test]
async fn data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = uuid::Uuid::new_v4();
    let key = {
        let store = SqliteStore::open(dir.path()).unwrap();
        store
            .put_workflow(tenant, crate::conformance::spec("wf", &["a"]))
            .await
            .unwrap();
        let key = store.signing_key().await.unwrap();
        store.close();
        key
    };
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(store.signing_key().await.unwrap(), key);
    assert_eq!(store.workflow_versions(tenant).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_newer_schema_is_refused_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    SqliteStore::open(dir.path()).unwrap().close();
    let connection = rusqlite::Connection::open(dir.path().join("adze.db")).unwrap();
    connection.pragma_update(None, "user_version", 99).unwrap();
    drop(connection);
    let error = SqliteStore::open(dir.path()).err().unwrap().to_string();
    assert!(error.contains("newer than this binary"), "{error}");
}
