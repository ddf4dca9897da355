//! Where the engine is and who we are: read from the same `HATCHET_CLIENT_*` environment
//! variables as Hatchet's SDKs, or set with a builder, with the addresses taken from the
//! token's claims unless given explicitly.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use serde::Deserialize;

use crate::error::{Error, Result};

/// The variables [`ConfigBuilder::from_env`] reads.
pub mod env {
    /// The API token (a JWT); required.
    pub const TOKEN: &str = "HATCHET_CLIENT_TOKEN";
    /// The gRPC address `host:port`; defaults to the token's `grpc_broadcast_address`.
    pub const HOST_PORT: &str = "HATCHET_CLIENT_HOST_PORT";
    /// The REST base URL; defaults to the token's `server_url`.
    pub const SERVER_URL: &str = "HATCHET_CLIENT_SERVER_URL";
    /// `tls` (the default), `mtls`, or anything else (e.g. `none`) for plaintext.
    pub const TLS_STRATEGY: &str = "HATCHET_CLIENT_TLS_STRATEGY";
    /// A prefix for workflow names, event keys and actions (lower-cased, `_` appended).
    pub const NAMESPACE: &str = "HATCHET_CLIENT_NAMESPACE";
    /// The tenant; defaults to the token's `sub` claim.
    pub const TENANT_ID: &str = "HATCHET_CLIENT_TENANT_ID";
    /// A PEM file of the CA that signed the engine's certificate (default: the system's roots).
    pub const TLS_ROOT_CA_FILE: &str = "HATCHET_CLIENT_TLS_ROOT_CA_FILE";
    /// The name the engine's certificate must carry (default: the host of `HOST_PORT`).
    pub const TLS_SERVER_NAME: &str = "HATCHET_CLIENT_TLS_SERVER_NAME";
    /// The client certificate (PEM) for `mtls`.
    pub const TLS_CERT_FILE: &str = "HATCHET_CLIENT_TLS_CERT_FILE";
    /// The client certificate's private key (PEM) for `mtls`.
    pub const TLS_KEY_FILE: &str = "HATCHET_CLIENT_TLS_KEY_FILE";
}

/// How the gRPC connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsStrategy {
    /// TLS, verified against the system's roots or a given CA (Hatchet's default).
    Tls,
    /// TLS with a client certificate as well.
    Mtls,
    /// Plaintext, as `adze lite` serves it.
    None,
}

impl TlsStrategy {
    /// Parses the variable the way Hatchet's SDKs do: `tls`, `mtls`, anything else is none.
    pub fn parse(text: &str) -> Self {
        match text.trim().to_ascii_lowercase().as_str() {
            "tls" => TlsStrategy::Tls,
            "mtls" => TlsStrategy::Mtls,
            _ => TlsStrategy::None,
        }
    }
}

/// A complete, checked configuration. Build one with [`Config::from_env`] or
/// [`Config::builder`].
#[derive(Clone)]
pub struct Config {
    token: String,
    host_port: String,
    server_url: String,
    tls: TlsStrategy,
    namespace: String,
    tenant_id: String,
    tls_files: TlsFiles,
}

/// Where the TLS material is; read when connecting.
#[derive(Clone, Debug, Default)]
pub(crate) struct TlsFiles {
    pub(crate) root_ca: Option<PathBuf>,
    pub(crate) server_name: Option<String>,
    pub(crate) cert: Option<PathBuf>,
    pub(crate) key: Option<PathBuf>,
}

/// Leaves the token out: configurations end up in logs.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("host_port", &self.host_port)
            .field("server_url", &self.server_url)
            .field("tls", &self.tls)
            .field("namespace", &self.namespace)
            .field("tenant_id", &self.tenant_id)
            .field("tls_files", &self.tls_files)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Reads the `HATCHET_CLIENT_*` variables (see [`mod@env`]).
    pub fn from_env() -> Result<Config> {
        ConfigBuilder::from_env().build()
    }

    /// An empty builder; nothing is read from the environment.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// The token sent as `authorization: bearer …` on every call.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The gRPC address, `host:port`.
    pub fn host_port(&self) -> &str {
        &self.host_port
    }

    /// The REST base URL.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// How the connection is secured.
    pub fn tls(&self) -> TlsStrategy {
        self.tls
    }

    /// The namespace prefix, already normalised (`""` or lower-case ending in `_`).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The tenant the token belongs to.
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// The TLS files and server name, for the connection.
    pub(crate) fn tls_files(&self) -> &TlsFiles {
        &self.tls_files
    }

    /// The name the engine's certificate must carry: as set, or the host of `host_port`.
    pub(crate) fn tls_server_name(&self) -> String {
        if let Some(name) = &self.tls_files.server_name {
            return name.clone();
        }
        let host = match self.host_port.rsplit_once(':') {
            Some((host, _)) => host,
            None => &self.host_port,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            "localhost".into()
        } else {
            host.into()
        }
    }

    /// Prefixes a workflow name or event key with the namespace, once.
    pub(crate) fn namespaced(&self, name: &str) -> String {
        if name.starts_with(&self.namespace) {
            name.to_string()
        } else {
            format!("{}{name}", self.namespace)
        }
    }
}

