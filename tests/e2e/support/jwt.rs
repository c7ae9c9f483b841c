//! An independent verifier of `Upstash-Signature`, written from the contract (§4.1)
//! with the `jsonwebtoken` crate, sharing no code with qpost's signer.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::now_ms;

/// Verifies `token` as QStash receivers do: HS256 keyed with the UTF-8 bytes of `key`,
/// issuer `Upstash`, `sub` equal to `url`, unexpired, and the `body` claim equal to the
/// base64url SHA-256 of the raw body (padding ignored). Returns the claims.
pub fn verify(token: &str, key: &str, url: &str, body: &[u8]) -> Result<Value, String> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&["Upstash"]);
    validation.set_required_spec_claims(&["iss", "sub", "exp", "nbf"]);
    validation.validate_nbf = true;
    let data = jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_secret(key.as_bytes()),
        &validation,
    )
    .map_err(|e| format!("signature rejected: {e}"))?;
    let claims = data.claims;
    if claims["sub"] != url {
        return Err(format!("sub is {}, expected {url:?}", claims["sub"]));
    }
    let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(body));
    let actual = claims["body"]
        .as_str()
        .ok_or("no body claim")?
        .trim_end_matches('=');
    if actual != expected {
        return Err(format!(
            "body claim {actual:?} does not match the body hash {expected:?}"
        ));
    }
    Ok(claims)
}

/// [`verify`], panicking with the reason; also checks the claims the PyJWT, Go and JS
/// receivers need: `iat`, `jti`, an `exp` in the near future and no non-empty `aud`.
pub fn assert_signed(token: Option<&str>, key: &str, url: &str, body: &[u8]) -> Value {
    let token = token.expect("the request carries Upstash-Signature");
    let claims = verify(token, key, url, body).unwrap_or_else(|e| panic!("{e}"));
    let now = now_ms() / 1000;
    let iat = claims["iat"].as_i64().expect("numeric iat");
    let exp = claims["exp"].as_i64().expect("numeric exp");
    assert!(claims["nbf"].is_i64(), "numeric nbf: {claims}");
    assert!(
        (now - 60..=now + 5).contains(&iat),
        "iat {iat} is not about now ({now})"
    );
    assert!(
        exp > now && exp <= iat + 3600,
        "exp {exp} should be shortly after iat {iat}"
    );
    assert!(
        claims["jti"].as_str().is_some_and(|j| !j.is_empty()),
        "jti: {claims}"
    );
    assert!(
        claims.get("aud").is_none_or(|a| a == ""),
        "a non-empty aud breaks PyJWT: {claims}"
    );
    claims
}
