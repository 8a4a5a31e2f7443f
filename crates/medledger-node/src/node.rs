//! The node service.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use medledger_crypto::merkle::{CompleteSubtrees, InclusionProof, MerkleTree, leaf_hash};
use medledger_crypto::{Digest, PublicKey, SigningKey};
use medledger_state::{Account, BlockError, Chain, Committed, MemberStatus, VerifiedBlock, VerifiedTx};
use medledger_store::{Store, StoreError, TxLocation};
use medledger_types::limits::MAX_BLOCK_TXS;
use medledger_types::{
    Block, ChainId, Encode, OrgId, Outcome, Payload, Receipt, RejectReason, Transaction, TxBody, TxId,
};
use serde::Serialize;
use tokio::sync::watch;

use crate::mempool::{Mempool, MempoolLimits};

/// Node settings that are not consensus rules.
#[derive(Debug, Clone, Copy)]
pub struct NodeConfig {
    /// Longest wait before pending transactions go into a block.
    pub block_interval_ms: u64,
    /// Most transactions per block (at most [`MAX_BLOCK_TXS`]); a block is built as soon as
    /// this many are pending.
    pub max_block_txs: usize,
    /// Mempool capacity in transactions.
    pub mempool_max_txs: usize,
    /// Mempool capacity in encoded bytes.
    pub mempool_max_bytes: usize,
    /// With nothing pending, the longest a validator network goes without a block: the
    /// chain's heartbeat. Idle, it makes one empty block this often and nothing in between.
    pub empty_block_interval_ms: u64,
}

/// An idle network's heartbeat: an empty block a minute keeps "the chain is alive" visible
/// (alert when the last block is older than two of these) at about 1.4 MB of disk a day per
/// node, instead of a block a second and 84 MB a day (BENCHMARKS.md).
pub const DEFAULT_EMPTY_BLOCK_INTERVAL_MS: u64 = 60_000;

/// A node this many blocks or fewer behind the highest final height a peer announced is in
/// sync: announcements are a second old, and blocks keep finalizing meanwhile.
const SYNC_SLACK_BLOCKS: u64 = 2;

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            block_interval_ms: 200,
            max_block_txs: 2_000,
            mempool_max_txs: 100_000,
            mempool_max_bytes: 64 << 20,
            empty_block_interval_ms: DEFAULT_EMPTY_BLOCK_INTERVAL_MS,
        }
    }
}

/// Why a transaction was not admitted. Nothing is stored when admission fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The signature does not verify for the named signer.
    #[error("the signature does not verify for the signer named in the transaction")]
    BadSignature,
    /// The transaction is for another chain.
    #[error("the transaction is for chain '{found}', this node runs '{expected}'")]
    WrongChain {
        /// This node's chain.
        expected: ChainId,
        /// The transaction's chain.
        found: ChainId,
    },
    /// The signer (hex public key) is not a registered member.
    #[error("the signer {0} is not a registered member")]
    UnknownSigner(String),
    /// The signer's key is revoked or rotated out, or its organisation is suspended.
    #[error("the signer's key may not sign: {0}")]
    InactiveSigner(RejectReason),
    /// The nonce was used already (or is queued already).
    #[error("nonce already used; the signer's next nonce is {expected}")]
    NonceReplayed {
        /// The next usable nonce.
        expected: u64,
    },
    /// The nonce is too far ahead of the signer's next nonce.
    #[error("nonce is more than {max_ahead} ahead of the signer's next nonce {expected}")]
    NonceTooFarAhead {
        /// The signer's next nonce.
        expected: u64,
        /// How far ahead a nonce may be.
        max_ahead: u64,
    },
    /// The very same transaction is already waiting.
    #[error("this transaction is already pending")]
    AlreadyPending,
    /// The transaction is already in the chain.
    #[error("this transaction is already committed at height {height}")]
    AlreadyCommitted {
        /// Its block.
        height: u64,
    },
    /// The mempool is at capacity.
    #[error("the mempool is full ({capacity} transactions); retry later")]
    MempoolFull {
        /// Its capacity.
        capacity: usize,
    },
    /// The store could not be read.
    #[error("store: {0}")]
    Store(String),
    /// An earlier transaction of the same batch was refused, so this one was not tried.
    #[error("not submitted: an earlier transaction of the batch was refused")]
    EarlierRefused,
}

