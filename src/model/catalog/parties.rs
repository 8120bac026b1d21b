//! Whose names a SAN is: the one rule that keeps each party's names its own. `approve` denies a
//! kubelet serving request by it (`ServingSANsOfOthers`), `san add` and `node add` refuse by it,
//! and `verify` reports a certificate that breaks it (`foreign-san`).
//!
//! A party is what answers to a set of names: every apiserver together (the `kubernetes`
//! service: they share its names, the service IP and the endpoint), an etcd member (its server
//! and peer certificates), each node's kubelet, each other entry by itself. A SAN names another
//! party when the catalog gives it to an entry of another party and the party asking does not
//! already have it by the description's rules.

use std::collections::HashMap;

use super::{Catalog, EntryId};
use crate::model::spec::{ClusterSpec, San};
use crate::model::vocabulary::entry;

/// Who answers to an entry's names (see the module doc).
fn party(id: &EntryId) -> (&'static str, Option<&str>) {
    match id.name() {
        entry::APISERVER => (entry::APISERVER, None),
        entry::ETCD_SERVER | entry::ETCD_PEER => ("etcd", id.node()),
        name => (name, id.node()),
    }
}

/// SAN → the positions of the entries whose profile gives it, in catalog order.
pub(super) type Owners = HashMap<San, Vec<usize>>;

impl Catalog {
    fn owners(&self) -> &Owners {
        self.owners.get_or_init(|| {
            let mut owners = Owners::new();
            // A CA's SAN is its name, which no client dials: `kubernetes` is the apiserver's.
            for (i, e) in self.entries.iter().enumerate().filter(|(_, e)| !e.is_ca()) {
                for s in e.cert().map_or(&[][..], |p| p.sans.as_slice()) {
                    owners.entry(s.clone()).or_default().push(i);
                }
            }
            owners
        })
    }

    /// Among `sans`, those that name another party than `own`'s, each with the first entry (in
    /// catalog order) of another party that has it. `own_sans` are the names `own` has by the
    /// description's rules ([`Catalog::built_in_sans`]; empty for an entry not in the catalog,
    /// such as a node being added): those are never another's.
    pub fn sans_of_others<'s>(
        &self,
        own: &EntryId,
        own_sans: &[San],
        sans: impl IntoIterator<Item = &'s San>,
    ) -> Vec<(San, EntryId)> {
        let owners = self.owners();
        let mut out: Vec<(San, EntryId)> = Vec::new();
        for s in sans {
            if own_sans.contains(s) || out.iter().any(|(o, _)| o == s) {
                continue;
            }
            let other =
                owners.get(s).into_iter().flatten().map(|&i| &self.entries[i].id).find(|id| party(id) != party(own));
            if let Some(id) = other {
                out.push((s.clone(), id.clone()));
            }
        }
        out
    }

    /// The SANs the description gives entry `id` by its rules (node names and addresses, the
    /// service names and IP, the endpoint, `apiServerCertSANs`, ...): its profile's, less
    /// those recorded for that certificate alone (`certSANs`, what `san add` records).
    pub fn built_in_sans(&self, spec: &ClusterSpec, id: &str) -> Vec<San> {
        let recorded = spec.cert_sans.get(id).map_or(&[][..], |v| v.as_slice());
        let profile = self.get(id).and_then(|e| e.cert()).map_or(&[][..], |p| p.sans.as_slice());
        profile.iter().filter(|s| !recorded.contains(s)).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::model::catalog::{Catalog, EntryId};
    use crate::model::spec::{ClusterSpec, San};

    fn others(catalog: &Catalog, spec: &ClusterSpec, id: &str, sans: &[&str]) -> Vec<String> {
        let sans: Vec<San> = sans.iter().map(|s| San::guess(s)).collect();
        let own: EntryId = id.parse().unwrap();
        let built_in = catalog.built_in_sans(spec, id);
        catalog.sans_of_others(&own, &built_in, &sans).iter().map(|(s, o)| format!("{s} {o}")).collect()
    }

    /// Every apiserver is one party, an etcd member's two certificates are one; a node's
    /// kubelet is not its host's apiserver; a CA is no party; `certSANs` are not one's own.
    #[test]
    fn parties_share_their_names_and_nothing_else() {
        let yaml = "certSANs: {kubelet-serving@w1: [10.96.0.1]}\nnodes:\n  - {name: cp1, role: control-plane, addresses: [10.0.0.1]}\n  - {name: cp2, role: control-plane, addresses: [10.0.0.2]}\n  - {name: w1, role: worker, addresses: [10.0.1.1]}\n";
        let spec = ClusterSpec::from_yaml(yaml, Path::new("t.yaml")).unwrap();
        let catalog = Catalog::build(&spec);
        assert!(others(&catalog, &spec, "apiserver@cp1", &["kubernetes", "10.96.0.1", "lb.example.com"]).is_empty());
        // cp2's address is its apiserver's too (the same party), but also its etcd's.
        assert_eq!(others(&catalog, &spec, "apiserver@cp1", &["10.0.0.2"]), ["IP:10.0.0.2 etcd-server@cp2"]);
        assert!(others(&catalog, &spec, "etcd-peer@cp1", &["localhost", "10.0.0.1"]).is_empty());
        assert_eq!(others(&catalog, &spec, "etcd-peer@cp1", &["cp2"]), ["DNS:cp2 apiserver@cp2"]);
        assert_eq!(
            others(&catalog, &spec, "kubelet-serving@cp1", &["cp1", "kubernetes", "localhost"]),
            ["DNS:kubernetes apiserver@cp1", "DNS:localhost etcd-server@cp1"]
        );
        // Recorded for w1 alone, the service IP is still the apiserver's.
        assert_eq!(others(&catalog, &spec, "kubelet-serving@w1", &["10.96.0.1"]), ["IP:10.96.0.1 apiserver@cp1"]);
        assert_eq!(catalog.built_in_sans(&spec, "kubelet-serving@w1"), [San::guess("w1"), San::guess("10.0.1.1")]);
    }
}
