//! The bounded pool of verified transactions waiting for a block.

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;

use medledger_crypto::PublicKey;
use medledger_state::VerifiedTx;
use medledger_types::{Transaction, TxId};

use crate::node::SubmitError;

/// How far ahead of its next nonce a signer may queue transactions: enough for a client that
/// pipelines submissions, small enough that one signer cannot fill the pool with transactions
/// that can never execute.
pub const MAX_NONCE_AHEAD: u64 = 4_096;

/// Capacity of the pool.
#[derive(Debug, Clone, Copy)]
pub struct MempoolLimits {
    /// Most transactions held.
    pub max_txs: usize,
    /// Most encoded bytes held.
    pub max_bytes: usize,
}

/// Verified transactions by signer and nonce.
pub struct Mempool {
    limits: MempoolLimits,
    by_signer: BTreeMap<PublicKey, BTreeMap<u64, Arc<VerifiedTx>>>,
    ids: HashSet<TxId>,
    bytes: usize,
    /// Signer after which the next block starts selecting, so no signer is always first.
    cursor: Option<PublicKey>,
}

impl Mempool {
    /// An empty pool.
    #[must_use]
    pub fn new(limits: MempoolLimits) -> Self {
        Self { limits, by_signer: BTreeMap::new(), ids: HashSet::new(), bytes: 0, cursor: None }
    }

    /// Number of transactions held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the pool is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether `id` is waiting here.
    #[must_use]
    pub fn contains(&self, id: &TxId) -> bool {
        self.ids.contains(id)
    }

    /// The nonce after the signer's queued contiguous run starting at `next_nonce`.
    #[must_use]
    pub fn pending_nonce(&self, signer: &PublicKey, next_nonce: u64) -> u64 {
        let mut expected = next_nonce;
        if let Some(queued) = self.by_signer.get(signer) {
            for nonce in queued.range(next_nonce..).map(|(nonce, _)| *nonce) {
                if nonce != expected {
                    break;
                }
                expected += 1;
            }
        }
        expected
    }

    /// Adds a transaction whose signer's next nonce in the state is `next_nonce`.
    pub fn insert(&mut self, tx: VerifiedTx, next_nonce: u64) -> Result<(), SubmitError> {
        let body = &tx.tx().body;
        if body.nonce < next_nonce {
            return Err(SubmitError::NonceReplayed { expected: next_nonce });
        }
        if body.nonce - next_nonce >= MAX_NONCE_AHEAD {
            return Err(SubmitError::NonceTooFarAhead { expected: next_nonce, max_ahead: MAX_NONCE_AHEAD });
        }
        if self.ids.contains(&tx.id()) {
            return Err(SubmitError::AlreadyPending);
        }
        let queued = self.by_signer.get(&body.signer);
        if queued.is_some_and(|queued| queued.contains_key(&body.nonce)) {
            return Err(SubmitError::NonceReplayed {
                expected: self.pending_nonce(&body.signer, next_nonce),
            });
        }
        if self.ids.len() >= self.limits.max_txs || self.bytes + tx.encoded().len() > self.limits.max_bytes {
            return Err(SubmitError::MempoolFull { capacity: self.limits.max_txs });
        }
        self.bytes += tx.encoded().len();
        self.ids.insert(tx.id());
        let signer = body.signer;
        let nonce = body.nonce;
        self.by_signer.entry(signer).or_default().insert(nonce, Arc::new(tx));
        Ok(())
    }

    /// Up to `max` transactions that can execute in order: for each signer, the contiguous
    /// run of nonces starting at its next nonce (`next_nonce` answers `None` for a signer that
    /// is no longer a member, whose transactions are skipped).
    #[must_use]
    pub fn select(
        &mut self,
        max: usize,
        next_nonce: impl Fn(&PublicKey) -> Option<u64>,
    ) -> Vec<Arc<VerifiedTx>> {
        let mut selected = Vec::with_capacity(max.min(self.len()));
        // Start after the signer the previous block stopped at, wrapping around once.
        type Queue = BTreeMap<u64, Arc<VerifiedTx>>;
        let signers: Box<dyn Iterator<Item = (&PublicKey, &Queue)>> = match self.cursor {
            Some(cursor) => Box::new(
                self.by_signer
                    .range((Bound::Excluded(cursor), Bound::Unbounded))
                    .chain(self.by_signer.range((Bound::Unbounded, Bound::Included(cursor)))),
            ),
            None => Box::new(self.by_signer.iter()),
        };
        let mut last_signer = None;
        for (signer, queued) in signers {
            if selected.len() >= max {
                break;
            }
            last_signer = Some(*signer);
            let Some(mut expected) = next_nonce(signer) else {
                continue;
            };
            for (nonce, tx) in queued.range(expected..) {
                if *nonce != expected || selected.len() >= max {
                    break;
                }
                selected.push(Arc::clone(tx));
                expected += 1;
            }
        }
        if last_signer.is_some() {
            self.cursor = last_signer;
        }
        selected
    }

    /// Whether this very transaction (body and signature) is pending, so its signature was
    /// verified on admission.
    #[must_use]
    pub fn holds(&self, tx: &Transaction) -> bool {
        self.by_signer
            .get(&tx.body.signer)
            .and_then(|queued| queued.get(&tx.body.nonce))
            .is_some_and(|pending| pending.tx() == tx)
    }

    /// Up to `max` pending transactions, each signer's in nonce order.
    pub fn pending(&self, max: usize) -> Vec<Transaction> {
        self.by_signer.values().flat_map(BTreeMap::values).take(max).map(|tx| tx.tx().clone()).collect()
    }

    /// Every signer with pending transactions.
    pub fn signers(&self) -> impl Iterator<Item = PublicKey> + '_ {
        self.by_signer.keys().copied()
    }

    /// Drops every queued transaction of `signers` whose nonce is below the signer's next
    /// nonce after a commit (`None`: drop all of that signer's).
    pub fn prune<'a>(
        &mut self,
        signers: impl IntoIterator<Item = &'a PublicKey>,
        next_nonce: impl Fn(&PublicKey) -> Option<u64>,
    ) {
        for signer in signers {
            let Some(queued) = self.by_signer.get_mut(signer) else {
                continue;
            };
            let keep_from = next_nonce(signer).unwrap_or(u64::MAX);
            let kept = queued.split_off(&keep_from);
            for tx in std::mem::replace(queued, kept).into_values() {
                self.ids.remove(&tx.id());
                self.bytes -= tx.encoded().len();
            }
            if queued.is_empty() {
                self.by_signer.remove(signer);
            }
        }
    }
}