/// Why a registered key may not sign now, if it may not.
fn inactive_reason(chain: &Chain, account: &Account) -> Option<RejectReason> {
    match account.status {
        MemberStatus::Revoked { .. } => Some(RejectReason::KeyRevoked),
        MemberStatus::Rotated { .. } => Some(RejectReason::KeyRotated),
        MemberStatus::Active => chain
            .registry()
            .get(&account.organization)
            .is_none_or(|org| !org.active)
            .then_some(RejectReason::OrganizationSuspended),
    }
}

/// The next nonce of a key that may sign; `None` drops its pending transactions.
fn active_next_nonce(chain: &Chain, signer: &PublicKey) -> Option<u64> {
    chain.active_member(signer).map(|(account, _)| account.next_nonce)
}

/// Whose pending transactions a committed block may have settled or invalidated: its signers,
/// the keys it revoked or rotated out, and everyone once an organisation is suspended.
fn signers_to_prune(committed: &Committed, mempool: &Mempool) -> BTreeSet<PublicKey> {
    let mut signers = BTreeSet::new();
    for (tx, receipt) in committed.block.transactions.iter().zip(&committed.receipts) {
        signers.insert(tx.body.signer);
        if receipt.outcome != Outcome::Applied {
            continue;
        }
        match &tx.body.payload {
            Payload::RevokeMember { public_key } | Payload::RotateKey { old_key: public_key, .. } => {
                signers.insert(*public_key);
            }
            Payload::ExecuteProposal { .. } => signers.extend(mempool.signers()),
            _ => {}
        }
    }
    signers
}

/// Failures of the node itself (not of a client's input).
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The node orders blocks alone, but from `height` it is not the chain's only validator.
    #[error(
        "from height {height} this node is not the chain's only validator; restart it to order \
         blocks with the other validators by consensus"
    )]
    NotSoleValidator {
        /// The first height it may not build alone.
        height: u64,
    },
    /// A configuration value is out of range.
    #[error("invalid node configuration: {0}")]
    Config(String),
}

/// Blocks built ahead of the last durable one: one executes while the previous one commits.
/// More would only queue, and would widen the window of work a crash throws away.
const COMMIT_PIPELINE_DEPTH: usize = 1;

/// A snapshot of the node's view of the chain.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The chain id.
    pub chain_id: ChainId,
    /// The genesis hash.
    pub genesis_hash: Digest,
    /// Height of the last committed block.
    pub height: u64,
    /// Height of the last final block. A node commits only final blocks (with one validator,
    /// a block is final when built; with several, when consensus finalizes it), so this is
    /// always `height`.
    pub finalized_height: u64,
    /// Hash of the last block (the genesis hash before block 1).
    pub last_block_hash: Digest,
    /// State root after the last block.
    pub state_root: Digest,
    /// Timestamp of the last block.
    pub last_block_time_ms: Option<u64>,
    /// Transactions waiting in the mempool.
    pub mempool_size: usize,
    /// This node's validator key.
    pub node_key: PublicKey,
    /// The validators of the next block.
    pub validators: Vec<PublicKey>,
    /// Whether this node is catching up: it is more than a block or two behind the highest
    /// final height a peer announced, or (with peers) has not heard from any since it
    /// started. A single validator is never syncing.
    pub syncing: bool,
    /// The highest final height this node knows of: its own, or higher if a peer announced
    /// one. `None` while a node with peers has heard from none of them.
    pub network_finalized_height: Option<u64>,
    /// How many blocks this node is behind `network_finalized_height`.
    pub behind_blocks: u64,
    /// The other validators and what this node last heard from them (empty for a single
    /// validator, which has no peers).
    pub peers: Vec<PeerStatus>,
}

