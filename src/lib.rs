//! kubepki: the TLS system of a Kubernetes cluster as data (who talks to whom, and every CA,
//! certificate, key and kubeconfig), and the operations that generate, inspect, audit and
//! change it.
//!
//! The two pieces of data every operation walks are the [topology](model::topology) (the
//! components and the TLS links between them) and the [catalog](model::catalog) (one entry
//! per CA, certificate, key pair and kubeconfig), both built from a
//! [cluster description](model::spec::ClusterSpec). The API is grouped as the code is:
//!
//! - [`model`]: the description, the catalog, the topology and kubeadm's vocabulary. Data, no
//!   side effects.
//! - [`x509`]: keys and signing (only a CA signs), certificates and requests read into plain
//!   data, kubeconfigs.
//! - [`disk`]: a tree on disk: crash-safe writes, what is there for each entry, backups, the
//!   issuance log.
//! - [`audit`]: looking at a tree: the conformance check, `verify`'s findings, `check`,
//!   `inspect` and live TLS handshakes.
//! - [`operations`]: changing a tree: `init`, renew, SANs and nodes, CA rotation, CSRs for an
//!   outside CA, Kubernetes CSR objects.
//! - [`report`] and [`graph`]: presenters (tables, the picture of who talks to whom).
//!
//! Every fallible call returns [`Result`], whose [`Error`] names the file, the field and the
//! problem. Findings are not errors: `verify` returns a report; `Err` means "could not check".
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(unreachable_pub)]

pub mod audit;
pub mod disk;
mod error;
pub mod graph;
pub mod model;
pub mod operations;
#[cfg(test)]
mod props;
pub mod report;
pub mod x509;

pub use error::{safe_text, Error, Result};
