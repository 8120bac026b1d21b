//! The wiring generated from the model: for every control plane the static pod manifests of
//! kube-apiserver, etcd, kube-controller-manager and kube-scheduler (complete manifests, as
//! kubeadm writes them, with every setting of [`crate::model::topology::wiring`] naming that
//! node's own files and every verification the PKI allows turned on); for every node its
//! kubelet's `KubeletConfiguration`; for the cluster the RBAC objects kubepki's identities
//! need beyond Kubernetes' defaults, and the add-ons' manifests (`addons/metrics-server.yaml`).
//!
//! Written only where missing: a manifest that is there (kubeadm's, or one an operator edited)
//! is audited by `verify`, never replaced.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::model::catalog::Catalog;
use crate::model::spec::{Addon, ClusterSpec, Node, Role};
use crate::model::topology::wiring::{node_path, Want};
use crate::model::topology::{ComponentKind, Topology};
use crate::model::vocabulary::{entry, layout, ETCD_CLIENT_PORT, ETCD_PEER_PORT, KUBELET_PORT};

/// The Kubernetes version the manifests name images of.
pub const KUBERNETES_VERSION: &str = "v1.29.0";
/// The etcd image's tag kubeadm uses with it.
pub const ETCD_IMAGE: &str = "registry.k8s.io/etcd:3.5.10-0";
/// The RBAC objects, at the top of the tree.
pub const RBAC: &str = "kubepki-rbac.yaml";
/// A kubelet's configuration, in its node's bundle.
pub const KUBELET_CONFIG: &str = "var/lib/kubelet/config.yaml";
/// kube-proxy's configuration, in its node's bundle.
pub const KUBE_PROXY_CONFIG: &str = "var/lib/kube-proxy/config.yaml";

pub mod metrics_server;

/// Every wiring file of the cluster: tree-relative path and text (metrics-server's manifest,
/// which holds the CA certificate itself, is made with the tree: [`metrics_server::manifest_in`]).
pub fn files(spec: &ClusterSpec, catalog: &Catalog, topology: &Topology) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for node in spec.control_planes() {
        for kind in
            [ComponentKind::ApiServer, ComponentKind::Etcd, ComponentKind::ControllerManager, ComponentKind::Scheduler]
        {
            let text = manifest(spec, catalog, topology, node, kind);
            let name = kind.manifest().expect("a control-plane component");
            let bundle = Path::new(layout::NODES).join(&node.name).join(layout::ETC_KUBERNETES).join(layout::MANIFESTS);
            if node.name == spec.primary().name {
                out.push((Path::new(layout::MANIFESTS).join(name), text.clone()));
            }
            out.push((bundle.join(name), text));
        }
    }
    // kube-proxy's kubeconfig is one file for every node: found once, not once per node.
    let kube_proxy = kube_proxy_fields(catalog, topology, spec.primary());
    for node in &spec.nodes {
        let bundle = Path::new(layout::NODES).join(&node.name);
        out.push((bundle.join(KUBELET_CONFIG), kubelet_config(catalog, node)));
        out.push((bundle.join(KUBE_PROXY_CONFIG), kube_proxy_config(&kube_proxy, node)));
    }
    out.push((PathBuf::from(RBAC), rbac()));
    out
}

/// Write the wiring files that are missing; returns how many were written.
pub fn write_missing(spec: &ClusterSpec, catalog: &Catalog, topology: &Topology, root: &Path) -> Result<usize> {
    let mut batch = crate::disk::store::Batch::new();
    let mut n = 0;
    let mut all = files(spec, catalog, topology);
    let addon = PathBuf::from(layout::METRICS_SERVER_ADDON);
    if spec.has(Addon::MetricsServer) && root.join(&addon).symlink_metadata().is_err() {
        all.push((addon, metrics_server::manifest_in(spec, catalog, topology, root)?));
    }
    for (path, text) in all {
        if root.join(&path).symlink_metadata().is_err() {
            // Static pod manifests are 0600, as kubeadm writes them; the rest is public.
            let secret = path.parent().is_some_and(|d| d.ends_with(layout::MANIFESTS));
            let mode = if secret { crate::disk::store::Mode::Secret } else { crate::disk::store::Mode::Public };
            batch.add(root.join(path), text, mode);
            n += 1;
        }
    }
    batch.commit_in(root)?;
    Ok(n)
}

/// The flags a component's settings give it on `node`, from the model.
fn setting_flags(catalog: &Catalog, topology: &Topology, node: &Node, kind: ComponentKind) -> Vec<String> {
    let mut out = Vec::new();
    for s in kind.settings() {
        match s.want {
            Want::Equals { value } => out.push(format!("{}={value}", s.name)),
            // No liveness probe of these manifests calls the apiserver without a credential.
            Want::AnonymousOff { .. } => out.push(format!("{}=false", s.name)),
            Want::NotTrue => {}
            _ => {
                if let Some(file) = s.file(node, topology, catalog) {
                    out.push(format!("{}={}", s.name, node_path(node, &file)));
                }
            }
        }
    }
    out
}

