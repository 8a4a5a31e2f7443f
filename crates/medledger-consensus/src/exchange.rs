//! Requests between organisations' nodes over the authenticated p2p network, such as one
//! node asking another for a record it holds.
//!
//! The p2p layer has already authenticated each peer as a registered node key and encrypts
//! the stream, so a request needs no signature of its own: the answering side learns which
//! node asks from the connection. Messages are opaque bytes here; what they mean belongs to
//! whoever installs the [`ExchangeHandler`] (the records service). A request is answered once
//! or times out; nothing is retried.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use commonware_macros::select_loop;
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_runtime::{Clock, Spawner};
use commonware_utils::channel::{mpsc, oneshot};
use medledger_crypto::PublicKey;
use medledger_types::{Decode, DecodeError, Encode, Reader, Writer};

use crate::keys::{ConsensusKey, consensus_key, ledger_key};

/// Largest request or answer body: a record's ciphertext (an 8 MiB resource sealed) and its
/// framing. The p2p message limit is above it.
pub const MAX_EXCHANGE_BYTES: usize = 8 * 1024 * 1024 + 4 * 1024;

/// Most requests this node waits on at once; more are refused until answers arrive.
pub const MAX_PENDING_REQUESTS: usize = 1_024;

/// How long a request waits for its answer: a node that is down or partitioned is reported
/// as unreachable instead of holding the client.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How often expired requests are answered with a timeout.
const EXPIRY_TICK: Duration = Duration::from_millis(250);

/// Answers requests from other nodes.
pub trait ExchangeHandler: Send + Sync + 'static {
    /// The answer to `request` from the node whose key is `peer`.
    fn answer(&self, peer: &PublicKey, request: &[u8]) -> Vec<u8>;
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// This node is not connected to other nodes (a single-node chain, or not started yet).
    #[error("this node is not connected to other organisations' nodes")]
    NotRunning,
    /// Too many requests are waiting.
    #[error("too many requests to other nodes are waiting")]
    Busy,
    /// The peer is not connected.
    #[error("node {0} is not connected")]
    Unreachable(PublicKey),
    /// The peer did not answer in time.
    #[error("node {0} did not answer within {timeout_ms} ms", timeout_ms = REQUEST_TIMEOUT.as_millis())]
    Timeout(PublicKey),
}

/// One request on its way out.
struct Outbound {
    peer: PublicKey,
    body: Vec<u8>,
    reply: oneshot::Sender<Result<Vec<u8>, ExchangeError>>,
}

/// The node's end of the exchange: shared by whoever sends requests (any runtime) and the
/// network task that carries them.
#[derive(Clone, Default)]
pub struct Exchange {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    handler: OnceLock<Arc<dyn ExchangeHandler>>,
    outbound: Mutex<Option<mpsc::Sender<Outbound>>>,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange").field("has_handler", &self.inner.handler.get().is_some()).finish()
    }
}

impl Exchange {
    /// An exchange with no handler and no network yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Installs what answers other nodes' requests; requests that arrive before are refused
    /// with an empty answer. Only the first call has an effect.
    pub fn set_handler(&self, handler: Arc<dyn ExchangeHandler>) {
        let _first = self.inner.handler.set(handler);
    }

    /// Sends `body` to the node `peer` and waits for its answer (at most [`REQUEST_TIMEOUT`]).
    ///
    /// # Errors
    /// See [`ExchangeError`].
    pub async fn request(&self, peer: PublicKey, body: Vec<u8>) -> Result<Vec<u8>, ExchangeError> {
        let sender = self.inner.outbound.lock().expect("exchange lock poisoned").clone();
        let sender = sender.ok_or(ExchangeError::NotRunning)?;
        let (reply, answer) = oneshot::channel();
        sender.try_send(Outbound { peer, body, reply }).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => ExchangeError::Busy,
            mpsc::error::TrySendError::Closed(_) => ExchangeError::NotRunning,
        })?;
        answer.await.map_err(|_| ExchangeError::NotRunning)?
    }

    /// Connects the network task: it receives the requests sent from now on.
    fn attach(&self) -> mpsc::Receiver<Outbound> {
        let (sender, receiver) = mpsc::channel(MAX_PENDING_REQUESTS);
        *self.inner.outbound.lock().expect("exchange lock poisoned") = Some(sender);
        receiver
    }

    fn answer(&self, peer: &PublicKey, request: &[u8]) -> Vec<u8> {
        self.inner.handler.get().map(|handler| handler.answer(peer, request)).unwrap_or_default()
    }
}

