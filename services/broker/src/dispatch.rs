//! One request in, at most one response out: decode the header, route by API key to its
//! handler, encode the response with the header version the request's version calls for.
//!
//! A request this broker cannot decode or does not implement is a [`ProtocolError`]: the
//! connection is closed (that is what Kafka does too), the broker carries on.

use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, CreateTopicsRequest, DescribeGroupsRequest, FetchRequest,
    FindCoordinatorRequest, HeartbeatRequest, InitProducerIdRequest, JoinGroupRequest,
    LeaveGroupRequest, ListGroupsRequest, ListOffsetsRequest, MetadataRequest, OffsetCommitRequest,
    OffsetFetchRequest, ProduceRequest, RequestHeader, ResponseHeader, SyncGroupRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::broker::Broker;
use crate::{fetch, group, list_offsets, metadata, offsets, produce, versions};

/// Why a connection is closed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProtocolError {
    #[error("request of {0} bytes is too short for a header")]
    Truncated(usize),
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("{api:?} v{version} is not implemented")]
    Unsupported { api: ApiKey, version: i16 },
    #[error("cannot decode {api:?} v{version}: {reason}")]
    Decode {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("cannot encode the {api:?} v{version} response: {reason}")]
    Encode {
        api: ApiKey,
        version: i16,
        reason: String,
    },
}

/// Handles one request frame (without its length prefix); `None` when no response is due
/// (Produce with acks 0).
pub(crate) async fn handle(
    broker: &Broker,
    frame: Bytes,
    peer: SocketAddr,
) -> Result<Option<Bytes>, ProtocolError> {
    if frame.len() < 8 {
        return Err(ProtocolError::Truncated(frame.len()));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api = ApiKey::try_from(raw_key).map_err(|()| ProtocolError::UnknownApiKey(raw_key))?;
    if !versions::is_supported(api, version) {
        if api == ApiKey::ApiVersions {
            // KIP-511: answer an unknown ApiVersions version in v0 so the client can retry lower.
            // The correlation id sits at the same place in every header version.
            let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
            return encode(api, 0, correlation_id, &versions::response(false)).map(Some);
        }
        return Err(ProtocolError::Unsupported { api, version });
    }
    let mut body = frame;
    let header = RequestHeader::decode(&mut body, api.request_header_version(version))
        .map_err(|error| decode_error(api, version, &error))?;
    let correlation_id = header.correlation_id;
    tracing::trace!(?api, version, correlation_id, client = ?header.client_id, "request");

    macro_rules! decode {
        ($request:ty) => {
            <$request>::decode(&mut body, version)
                .map_err(|error| decode_error(api, version, &error))?
        };
    }
    macro_rules! respond {
        ($response:expr) => {
            encode(api, version, correlation_id, &$response).map(Some)
        };
    }

    match api {
        ApiKey::ApiVersions => {
            let _request = decode!(ApiVersionsRequest);
            respond!(versions::response(true))
        }
        ApiKey::Metadata => respond!(metadata::handle_metadata(broker, &decode!(MetadataRequest))),
        ApiKey::FindCoordinator => {
            respond!(metadata::handle_find_coordinator(
                broker,
                &decode!(FindCoordinatorRequest)
            ))
        }
        ApiKey::CreateTopics => respond!(broker.topics.handle_create(
            &decode!(CreateTopicsRequest),
            broker.config.default_partitions
        )),
        ApiKey::InitProducerId => {
            respond!(broker.producer_ids.handle(&decode!(InitProducerIdRequest)))
        }
        ApiKey::Produce => match produce::handle(broker, &decode!(ProduceRequest)) {
            Some(response) => respond!(response),
            None => Ok(None),
        },
        ApiKey::Fetch => respond!(fetch::handle(broker, &decode!(FetchRequest)).await),
        ApiKey::ListOffsets => respond!(list_offsets::handle(broker, &decode!(ListOffsetsRequest))),
        ApiKey::JoinGroup => {
            let client_id = header.client_id.as_deref().unwrap_or("client").to_owned();
            let client_host = format!("/{}", peer.ip());
            let request = decode!(JoinGroupRequest);
            let response =
                group::handle_join(&broker.groups, request, version, &client_id, &client_host);
            respond!(response.await)
        }
        ApiKey::SyncGroup => {
            respond!(group::handle_sync(&broker.groups, decode!(SyncGroupRequest)).await)
        }
        ApiKey::Heartbeat => respond!(group::handle_heartbeat(
            &broker.groups,
            &decode!(HeartbeatRequest)
        )),
        ApiKey::LeaveGroup => respond!(group::handle_leave(
            &broker.groups,
            &decode!(LeaveGroupRequest),
            version
        )),
        ApiKey::ListGroups => {
            respond!(group::handle_list_groups(
                &broker.groups,
                &decode!(ListGroupsRequest),
                version
            ))
        }
        ApiKey::DescribeGroups => respond!(group::handle_describe_groups(
            &broker.groups,
            &decode!(DescribeGroupsRequest),
            version
        )),
        ApiKey::OffsetCommit => respond!(offsets::handle_commit(
            broker,
            &decode!(OffsetCommitRequest)
        )),
        ApiKey::OffsetFetch => {
            respond!(offsets::handle_fetch(broker, &decode!(OffsetFetchRequest)))
        }
        _ => Err(ProtocolError::Unsupported { api, version }),
    }
}

fn decode_error(api: ApiKey, version: i16, error: &impl std::fmt::Display) -> ProtocolError {
    ProtocolError::Decode {
        api,
        version,
        reason: error.to_string(),
    }
}

/// Frames a response: length prefix, response header, body.
fn encode(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &impl Encodable,
) -> Result<Bytes, ProtocolError> {
    let failed = |error: &dyn std::fmt::Display| ProtocolError::Encode {
        api,
        version,
        reason: error.to_string(),
    };
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = api.response_header_version(version);
    let size = header
        .compute_size(header_version)
        .map_err(|error| failed(&error))?
        + response
            .compute_size(version)
            .map_err(|error| failed(&error))?;
    let mut frame = BytesMut::with_capacity(4 + size);
    frame.put_i32(i32::try_from(size).unwrap_or(i32::MAX));
    header
        .encode(&mut frame, header_version)
        .map_err(|error| failed(&error))?;
    response
        .encode(&mut frame, version)
        .map_err(|error| failed(&error))?;
    Ok(frame.freeze())
}
