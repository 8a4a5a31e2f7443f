//! The chain: genesis, the validated head, and the rules every block must follow.

use std::collections::HashSet;
use std::sync::Arc;

use medledger_crypto::merkle::{CompleteSubtrees, leaf_hash, root_of};
use medledger_crypto::{Digest, PublicKey, SignatureError, SigningKey, verify_batch};
use medledger_types::limits::MAX_BLOCK_TXS;
use medledger_types::{
    Block, BlockHeader, Decode, Encode, Genesis, OrgId, Parameters, PatientId, Receipt, RecordId,
    ResourceType, Role, Transaction, TxBody, TxId,
};

use crate::commitment::StateProof;
use crate::execute::{ExecutionContext, execute};
use crate::history::{History, HistoryStore};
use crate::records::{
    Account, CareRelationship, MemberStatus, Organization, Proposal, RecordHead, RecordVersion, Registry,
    ValidatorSchedule, keys,
};
use crate::state::{PreparedWrites, State, StateStore, WriteSet};

/// A node's store as a chain reads it: the committed state and the committed block history.
pub trait ChainStore: StateStore + HistoryStore {}

impl<T: StateStore + HistoryStore> ChainStore for T {}

/// Why a block cannot extend the chain. Each variant names the first rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The height is not the head's plus one.
    #[error("height {found} does not follow the head at {head}")]
    Height {
        /// The chain's current height.
        head: u64,
        /// The block's height.
        found: u64,
    },
    /// A chain reopened from storage: the stored state or history is at another height than
    /// the stored head.
    #[error("the stored {what} is at height {found}, the stored head at {head}")]
    StoredHeight {
        /// What is out of step: "state" or "history".
        what: &'static str,
        /// The head's height.
        head: u64,
        /// The height the state or history is at.
        found: u64,
    },
    /// The parent hash is not the head's hash.
    #[error("parent hash {found} is not the head's hash {expected}")]
    ParentHash {
        /// The head's hash.
        expected: Digest,
        /// The block's parent hash.
        found: Digest,
    },
    /// The timestamp is before the parent's.
    #[error("timestamp {found} ms is before the parent's {parent} ms")]
    Timestamp {
        /// The parent's timestamp.
        parent: u64,
        /// The block's timestamp.
        found: u64,
    },
    /// The proposer (hex public key) is not a validator.
    #[error("proposer {0} is not a validator")]
    UnknownProposer(String),
    /// The proposer's signature does not verify.
    #[error("the proposer's signature over the block hash does not verify")]
    ProposerSignature,
    /// More transactions than a block may hold.
    #[error("{0} transactions exceed the limit of {MAX_BLOCK_TXS}")]
    TooManyTransactions(usize),
    /// The header's transaction count is not the body's.
    #[error("header counts {header} transactions, body has {body}")]
    TransactionCount {
        /// The header's count.
        header: u32,
        /// The body's count.
        body: usize,
    },
    /// The same transaction appears twice.
    #[error("transaction {index} repeats an earlier transaction of the block")]
    DuplicateTransaction {
        /// Position of the repeat.
        index: usize,
    },
    /// A transaction's nonce is already used: it, or another transaction of its signer with
    /// that nonce, is in the chain. Refusing the block keeps every transaction id in the chain
    /// exactly once.
    #[error("transaction {index} reuses a nonce its signer already used")]
    ReplayedTransaction {
        /// Position of the replay.
        index: usize,
    },
    /// A transaction signature does not verify.
    #[error("the signature of transaction {index} does not verify")]
    TransactionSignature {
        /// Position of the first bad signature.
        index: usize,
    },
    /// A root in the header does not match the recomputed one.
    #[error("{what} root mismatch: header has {header}, recomputed {computed}")]
    RootMismatch {
        /// Which root.
        what: &'static str,
        /// The header's value.
        header: Digest,
        /// The recomputed value.
        computed: Digest,
    },
}

/// A transaction whose signature has been verified.
#[derive(Debug, Clone)]
pub struct VerifiedTx {
    tx: Transaction,
    id: TxId,
    encoded: Vec<u8>,
}