/// Another validator as this node sees it.
#[derive(Debug, Clone, Serialize)]
pub struct PeerStatus {
    /// Its node key.
    pub node_key: PublicKey,
    /// Its organisation.
    pub organization: String,
    /// Its peer-to-peer address from the registry.
    pub address: String,
    /// Whether it was heard from recently.
    pub connected: bool,
    /// The finalized height it last announced.
    pub finalized_height: Option<u64>,
    /// Milliseconds since it was last heard from; `None` if never since this node started.
    pub last_seen_ms_ago: Option<u64>,
    /// While it is not connected, what checking its address found (refused, no answer, …).
    pub last_error: Option<String>,
}

/// What the consensus network knows of the other nodes, for [`Node::status`].
#[derive(Debug, Clone, Default)]
pub struct NetworkView {
    /// The other validators.
    pub peers: Vec<PeerStatus>,
    /// The highest final height any peer announced; `None` before any was heard from.
    pub highest_announced_height: Option<u64>,
}

/// Most client transactions waiting to be gossiped to the other validators. A full outbox
/// drops the oldest: they stay in this node's mempool and go into its own proposals.
const MAX_OUTBOX_TXS: usize = 100_000;

/// A committed transaction with the proof that its block includes it.
#[derive(Debug, Clone)]
pub struct TxInclusion {
    /// The block (its header's `tx_root` is what the proof leads to).
    pub block: Block,
    /// The transaction's position in the block.
    pub index: u32,
    /// `leaf_hash` of the transaction's canonical bytes.
    pub leaf_hash: Digest,
    /// The inclusion proof of that leaf.
    pub proof: InclusionProof,
}

impl TxInclusion {
    /// The transaction.
    #[must_use]
    pub fn transaction(&self) -> &Transaction {
        &self.block.transactions[self.index as usize]
    }
}

/// Where a transaction stands (the API's JSON view of it is `medledger_api`'s `TxView`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    /// Waiting in the mempool.
    Pending,
    /// In a committed block.
    Committed {
        /// Its block.
        height: u64,
        /// Its position in the block.
        index: u32,
        /// What happened to it.
        receipt: Receipt,
    },
    /// Neither pending nor committed here.
    Unknown,
}

/// A running node's state, shared by the API handlers and the block producer.
pub struct Node {
    config: NodeConfig,
    key: SigningKey,
    store: Store,
    chain: RwLock<Chain>,
    mempool: Mutex<Mempool>,
    /// Signalled when the mempool reaches a full block, to build it without waiting.
    block_ready: Condvar,
    /// Serialises block production: only one block is built and committed at a time.
    producing: Mutex<()>,
    height: watch::Sender<u64>,
    /// Client transactions admitted here, for the consensus network to gossip; `None` when
    /// the node is the only validator.
    outbox: Mutex<Option<VecDeque<Transaction>>>,
    /// What consensus last reported of the other nodes; `None` until it does (and always for
    /// the only validator, which runs no consensus).
    network: RwLock<Option<NetworkView>>,
    /// Why each silent peer is unreachable, from checking its address (production network).
    peer_errors: RwLock<BTreeMap<PublicKey, String>>,
    /// Serialises the node's own transactions so their nonces are contiguous.
    own_nonces: Mutex<()>,
}

/// Milliseconds since the Unix epoch by this machine's clock (never inside the state machine:
/// block time comes from headers).
#[must_use]
pub fn now_ms() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

