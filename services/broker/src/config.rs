//! What the embedding process chooses about the broker: its advertised address and its topics.

/// How the broker presents itself and which topics exist from the start.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Host clients are told to connect to (Metadata, FindCoordinator).
    pub advertised_host: String,
    /// Port clients are told to connect to; normally the listener's own port.
    pub advertised_port: u16,
    /// This node's id; 1 unless there is a reason to differ.
    pub node_id: i32,
    /// Partitions of a topic created without a count (CreateTopics with -1).
    pub default_partitions: i32,
    /// Topics created at start, with their partition counts.
    pub topics: Vec<(String, i32)>,
}