/// Collects settings; [`build`](ConfigBuilder::build) checks them and fills the gaps from
/// the token. Values set on the builder win over the environment.
#[derive(Clone, Default)]
pub struct ConfigBuilder {
    token: Option<String>,
    host_port: Option<String>,
    server_url: Option<String>,
    tls: Option<TlsStrategy>,
    namespace: Option<String>,
    tenant_id: Option<String>,
    tls_files: TlsFiles,
}

/// Leaves the token out, like [`Config`]'s.
impl std::fmt::Debug for ConfigBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigBuilder")
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("host_port", &self.host_port)
            .field("server_url", &self.server_url)
            .field("tls", &self.tls)
            .field("namespace", &self.namespace)
            .field("tenant_id", &self.tenant_id)
            .field("tls_files", &self.tls_files)
            .finish()
    }
}

impl ConfigBuilder {
    /// A builder holding whatever the `HATCHET_CLIENT_*` variables set.
    pub fn from_env() -> Self {
        Self::from_vars(std::env::vars())
    }

    fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut builder = ConfigBuilder::default();
        for (name, value) in vars {
            if value.is_empty() {
                continue;
            }
            match name.as_str() {
                env::TOKEN => builder.token = Some(value),
                env::HOST_PORT => builder.host_port = Some(value),
                env::SERVER_URL => builder.server_url = Some(value),
                env::TLS_STRATEGY => builder.tls = Some(TlsStrategy::parse(&value)),
                env::NAMESPACE => builder.namespace = Some(value),
                env::TENANT_ID => builder.tenant_id = Some(value),
                env::TLS_ROOT_CA_FILE => builder.tls_files.root_ca = Some(value.into()),
                env::TLS_SERVER_NAME => builder.tls_files.server_name = Some(value),
                env::TLS_CERT_FILE => builder.tls_files.cert = Some(value.into()),
                env::TLS_KEY_FILE => builder.tls_files.key = Some(value.into()),
                _ => {}
            }
        }
        builder
    }

    /// The API token (a JWT).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The gRPC address `host:port`, instead of the token's.
    pub fn host_port(mut self, host_port: impl Into<String>) -> Self {
        self.host_port = Some(host_port.into());
        self
    }

    /// The REST base URL, instead of the token's.
    pub fn server_url(mut self, server_url: impl Into<String>) -> Self {
        self.server_url = Some(server_url.into());
        self
    }

    /// How the connection is secured (default [`TlsStrategy::Tls`], as in Hatchet).
    pub fn tls(mut self, tls: TlsStrategy) -> Self {
        self.tls = Some(tls);
        self
    }

    /// A namespace prefixed onto workflow names, event keys and actions.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// The tenant, instead of the token's `sub` claim.
    pub fn tenant_id(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant_id.into());
        self
    }

    /// Trusts the CA in this PEM file instead of the system's roots.
    pub fn tls_root_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls_files.root_ca = Some(path.into());
        self
    }

    /// The name the engine's certificate must carry, if not the host of `host_port`.
    pub fn tls_server_name(mut self, name: impl Into<String>) -> Self {
        self.tls_files.server_name = Some(name.into());
        self
    }

    /// The client certificate and key (PEM files) presented with [`TlsStrategy::Mtls`].
    pub fn tls_client_identity(
        mut self,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.tls_files.cert = Some(cert.into());
        self.tls_files.key = Some(key.into());
        self
    }

    /// Checks the settings and reads what is missing from the token's claims.
    pub fn build(self) -> Result<Config> {
        let token = self.token.ok_or_else(|| {
            Error::Config(format!(
                "no token: set {} or ConfigBuilder::token (`adze lite` prints one)",
                env::TOKEN
            ))
        })?;
        let claims = Claims::read(&token)?;
        let host_port = self
            .host_port
            .or(claims.grpc_broadcast_address)
            .unwrap_or_else(|| "localhost:7070".to_string());
        let server_url = self
            .server_url
            .or(claims.server_url)
            .unwrap_or_else(|| "http://localhost:8080".to_string());
        let tenant_id = self.tenant_id.or(claims.sub).ok_or_else(|| {
            Error::Config(format!(
                "the token has no `sub` claim naming the tenant; set {}",
                env::TENANT_ID
            ))
        })?;
        let namespace = match self.namespace {
            Some(namespace) if !namespace.is_empty() => {
                let namespace = namespace.to_lowercase();
                if namespace.ends_with('_') {
                    namespace
                } else {
                    format!("{namespace}_")
                }
            }
            _ => String::new(),
        };
        let tls = self.tls.unwrap_or(TlsStrategy::Tls);
        if tls == TlsStrategy::Mtls
            && (self.tls_files.cert.is_none() || self.tls_files.key.is_none())
        {
            return Err(Error::Config(format!(
                "mtls needs a client certificate and key: set {} and {}",
                env::TLS_CERT_FILE,
                env::TLS_KEY_FILE
            )));
        }
        Ok(Config {
            token,
            host_port,
            server_url: server_url.trim_end_matches('/').to_string(),
            tls,
            namespace,
            tenant_id,
            tls_files: self.tls_files,
        })
    }
}

