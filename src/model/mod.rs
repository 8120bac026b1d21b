//! The model: the cluster description, the catalog, the topology and kubeadm's vocabulary.
//! Data with no side effects; every operation walks it.

pub mod catalog;
pub mod infer;
pub mod spec;
pub mod topology;
pub mod vocabulary;