impl VerifiedTx {
    /// Verifies the signature of `tx`.
    pub fn verify(tx: Transaction) -> Result<Self, SignatureError> {
        tx.verify_signature()?;
        let encoded = tx.encode();
        Ok(Self { id: tx.id(), tx, encoded })
    }

    /// Signs `body` with `key`, the signer it names. The signature holds by construction
    /// (Ed25519 signing is deterministic), so it is not checked again: a node submitting its
    /// own transactions would otherwise spend a verification (about 50 µs) on each.
    ///
    /// # Panics
    /// If `key` is not the body's signer.
    #[must_use]
    pub fn sign(body: TxBody, key: &SigningKey) -> Self {
        assert_eq!(body.signer, key.public_key(), "a transaction is signed by the signer it names");
        let tx = body.sign(key);
        debug_assert!(tx.verify_signature().is_ok(), "a fresh signature verifies");
        let encoded = tx.encode();
        Self { id: tx.id(), tx, encoded }
    }

    /// Verifies many transactions with one batch verification.
    pub fn verify_batch(txs: Vec<Transaction>) -> Result<Vec<Self>, SignatureError> {
        let messages: Vec<Vec<u8>> = txs.iter().map(|tx| tx.body.signing_message()).collect();
        let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let signatures: Vec<_> = txs.iter().map(|tx| tx.signature).collect();
        let signers: Vec<_> = txs.iter().map(|tx| tx.body.signer).collect();
        verify_batch(&message_refs, &signatures, &signers)?;
        Ok(txs
            .into_iter()
            .map(|tx| {
                let encoded = tx.encode();
                Self { id: tx.id(), tx, encoded }
            })
            .collect())
    }

    /// The transaction.
    #[must_use]
    pub fn tx(&self) -> &Transaction {
        &self.tx
    }

    /// Its id.
    #[must_use]
    pub fn id(&self) -> TxId {
        self.id
    }

    /// Its canonical encoding.
    #[must_use]
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }
}

impl AsRef<VerifiedTx> for VerifiedTx {
    fn as_ref(&self) -> &VerifiedTx {
        self
    }
}

/// A block checked against the chain head, with the outcome of executing it.
#[derive(Clone)]
pub struct VerifiedBlock {
    block: Block,
    hash: Digest,
    receipts: Vec<Receipt>,
    prepared: PreparedWrites,
}

impl VerifiedBlock {
    /// The block.
    #[must_use]
    pub fn block(&self) -> &Block {
        &self.block
    }

    /// Its hash.
    #[must_use]
    pub fn hash(&self) -> Digest {
        self.hash
    }

    /// One receipt per transaction.
    #[must_use]
    pub fn receipts(&self) -> &[Receipt] {
        &self.receipts
    }

    /// The state changes it makes.
    #[must_use]
    pub fn write_set(&self) -> &WriteSet {
        self.prepared.write_set()
    }

    /// The state version it makes: its writes and the state tree's new and retired nodes.
    #[must_use]
    pub fn prepared(&self) -> &PreparedWrites {
        &self.prepared
    }
}

/// What [`Chain::commit`] returns: the committed block with its receipts.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The block.
    pub block: Block,
    /// Its hash.
    pub hash: Digest,
    /// Its receipts.
    pub receipts: Vec<Receipt>,
}

/// Genesis plus every committed block, reduced to what validating the next block needs.
#[derive(Clone)]
pub struct Chain {
    genesis: Genesis,
    genesis_hash: Digest,
    state: State,
    /// The registry in `state`, decoded once per block for admission and block building.
    registry: Registry,
    head: Option<BlockHeader>,
    head_hash: Digest,
    history: History,
}

impl Chain {
    /// A chain with no block yet: the founding organisations, their members, the parameters
    /// and the first validators.
    #[must_use]
    pub fn from_genesis(genesis: Genesis) -> Self {
        let state = State::from_entries(genesis_entries(&genesis));
        let genesis_hash = genesis.hash();
        let registry = read_registry(&state);
        Self {
            genesis,
            genesis_hash,
            state,
            registry,
            head: None,
            head_hash: genesis_hash,
            history: History::empty(),
        }
    }