/// The claims Hatchet's SDKs read from a token. The signature is the engine's business.
#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    server_url: Option<String>,
    grpc_broadcast_address: Option<String>,
}

impl Claims {
    fn read(token: &str) -> Result<Claims> {
        let malformed = |why: &str| {
            Error::Config(format!(
                "{} is not a valid JWT ({why}); it starts with {:?}",
                env::TOKEN,
                token.chars().take(5).collect::<String>()
            ))
        };
        if !token.starts_with("ey") {
            return Err(malformed("a JWT starts with \"ey\""));
        }
        let payload = token
            .split('.')
            .nth(1)
            .ok_or_else(|| malformed("no payload part"))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .or_else(|_| URL_SAFE.decode(payload))
            .map_err(|_| malformed("the payload is not base64url"))?;
        serde_json::from_slice(&bytes).map_err(|_| malformed("the payload is not a JSON object"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: &str) -> String {
        format!(
            "eyJhbGciOiJIUzI1NiJ9.{}.sig",
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn addresses_and_tenant_come_from_the_token() {
        let token = token(
            r#"{"sub":"t1","server_url":"http://h:8080/","grpc_broadcast_address":"h:7070"}"#,
        );
        let config = ConfigBuilder::from_vars(vars(&[(env::TOKEN, &token)]))
            .build()
            .unwrap();
        assert_eq!(config.host_port(), "h:7070");
        assert_eq!(config.server_url(), "http://h:8080");
        assert_eq!(config.tenant_id(), "t1");
        assert_eq!(config.tls(), TlsStrategy::Tls);
        assert_eq!(config.namespace(), "");
        assert!(
            !format!("{config:?}").contains(&token),
            "Debug must not show the token"
        );
    }

    #[test]
    fn explicit_settings_win_and_the_namespace_is_normalised() {
        let token = token(r#"{"sub":"t1","grpc_broadcast_address":"h:7070"}"#);
        let config = ConfigBuilder::from_vars(vars(&[
            (env::TOKEN, &token),
            (env::HOST_PORT, "other:1"),
            (env::TLS_STRATEGY, "none"),
            (env::NAMESPACE, "Team"),
        ]))
        .host_port("builder:2")
        .build()
        .unwrap();
        assert_eq!(config.host_port(), "builder:2");
        assert_eq!(config.tls(), TlsStrategy::None);
        assert_eq!(config.namespace(), "team_");
        assert_eq!(config.namespaced("wf"), "team_wf");
        assert_eq!(config.namespaced("team_wf"), "team_wf");
    }

    #[test]
    fn tls_settings_come_from_the_environment_and_mtls_needs_an_identity() {
        let token = token(r#"{"sub":"t1","grpc_broadcast_address":"engine.example:443"}"#);
        let config = ConfigBuilder::from_vars(vars(&[
            (env::TOKEN, &token),
            (env::TLS_ROOT_CA_FILE, "/ca.pem"),
        ]))
        .build()
        .unwrap();
        assert_eq!(config.tls(), TlsStrategy::Tls);
        assert_eq!(config.tls_server_name(), "engine.example");
        assert_eq!(
            config.tls_files().root_ca.as_deref(),
            Some(std::path::Path::new("/ca.pem"))
        );
        let named = ConfigBuilder::from_vars(vars(&[
            (env::TOKEN, &token),
            (env::TLS_SERVER_NAME, "other"),
        ]))
        .build()
        .unwrap();
        assert_eq!(named.tls_server_name(), "other");
        let error =
            ConfigBuilder::from_vars(vars(&[(env::TOKEN, &token), (env::TLS_STRATEGY, "mtls")]))
                .build()
                .unwrap_err();
        assert!(error.to_string().contains(env::TLS_CERT_FILE), "{error}");
    }

    #[test]
    fn bad_tokens_get_errors_naming_the_variable() {
        let missing = Config::builder().build().unwrap_err().to_string();
        assert!(missing.contains(env::TOKEN), "{missing}");
        let not_jwt = Config::builder().token("abc").build().unwrap_err();
        assert!(not_jwt.to_string().contains("not a valid JWT"), "{not_jwt}");
        let garbage = Config::builder().token("eyJ.%%%.x").build().unwrap_err();
        assert!(garbage.to_string().contains("base64url"), "{garbage}");
        let no_sub = Config::builder().token(token("{}")).build().unwrap_err();
        assert!(no_sub.to_string().contains("sub"), "{no_sub}");
    }
}
