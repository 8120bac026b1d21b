//! Changing a tree: generate it ([`init`]), renew, change SANs and nodes ([`lifecycle`]),
//! rotate a CA ([`rotate`]), work with an outside CA ([`external`]) and decide Kubernetes CSR
//! objects ([`approve`]). Each writes through [`crate::disk::store`] and records what it signs.

pub mod approve;
pub mod external;
pub mod init;
pub mod lifecycle;
pub mod rollout;
pub mod rotate;
pub mod wiring;
