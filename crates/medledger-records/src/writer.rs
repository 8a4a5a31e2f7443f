//! The record writer: one thread that commits sealed versions to the vault in groups (one
//! fsync for many requests) and then submits their anchors, in order, signed by the node.
//!
//! Order matters twice. A version is durable in the vault before its anchor exists, so the
//! chain never names a ciphertext nobody holds. And versions of one record are anchored in the
//! order the vault accepted them, because one thread does both.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use medledger_node::{Node, SubmitError};
use medledger_types::{Payload, RecordAnchor, RecordId, ResourceType, TxId};
use medledger_vault::{StoredVersion, Vault};
use tokio::sync::oneshot;

use crate::RecordError;

/// Most write requests waiting for the writer: beyond this, writers are told to retry.
pub const MAX_QUEUED_WRITES: usize = 8_192;

/// Most requests committed in one vault transaction.
const MAX_WRITES_PER_COMMIT: usize = 512;

/// One request: its versions are committed and anchored together or not at all.
pub(crate) struct Write {
    pub versions: Vec<StoredVersion>,
    pub reply: oneshot::Sender<Result<Vec<TxId>, RecordError>>,
}

/// The writer's queue.
#[derive(Clone)]
pub(crate) struct Writer {
    queue: SyncSender<Write>,
}

impl Writer {
    pub fn start(vault: Arc<Vault>, node: Arc<Node>) -> Self {
        let (queue, requests) = sync_channel(MAX_QUEUED_WRITES);
        std::thread::Builder::new()
            .name("record-writer".into())
            .spawn(move || run(&vault, &node, &requests))
            .expect("the record writer thread starts");
        Self { queue }
    }

    /// Queues `versions`; the answer is their anchors' transaction ids, once the versions are
    /// durable and the anchors admitted.
    pub async fn write(&self, versions: Vec<StoredVersion>) -> Result<Vec<TxId>, RecordError> {
        let (reply, answer) = oneshot::channel();
        match self.queue.try_send(Write { versions, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(RecordError::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(RecordError::Unavailable),
        }
        answer.await.map_err(|_| RecordError::Unavailable)?
    }
}

fn run(vault: &Vault, node: &Node, requests: &Receiver<Write>) {
    while let Ok(first) = requests.recv() {
        let mut group = vec![first];
        while group.len() < MAX_WRITES_PER_COMMIT {
            match requests.try_recv() {
                Ok(write) => group.push(write),
                Err(_) => break,
            }
        }
        commit_group(vault, node, group);
    }
}

/// Commits every write of `group` that does not conflict, in one vault transaction, then
/// anchors them; answers each write.
fn commit_group(vault: &Vault, node: &Node, group: Vec<Write>) {
    let mut heads: BTreeMap<(ResourceType, RecordId), u64> = BTreeMap::new();
    let mut accepted = Vec::new();
    for write in group {
        match check_versions(vault, &mut heads, &write.versions) {
            Ok(()) => accepted.push(write),
            Err(error) => {
                let _ = write.reply.send(Err(error));
            }
        }
    }
    let versions: Vec<StoredVersion> =
        accepted.iter().flat_map(|write| write.versions.iter().cloned()).collect();
    if let Err(error) = vault.commit(&versions) {
        tracing::error!(%error, "vault commit failed");
        for write in accepted {
            let _ = write.reply.send(Err(RecordError::Vault(error.to_string())));
        }
        return;
    }
    let anchors = versions.iter().map(|version| Payload::Record(anchor_of(version))).collect();
    let mut results = node.submit_as_node(anchors).into_iter();
    let mut refused = Vec::new();
    for write in accepted {
        let answers: Vec<Result<TxId, SubmitError>> = results.by_ref().take(write.versions.len()).collect();
        let outcome: Result<Vec<TxId>, SubmitError> = answers.into_iter().collect();
        match outcome {
            Ok(ids) => {
                let _ = write.reply.send(Ok(ids));
            }
            Err(error) => refused.push((write, error)),
        }
    }
    if !refused.is_empty() {
        // The refused writes are the group's last ones (the node stops at its first refusal);
        // their versions leave the vault again.
        let versions: Vec<StoredVersion> =
            refused.iter().flat_map(|(write, _)| write.versions.clone()).collect();
        if let Err(error) = vault.remove_latest(&versions) {
            tracing::error!(%error, "could not remove versions whose anchors were refused");
        }
        for (write, error) in refused {
            let _ = write.reply.send(Err(RecordError::AnchorRefused(error.to_string())));
        }
    }
}

/// Each version must follow the vault's head, counting earlier writes of the group.
fn check_versions(
    vault: &Vault,
    heads: &mut BTreeMap<(ResourceType, RecordId), u64>,
    versions: &[StoredVersion],
) -> Result<(), RecordError> {
    let mut planned = heads.clone();
    for version in versions {
        let key = (version.resource_type, version.record);
        let head = match planned.get(&key) {
            Some(head) => Some(*head),
            None => vault.head(version.resource_type, version.record).map_err(RecordError::from)?,
        };
        let expected = head.map_or(1, |head| head + 1);
        if version.version != expected {
            return Err(RecordError::VersionConflict { current: head.unwrap_or(0) });
        }
        planned.insert(key, version.version);
    }
    *heads = planned;
    Ok(())
}

/// The anchor of a stored version.
pub(crate) fn anchor_of(version: &StoredVersion) -> RecordAnchor {
    RecordAnchor {
        resource_type: version.resource_type,
        record: version.record,
        version: version.version,
        patient: version.patient,
        ciphertext_digest: version.digest,
        author: version.author,
    }
}
