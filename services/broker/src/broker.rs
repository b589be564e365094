//! The shared state every request handler receives: configuration, topics, producer ids and the
//! group coordinator. One `Arc<Broker>` per `serve` call; nothing outlives it.

use std::io;

use kafka_protocol::error::ResponseError;

use crate::config::BrokerConfig;
use crate::group::Coordinator;
use crate::idempotence::ProducerIds;
use crate::topics::Topics;

#[derive(Debug)]
pub(crate) struct Broker {
    pub config: BrokerConfig,
    pub topics: Topics,
    pub producer_ids: ProducerIds,
    pub groups: Coordinator,
}

impl Broker {
    /// Builds the state and creates the configured topics; an invalid topic is a start-up
    /// error, a repeated one is created once.
    pub(crate) fn new(config: BrokerConfig) -> io::Result<Self> {
        let topics = Topics::default();
        for (name, partitions) in &config.topics {
            match topics.create(name, *partitions, false) {
                Ok(()) | Err(ResponseError::TopicAlreadyExists) => {}
                Err(error) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "cannot create topic {name:?} with {partitions} partitions: {error}"
                        ),
                    ));
                }
            }
        }
        Ok(Self {
            config,
            topics,
            producer_ids: ProducerIds::new(),
            groups: Coordinator::default(),
        })
    }
}
