//! Finding a PostgreSQL server for the tests, once per process.

use std::time::Duration;

use tokio::sync::OnceCell;
use tokio_postgres::{Client, Config, NoTls};

use crate::throwaway;

/// The server most machines of this project have: local, user postgres, trust auth.
const LOCAL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The server found, or why none was: asked once, whichever test asks first.
static SERVER: OnceCell<Result<String, String>> = OnceCell::const_new();

/// A URL of a server (its maintenance database) on which databases may be created.
pub(crate) async fn url() -> Result<String, String> {
    SERVER.get_or_init(discover).await.clone()
}

async fn discover() -> Result<String, String> {
    if std::env::var("ADZE_TEST_PG_FORCE_THROWAWAY").is_ok_and(|value| value == "1") {
        return throwaway::start().await;
    }
    // A URL given on purpose is the one to use: falling back would hide its mistake.
    if let Ok(url) = std::env::var("ADZE_TEST_DATABASE_URL") {
        connect(&url)
            .await
            .map_err(|error| format!("ADZE_TEST_DATABASE_URL: {error}"))?;
        return Ok(url);
    }
    let local_error = match connect(LOCAL).await {
        Ok(_) => return Ok(LOCAL.to_owned()),
        Err(error) => error,
    };
    throwaway::start()
        .await
        .map_err(|error| format!("{local_error}; and no throwaway cluster: {error}"))
}

/// A connection whose driver runs on the current runtime.
pub(crate) async fn connect(url: &str) -> Result<Client, String> {
    let mut config: Config = url
        .parse()
        .map_err(|error| format!("database url {url:?}: {error:?}"))?;
    config.connect_timeout(Duration::from_secs(3));
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|error| format!("connecting to {url}: {error:?}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// `url` with its database replaced by `name`, for both forms of connection string.
pub(crate) fn with_database(url: &str, name: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        // In the `key=value` form a later key wins.
        return format!("{url} dbname={name}");
    };
    let (address, query) = match url.find('?') {
        Some(start) => url.split_at(start),
        None => (url, ""),
    };
    let authority_end = address[scheme_end + 3..]
        .find('/')
        .map_or(address.len(), |slash| scheme_end + 3 + slash);
    format!("{}/{name}{query}", &address[..authority_end])
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://u@h:1/postgres?sslmode=disable", "t"),
            "postgres://u@h:1/t?sslmode=disable"
        );
        assert_eq!(with_database("postgresql://u@h", "t"), "postgresql://u@h/t");
        assert_eq!(
            with_database("host=h user=u dbname=postgres", "t"),
            "host=h user=u dbname=postgres dbname=t"
        );
    }
}