fn manifest(spec: &ClusterSpec, catalog: &Catalog, topology: &Topology, node: &Node, kind: ComponentKind) -> String {
    let ip = node.address();
    let url = |port: u16| match ip {
        std::net::IpAddr::V6(v6) => format!("https://[{v6}]:{port}"),
        v4 => format!("https://{v4}:{port}"),
    };
    let mut flags = setting_flags(catalog, topology, node, kind);
    let name = kind.name();
    let (image, mounts): (String, Vec<(&str, &str, bool)>) = match kind {
        ComponentKind::ApiServer => {
            let subnets = spec.service_subnets.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",");
            flags.extend([
                format!("--advertise-address={ip}"),
                "--allow-privileged=true".into(),
                "--authorization-mode=Node,RBAC".into(),
                "--enable-admission-plugins=NodeRestriction".into(),
                format!("--etcd-servers=https://127.0.0.1:{ETCD_CLIENT_PORT}"),
                "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname".into(),
                "--requestheader-allowed-names=front-proxy-client".into(),
                "--requestheader-extra-headers-prefix=X-Remote-Extra-".into(),
                "--requestheader-group-headers=X-Remote-Group".into(),
                "--requestheader-username-headers=X-Remote-User".into(),
                format!("--secure-port={}", spec.api_server_port),
                format!("--service-account-issuer=https://kubernetes.default.svc.{}", spec.dns_domain),
                format!("--service-cluster-ip-range={subnets}"),
                "--tls-min-version=VersionTLS12".into(),
            ]);
            (
                format!("registry.k8s.io/kube-apiserver:{KUBERNETES_VERSION}"),
                vec![("k8s-certs", "/etc/kubernetes/pki", true)],
            )
        }
        ComponentKind::Etcd => {
            let members: Vec<String> =
                spec.control_planes().map(|n| format!("{}={}", n.name, peer_url(n.address()))).collect();
            flags.extend([
                format!("--name={}", node.name),
                "--data-dir=/var/lib/etcd".into(),
                format!("--advertise-client-urls={}", url(ETCD_CLIENT_PORT)),
                if ip.is_loopback() {
                    format!("--listen-client-urls={}", url(ETCD_CLIENT_PORT))
                } else {
                    format!("--listen-client-urls=https://127.0.0.1:{ETCD_CLIENT_PORT},{}", url(ETCD_CLIENT_PORT))
                },
                format!("--listen-peer-urls={}", url(ETCD_PEER_PORT)),
                format!("--initial-advertise-peer-urls={}", url(ETCD_PEER_PORT)),
                format!("--initial-cluster={}", members.join(",")),
                "--initial-cluster-state=new".into(),
                "--listen-metrics-urls=http://127.0.0.1:2381".into(),
                "--snapshot-count=10000".into(),
            ]);
            (
                ETCD_IMAGE.into(),
                vec![("etcd-certs", "/etc/kubernetes/pki/etcd", true), ("etcd-data", "/var/lib/etcd", false)],
            )
        }
        ComponentKind::ControllerManager => {
            flags.extend([
                "--bind-address=127.0.0.1".into(),
                format!("--cluster-name={}", spec.cluster_name),
                "--controllers=*,bootstrapsigner,tokencleaner".into(),
                "--leader-elect=true".into(),
                "--use-service-account-credentials=true".into(),
                "--tls-min-version=VersionTLS12".into(),
            ]);
            (
                format!("registry.k8s.io/kube-controller-manager:{KUBERNETES_VERSION}"),
                vec![
                    ("k8s-certs", "/etc/kubernetes/pki", true),
                    ("kubeconfig", "/etc/kubernetes/controller-manager.conf", true),
                ],
            )
        }
        _ => {
            flags.extend([
                "--bind-address=127.0.0.1".into(),
                "--leader-elect=true".into(),
                "--tls-min-version=VersionTLS12".into(),
            ]);
            (
                format!("registry.k8s.io/kube-scheduler:{KUBERNETES_VERSION}"),
                vec![("kubeconfig", "/etc/kubernetes/scheduler.conf", true)],
            )
        }
    };
    flags.sort();
    let q = |s: &str| serde_json::to_string(s).expect("strings serialize");
    let mut y = String::new();
    let _ =
        writeln!(y, "apiVersion: v1\nkind: Pod\nmetadata:\n  labels:\n    component: {name}\n    tier: control-plane");
    let _ = writeln!(y, "  name: {name}\n  namespace: kube-system\nspec:\n  containers:\n  - command:\n    - {name}");
    for f in &flags {
        let _ = writeln!(y, "    - {}", q(&format!("--{}", f.trim_start_matches("--"))));
    }
    let _ = writeln!(y, "    image: {image}\n    imagePullPolicy: IfNotPresent\n    name: {name}\n    volumeMounts:");
    for (vol, path, ro) in &mounts {
        let _ = writeln!(y, "    - mountPath: {path}\n      name: {vol}\n      readOnly: {ro}");
    }
    let _ = writeln!(y, "  hostNetwork: true\n  priorityClassName: system-node-critical\n  securityContext:\n    seccompProfile:\n      type: RuntimeDefault\n  volumes:");
    for (vol, path, _) in &mounts {
        let kind = if path.ends_with(".conf") { "FileOrCreate" } else { "DirectoryOrCreate" };
        let _ = writeln!(y, "  - hostPath:\n      path: {path}\n      type: {kind}\n    name: {vol}");
    }
    y
}

