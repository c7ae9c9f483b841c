//! An independent verifier of `Upstash-Signature`, written from the contract
//! (`qstash-api.md` §4.1) with the `jsonwebtoken` crate, sharing no code with qpost's
//! signer: HS256 keyed with the UTF-8 bytes of the signing key, issuer `Upstash`, `sub` the
//! destination URL, `body` the base64url SHA-256 of the raw body.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::receiver::Delivery;

/// Checks `delivery`'s signature with `key` for `url`, at `now_ms` (the stack's clock,
/// which a test may have moved ahead); returns the claims, panicking with the reason.
pub fn assert_signed(delivery: &Delivery, key: &str, url: &str, now_ms: i64) -> Value {
    let token = delivery
        .header("upstash-signature")
        .expect("the request carries Upstash-Signature");
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&["Upstash"]);
    validation.set_required_spec_claims(&["iss", "sub", "exp", "nbf"]);
    // Time claims are checked below against the stack's clock.
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_secret(key.as_bytes()),
        &validation,
    )
    .unwrap_or_else(|e| panic!("signature rejected: {e}"))
    .claims;
    assert_eq!(claims["sub"], url, "sub names the destination");
    let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(&delivery.body));
    let actual = claims["body"].as_str().expect("a body claim");
    assert_eq!(actual.trim_end_matches('='), expected, "body claim");
    let now = now_ms / 1000;
    let iat = claims["iat"].as_i64().expect("numeric iat");
    let exp = claims["exp"].as_i64().expect("numeric exp");
    assert!(
        (now - 60..=now + 5).contains(&iat),
        "iat {iat} is not about {now}"
    );
    assert!(
        exp > now && exp <= iat + 3600,
        "exp {exp} should follow iat {iat}"
    );
    claims
}