    /// A chain reopened from storage: `state` must be the state after `head` (version 0, genesis,
    /// when there is no block), and `history` the hashes of blocks 1 to `head.height`.
    /// Fails if the state's version or root, or the history, does not match the head.
    pub fn restore(
        genesis: Genesis,
        state: State,
        head: Option<BlockHeader>,
        history: History,
    ) -> Result<Self, BlockError> {
        let mut chain = Self::from_genesis(genesis);
        let height = head.as_ref().map_or(0, |head| head.height);
        if history.len() != height {
            return Err(BlockError::StoredHeight { what: "history", head: height, found: history.len() });
        }
        if state.version() != Some(height) {
            let found = state.version().unwrap_or(0);
            return Err(BlockError::StoredHeight { what: "state", head: height, found });
        }
        let Some(head) = head else {
            check_root("genesis state", chain.state.root(), state.root())?;
            chain.state = state;
            chain.history = history;
            return Ok(chain);
        };
        check_root("state", head.state_root, state.root())?;
        // The head's history root covers the blocks before it; the history holds the head too.
        let history_before_head = history.root_at(height - 1).expect("the history holds the head");
        check_root("history", head.history_root, history_before_head)?;
        chain.head_hash = head.hash();
        let head_leaf = history.complete_subtree(0, height - 1);
        check_root("history's last block", head_leaf, leaf_hash(chain.head_hash.as_bytes()))?;
        chain.registry = read_registry(&state);
        chain.state = state;
        chain.history = history;
        chain.head = Some(head);
        Ok(chain)
    }

    /// Moves the state and the history onto `store`, which has durably committed this chain's
    /// blocks up to its version: what those blocks kept in memory is dropped.
    pub fn rebase(&mut self, store: Arc<dyn ChainStore>) {
        self.state.rebase(store.clone());
        self.history.rebase(store);
    }

    /// A proof of the value under `key`, or of its absence, against the head's state root.
    #[must_use]
    pub fn prove(&self, key: &[u8]) -> StateProof {
        self.state.prove(key)
    }