fn peer_url(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V6(v6) => format!("https://[{v6}]:{ETCD_PEER_PORT}"),
        v4 => format!("https://{v4}:{ETCD_PEER_PORT}"),
    }
}

/// The kubelet's configuration: its CA-signed serving pair, the cluster CA for the apiserver's
/// client certificate, anonymous access off, TLS 1.2 at least. Its certificates are kubepki's,
/// so the kubelet neither bootstraps nor rotates them.
fn kubelet_config(catalog: &Catalog, node: &Node) -> String {
    let files = |name: &'static str| {
        let id = crate::model::catalog::EntryId::of_node(name, &node.name);
        catalog.get(&id).and_then(|e| e.cert_and_key_files()).map(|(c, k)| (node_path(node, c), node_path(node, k)))
    };
    let ca = catalog.get(entry::CA).and_then(|e| e.cert_and_key_files()).map(|(c, _)| node_path(node, c));
    let (cert, key) = files(entry::KUBELET_SERVING).unwrap_or_default();
    let role = if node.role == Role::ControlPlane { "control plane" } else { "worker" };
    format!(
        "# The kubelet of {} ({role}), as kubepki wires it.\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nauthentication:\n  anonymous:\n    enabled: false\n  webhook:\n    enabled: true\n  x509:\n    clientCAFile: {}\nauthorization:\n  mode: Webhook\nport: {KUBELET_PORT}\nrotateCertificates: false\nserverTLSBootstrap: false\ntlsCertFile: {cert}\ntlsPrivateKeyFile: {key}\ntlsMinVersion: VersionTLS12\n",
        node.name,
        ca.unwrap_or_default(),
    )
}

/// kube-proxy's `clientConnection` fields and the tree-relative files they name (the model's,
/// for link 5), found for one node.
fn kube_proxy_fields(catalog: &Catalog, topology: &Topology, node: &Node) -> Vec<(&'static str, PathBuf)> {
    ComponentKind::KubeProxy
        .settings()
        .filter_map(|s| Some((s.name.strip_prefix("clientConnection.")?, s.file(node, topology, catalog)?)))
        .collect()
}

/// kube-proxy's configuration on `node`: its kubeconfig, as the node sees it.
fn kube_proxy_config(fields: &[(&'static str, PathBuf)], node: &Node) -> String {
    let mut lines = String::new();
    for (field, file) in fields {
        let _ = writeln!(lines, "  {field}: {}", node_path(node, file));
    }
    format!(
        "# kube-proxy on {}, as kubepki wires it.\napiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nclientConnection:\n{lines}",
        node.name
    )
}

/// What kubepki's identities need beyond Kubernetes' default RBAC: `kubeadm:cluster-admins`
/// (admin.conf, the apiserver's kubelet client) bound to cluster-admin, and the apiserver's
/// kubelet client bound to system:kubelet-api-admin by name.
fn rbac() -> String {
    "# kubectl apply -f kubepki-rbac.yaml\napiVersion: v1\nkind: List\nitems:\n\
- apiVersion: rbac.authorization.k8s.io/v1\n  kind: ClusterRoleBinding\n  metadata:\n    name: kubeadm:cluster-admins\n  roleRef:\n    apiGroup: rbac.authorization.k8s.io\n    kind: ClusterRole\n    name: cluster-admin\n  subjects:\n  - apiGroup: rbac.authorization.k8s.io\n    kind: Group\n    name: kubeadm:cluster-admins\n\
- apiVersion: rbac.authorization.k8s.io/v1\n  kind: ClusterRoleBinding\n  metadata:\n    name: kubepki:kube-apiserver-kubelet-client\n  roleRef:\n    apiGroup: rbac.authorization.k8s.io\n    kind: ClusterRole\n    name: system:kubelet-api-admin\n  subjects:\n  - apiGroup: rbac.authorization.k8s.io\n    kind: User\n    name: kube-apiserver-kubelet-client\n"
        .to_string()
}
