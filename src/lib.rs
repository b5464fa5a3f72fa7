//! hopscope: per-hop latency and failure analysis from the plain logs of
//! distributed systems.
//!
//! The pipeline, one module per stage:
//! `discover` (which files) → `input` (map or read, cut into newline-aligned
//! chunks) → `parse` (one line → one compact [`model::Record`]) → `group`
//! (records of one request together, sorted) → `assemble`
//! (records of one request → visits, calls, parents, legs) → `measure`
//! (mergeable statistics per service, hop and chain) → `report` (one
//! serialisable model rendered as a table, JSON or CSV).
//!
//! Vocabulary, used the same way in code, help, JSON keys and table headers:
//! * **record** — one usable log line: request ID, timestamp, service and
//!   optional span, parent span, event kind, peer, duration, failure flag.
//! * **request** — all records sharing one request ID.
//! * **visit** — one service handling one request once.
//! * **call** — a caller visit's `client_send`/`client_recv` pair to a peer.
//! * **hop** — caller → callee; the root's hop comes from `(client)`.
//! * **processing time** — how long the callee worked (visit end − start).
//! * **propagation time** — how long the call was in flight (request leg +
//!   response leg).
//! * **chain** — the shape of a request's call tree as a string.
#![warn(clippy::unwrap_used, clippy::expect_used)]
#![warn(missing_docs)]
#![deny(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod app;
pub mod assemble;
pub mod check;
pub mod cli;
pub mod error;
pub mod group;
pub mod input;
pub mod measure;
pub mod model;
pub mod parse;
pub mod report;
