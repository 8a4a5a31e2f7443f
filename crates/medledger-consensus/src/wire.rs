//! What validators send each other besides consensus votes: blocks, gossiped transactions,
//! and catch-up. One canonical encoding (MedLedger's codec), one tag byte per message kind,
//! every list bounded before it is allocated.

use medledger_crypto::Digest;
use medledger_types::limits::MAX_BLOCK_BYTES;
use medledger_types::{Block, Decode, DecodeError, Encode, Reader, Transaction, Writer};

/// p2p channels. The first three belong to the consensus engine.
pub mod channel {
    /// Consensus votes.
    pub const VOTES: u64 = 0;
    /// Consensus certificates.
    pub const CERTIFICATES: u64 = 1;
    /// The consensus engine's own fetching of certificates it missed.
    pub const RESOLVER: u64 = 2;
    /// Proposed blocks and blocks asked for by hash.
    pub const BLOCKS: u64 = 3;
    /// Client transactions gossiped to every validator.
    pub const TRANSACTIONS: u64 = 4;
    /// Heights announced and final blocks fetched to catch up.
    pub const SYNC: u64 = 5;
    /// Requests between organisations' nodes (records held by another organisation).
    pub const EXCHANGE: u64 = 6;
}

/// Most transactions in one gossip message: about 1 MiB of typical transactions.
pub const MAX_GOSSIP_TXS: usize = 4_096;

/// Most blocks in one catch-up answer; a node far behind asks again from where it got to.
pub const MAX_SYNC_BLOCKS: usize = 64;

/// Most bytes of one finalization certificate (generous for 128 validators' signatures).
pub const MAX_FINALIZATION_BYTES: usize = 64 * 1024;

/// Largest message on any MedLedger channel: a catch-up answer of blocks whose encodings sum
/// to at most one maximal block, plus framing and a certificate.
pub const MAX_MESSAGE_BYTES: usize = MAX_BLOCK_BYTES + MAX_FINALIZATION_BYTES + 1024;

/// A message between validators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A block: a proposal, or the answer to [`Message::GetBlock`].
    Block(Box<Block>),
    /// Asks for the block with this hash (final or not).
    GetBlock(Digest),
    /// Client transactions for the mempool.
    Transactions(Vec<Transaction>),
    /// The sender's finalized height, sent every second; also how peers know who is up.
    Hello {
        /// Height of the sender's last final block.
        finalized_height: u64,
    },
    /// Asks for final blocks from `from_height` on.
    GetFinalized {
        /// First height wanted.
        from_height: u64,
    },
    /// Consecutive final blocks and the encoded finalization certificate of the last one.
    Finalized {
        /// The blocks, in height order.
        blocks: Vec<Block>,
        /// The consensus finalization of the last block.
        finalization: Vec<u8>,
    },
}

impl Message {
    fn tag(&self) -> u8 {
        match self {
            Self::Block(_) => 0,
            Self::GetBlock(_) => 1,
            Self::Transactions(_) => 2,
            Self::Hello { .. } => 3,
            Self::GetFinalized { .. } => 4,
            Self::Finalized { .. } => 5,
        }
    }
}

impl Encode for Message {
    fn encode_to(&self, writer: &mut Writer) {
        writer.u8(self.tag());
        match self {
            Self::Block(block) => writer.bytes(&block.encode()),
            Self::GetBlock(hash) => writer.digest(hash),
            Self::Transactions(txs) => writer.list(txs, |writer, tx| writer.bytes(&tx.encode())),
            Self::Hello { finalized_height } => writer.u64(*finalized_height),
            Self::GetFinalized { from_height } => writer.u64(*from_height),
            Self::Finalized { blocks, finalization } => {
                writer.list(blocks, |writer, block| writer.bytes(&block.encode()));
                writer.bytes(finalization);
            }
        }
    }
}

impl Decode for Message {
    const NAME: &'static str = "validator message";
    const MAX_ENCODED_BYTES: usize = MAX_MESSAGE_BYTES;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8("message tag")? {
            0 => Ok(Self::Block(Box::new(Block::decode(reader.bytes(MAX_BLOCK_BYTES, "block")?)?))),
            1 => Ok(Self::GetBlock(reader.digest("block hash")?)),
            2 => {
                let txs = reader.list(MAX_GOSSIP_TXS, "transactions", |reader| {
                    Transaction::decode(reader.bytes(Transaction::MAX_ENCODED_BYTES, "transaction")?)
                })?;
                Ok(Self::Transactions(txs))
            }
            3 => Ok(Self::Hello { finalized_height: reader.u64("finalized height")? }),
            4 => Ok(Self::GetFinalized { from_height: reader.u64("from height")? }),
            5 => {
                let blocks = reader.list(MAX_SYNC_BLOCKS, "blocks", |reader| {
                    Block::decode(reader.bytes(MAX_BLOCK_BYTES, "block")?)
                })?;
                let finalization = reader.bytes(MAX_FINALIZATION_BYTES, "finalization")?.to_vec();
                Ok(Self::Finalized { blocks, finalization })
            }
            tag => Err(DecodeError::UnknownTag { what: "message", tag }),
        }
    }
}
