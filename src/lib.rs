//! kubepki: the TLS system of a Kubernetes cluster as data (who talks to whom, and every CA,
//! certificate, key and kubeconfig), and the commands that generate, inspect and prove it.
//!
//! The two pieces of data are the [`Topology`] (components and links) and the [`Catalog`]
//! (one entry per CA, certificate, key pair and kubeconfig), both built from a
//! [`ClusterSpec`]. Commands walk them.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod approve;
mod backup;
mod catalog;
mod certinfo;
mod check;
pub mod cli;
mod conformance;
mod error;
mod external;
mod finding;
mod graph;
mod handshake;
mod infer;
mod init;
mod inspect;
mod inventory;
mod issuance;
mod issue;
mod kubeconfig;
mod lifecycle;
mod render;
mod request;
mod rollout;
mod rotate;
mod run;
mod spec;
mod store;
mod topology;
mod tree;
mod usage;
mod verify;
mod vocabulary;

pub use approve::{
    approve, covered_by, evaluate, ApproveReport, Denial, Grant, Policy, RequestFields, RequestOutcome, Signer,
    Verdict, MIN_EXPIRATION_SECONDS,
};
pub use backup::{list as list_backups, restore as restore_backup, BackupInfo, RestoreReport, BACKUP_DIR};
pub use catalog::{
    bundle_root, Audience, Catalog, CertProfile, Entry, EntryId, EntryKind, ExtKeyUsage, Issuer, KeyUsage, Store,
    Subject, CA, ETCD_CA, ETCD_CLIENT_PORT, ETCD_PEER_PORT, FRONT_PROXY_CA, KUBELET_PORT, SA,
};
pub use certinfo::CertInfo;
pub use check::{check, kubeadm_expected, CheckEntry, CheckOptions, CheckReport, CheckStatus};
pub use conformance::{deviations, Deviation, Presented};
pub use error::{Error, Result};
pub use external::{
    generate_csrs, import_certs, sign_csrs, CsrReport, CsrWritten, ImportReport, Placed, RequestFiles, SignReport,
    SignedCert,
};
pub use finding::{FindingKind, FixTarget, Severity};
pub use graph::{render as render_graph, GraphFormat};
pub use handshake::{live, live_between, probe_endpoint, EndpointReport, LiveResult};
pub use infer::{cluster_of_tree, describe as describe_cluster, infer, record as record_cluster};
pub use init::{init, init_with_progress, Action, InitOptions, InitPhase, InitReport, Outcome, Progress, Silent};
pub use inspect::{
    inspect, key_search_root, CertSource, CertValidity, CertView, ClusterView, ContextView, CsrView, FileKind, FileRef,
    FileReport, KeyMatch, KeySource, KeyView, KubeconfigView, Refs, UserView,
};
pub use inventory::{Inventory, KubeconfigFacts, Loaded, Problem};
pub use issuance::{append as log_issued, log_path, read as read_issuance_log, IssuanceRecord};
pub use issue::{random_serial, Ca, Issued, PrivateKey, BACKDATE};
pub use kubeconfig::{Kubeconfig, Resolved as ResolvedKubeconfig};
pub use lifecycle::{
    node_entries, node_remove, plan_renew, plan_san, with_node, Applied, Change, NewNode, Plan as ChangePlan, Removed,
    RenewOptions, Summary, Tree,
};
pub use render::{table, Plan};
pub use request::CertificateRequest;
pub use rollout::{rollout, text as rollout_text, NodeRollout};
pub use rotate::{
    rotate as rotate_ca, rotate_dry_run as rotate_ca_dry_run, status as rotation_status, Phase, RotationStatus,
};
pub use run::{interrupted as interrupted_run, Interrupted, Run, LOCK, LOCK_WAIT};
pub use spec::{
    duration_text, is_dns1123_label, is_dns1123_subdomain, is_san_dns_name, CaLayout, Cidr, ClusterSpec, Endpoint,
    KeyAlgorithm, Node, Role, San, SpecFile, Validity, DEFAULT_APISERVER_PORT,
};
pub use store::{write_atomic, Batch, Mode};
pub use topology::{Component, ComponentKind, Link, LinkKind, Topology, TrustDomain};
pub use usage::PublicKeyKind;
pub use verify::{covers, verify, Finding, LinkStatus, LinkVerdict, Report, VerifyOptions};

/// Read a kubeconfig and resolve its current context (embedded data decoded).
pub fn read_kubeconfig(path: &std::path::Path) -> Result<ResolvedKubeconfig> {
    kubeconfig::read(path)
}