impl Node {
    /// A node over an opened store and its chain, signing blocks it proposes with `key`. A
    /// node whose key is not a validator follows the chain and serves its API.
    pub fn new(store: Store, chain: Chain, key: SigningKey, config: NodeConfig) -> Result<Self, NodeError> {
        if config.max_block_txs == 0 || config.max_block_txs > MAX_BLOCK_TXS {
            return Err(NodeError::Config(format!("max_block_txs must be 1 to {MAX_BLOCK_TXS}")));
        }
        if config.block_interval_ms == 0 || config.mempool_max_txs == 0 {
            return Err(NodeError::Config("block_interval_ms and mempool_max_txs must be positive".into()));
        }
        if config.empty_block_interval_ms < config.block_interval_ms {
            return Err(NodeError::Config(
                "empty_block_interval_ms must be at least block_interval_ms".into(),
            ));
        }
        let limits = MempoolLimits { max_txs: config.mempool_max_txs, max_bytes: config.mempool_max_bytes };
        let (height, _) = watch::channel(chain.height());
        Ok(Self {
            config,
            key,
            store,
            chain: RwLock::new(chain),
            mempool: Mutex::new(Mempool::new(limits)),
            block_ready: Condvar::new(),
            producing: Mutex::new(()),
            height,
            outbox: Mutex::new(None),
            network: RwLock::new(None),
            peer_errors: RwLock::new(BTreeMap::new()),
            own_nonces: Mutex::new(()),
        })
    }

    /// The store, for reads.
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs `f` with the current chain (head, state, history) under a read lock.
    pub fn with_chain<T>(&self, f: impl FnOnce(&Chain) -> T) -> T {
        f(&self.chain.read().expect("chain lock poisoned"))
    }

    /// Watches the committed height.
    #[must_use]
    pub fn subscribe_height(&self) -> watch::Receiver<u64> {
        self.height.subscribe()
    }

    /// The node's configuration.
    #[must_use]
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The node's current status.
    #[must_use]
    pub fn status(&self) -> Status {
        let mempool_size = self.mempool.lock().expect("mempool lock poisoned").len();
        let network = self.network.read().expect("network lock poisoned").clone();
        let peer_errors = self.peer_errors.read().expect("peer errors lock poisoned").clone();
        self.with_chain(|chain| {
            let height = chain.height();
            let alone = chain.validators_at(height + 1) == [self.key.public_key()];
            let (network_finalized_height, peers) = match network {
                // The only validator has no one to catch up with.
                None if alone => (Some(height), Vec::new()),
                // Consensus has not reported yet: nothing heard from any peer.
                None => (None, Vec::new()),
                Some(view) => {
                    (view.highest_announced_height.map(|announced| announced.max(height)), view.peers)
                }
            };
            let behind_blocks = network_finalized_height.map_or(0, |network| network - height);
            Status {
                chain_id: chain.genesis().chain_id.clone(),
                genesis_hash: chain.genesis_hash(),
                height,
                finalized_height: height,
                last_block_hash: chain.head_hash(),
                state_root: chain.state().root(),
                last_block_time_ms: chain.head().map(|head| head.timestamp_ms),
                mempool_size,
                node_key: self.key.public_key(),
                validators: chain.validators_at(height + 1),
                syncing: network_finalized_height.is_none() || behind_blocks > SYNC_SLACK_BLOCKS,
                network_finalized_height,
                behind_blocks,
                peers: peers
                    .into_iter()
                    .map(|peer| PeerStatus {
                        last_error: (!peer.connected)
                            .then(|| peer_errors.get(&peer.node_key).cloned())
                            .flatten(),
                        ..peer
                    })
                    .collect(),
            }
        })
    }

    /// Records what the consensus network knows of the other nodes.
    pub fn set_network(&self, view: NetworkView) {
        *self.network.write().expect("network lock poisoned") = Some(view);
    }

    /// Records why `peer` cannot be reached (`None`: it could be, or is connected); returns
    /// what was recorded before.
    pub fn set_peer_error(&self, peer: PublicKey, error: Option<String>) -> Option<String> {
        let mut errors = self.peer_errors.write().expect("peer errors lock poisoned");
        match error {
            Some(error) => errors.insert(peer, error),
            None => errors.remove(&peer),
        }
    }

    /// From now on, queue admitted client transactions for [`Node::take_outbox`].
    pub fn enable_gossip(&self) {
        self.outbox.lock().expect("outbox lock poisoned").get_or_insert_with(VecDeque::new);
    }

