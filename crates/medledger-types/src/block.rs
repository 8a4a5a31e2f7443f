//! Blocks, their headers, and the receipts that applying them yields.

use std::fmt;

use medledger_crypto::{Digest, PublicKey, Signature, SigningKey, tagged_hash};
use serde::{Deserialize, Serialize};

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::limits::{MAX_BLOCK_BYTES, MAX_BLOCK_TXS, MAX_RECEIPTS_BYTES, MAX_TX_BYTES};
use crate::tags;
use crate::tx::{Transaction, TxId};

/// Everything a block commits to. Its hash identifies the block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockHeader {
    /// Position in the chain; the first block after genesis has height 1.
    pub height: u64,
    /// Hash of the previous block's header (the genesis hash for height 1).
    pub parent_hash: Digest,
    /// Proposer's clock in milliseconds since the Unix epoch; never before the parent's.
    pub timestamp_ms: u64,
    /// The validator that built and signed the block.
    pub proposer: PublicKey,
    /// Number of transactions in the block.
    pub tx_count: u32,
    /// RFC 9162 Merkle root over the canonical bytes of the block's transactions.
    pub tx_root: Digest,
    /// RFC 9162 Merkle root over the canonical bytes of the block's receipts.
    pub receipts_root: Digest,
    /// Commitment to the whole state after applying this block.
    pub state_root: Digest,
    /// RFC 9162 Merkle root over the hashes of every earlier block (heights 1 to height − 1),
    /// so any later header proves the whole history before it.
    pub history_root: Digest,
}

impl BlockHeader {
    /// The block hash: tagged SHA-256 of the canonical header.
    #[must_use]
    pub fn hash(&self) -> Digest {
        tagged_hash(tags::BLOCK_HEADER, &[&self.encode()])
    }

    /// The bytes a proposer signs: the domain tag, then the block hash.
    #[must_use]
    pub fn signing_message(hash: &Digest) -> Vec<u8> {
        [tags::BLOCK_SIGNATURE, hash.as_bytes()].concat()
    }
}

impl Encode for BlockHeader {
    fn encode_to(&self, writer: &mut Writer) {
        writer.u64(self.height);
        writer.digest(&self.parent_hash);
        writer.u64(self.timestamp_ms);
        writer.public_key(&self.proposer);
        writer.u32(self.tx_count);
        writer.digest(&self.tx_root);
        writer.digest(&self.receipts_root);
        writer.digest(&self.state_root);
        writer.digest(&self.history_root);
    }
}

impl Decode for BlockHeader {
    const NAME: &'static str = "block header";
    const MAX_ENCODED_BYTES: usize = 8 + 32 + 8 + 32 + 4 + 4 * 32;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            height: reader.u64("height")?,
            parent_hash: reader.digest("parent hash")?,
            timestamp_ms: reader.u64("timestamp")?,
            proposer: reader.public_key("proposer")?,
            tx_count: reader.u32("transaction count")?,
            tx_root: reader.digest("transaction root")?,
            receipts_root: reader.digest("receipts root")?,
            state_root: reader.digest("state root")?,
            history_root: reader.digest("history root")?,
        })
    }
}

/// A header, its transactions, and the proposer's signature over the header hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The transactions, in execution order.
    pub transactions: Vec<Transaction>,
    /// The proposer's signature of [`BlockHeader::signing_message`].
    pub signature: Signature,
}

impl Block {
    /// Signs `header` with the proposer's key.
    #[must_use]
    pub fn seal(header: BlockHeader, transactions: Vec<Transaction>, proposer: &SigningKey) -> Self {
        debug_assert_eq!(proposer.public_key(), header.proposer, "sealing key must be the proposer");
        debug_assert_eq!(header.tx_count as usize, transactions.len());
        let signature = proposer.sign(&BlockHeader::signing_message(&header.hash()));
        Self { header, transactions, signature }
    }

    /// The block hash.
    #[must_use]
    pub fn hash(&self) -> Digest {
        self.header.hash()
    }
}

impl Encode for Block {
    fn encode_to(&self, writer: &mut Writer) {
        self.header.encode_to(writer);
        writer.length(self.transactions.len());
        for tx in &self.transactions {
            // Each transaction is length-prefixed so a reader can skip or hash it whole.
            writer.bytes(&tx.encode());
        }
        writer.signature(&self.signature);
    }
}

