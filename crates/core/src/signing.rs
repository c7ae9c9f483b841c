//! Request signing: the HS256 JWT sent as `Upstash-Signature`, and the signing keys.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use jsonwebtoken::{EncodingKey, Header};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::random_token;

/// How long a signature stays valid.
const SIGNATURE_LIFETIME_SECS: i64 = 300;

/// A signing key such as `sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r`; the HMAC key is the UTF-8
/// bytes of the whole string. Never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SigningKey(String);

impl SigningKey {
    pub fn generate() -> Self {
        Self(format!("sig_{}", random_token(28)))
    }

    /// Accepts any non-empty key without whitespace.
    pub fn parse(key: &str) -> Result<Self, String> {
        if key.is_empty() || key.chars().any(char::is_whitespace) {
            return Err("a signing key must be non-empty and contain no whitespace".into());
        }
        Ok(Self(key.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

/// The public QStash dev-server credentials (user 1, `qstash-api.md` §13): SDK code
/// written for that server (including the TypeScript SDK's `QSTASH_DEV` health check)
/// works unchanged against a fresh qpost that uses them.
pub const DEV_TOKEN: &str =
    "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0=";
pub const DEV_CURRENT_SIGNING_KEY: &str = "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r";
pub const DEV_NEXT_SIGNING_KEY: &str = "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs";

/// The current key (used to sign) and the next one (receivers accept both).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeys {
    pub current: SigningKey,
    pub next: SigningKey,
}

impl SigningKeys {
    /// The dev-server signing keys, [`DEV_CURRENT_SIGNING_KEY`] and [`DEV_NEXT_SIGNING_KEY`].
    pub fn dev() -> Self {
        Self {
            current: SigningKey(DEV_CURRENT_SIGNING_KEY.into()),
            next: SigningKey(DEV_NEXT_SIGNING_KEY.into()),
        }
    }

    /// Rotation as the hosted service does it: next becomes current, a fresh key becomes next.
    pub fn rotated(&self) -> Self {
        Self {
            current: self.next.clone(),
            next: SigningKey::generate(),
        }
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: String,
    body: String,
}

/// base64url (with padding) of the SHA-256 of `body`: the `body` claim.
pub fn body_hash(body: &[u8]) -> String {
    URL_SAFE.encode(Sha256::digest(body))
}

/// Signs a request to `url` carrying `body` at `now_secs`. `nbf` is 0 so receivers with a
/// skewed clock still accept the token.
pub fn sign(key: &SigningKey, url: &str, body: &[u8], now_secs: i64) -> String {
    let claims = Claims {
        iss: "Upstash",
        sub: url,
        exp: now_secs + SIGNATURE_LIFETIME_SECS,
        iat: now_secs,
        nbf: 0,
        jti: format!("jwt_{}", random_token(28)),
        body: body_hash(body),
    };
    let key = EncodingKey::from_secret(key.expose().as_bytes());
    // HS256 over plain claims cannot fail: serialisation of these fields is infallible.
    jsonwebtoken::encode(&Header::default(), &claims, &key).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    #[derive(Deserialize)]
    struct Decoded {
        iss: String,
        sub: String,
        exp: i64,
        iat: i64,
        nbf: i64,
        jti: String,
        body: String,
    }

    #[test]
    fn signature_carries_exactly_the_documented_claims() {
        let key = SigningKey::parse("sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r").unwrap();
        let token = sign(&key, "https://example.com/a?b=c", b"hello", 1_700_000_000);
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["iss", "sub", "exp", "nbf"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &DecodingKey::from_secret(key.expose().as_bytes()),
            &validation,
        )
        .unwrap();
        let obj = data.claims.as_object().unwrap();
        let mut names: Vec<_> = obj.keys().cloned().collect();
        names.sort();
        assert_eq!(names, ["body", "exp", "iat", "iss", "jti", "nbf", "sub"]);
        let c: Decoded = serde_json::from_value(data.claims).unwrap();
        assert_eq!(c.iss, "Upstash");
        assert_eq!(c.sub, "https://example.com/a?b=c");
        assert_eq!((c.iat, c.exp, c.nbf), (1_700_000_000, 1_700_000_300, 0));
        assert!(c.jti.starts_with("jwt_"));
        // SHA-256("hello") in base64url with padding.
        assert_eq!(c.body, "LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=");
        assert_eq!(data.header.alg, jsonwebtoken::Algorithm::HS256);
        assert_eq!(data.header.typ.as_deref(), Some("JWT"));
    }

    #[test]
    fn a_token_signed_with_another_key_does_not_verify() {
        let key = SigningKey::generate();
        let token = sign(&key, "u", b"", 1);
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.validate_exp = false;
        let other = SigningKey::generate();
        let res = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &DecodingKey::from_secret(other.expose().as_bytes()),
            &validation,
        );
        assert!(res.is_err());
    }

    #[test]
    fn the_dev_keys_are_valid_keys() {
        let dev = SigningKeys::dev();
        assert_eq!(
            dev.current,
            SigningKey::parse(DEV_CURRENT_SIGNING_KEY).unwrap()
        );
        assert_eq!(dev.next, SigningKey::parse(DEV_NEXT_SIGNING_KEY).unwrap());
    }

    #[test]
    fn rotation_promotes_next_and_debug_hides_keys() {
        let keys = SigningKeys {
            current: SigningKey::generate(),
            next: SigningKey::generate(),
        };
        let rotated = keys.rotated();
        assert_eq!(rotated.current, keys.next);
        assert_ne!(rotated.next, keys.next);
        assert!(!format!("{keys:?}").contains("sig_"));
    }
}