    /// Up to `max` client transactions admitted since the last call, oldest first.
    pub fn take_outbox(&self, max: usize) -> Vec<Transaction> {
        let mut outbox = self.outbox.lock().expect("outbox lock poisoned");
        let Some(queue) = outbox.as_mut() else {
            return Vec::new();
        };
        let count = max.min(queue.len());
        queue.drain(..count).collect()
    }

    /// Admits transactions another validator gossiped (not gossiped on again). Returns how
    /// many were admitted; the rest were invalid, known, or did not fit.
    pub fn admit_from_peer(&self, txs: Vec<Transaction>) -> usize {
        let verified = match VerifiedTx::verify_batch(txs.clone()) {
            Ok(verified) => verified,
            Err(_) => txs.into_iter().filter_map(|tx| VerifiedTx::verify(tx).ok()).collect(),
        };
        self.admit(verified).iter().filter(|result| result.is_ok()).count()
    }

    /// Up to `max` pending transactions, for a validator that reconnects and may have
    /// missed their gossip.
    #[must_use]
    pub fn pending(&self, max: usize) -> Vec<Transaction> {
        self.mempool.lock().expect("mempool lock poisoned").pending(max)
    }

    /// Validates `block` on `parent` (the head or a block not yet final), verifying only the
    /// signatures of transactions this node has not already verified into its mempool.
    pub fn validate_on(&self, parent: &Chain, block: Block) -> Result<VerifiedBlock, BlockError> {
        let verified: Vec<bool> = {
            let mempool = self.mempool.lock().expect("mempool lock poisoned");
            block.transactions.iter().map(|tx| mempool.holds(tx)).collect()
        };
        parent.validate_with(block, |index| verified[index])
    }

    /// Transactions in the mempool.
    #[must_use]
    pub fn pending_count(&self) -> usize {
        self.mempool.lock().expect("mempool lock poisoned").len()
    }

    /// A member's account, and the next nonce counting its pending transactions.
    #[must_use]
    pub fn account(&self, public_key: &PublicKey) -> Option<(Account, u64)> {
        let chain = self.chain.read().expect("chain lock poisoned");
        let account = chain.account(public_key)?;
        let pending =
            self.mempool.lock().expect("mempool lock poisoned").pending_nonce(public_key, account.next_nonce);
        Some((account, pending))
    }

    /// Up to `limit` member keys after `after`, in key order, optionally of one organisation.
    /// Walks the accounts in key order; with an organisation, past the others too.
    #[must_use]
    pub fn members_page(
        &self,
        organization: Option<&OrgId>,
        after: Option<&PublicKey>,
        limit: usize,
    ) -> Vec<(PublicKey, Account)> {
        self.with_chain(|chain| {
            chain.members_page(after, limit, |account| {
                organization.is_none_or(|organization| &account.organization == organization)
            })
        })
    }

    /// Verifies and admits one transaction.
    pub fn submit(&self, tx: Transaction) -> Result<TxId, SubmitError> {
        let verified = VerifiedTx::verify(tx).map_err(|_| SubmitError::BadSignature)?;
        let id = verified.id();
        self.admit_from_client(vec![verified]).pop().expect("one result per transaction").map(|()| id)
    }

    /// Signs `payloads` with the node's own key at its next nonces and admits them in order.
    /// The first refusal refuses the rest too, so the node's pending nonces never leave a gap.
    pub fn submit_as_node(&self, payloads: Vec<Payload>) -> Vec<Result<TxId, SubmitError>> {
        let _own = self.own_nonces.lock().expect("own-nonce lock poisoned");
        let node_key = self.key.public_key();
        let Some((_, first_nonce)) = self.account(&node_key) else {
            let refusal = SubmitError::UnknownSigner(node_key.to_string());
            return payloads.iter().map(|_| Err(refusal.clone())).collect();
        };
        let chain_id = self.with_chain(|chain| chain.genesis().chain_id.clone());
        let txs: Vec<VerifiedTx> = (first_nonce..)
            .zip(payloads)
            .map(|(nonce, payload)| {
                let body = TxBody { chain_id: chain_id.clone(), signer: node_key, nonce, payload };
                VerifiedTx::sign(body, &self.key)
            })
            .collect();
        let mut results = Vec::with_capacity(txs.len());
        for tx in txs {
            let id = tx.id();
            let refused = results.last().is_some_and(Result::is_err);
            let result = if refused {
                Err(SubmitError::EarlierRefused)
            } else {
                self.admit_from_client(vec![tx]).pop().expect("one result").map(|()| id)
            };
            results.push(result);
        }
        results
    }

