//! Looking at a tree: does each certificate fit its entry ([`conformance`]), what is wrong with
//! each link and file ([`verify`], with its closed list of [`finding`]s), expiry ([`check`]),
//! what a file says ([`inspect`]) and real TLS handshakes ([`handshake`]).

pub mod check;
pub mod conformance;
pub mod finding;
pub mod handshake;
pub mod inspect;
pub mod verify;
