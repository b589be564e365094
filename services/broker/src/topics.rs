//! The topic registry, and CreateTopics: which topics exist and how many partitions each has.
//!
//! Topics are never deleted and never created implicitly (a Metadata request for an unknown
//! topic answers UNKNOWN_TOPIC_OR_PARTITION whatever `allow_auto_topic_creation` says).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::log::Partition;
use crate::sync::{read, write};

/// Kafka's limit on topic name length.
const MAX_NAME_LEN: usize = 249;
/// A ceiling on partitions per topic, so a typo cannot allocate millions of logs.
const MAX_PARTITIONS: i32 = 10_000;

#[derive(Debug)]
pub(crate) struct Topic {
    pub name: String,
    pub id: Uuid,
    pub partitions: Vec<Arc<Partition>>,
}

impl Topic {
    pub(crate) fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        usize::try_from(index)
            .ok()
            .and_then(|index| self.partitions.get(index))
    }
}

#[derive(Debug, Default)]
pub(crate) struct Topics {
    by_name: RwLock<HashMap<String, Arc<Topic>>>,
}

impl Topics {
    pub(crate) fn get(&self, name: &str) -> Option<Arc<Topic>> {
        read(&self.by_name).get(name).cloned()
    }

    pub(crate) fn get_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        read(&self.by_name)
            .values()
            .find(|topic| topic.id == id)
            .cloned()
    }

    /// Every topic, sorted by name.
    pub(crate) fn all(&self) -> Vec<Arc<Topic>> {
        let mut topics: Vec<_> = read(&self.by_name).values().cloned().collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        topics
    }

    /// The partition, if both the topic and the partition exist.
    pub(crate) fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.get(topic)
            .and_then(|topic| topic.partition(index).cloned())
    }

    /// Creates a topic; `validate_only` checks without creating.
    pub(crate) fn create(
        &self,
        name: &str,
        partitions: i32,
        validate_only: bool,
    ) -> Result<(), ResponseError> {
        if !is_valid_name(name) {
            return Err(ResponseError::InvalidTopicException);
        }
        if !(1..=MAX_PARTITIONS).contains(&partitions) {
            return Err(ResponseError::InvalidPartitions);
        }
        let mut topics = write(&self.by_name);
        if topics.contains_key(name) {
            return Err(ResponseError::TopicAlreadyExists);
        }
        if validate_only {
            return Ok(());
        }
        let topic = Topic {
            name: name.to_owned(),
            id: Uuid::new_v4(),
            partitions: (0..partitions)
                .map(|_| Arc::new(Partition::new()))
                .collect(),
        };
        topics.insert(name.to_owned(), Arc::new(topic));
        drop(topics);
        tracing::info!(topic = name, partitions, "topic created");
        Ok(())
    }

    /// CreateTopics (v2-4): `num_partitions` -1 means the broker default; the replication factor
    /// is accepted and ignored (there is one replica).
    pub(crate) fn handle_create(
        &self,
        request: &CreateTopicsRequest,
        default_partitions: i32,
    ) -> CreateTopicsResponse {
        let topics = request
            .topics
            .iter()
            .map(|creatable| {
                let partitions = if !creatable.assignments.is_empty() {
                    i32::try_from(creatable.assignments.len()).unwrap_or(i32::MAX)
                } else if creatable.num_partitions == -1 {
                    default_partitions
                } else {
                    creatable.num_partitions
                };
                let outcome = self.create(&creatable.name.0, partitions, request.validate_only);
                let mut result = CreatableTopicResult::default().with_name(creatable.name.clone());
                if let Err(error) = outcome {
                    result = result
                        .with_error_code(error.code())
                        .with_error_message(Some(StrBytes::from_string(error.to_string())));
                }
                result
            })
            .collect();
        CreateTopicsResponse::default().with_topics(topics)
    }
}

/// Kafka's rule: 1-249 characters from `[a-zA-Z0-9._-]`, and not `.` or `..`.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_create_of_the_same_name_already_exists() {
        let topics = Topics::default();
        assert_eq!(topics.create("orders", 4, false), Ok(()));
        assert_eq!(
            topics.create("orders", 4, false),
            Err(ResponseError::TopicAlreadyExists)
        );
        assert_eq!(topics.get("orders").map(|t| t.partitions.len()), Some(4));
    }

    #[test]
    fn invalid_names_and_partition_counts_are_refused() {
        let topics = Topics::default();
        assert_eq!(
            topics.create("a/b", 1, false),
            Err(ResponseError::InvalidTopicException)
        );
        assert_eq!(
            topics.create("", 1, false),
            Err(ResponseError::InvalidTopicException)
        );
        assert_eq!(
            topics.create("ok", 0, false),
            Err(ResponseError::InvalidPartitions)
        );
    }

    #[test]
    fn validate_only_creates_nothing() {
        let topics = Topics::default();
        assert_eq!(topics.create("orders", 1, true), Ok(()));
        assert!(topics.get("orders").is_none());
    }
}