impl Decode for Block {
    const NAME: &'static str = "block";
    const MAX_ENCODED_BYTES: usize = MAX_BLOCK_BYTES;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let header = BlockHeader::decode_from(reader)?;
        let count = reader.length(MAX_BLOCK_TXS, "transaction list")?;
        if count != header.tx_count as usize {
            return Err(DecodeError::Invalid {
                what: "transaction list",
                reason: format!("header says {} transactions, body has {count}", header.tx_count),
            });
        }
        let mut transactions = Vec::with_capacity(count);
        for _ in 0..count {
            transactions.push(Transaction::decode(reader.bytes(MAX_TX_BYTES, "transaction")?)?);
        }
        let signature = reader.signature("block signature")?;
        Ok(Self { header, transactions, signature })
    }
}

/// Why a transaction in a block changed nothing but (sometimes) its signer's nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum RejectReason {
    /// The signer is not a registered member. The nonce is not consumed.
    UnknownSigner,
    /// The nonce was already used by this signer. Nothing changes.
    NonceReplayed {
        /// The nonce the signer must use next.
        expected: u64,
    },
    /// The nonce skips ahead of the signer's next nonce. Nothing changes.
    NonceGap {
        /// The nonce the signer must use next.
        expected: u64,
    },
    /// The signer's role does not allow this transaction. The nonce is consumed.
    NotAuthorized,
    /// The key to enrol is already a member. The nonce is consumed.
    MemberExists,
    /// The label already has an anchor. The nonce is consumed.
    AnchorExists,
    /// The transaction names another chain. Nothing changes.
    WrongChain,
}

impl RejectReason {
    fn tag(self) -> u8 {
        match self {
            RejectReason::UnknownSigner => 1,
            RejectReason::NonceReplayed { .. } => 2,
            RejectReason::NonceGap { .. } => 3,
            RejectReason::NotAuthorized => 4,
            RejectReason::MemberExists => 5,
            RejectReason::AnchorExists => 6,
            RejectReason::WrongChain => 7,
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::UnknownSigner => f.write_str("the signer is not a registered member"),
            RejectReason::NonceReplayed { expected } => {
                write!(f, "nonce already used (next nonce is {expected})")
            }
            RejectReason::NonceGap { expected } => {
                write!(f, "nonce skips ahead (next nonce is {expected})")
            }
            RejectReason::NotAuthorized => f.write_str("the signer is not authorized for this transaction"),
            RejectReason::MemberExists => f.write_str("the key is already a member"),
            RejectReason::AnchorExists => f.write_str("the label is already anchored"),
            RejectReason::WrongChain => f.write_str("the transaction is for another chain"),
        }
    }
}

/// What happened to one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// The transaction changed the state as asked.
    Applied,
    /// The transaction was rejected; see the reason.
    Rejected(RejectReason),
}

/// The outcome of one transaction in a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The transaction.
    pub tx_id: TxId,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl Encode for Receipt {
    fn encode_to(&self, writer: &mut Writer) {
        writer.digest(&self.tx_id.0);
        match self.outcome {
            Outcome::Applied => writer.u8(0),
            Outcome::Rejected(reason) => {
                writer.u8(reason.tag());
                if let RejectReason::NonceReplayed { expected } | RejectReason::NonceGap { expected } = reason
                {
                    writer.u64(expected);
                }
            }
        }
    }
}

impl Decode for Receipt {
    const NAME: &'static str = "receipt";
    const MAX_ENCODED_BYTES: usize = 32 + 1 + 8;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tx_id = TxId(reader.digest("receipt transaction id")?);
        let outcome = match reader.u8("receipt outcome")? {
            0 => Outcome::Applied,
            1 => Outcome::Rejected(RejectReason::UnknownSigner),
            2 => Outcome::Rejected(RejectReason::NonceReplayed { expected: reader.u64("expected nonce")? }),
            3 => Outcome::Rejected(RejectReason::NonceGap { expected: reader.u64("expected nonce")? }),
            4 => Outcome::Rejected(RejectReason::NotAuthorized),
            5 => Outcome::Rejected(RejectReason::MemberExists),
            6 => Outcome::Rejected(RejectReason::AnchorExists),
            7 => Outcome::Rejected(RejectReason::WrongChain),
            tag => {
                return Err(DecodeError::UnknownTag { what: "receipt outcome", tag });
            }
        };
        Ok(Self { tx_id, outcome })
    }
}

/// The receipts of one block, in transaction order.
impl Encode for Vec<Receipt> {
    fn encode_to(&self, writer: &mut Writer) {
        writer.length(self.len());
        for receipt in self {
            receipt.encode_to(writer);
        }
    }
}

impl Decode for Vec<Receipt> {
    const NAME: &'static str = "receipt list";
    const MAX_ENCODED_BYTES: usize = MAX_RECEIPTS_BYTES;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let count = reader.length(MAX_BLOCK_TXS, "receipt list")?;
        (0..count).map(|_| Receipt::decode_from(reader)).collect()
    }
}
