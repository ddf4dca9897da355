//! Tokens: JWTs (HS256) signed with a key the engine creates on first start and keeps in
//! its store. Claims: `sub` (tenant), `server_url`, `grpc_broadcast_address` (the SDKs
//! read their addresses from these), `token_id` (revocable), `iat`, `exp`.
//!
//! Every call is checked for signature, expiry and revocation. A failure answers
//! `UNAUTHENTICATED` and says nothing more.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adze_core::{Error, ErrorKind, Result, TenantId};
use adze_store::{Mutation, Store, TokenRecord};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

/// How long a token's good standing is trusted before its row is read again: the bound
/// on how late a revocation takes effect.
const REVOCATION_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// The claims of an Adze token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: TenantId,
    pub server_url: String,
    pub grpc_broadcast_address: String,
    pub token_id: Uuid,
    pub iat: i64,
    pub exp: i64,
}

/// What a new token says about where the engine is.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub tenant: TenantId,
    pub server_url: String,
    pub grpc_broadcast_address: String,
    pub expires_in: Duration,
}

/// Creates a token: its row goes into the store (so it can be revoked), and the signed JWT
/// is returned.
pub async fn create_token(store: &dyn Store, request: TokenRequest) -> Result<String> {
    let key = store
        .signing_key()
        .await
        .map_err(adze_engine::store_error)?;
    let now = adze_engine::clock::now_millis();
    let claims = Claims {
        sub: request.tenant,
        server_url: request.server_url,
        grpc_broadcast_address: request.grpc_broadcast_address,
        token_id: Uuid::new_v4(),
        iat: now / 1000,
        exp: (now / 1000).saturating_add(request.expires_in.as_secs() as i64),
    };
    store
        .commit(vec![Mutation::InsertToken(TokenRecord {
            id: claims.token_id,
            tenant_id: claims.sub,
            created_at: now,
            expires_at: claims.exp.saturating_mul(1000),
            revoked_at: None,
        })])
        .await
        .map_err(adze_engine::store_error)?;
    Ok(sign(&key, &claims))
}

fn sign(key: &[u8], claims: &Claims) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
    let signed = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(mac(key, signed.as_bytes()).finalize().into_bytes());
    format!("{signed}.{signature}")
}

fn mac(key: &[u8], message: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac
}

/// Checks tokens for the adapters.
#[derive(Clone)]
pub struct Authenticator {
    key: Arc<Vec<u8>>,
    store: Arc<dyn Store>,
    /// Tokens whose row was read recently: token id → (tenant, when checked).
    checked: Arc<Mutex<HashMap<Uuid, (TenantId, Instant)>>>,
}

fn refused() -> Error {
    Error::new(ErrorKind::Unauthenticated, "invalid or missing token")
}

impl Authenticator {
    pub async fn new(store: Arc<dyn Store>) -> Result<Self> {
        let key = store
            .signing_key()
            .await
            .map_err(adze_engine::store_error)?;
        Ok(Self {
            key: Arc::new(key),
            store,
            checked: Arc::default(),
        })
    }

    /// The tenant of an `authorization` header value (`Bearer <token>`, any case).
    pub async fn tenant(&self, authorization: Option<&str>) -> Result<TenantId> {
        let header = authorization.ok_or_else(refused)?;
        let (scheme, token) = header.trim().split_once(' ').ok_or_else(refused)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(refused());
        }
        let claims = self.verify(token.trim())?;
        if let Some((tenant, at)) = self
            .checked
            .lock()
            .expect("token cache poisoned")
            .get(&claims.token_id)
            && at.elapsed() < REVOCATION_CHECK_INTERVAL
        {
            return Ok(*tenant);
        }
        let record = self
            .store
            .find_token(claims.token_id)
            .await
            .map_err(adze_engine::store_error)?
            .ok_or_else(refused)?;
        if record.revoked_at.is_some() || record.tenant_id != claims.sub {
            self.checked
                .lock()
                .expect("token cache poisoned")
                .remove(&claims.token_id);
            return Err(refused());
        }
        self.checked
            .lock()
            .expect("token cache poisoned")
            .insert(claims.token_id, (claims.sub, Instant::now()));
        Ok(claims.sub)
    }

    /// Checks the signature and expiry, returning the claims.
    fn verify(&self, token: &str) -> Result<Claims> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(refused());
        };
        let header: serde_json::Value = decode_json(header)?;
        if header.get("alg").and_then(|alg| alg.as_str()) != Some("HS256") {
            return Err(refused());
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| refused())?;
        let signed_len = header_len(token);
        mac(&self.key, &token.as_bytes()[..signed_len])
            .verify_slice(&signature)
            .map_err(|_| refused())?;
        let claims: Claims = decode_json(payload)?;
        if claims.exp <= adze_engine::clock::now_millis() / 1000 {
            return Err(refused());
        }
        Ok(claims)
    }
}

/// The length of `header.payload`, the part the signature covers.
fn header_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| refused())?;
    serde_json::from_slice(&bytes).map_err(|_| refused())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: Uuid::new_v4(),
            server_url: "http://127.0.0.1:8080".into(),
            grpc_broadcast_address: "127.0.0.1:7070".into(),
            token_id: Uuid::new_v4(),
            iat: 0,
            exp,
        }
    }

    fn authenticator(key: &[u8]) -> Authenticator {
        let dir = std::env::temp_dir().join(format!("adze-auth-{}", Uuid::new_v4()));
        let store = adze_store::sqlite::SqliteStore::open(&dir).unwrap();
        Authenticator {
            key: Arc::new(key.to_vec()),
            store: Arc::new(store),
            checked: Arc::default(),
        }
    }

    #[tokio::test]
    async fn signature_and_expiry_are_checked() {
        let auth = authenticator(b"key");
        let far = i64::MAX / 2;
        let token = sign(b"key", &claims(far));
        assert!(
            token.starts_with("ey"),
            "the SDKs require a JWT starting with ey"
        );
        assert!(auth.verify(&token).is_ok());
        assert!(
            auth.verify(&sign(b"other key", &claims(far))).is_err(),
            "forged"
        );
        assert!(auth.verify(&sign(b"key", &claims(1))).is_err(), "expired");
        let mut tampered = token.clone();
        tampered.insert(token.find('.').unwrap() + 2, 'x');
        assert!(auth.verify(&tampered).is_err(), "tampered payload");
        assert!(auth.verify("not.a.jwt").is_err());
        assert!(auth.verify("").is_err());
    }

    #[tokio::test]
    async fn unknown_and_revoked_tokens_are_refused() {
        let auth = authenticator(b"key");
        let unknown = sign(b"key", &claims(i64::MAX / 2));
        let header = format!("Bearer {unknown}");
        assert_eq!(
            auth.tenant(Some(&header)).await.unwrap_err().kind,
            ErrorKind::Unauthenticated
        );
        assert_eq!(
            auth.tenant(None).await.unwrap_err().kind,
            ErrorKind::Unauthenticated
        );
        assert_eq!(
            auth.tenant(Some("Basic abc")).await.unwrap_err().kind,
            ErrorKind::Unauthenticated
        );
    }
}
