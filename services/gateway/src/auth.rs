//! Bearer tokens and the per-user rate limit.
//!
//! Tokens are JWTs signed with HMAC-SHA256 (the `jsonwebtoken` crate): `sub` is the user id,
//! `exp` the expiry, `nbf` (optional) when it starts to count. [`AuthUser`] is the extractor
//! every protected handler takes: no token, another scheme, a malformed, oversized, forged
//! (`alg: none`, another key), expired or not-yet-valid one, or one whose subject is not a user
//! ([`crate::users`]) → 401 with `WWW-Authenticate: Bearer`; over the user's rate → 429 with
//! `Retry-After`. [`Protected`] documents those answers for every handler that takes it.

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use axum::{
    extract::FromRequestParts,
    http::{HeaderValue, StatusCode, header, request::Parts},
};
use faultline_kit::http::ApiError;
use governor::{DefaultKeyedRateLimiter, Quota, clock::Clock as _};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::{configuration::RateLimitSettings, domain::UserId, routes::AppState};

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    iat: u64,
    exp: u64,
}

/// The longest token looked at.
const MAX_TOKEN_BYTES: usize = 4096;

/// Mints and verifies tokens with one secret.
#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl Tokens {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    /// A token for `user_id`, valid for the configured lifetime.
    pub fn mint(&self, user_id: &str) -> anyhow::Result<String> {
        let iat = now_secs();
        let claims = Claims {
            sub: user_id.to_owned(),
            iat,
            exp: iat + self.ttl.as_secs(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// Any claims signed with this key (HS256): for tests that need tokens `mint` never makes
    /// (expired, not yet valid, without a subject).
    pub fn sign_claims(&self, claims: &serde_json::Value) -> anyhow::Result<String> {
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &self.encoding,
        )?)
    }

    /// The user a token was minted for, or why it is refused.
    pub fn verify(&self, token: &str) -> Result<String, String> {
        // Ours are ~200 bytes; a huge one is refused before any decoding work.
        if token.len() > MAX_TOKEN_BYTES {
            return Err(format!(
                "the token is {} bytes, more than {MAX_TOKEN_BYTES}",
                token.len()
            ));
        }
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims.sub)
            .map_err(|e| e.to_string())
    }
}

/// The per-user limiter.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
}

impl RateLimiter {
    pub fn new(settings: &RateLimitSettings) -> Self {
        let rate = NonZeroU32::new(settings.per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(settings.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: Arc::new(DefaultKeyedRateLimiter::keyed(
                Quota::per_second(rate).allow_burst(burst),
            )),
        }
    }

    /// `Err(wait)` when `user` is over the limit.
    pub fn check(&self, user: &str) -> Result<(), Duration> {
        self.limiter
            .check_key(&user.to_owned())
            .map_err(|not_until| {
                not_until.wait_time_from(governor::clock::DefaultClock::default().now())
            })
    }
}

pub(crate) fn unauthorized(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, detail)
        .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
}

/// The authenticated user of a request (the token's subject), within their rate limit.
#[derive(Debug, Clone)]
pub struct AuthUser(pub UserId);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("a bearer token is required"))?
            .to_str()
            .map_err(|_| unauthorized("the Authorization header is not ASCII"))?;
        // The scheme is case-insensitive (RFC 9110 §11.1).
        let token = value
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case("bearer "))
            .map(|_| &value[7..])
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <token>`"))?;
        let user = state.tokens.verify(token.trim()).map_err(|reason| {
            tracing::info!(auth.refused = true, %reason, "token refused");
            unauthorized(format!("invalid token: {reason}"))
        })?;
        tracing::Span::current().record("user_id", user.as_str());
        if let Err(wait) = state.rate_limiter.check(&user) {
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            tracing::info!(
                rate_limited = true,
                retry_after_secs = seconds,
                "rate limit exceeded"
            );
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests; slow down",
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from(seconds)));
        }
        let user = state.users.check(&user, &state.upstreams.payment).await?;
        Ok(AuthUser(user))
    }
}

/// The answers [`AuthUser`] and the upstream calls behind every protected handler add to its own,
/// for its `#[utoipa::path(responses(…))]` (bodies and headers are filled in by the kit).
pub struct Protected;

impl utoipa::IntoResponses for Protected {
    fn responses() -> std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
    > {
        use utoipa::openapi::{RefOr, response::Response};
        [
            (401, "No bearer token, or a bad, expired or not yet valid one, or its subject is not a user"),
            (429, "Over the user's rate limit; see Retry-After"),
            (502, "A service behind the gateway is unreachable"),
            (503, "A service behind the gateway is unavailable (circuit open, saturated, overloaded); see Retry-After"),
            (504, "A service behind the gateway did not answer in time"),
        ]
        .into_iter()
        .map(|(status, description)| (status.to_string(), RefOr::T(Response::new(description))))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_verifies_to_its_user() {
        let tokens = Tokens::new(b"secret", Duration::from_secs(60));
        let token = tokens.mint("user-1").expect("mint");
        assert_eq!(tokens.verify(&token), Ok("user-1".to_owned()));
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let token = Tokens::new(b"other", Duration::from_secs(60))
            .mint("user-1")
            .expect("mint");
        assert!(
            Tokens::new(b"secret", Duration::from_secs(60))
                .verify(&token)
                .is_err()
        );
    }

    #[test]
    fn an_expired_token_is_refused() {
        let tokens = Tokens::new(b"secret", Duration::from_secs(0));
        let token = tokens.mint("user-1").expect("mint");
        std::thread::sleep(Duration::from_millis(1100));
        assert!(tokens.verify(&token).is_err());
    }

    #[test]
    fn a_token_not_valid_yet_is_refused() {
        let tokens = Tokens::new(b"secret", Duration::from_secs(60));
        let claims =
            serde_json::json!({"sub": "user-1", "exp": now_secs() + 600, "nbf": now_secs() + 300});
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &tokens.encoding)
            .expect("encode");
        let reason = tokens.verify(&token).expect_err("not valid yet");
        assert!(reason.contains("Immature"), "{reason}");
    }

    #[test]
    fn an_oversized_token_is_refused_before_decoding() {
        let tokens = Tokens::new(b"secret", Duration::from_secs(60));
        let reason = tokens
            .verify(&"a".repeat(100 * 1024))
            .expect_err("too long");
        assert!(reason.contains("more than 4096"), "{reason}");
    }

    #[test]
    fn garbage_is_refused() {
        assert!(
            Tokens::new(b"secret", Duration::from_secs(60))
                .verify("not.a.jwt")
                .is_err()
        );
    }

    #[test]
    fn the_rate_limit_refuses_past_the_burst_and_says_how_long_to_wait() {
        let limiter = RateLimiter::new(&RateLimitSettings {
            per_second: 1,
            burst: 3,
        });
        for _ in 0..3 {
            assert!(limiter.check("u").is_ok());
        }
        let wait = limiter.check("u").expect_err("over the burst");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(limiter.check("someone-else").is_ok(), "limits are per user");
    }
}
