//! The record writer: one thread that commits sealed versions to the vault in groups (one
//! fsync for many requests) and then submits their anchors, in order, signed by the node.
//!
//! Order matters twice. A version is durable in the vault before its anchor exists, so the
//! chain never names a ciphertext nobody holds. And versions of one record are anchored in the
//! order the vault accepted them, because one thread does both.
//!
//! A node that stops between the two steps leaves versions in the vault that the chain does
//! not name. Before it takes any write, the writer anchors such versions again (the anchor
//! is a function of the stored version, so it is the same anchor); if another copy of one is
//! still pending elsewhere, whichever a block takes second is rejected there, harmlessly.

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

/// Records read per vault page while looking for versions the chain does not name.
const RECONCILE_PAGE_RECORDS: usize = 1_024;

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
    match reanchor_unnamed_versions(vault, node) {
        Ok(Reanchored { anchored: 0, refused: 0 }) => {}
        Ok(Reanchored { anchored, refused }) => {
            tracing::warn!(
                anchored,
                refused,
                "versions in the vault the chain did not name were anchored again"
            );
        }
        Err(error) => tracing::error!(%error, "could not look for versions the chain does not name"),
    }
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

/// What [`reanchor_unnamed_versions`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reanchored {
    /// Versions whose anchors were admitted again.
    anchored: usize,
    /// Versions whose anchors were refused: they stay in the vault (never served to other
    /// organisations, who need the anchor), and the record takes no update until an operator
    /// looks; removing them could drop a version the rest of the network already committed.
    refused: usize,
}

/// Finds versions in the vault above their record's head on chain (left by a stop between
/// the vault commit and the anchor) and submits their anchors again, in version order.
fn reanchor_unnamed_versions(vault: &Vault, node: &Node) -> Result<Reanchored, RecordError> {
    let mut done = Reanchored { anchored: 0, refused: 0 };
    for &resource_type in ResourceType::ALL {
        let mut after = None;
        loop {
            let page = vault.list(resource_type, after, RECONCILE_PAGE_RECORDS)?;
            for &(record, vault_head) in &page {
                let chain_head = node
                    .with_chain(|chain| chain.record(resource_type, &record))
                    .map_or(0, |head| head.version);
                if vault_head <= chain_head {
                    continue;
                }
                let mut anchors = Vec::new();
                for version in chain_head + 1..=vault_head {
                    let stored = vault.get(resource_type, record, version)?.ok_or_else(|| {
                        RecordError::Vault(format!("version {version} below the vault's head is missing"))
                    })?;
                    anchors.push(Payload::Record(anchor_of(&stored)));
                }
                for result in node.submit_as_node(anchors) {
                    match result {
                        Ok(_) => done.anchored += 1,
                        Err(error) => {
                            tracing::error!(
                                %resource_type,
                                version = vault_head,
                                %error,
                                "an unnamed version's anchor was refused"
                            );
                            done.refused += 1;
                        }
                    }
                }
            }
            match page.last() {
                Some(&(record, _)) if page.len() == RECONCILE_PAGE_RECORDS => after = Some(record),
                _ => break,
            }
        }
    }
    Ok(done)
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
