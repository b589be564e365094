//! The user directory: whether a token's subject is a user.
//!
//! A token is signed with the gateway's secret, but a signature only proves who minted it, not
//! that its subject exists (`gateway mint-token --user anything` mints one). Users are the
//! wallets payment was seeded with, so the first request of each subject asks payment
//! (`GET /wallets/{user}`): a wallet → remembered for the life of the process (users are never
//! deleted); none → 401. When payment cannot answer, the request fails like any other upstream
//! failure (502/503/504): a subject never confirmed is not let in.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use axum::http::StatusCode;

use faultline_kit::http::ApiError;

use crate::{auth::unauthorized, domain::UserId, upstream::Upstream};

/// The subjects confirmed as users so far.
#[derive(Debug, Clone, Default)]
pub struct Users {
    known: Arc<Mutex<HashSet<String>>>,
}

impl Users {
    /// The user when `subject` is one; 401 when it is not; the upstream's failure when payment
    /// cannot say.
    pub async fn check(&self, subject: &str, payment: &Upstream) -> Result<UserId, ApiError> {
        let not_a_user = || {
            tracing::info!(auth.refused = true, "token subject is not a user");
            unauthorized("the token's subject is not a user")
        };
        let user = UserId::parse(subject).map_err(|_| not_a_user())?;
        if self.lock().contains(subject) {
            return Ok(user);
        }
        let answer = payment.get(&format!("/wallets/{user}")).await?;
        match answer.status {
            StatusCode::OK => {
                self.lock().insert(subject.to_owned());
                Ok(user)
            }
            StatusCode::NOT_FOUND => Err(not_a_user()),
            status => Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!("payment answered {status} when asked whether the user exists"),
            )),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