/// The frame of every exchange message.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Frame {
    Request { id: u64, body: Vec<u8> },
    Answer { id: u64, body: Vec<u8> },
}

impl Encode for Frame {
    fn encode_to(&self, writer: &mut Writer) {
        let (tag, id, body) = match self {
            Self::Request { id, body } => (1, id, body),
            Self::Answer { id, body } => (2, id, body),
        };
        writer.u8(tag);
        writer.u64(*id);
        writer.bytes(body);
    }
}

impl Decode for Frame {
    const NAME: &'static str = "exchange frame";
    const MAX_ENCODED_BYTES: usize = MAX_EXCHANGE_BYTES + 16;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = reader.u8("exchange frame tag")?;
        let id = reader.u64("request id")?;
        let body = reader.bytes(MAX_EXCHANGE_BYTES, "exchange body")?.to_vec();
        match tag {
            1 => Ok(Self::Request { id, body }),
            2 => Ok(Self::Answer { id, body }),
            tag => Err(DecodeError::UnknownTag { what: "exchange frame", tag }),
        }
    }
}

struct Pending {
    peer: PublicKey,
    deadline: SystemTime,
    reply: oneshot::Sender<Result<Vec<u8>, ExchangeError>>,
}

/// Carries the exchange's requests and answers on one p2p channel until the network stops.
pub(crate) async fn run<E, S, R>(context: E, exchange: Exchange, channel: (S, R))
where
    E: Clock + Spawner,
    S: Sender<PublicKey = ConsensusKey>,
    R: Receiver<PublicKey = ConsensusKey>,
{
    let (mut sender, mut receiver) = channel;
    let mut outbound = exchange.attach();
    let mut pending: HashMap<u64, Pending> = HashMap::new();
    let mut next_id: u64 = 0;
    let mut next_expiry = context.current() + EXPIRY_TICK;
    select_loop! {
        context,
        on_stopped => {
            tracing::debug!("node exchange stopping");
        },
        Some(request) = outbound.recv() else break => {
            next_id = next_id.wrapping_add(1);
            if pending.len() >= MAX_PENDING_REQUESTS {
                let _ = request.reply.send(Err(ExchangeError::Busy));
                continue;
            }
            let frame = Frame::Request { id: next_id, body: request.body };
            let sent = sender.send(Recipients::One(consensus_key(&request.peer)), frame.encode(), false);
            if sent.is_empty() {
                let _ = request.reply.send(Err(ExchangeError::Unreachable(request.peer)));
                continue;
            }
            let deadline = context.current() + REQUEST_TIMEOUT;
            pending.insert(next_id, Pending { peer: request.peer, deadline, reply: request.reply });
        },
        Ok((peer, bytes)) = receiver.recv() else break => {
            let Some(peer) = ledger_key(&peer) else { continue };
            match Frame::decode(bytes.as_ref()) {
                Ok(Frame::Request { id, body }) => {
                    let answer = Frame::Answer { id, body: exchange.answer(&peer, &body) };
                    let _ = sender.send(Recipients::One(consensus_key(&peer)), answer.encode(), false);
                }
                Ok(Frame::Answer { id, body }) => {
                    // Only the node asked may answer.
                    if pending.get(&id).is_some_and(|waiting| waiting.peer == peer)
                        && let Some(waiting) = pending.remove(&id)
                    {
                        let _ = waiting.reply.send(Ok(body));
                    }
                }
                Err(error) => tracing::debug!(%peer, %error, "undecodable exchange message"),
            }
        },
        () = context.sleep_until(next_expiry) => {
            let now = context.current();
            let expired: Vec<u64> =
                pending.iter().filter(|(_, waiting)| waiting.deadline <= now).map(|(id, _)| *id).collect();
            for id in expired {
                if let Some(waiting) = pending.remove(&id) {
                    let _ = waiting.reply.send(Err(ExchangeError::Timeout(waiting.peer)));
                }
            }
            next_expiry = now + EXPIRY_TICK;
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_refuse_unknown_tags() {
        for frame in [Frame::Request { id: 7, body: b"ask".to_vec() }, Frame::Answer { id: 7, body: vec![] }]
        {
            assert_eq!(Frame::decode(&frame.encode()), Ok(frame));
        }
        let mut bytes = Frame::Request { id: 1, body: vec![1] }.encode();
        bytes[0] = 9;
        assert!(matches!(Frame::decode(&bytes), Err(DecodeError::UnknownTag { .. })));
    }
}
