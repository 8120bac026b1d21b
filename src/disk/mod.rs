//! A tree on disk: crash-safe writes ([`store`]), what is there for each catalog entry
//! ([`inventory`]), node bundles ([`tree`]), the issuance log ([`issuance`]), one writer at a
//! time and the recovery of a killed run ([`run`]), and a backup per run ([`backup`]).

pub mod backup;
pub mod inventory;
pub mod issuance;
pub mod readfile;
pub mod run;
pub mod store;
pub mod tree;
