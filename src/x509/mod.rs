//! X.509 as kubepki uses it: keys and signing (only a [`issue::Ca`] signs), certificates and
//! requests read into plain data, usages as types, and kubeconfigs.

pub mod certinfo;
pub mod issue;
pub mod kubeconfig;
pub mod request;
pub mod usage;
