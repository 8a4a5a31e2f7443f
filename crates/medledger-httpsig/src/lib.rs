//! Authentication of HTTP requests by a member's Ed25519 key.
//!
//! Requests to members-only endpoints carry an [RFC 9421] HTTP message signature made with the
//! member's key, and an [RFC 9530] `Content-Digest` when they have a body. This crate signs
//! ([`sign_request`]) and verifies ([`verify_request`]) such requests and keeps a bounded
//! [`ReplayCache`] of the nonces it has seen. It takes plain strings and bytes, never the types
//! of an HTTP framework, so the API server (axum) and the CLI's client (ureq) share it.
//!
//! # The MedLedger profile of RFC 9421
//!
//! MedLedger accepts a small, fixed subset of RFC 9421, so that every request has one way to be
//! signed:
//!
//! - **One signature, labelled [`SIGNATURE_LABEL`] (`sig1`).** `Signature-Input` and `Signature`
//!   each hold exactly that one dictionary member; any other or additional label is refused.
//! - **Covered components, in this order:** `"@method" "@authority" "@path" "@query"`
//!   ([`REQUIRED_COMPONENTS`]), then `"content-digest"` ([`CONTENT_DIGEST_COMPONENT`]) when the
//!   body is not empty. A request with an empty body may cover `"content-digest"` too; the
//!   header is then checked like any other. Nothing else may be covered, nothing may repeat, and
//!   components carry no parameters.
//! - **`@query`** is `?` followed by the query string, so `?` alone for a request without one
//!   (RFC 9421 §2.2.7). **`@authority`** is compared in lowercase (§2.2.3). An empty `@path`
//!   is `/`.
//! - **Parameters:** `created` (unix seconds, required), `expires` (optional; after `created`
//!   and at most [`MAX_SIGNATURE_LIFETIME_SECONDS`] after it), `nonce` (required,
//!   [`MIN_NONCE_CHARS`] to [`MAX_NONCE_CHARS`] characters of `A-Z a-z 0-9 - _`), `keyid`
//!   (required, the member's Ed25519 public key as 64 lowercase hex digits) and `alg`
//!   (required, [`SIGNATURE_ALGORITHM`] = `"ed25519"`). Any other parameter is refused.
//! - **Canonical form:** `Signature-Input` must be exactly what RFC 8941 serialisation of its
//!   own parsed value gives (single spaces inside the inner list, no repeated parameters, no
//!   padding other than around the whole value). The `@signature-params` line of the signature
//!   base is that serialisation, so it equals what was sent.
//! - **Freshness:** `created` must be within [`MAX_CLOCK_SKEW_SECONDS`] of the verifier's clock,
//!   either way. The verifier's clock is a parameter (`now_seconds`): nothing here reads a clock.
//! - **Digest:** `Content-Digest` must hold a `sha-256` member equal to SHA-256 of the body
//!   as received. Other algorithms in the header are ignored (RFC 9530 §2) but stay covered by
//!   the signature, which is over the whole header value.
//! - **Bounds:** headers are refused above [`MAX_SIGNATURE_INPUT_BYTES`],
//!   [`MAX_SIGNATURE_HEADER_BYTES`] and [`MAX_CONTENT_DIGEST_HEADER_BYTES`]; method, authority,
//!   path and query together above [`MAX_SIGNED_TARGET_BYTES`].
//!
//! # What the caller does
//!
//! [`verify_request`] says *who* signed a well-formed, fresh request. The caller then checks
//! that the key is an active member (a valid signature by a stranger is a 403, not a 401) and
//! only then records the nonce with [`ReplayCache::check_and_insert`], so that strangers cannot
//! fill the cache.
//!
//! [RFC 9421]: https://www.rfc-editor.org/rfc/rfc9421
//! [RFC 9530]: https://www.rfc-editor.org/rfc/rfc9530

mod base;
mod digest;
mod error;
mod freshness;
mod params;
mod replay;
mod request;