    /// The genesis.
    #[must_use]
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The genesis hash.
    #[must_use]
    pub fn genesis_hash(&self) -> Digest {
        self.genesis_hash
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Height of the head (0 before the first block).
    #[must_use]
    pub fn height(&self) -> u64 {
        self.head.as_ref().map_or(0, |head| head.height)
    }

    /// Hash of the head (the genesis hash before the first block).
    #[must_use]
    pub fn head_hash(&self) -> Digest {
        self.head_hash
    }

    /// The head's header, if any block exists.
    #[must_use]
    pub fn head(&self) -> Option<&BlockHeader> {
        self.head.as_ref()
    }

    /// The Merkle tree of block hashes (leaf `i` is block `i + 1`).
    #[must_use]
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The validators of the block at `height` (the next block or, with a scheduled change
    /// already known, a later one).
    #[must_use]
    pub fn validators_at(&self, height: u64) -> Vec<PublicKey> {
        let schedule: ValidatorSchedule = self.read(keys::VALIDATORS).expect("written at genesis");
        schedule.at(height).to_vec()
    }

    /// The consensus epoch of the block at `height` (the next block or, with a scheduled
    /// change already known, a later one).
    #[must_use]
    pub fn epoch_at(&self, height: u64) -> u64 {
        self.validator_schedule().epoch_at(height)
    }

    /// The validator schedule: the current set and any scheduled change.
    #[must_use]
    pub fn validator_schedule(&self) -> ValidatorSchedule {
        self.read(keys::VALIDATORS).expect("written at genesis")
    }

    /// Whether `key` may propose the next block.
    #[must_use]
    pub fn is_validator(&self, key: &PublicKey) -> bool {
        self.validators_at(self.height() + 1).contains(key)
    }

    /// A member's account, if registered.
    #[must_use]
    pub fn account(&self, public_key: &PublicKey) -> Option<Account> {
        self.read(&keys::account(public_key))
    }

    /// The organisation registry.
    #[must_use]
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The chain parameters in force.
    #[must_use]
    pub fn parameters(&self) -> Parameters {
        self.read(keys::PARAMETERS).expect("written at genesis")
    }

    /// A governance proposal.
    #[must_use]
    pub fn proposal(&self, id: &TxId) -> Option<Proposal> {
        self.read(&keys::proposal(id))
    }

    /// The member key that currently holds a patient id.
    #[must_use]
    pub fn patient_key(&self, patient_id: &PatientId) -> Option<PublicKey> {
        self.read(&keys::patient(patient_id))
    }

    /// A record's head: custodian, patient and latest version.
    #[must_use]
    pub fn record(&self, resource_type: ResourceType, record: &RecordId) -> Option<RecordHead> {
        self.read(&keys::record(resource_type, record))
    }

    /// One anchored version of a record.
    #[must_use]
    pub fn record_version(
        &self,
        resource_type: ResourceType,
        record: &RecordId,
        version: u64,
    ) -> Option<RecordVersion> {
        self.read(&keys::record_version(resource_type, record, version))
    }

    /// Why `organization` may treat `patient`, if it may.
    #[must_use]
    pub fn care_relationship(&self, patient: &PatientId, organization: &OrgId) -> Option<CareRelationship> {
        self.read(&keys::care(patient, organization))
    }

    /// A member key that may sign now, with its account and organisation; `None` for
    /// unknown, revoked and rotated-out keys and for members of suspended organisations.
    #[must_use]
    pub fn active_member(&self, public_key: &PublicKey) -> Option<(Account, Organization)> {
        let account = self.account(public_key).filter(Account::is_active)?;
        let organization = self.registry.get(&account.organization).cloned().filter(|org| org.active)?;
        Some((account, organization))
    }

    /// Up to `limit` member keys after `after` whose account passes `filter`, with their
    /// accounts, in key order.
    pub fn members_page(
        &self,
        after: Option<&PublicKey>,
        limit: usize,
        filter: impl Fn(&Account) -> bool,
    ) -> Vec<(PublicKey, Account)> {
        let after = after.map(keys::account);
        self.state
            .scan(keys::ACCOUNT_PREFIX, after.as_deref())
            .map(|(key, value)| {
                let key = &key[keys::ACCOUNT_PREFIX.len()..];
                let key = PublicKey::from_bytes(key.try_into().expect("account keys end in a public key"))
                    .expect("account keys hold valid public keys");
                (key, Account::decode(&value).expect("accounts in state are canonical"))
            })
            .filter(|(_, account)| filter(account))
            .take(limit)
            .collect()
    }

    fn read<T: Decode>(&self, key: &[u8]) -> Option<T> {
        let bytes = self.state.get(key)?;
        Some(
            T::decode(&bytes)
                .unwrap_or_else(|error| panic!("state entry of kind {} is corrupt: {error}", T::NAME)),
        )
    }

    fn parent_timestamp_ms(&self) -> u64 {
        self.head.as_ref().map_or(self.genesis.genesis_time_ms, |head| head.timestamp_ms)
    }

    /// Checks every rule for `block` as the next block, including all signatures, and
    /// executes it.
    pub fn validate(&self, block: Block) -> Result<VerifiedBlock, BlockError> {
        self.validate_with(block, |_| false)
    }

    /// Like [`Chain::validate`], but skips the signature check of transaction `index` when
    /// `already_verified(index)`: the caller verified that exact transaction (body and
    /// signature) before, e.g. when admitting it to its mempool.
    pub fn validate_with(
        &self,
        block: Block,
        already_verified: impl Fn(usize) -> bool,
    ) -> Result<VerifiedBlock, BlockError> {
        let header = &block.header;
        self.check_header_links(header)?;
        let hash = header.hash();
        if !self.validators_at(header.height).contains(&header.proposer) {
            return Err(BlockError::UnknownProposer(header.proposer.to_string()));
        }
        header
            .proposer
            .verify(&BlockHeader::signing_message(&hash), &block.signature)
            .map_err(|_| BlockError::ProposerSignature)?;
        let count = block.transactions.len();
        if count > MAX_BLOCK_TXS {
            return Err(BlockError::TooManyTransactions(count));
        }
        if header.tx_count as usize != count {
            return Err(BlockError::TransactionCount { header: header.tx_count, body: count });
        }
        let encoded: Vec<Vec<u8>> = block.transactions.iter().map(Encode::encode).collect();
        check_root("transaction", header.tx_root, root_of_encoded(&encoded))?;
        let mut seen = HashSet::with_capacity(count);
        for (index, tx) in block.transactions.iter().enumerate() {
            if !seen.insert(tx.id()) {
                return Err(BlockError::DuplicateTransaction { index });
            }
            if self.account(&tx.body.signer).is_some_and(|account| tx.body.nonce < account.next_nonce) {
                return Err(BlockError::ReplayedTransaction { index });
            }
        }
        let unverified: Vec<usize> = (0..count).filter(|index| !already_verified(*index)).collect();
        let messages: Vec<Vec<u8>> =
            unverified.iter().map(|index| block.transactions[*index].body.signing_message()).collect();
        let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let signatures: Vec<_> =
            unverified.iter().map(|index| block.transactions[*index].signature).collect();
        let signers: Vec<_> = unverified.iter().map(|index| block.transactions[*index].body.signer).collect();
        verify_batch(&message_refs, &signatures, &signers)
            .map_err(|error| BlockError::TransactionSignature { index: unverified[error.index] })?;
        let (receipts, prepared) = self.execute(header.height, header.timestamp_ms, &block.transactions);
        check_root("receipts", header.receipts_root, receipts_root(&receipts))?;
        check_root("state", header.state_root, prepared.root())?;
        Ok(VerifiedBlock { hash, block, receipts, prepared })
    }

    fn check_header_links(&self, header: &BlockHeader) -> Result<(), BlockError> {
        if header.height != self.height() + 1 {
            return Err(BlockError::Height { head: self.height(), found: header.height });
        }
        if header.parent_hash != self.head_hash {
            return Err(BlockError::ParentHash { expected: self.head_hash, found: header.parent_hash });
        }
        if header.timestamp_ms < self.parent_timestamp_ms() {
            return Err(BlockError::Timestamp {
                parent: self.parent_timestamp_ms(),
                found: header.timestamp_ms,
            });
        }
        check_root("history", header.history_root, self.history.root())
    }

    fn execute(
        &self,
        height: u64,
        time_ms: u64,
        transactions: &[Transaction],
    ) -> (Vec<Receipt>, PreparedWrites) {
        let context = ExecutionContext { chain_id: &self.genesis.chain_id, height, time_ms };
        let (receipts, writes) = execute(&self.state, &context, transactions);
        (receipts, self.state.prepare(writes))
    }

    /// Builds and signs the next block from already-verified transactions.
    ///
    /// `timestamp_ms` is raised to the parent's if the proposer's clock is behind it.
    #[must_use]
    pub fn build<T: AsRef<VerifiedTx>>(
        &self,
        txs: &[T],
        timestamp_ms: u64,
        proposer: &SigningKey,
    ) -> VerifiedBlock {
        assert!(txs.len() <= MAX_BLOCK_TXS, "the block builder takes at most MAX_BLOCK_TXS");
        assert!(self.is_validator(&proposer.public_key()), "only validators build blocks");
        debug_assert_eq!(
            txs.iter().map(|tx| tx.as_ref().id()).collect::<HashSet<_>>().len(),
            txs.len(),
            "the block builder is never given the same transaction twice"
        );
        let height = self.height() + 1;
        let transactions: Vec<Transaction> = txs.iter().map(|tx| tx.as_ref().tx().clone()).collect();
        let tx_root = root_of(&txs.iter().map(|tx| leaf_hash(tx.as_ref().encoded())).collect::<Vec<_>>());
        let timestamp_ms = timestamp_ms.max(self.parent_timestamp_ms());
        let (receipts, prepared) = self.execute(height, timestamp_ms, &transactions);
        let header = BlockHeader {
            height,
            parent_hash: self.head_hash,
            timestamp_ms,
            proposer: proposer.public_key(),
            tx_count: u32::try_from(txs.len()).expect("bounded by MAX_BLOCK_TXS"),
            tx_root,
            receipts_root: receipts_root(&receipts),
            state_root: prepared.root(),
            history_root: self.history.root(),
        };
        let block = Block::seal(header, transactions, proposer);
        VerifiedBlock { hash: block.hash(), block, receipts, prepared }
    }

    /// Makes a verified block the new head. It must have been validated or built against the
    /// current head.
    pub fn commit(&mut self, verified: VerifiedBlock) -> Committed {
        assert_eq!(verified.block.header.parent_hash, self.head_hash, "block verified against another head");
        self.state.commit(verified.prepared);
        self.registry = read_registry(&self.state);
        self.history.push(&verified.hash);
        self.head_hash = verified.hash;
        self.head = Some(verified.block.header.clone());
        debug_assert_eq!(self.history.len(), self.height());
        Committed { block: verified.block, hash: verified.hash, receipts: verified.receipts }
    }
}

fn check_root(what: &'static str, header: Digest, computed: Digest) -> Result<(), BlockError> {
    if header == computed { Ok(()) } else { Err(BlockError::RootMismatch { what, header, computed }) }
}

fn root_of_encoded(encoded: &[Vec<u8>]) -> Digest {
    root_of(&encoded.iter().map(|bytes| leaf_hash(bytes)).collect::<Vec<_>>())
}

/// The RFC 9162 root over a block's receipts.
#[must_use]
pub fn receipts_root(receipts: &[Receipt]) -> Digest {
    root_of_encoded(&receipts.iter().map(Encode::encode).collect::<Vec<_>>())
}

fn read_registry(state: &State) -> Registry {
    let bytes = state.get(keys::ORGANIZATIONS).expect("the registry is written at genesis");
    Registry::decode(&bytes).expect("the registry in state is canonical")
}

/// The state entries genesis defines.
fn genesis_entries(genesis: &Genesis) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut entries = Vec::new();
    let mut registry = Registry::default();
    for org in &genesis.organizations {
        let administrators = org.members.iter().filter(|member| member.role == Role::Administrator).count();
        registry.insert(Organization {
            id: org.id.clone(),
            kind: org.kind,
            node: org.node.clone(),
            active: true,
            active_administrators: u32::try_from(administrators).expect("bounded by MAX_GENESIS_MEMBERS"),
            admitted_height: 0,
        });
        if let Some(node) = &org.node {
            let account = Account {
                next_nonce: 0,
                organization: org.id.clone(),
                role: Role::Node,
                patient_id: None,
                status: MemberStatus::Active,
            };
            entries.push((keys::account(&node.public_key), account.encode()));
        }
        for member in &org.members {
            let account = Account {
                next_nonce: 0,
                organization: org.id.clone(),
                role: member.role,
                patient_id: member.patient_id,
                status: MemberStatus::Active,
            };
            entries.push((keys::account(&member.public_key), account.encode()));
            if let Some(patient_id) = &member.patient_id {
                entries.push((keys::patient(patient_id), member.public_key.encode()));
            }
        }
    }
    // In registry order, as governance recomputes it, so equal sets compare equal.
    let schedule =
        ValidatorSchedule { epoch: 0, since_height: 1, current: registry.validators(), next: None };
    entries.push((keys::ORGANIZATIONS.to_vec(), registry.encode()));
    entries.push((keys::PARAMETERS.to_vec(), genesis.parameters.encode()));
    entries.push((keys::VALIDATORS.to_vec(), schedule.encode()));
    entries
}
