//! The ApiVersions table: exactly the APIs this broker implements, each with the version range
//! its handler supports.
//!
//! The ranges are chosen against librdkafka 2.12.1 (it picks the highest version both sides
//! support) and kafka-protocol 0.18 (which encodes every version listed):
//! - Fetch stops at 12: v13+ name topics by id only.
//! - OffsetFetch stops at 7: v8 is the multi-group form, which librdkafka does not need.
//! - OffsetForLeaderEpoch is deliberately absent, so librdkafka skips leader-epoch validation
//!   (there is one leader and its epoch is always 0).
//! - ConsumerGroupHeartbeat (KIP-848) is absent, so librdkafka uses the classic protocol.
//!
//! An ApiVersions request of a version we do not know is answered in v0 with
//! UNSUPPORTED_VERSION and the table, as KIP-511 asks, so the client can retry lower.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};

/// `(api, min version, max version)` of every implemented API.
pub(crate) const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 1, 12),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::FindCoordinator, 0, 2),
    (ApiKey::JoinGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 3),
    (ApiKey::LeaveGroup, 0, 3),
    (ApiKey::SyncGroup, 0, 3),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::DescribeGroups, 0, 4),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 4),
    (ApiKey::InitProducerId, 0, 4),
];

/// Whether `version` of `key` is implemented.
pub(crate) fn is_supported(key: ApiKey, version: i16) -> bool {
    SUPPORTED
        .iter()
        .any(|&(supported, min, max)| supported == key && (min..=max).contains(&version))
}

/// The ApiVersions response; `known` is false when the request's own version is unsupported.
pub(crate) fn response(known: bool) -> ApiVersionsResponse {
    let api_keys = SUPPORTED
        .iter()
        .map(|&(key, min, max)| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect();
    let error = if known {
        0
    } else {
        ResponseError::UnsupportedVersion.code()
    };
    ApiVersionsResponse::default()
        .with_error_code(error)
        .with_api_keys(api_keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_advertised_range_is_one_kafka_protocol_can_encode() {
        for &(key, min, max) in SUPPORTED {
            let valid = key.valid_versions();
            assert!(min <= max, "{key:?}");
            assert!(
                valid.min <= min && max <= valid.max,
                "{key:?} {min}..{max} outside {valid}"
            );
        }
    }

    #[test]
    fn offset_for_leader_epoch_is_not_advertised() {
        assert!(!is_supported(ApiKey::OffsetForLeaderEpoch, 2));
    }
}
