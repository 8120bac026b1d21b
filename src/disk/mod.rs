//! A tree on disk: crash-safe writes ([`store`]), what is there for each catalog entry
//! ([`inventory`]), backups and node bundles ([`tree`]), and the issuance log ([`issuance`]).

pub mod inventory;
pub mod issuance;
pub mod store;
pub mod tree;