    /// Verifies many transactions with one batch verification (falling back to one by one
    /// if the batch fails, so each transaction gets its own answer) and admits them.
    pub fn submit_batch(&self, txs: Vec<Transaction>) -> Vec<Result<TxId, SubmitError>> {
        match VerifiedTx::verify_batch(txs.clone()) {
            Ok(verified) => {
                let ids: Vec<TxId> = verified.iter().map(VerifiedTx::id).collect();
                self.admit_from_client(verified)
                    .into_iter()
                    .zip(ids)
                    .map(|(result, id)| result.map(|()| id))
                    .collect()
            }
            Err(_) => txs.into_iter().map(|tx| self.submit(tx)).collect(),
        }
    }

    fn admit_from_client(&self, txs: Vec<VerifiedTx>) -> Vec<Result<(), SubmitError>> {
        let mut outbox = self.outbox.lock().expect("outbox lock poisoned");
        let Some(queue) = outbox.as_mut() else {
            return self.admit(txs);
        };
        let copies: Vec<Transaction> = txs.iter().map(|tx| tx.tx().clone()).collect();
        let results = self.admit(txs);
        for (tx, result) in copies.into_iter().zip(&results) {
            if result.is_ok() {
                if queue.len() == MAX_OUTBOX_TXS {
                    queue.pop_front();
                }
                queue.push_back(tx);
            }
        }
        results
    }

    fn admit(&self, txs: Vec<VerifiedTx>) -> Vec<Result<(), SubmitError>> {
        let chain = self.chain.read().expect("chain lock poisoned");
        let mut mempool = self.mempool.lock().expect("mempool lock poisoned");
        let results = txs.into_iter().map(|tx| self.admit_one(&chain, &mut mempool, tx)).collect();
        if mempool.len() >= self.config.max_block_txs {
            self.block_ready.notify_one();
        }
        results
    }

    fn admit_one(&self, chain: &Chain, mempool: &mut Mempool, tx: VerifiedTx) -> Result<(), SubmitError> {
        let body = &tx.tx().body;
        if body.chain_id != chain.genesis().chain_id {
            return Err(SubmitError::WrongChain {
                expected: chain.genesis().chain_id.clone(),
                found: body.chain_id.clone(),
            });
        }
        let account =
            chain.account(&body.signer).ok_or_else(|| SubmitError::UnknownSigner(body.signer.to_string()))?;
        if let Some(reason) = inactive_reason(chain, &account) {
            return Err(SubmitError::InactiveSigner(reason));
        }
        if body.nonce < account.next_nonce {
            // Say where the transaction went if this very transaction is in the chain.
            if let Some(location) =
                self.store.tx_location(&tx.id()).map_err(|error| SubmitError::Store(error.to_string()))?
            {
                return Err(SubmitError::AlreadyCommitted { height: location.height });
            }
        }
        mempool.insert(tx, account.next_nonce)
    }

    /// Proof that committed transaction `id` is in its block: the block, the transaction's
    /// position and the RFC 9162 inclusion proof of its leaf against the header's `tx_root`.
    /// `None` if the transaction is not committed.
    pub fn tx_inclusion(&self, id: &TxId) -> Result<Option<TxInclusion>, StoreError> {
        let Some(location) = self.store.tx_location(id)? else { return Ok(None) };
        let Some(block) = self.store.block(location.height)? else { return Ok(None) };
        let leaves: Vec<Digest> = block.transactions.iter().map(|tx| leaf_hash(&tx.encode())).collect();
        let Some(leaf) = leaves.get(location.index as usize).copied() else { return Ok(None) };
        let tree = MerkleTree::from_leaf_hashes(leaves);
        let proof = tree
            .inclusion_proof(u64::from(location.index), tree.len())
            .expect("the index of a transaction in its block is inside the block's tree");
        debug_assert_eq!(tree.root(), block.header.tx_root);
        Ok(Some(TxInclusion { index: location.index, leaf_hash: leaf, proof, block }))
    }

