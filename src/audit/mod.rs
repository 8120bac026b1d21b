//! Looking at a tree: does each certificate fit its entry ([`conformance`]), what is wrong with
//! each link and file ([`verify`], with its closed list of [`finding`]s), expiry ([`check`]),
//! what a file says ([`inspect`]), real TLS handshakes ([`handshake`], also against a running
//! server with any credential) and what an error text means for the tree ([`explain`]).

pub mod check;
pub mod conformance;
pub mod explain;
pub mod finding;
pub mod handshake;
pub mod inspect;
pub mod verify;
pub mod wiring;