pub use base::signature_base;
pub use digest::content_digest;
pub use error::AuthError;
pub use replay::ReplayCache;
pub use request::{RequestParts, SignedHeaders, VerifiedRequest, new_nonce, sign_request, verify_request};

/// The one signature label MedLedger writes and reads.
pub const SIGNATURE_LABEL: &str = "sig1";

/// The one signature algorithm, by its name in the HTTP Signature Algorithms registry.
pub const SIGNATURE_ALGORITHM: &str = "ed25519";

/// Components every signed request covers, in this order.
pub const REQUIRED_COMPONENTS: [&str; 4] = ["@method", "@authority", "@path", "@query"];

/// The component covered after [`REQUIRED_COMPONENTS`] when the request has a body.
pub const CONTENT_DIGEST_COMPONENT: &str = "content-digest";

/// How far `created` may be from the verifier's clock, either way, in seconds.
// Why: member machines keep NTP time to well within a second; five minutes forgives a badly kept
// laptop clock, and it is also how long the replay cache must remember each nonce.
pub const MAX_CLOCK_SKEW_SECONDS: u64 = 300;

/// The longest `expires - created` a signer may ask for, in seconds.
// Why: `created` is only accepted for MAX_CLOCK_SKEW_SECONDS anyway; a longer lifetime would
// promise a validity the freshness check never gives.
pub const MAX_SIGNATURE_LIFETIME_SECONDS: u64 = MAX_CLOCK_SKEW_SECONDS;

/// Largest `Signature-Input` header accepted, in bytes.
// Why: the longest valid value (five components, `created` and `expires` of 15 digits, a 64-hex
// keyid, a 64-character nonce and `alg`) is under 300 bytes; the rest is slack, and the bound
// keeps parsing of unauthenticated input cheap.
pub const MAX_SIGNATURE_INPUT_BYTES: usize = 1024;

/// Largest `Signature` header accepted, in bytes.
// Why: `sig1=:` plus 88 base64 characters of a 64-byte Ed25519 signature plus `:` is 95 bytes.
pub const MAX_SIGNATURE_HEADER_BYTES: usize = 256;

/// Largest `Content-Digest` header accepted, in bytes.
// Why: a sha-256 member is 54 bytes; this leaves room for a sha-512 member (100 bytes) that a
// generic client library may add alongside, and no more.
pub const MAX_CONTENT_DIGEST_HEADER_BYTES: usize = 512;

/// Shortest nonce accepted, in characters.
// Why: 16 base64url characters carry 96 bits, so honest clients never collide by chance.
pub const MIN_NONCE_CHARS: usize = 16;

/// Longest nonce accepted, in characters.
// Why: a nonce is an identifier, not data; 64 characters fits any UUID or random encoding, and
// bounds what the replay cache hashes per request.
pub const MAX_NONCE_CHARS: usize = 64;

/// Random bytes in a nonce made by [`new_nonce`].
// Why: 128 bits, the size of a random UUID; 22 base64url characters, within the nonce bounds.
pub const NONCE_RANDOM_BYTES: usize = 16;

/// Largest total of method, authority, path and query in a verified request, in bytes.
// Why: MedLedger's paths and queries are short (keys, ids, paging); 8 KiB is the request-line
// limit of common proxies, and it bounds the signature base hashed for each unauthenticated
// request.
pub const MAX_SIGNED_TARGET_BYTES: usize = 8 * 1024;

/// Most (key, nonce) pairs a [`ReplayCache`] remembers at once.
// Why: each pair is kept for at most 2 × MAX_CLOCK_SKEW_SECONDS (10 minutes), so this allows a
// sustained ~160 authenticated requests a second, far above a consortium node's member traffic,
// in about 10 MB; past it the node refuses (503) rather than forget a nonce early.
pub const MAX_REPLAY_CACHE_ENTRIES: usize = 100_000;