    /// Where transaction `id` stands.
    pub fn tx_status(&self, id: &TxId) -> Result<TxStatus, StoreError> {
        if let Some(committed) = self.committed_status(id)? {
            return Ok(committed);
        }
        if self.mempool.lock().expect("mempool lock poisoned").contains(id) {
            return Ok(TxStatus::Pending);
        }
        // A block may have been committed (store first, mempool second) between the two
        // looks above: look at the store once more before calling the transaction unknown.
        Ok(self.committed_status(id)?.unwrap_or(TxStatus::Unknown))
    }

    fn committed_status(&self, id: &TxId) -> Result<Option<TxStatus>, StoreError> {
        let Some(TxLocation { height, index }) = self.store.tx_location(id)? else {
            return Ok(None);
        };
        let receipts =
            self.store.receipts(height)?.ok_or_else(|| StoreError::Missing(format!("receipts {height}")))?;
        let receipt = *receipts
            .get(index as usize)
            .ok_or_else(|| StoreError::Missing(format!("receipt {index} of block {height}")))?;
        Ok(Some(TxStatus::Committed { height, index, receipt }))
    }

    /// Builds, commits and publishes one block from pending transactions, if any. Not while
    /// [`Node::run_producer`] runs: its pipeline builds ahead of the head.
    pub fn produce_block(&self) -> Result<Option<Committed>, StoreError> {
        let _producing = self.producing.lock().expect("producer lock poisoned");
        let verified = {
            let chain = self.chain.read().expect("chain lock poisoned");
            let selected = self.select(&chain);
            if selected.is_empty() {
                return Ok(None);
            }
            chain.build(&selected, now_ms(), &self.key)
        };
        self.commit_block(verified, None).map(Some)
    }

    fn select(&self, parent: &Chain) -> Vec<Arc<VerifiedTx>> {
        self.mempool
            .lock()
            .expect("mempool lock poisoned")
            .select(self.config.max_block_txs, |signer| active_next_nonce(parent, signer))
    }

    /// Builds and signs a block on `parent` (the head or a block consensus has not finalized
    /// yet) from pending transactions, empty if none are pending. The mempool keeps them
    /// until a block holding them is committed.
    #[must_use]
    pub fn build_on(&self, parent: &Chain, timestamp_ms: u64) -> VerifiedBlock {
        parent.build(&self.select(parent), timestamp_ms, &self.key)
    }

    /// Commits a final block, with the consensus certificate that finalized it, and publishes
    /// it. It must have been validated or built against the current head.
    pub fn commit_final(
        &self,
        verified: VerifiedBlock,
        finalization: Option<&[u8]>,
    ) -> Result<Committed, StoreError> {
        let _producing = self.producing.lock().expect("producer lock poisoned");
        self.commit_block(verified, finalization)
    }

    fn commit_block(
        &self,
        verified: VerifiedBlock,
        finalization: Option<&[u8]>,
    ) -> Result<Committed, StoreError> {
        // Durable first, visible second: a block is served only once it is on disk.
        self.store.commit_final(&verified, finalization)?;
        let snapshot = self.store.snapshot()?;
        let committed = {
            let mut chain = self.chain.write().expect("chain lock poisoned");
            let committed = chain.commit(verified);
            // The block's state is on disk now: read it there, not from its layer in memory.
            chain.rebase(snapshot);
            let mut mempool = self.mempool.lock().expect("mempool lock poisoned");
            let signers = signers_to_prune(&committed, &mempool);
            mempool.prune(&signers, |signer| active_next_nonce(&chain, signer));
            committed
        };
        self.height.send_replace(committed.block.header.height);
        tracing::debug!(
            height = committed.block.header.height,
            txs = committed.receipts.len(),
            "committed block"
        );
        Ok(committed)
    }

    /// Produces blocks until `stop` is set: a block whenever a full block is pending, and at
    /// least every `block_interval_ms` while anything is pending.
    pub fn run_producer(&self, stop: &AtomicBool) -> Result<(), NodeError> {
        // Two stages: this thread executes block N + 1 on top of block N while a committer
        // thread makes block N durable. A block becomes visible (API, mempool pruning) only once
        // it is on disk, as with `produce_block`.
        let in_flight = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            let (sender, receiver) = std::sync::mpsc::sync_channel::<VerifiedBlock>(COMMIT_PIPELINE_DEPTH);
            let committer = std::thread::Builder::new()
                .name("block-committer".into())
                .spawn_scoped(scope, || -> Result<(), StoreError> {
                    for verified in receiver {
                        let transactions = verified.block().transactions.len();
                        let _producing = self.producing.lock().expect("producer lock poisoned");
                        self.commit_block(verified, None)?;
                        in_flight.fetch_sub(transactions, Ordering::AcqRel);
                    }
                    Ok(())
                })
                .expect("spawning the committer thread");
            let produced = self.produce_until(stop, &sender, &in_flight);
            drop(sender);
            let committed = committer.join().expect("the committer thread does not panic");
            committed?;
            produced
        })
    }

    /// The executing stage of [`Node::run_producer`]: builds each block on the last one built
    /// (its state a layer in memory until the committer has written it) and hands it over.
    fn produce_until(
        &self,
        stop: &AtomicBool,
        committer: &std::sync::mpsc::SyncSender<VerifiedBlock>,
        in_flight: &AtomicUsize,
    ) -> Result<(), NodeError> {
        let interval = Duration::from_millis(self.config.block_interval_ms);
        let mut tip = self.with_chain(Chain::clone);
        while !stop.load(Ordering::Acquire) {
            if tip.validators_at(tip.height() + 1) != [self.key.public_key()] {
                return Err(NodeError::NotSoleValidator { height: tip.height() + 1 });
            }
            {
                let mempool = self.mempool.lock().expect("mempool lock poisoned");
                // Transactions of blocks being committed are still in the mempool: not pending.
                if mempool.len().saturating_sub(in_flight.load(Ordering::Acquire)) < self.config.max_block_txs
                {
                    let _woken =
                        self.block_ready.wait_timeout(mempool, interval).expect("mempool lock poisoned");
                }
            }
            // Read what the committer has made durable from disk, not from the tip's layers.
            tip.rebase(self.store.snapshot()?);
            let selected = self.select(&tip);
            if selected.is_empty() {
                continue;
            }
            let verified = tip.build(&selected, now_ms(), &self.key);
            tip.commit(verified.clone());
            in_flight.fetch_add(selected.len(), Ordering::AcqRel);
            if committer.send(verified).is_err() {
                // The committer stopped on a store error, which `run_producer` returns.
                break;
            }
        }
        Ok(())
    }

    /// Whether this node is the only validator of the next block, so it may order blocks alone.
    #[must_use]
    pub fn is_sole_validator(&self) -> bool {
        self.with_chain(|chain| chain.validators_at(chain.height() + 1) == [self.key.public_key()])
    }

    /// Wakes the producer (e.g. to notice a stop request promptly).
    pub fn wake_producer(&self) {
        self.block_ready.notify_all();
    }

    /// Whether the node's store and chain agree (for health checks).
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        self.store.height().is_ok_and(|height| height == self.with_chain(Chain::height))
    }

    /// Proposer key.
    #[must_use]
    pub fn node_key(&self) -> PublicKey {
        self.key.public_key()
    }

    /// Shared handle.
    #[must_use]
    pub fn into_shared(self) -> Arc<Self> {
        Arc::new(self)
    }
}
