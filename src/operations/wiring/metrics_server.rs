//! metrics-server's manifest (`addons/metrics-server.yaml`, `kubectl apply -f`), from the
//! model: its ServiceAccount and RBAC as upstream ships them, a binding of its kubelet client
//! certificate's user to what kubelets ask of it, its Service, its Deployment with every
//! setting of [`crate::model::topology::wiring`] for metrics-server naming the tree's files
//! (mounted from a Secret made from the tree, the command in the file's header), and its
//! `APIService` with the cluster CA as `caBundle` and no `insecureSkipTLSVerify`.

use std::fmt::Write as _;
use std::path::PathBuf;

use base64::Engine as _;

use crate::error::{Error, Result};
use crate::model::catalog::Catalog;
use crate::model::spec::ClusterSpec;
use crate::model::topology::wiring::{node_path, Want, API_SERVICE_CA_BUNDLE};
use crate::model::topology::{ComponentKind, Topology};
use crate::model::vocabulary::metrics_server::{API_SERVICE, NAME, NAMESPACE, SECRET, SERVICE_PORT};
use crate::model::vocabulary::{entry, KUBELET_PORT};

/// The image the Deployment runs.
pub const IMAGE: &str = "registry.k8s.io/metrics-server/metrics-server:v0.7.2";
/// Where the Secret is mounted in the container: the files keep their paths of the tree's
/// `/etc/kubernetes/pki`, so the flags name them as the node does.
const PKI: &str = "/etc/kubernetes/pki";

/// The manifest, with the `caBundle` read from the tree at `root`: the CA file the topology
/// says the apiserver trusts metrics-server with.
pub fn manifest_in(
    spec: &ClusterSpec,
    catalog: &Catalog,
    topology: &Topology,
    root: &std::path::Path,
) -> Result<String> {
    let setting = ComponentKind::MetricsServer.settings().find(|s| s.name == API_SERVICE_CA_BUNDLE);
    let file = setting
        .and_then(|s| s.file(spec.primary(), topology, catalog))
        .ok_or_else(|| Error::Invalid("the model names no CA for metrics-server's APIService".into()))?;
    let ca = crate::disk::readfile::read(&root.join(file), crate::disk::readfile::Limit::Pem)?;
    Ok(manifest(spec, catalog, topology, &ca))
}

/// The manifest; `ca_pem` is the CA certificate the `APIService`'s `caBundle` holds.
pub fn manifest(spec: &ClusterSpec, catalog: &Catalog, topology: &Topology, ca_pem: &[u8]) -> String {
    let node = spec.primary();
    let mut flags = Vec::new();
    let mut secret_files: Vec<PathBuf> = Vec::new();
    for s in ComponentKind::MetricsServer.settings().filter(|s| s.name.starts_with("--")) {
        match s.want {
            Want::Equals { value } => flags.push(format!("{}={value}", s.name)),
            Want::NotTrue => {}
            _ => {
                if let Some(file) = s.file(node, topology, catalog) {
                    flags.push(format!("{}={}", s.name, node_path(node, &file)));
                    if !secret_files.contains(&file) {
                        secret_files.push(file);
                    }
                }
            }
        }
    }
    let front_proxy_client =
        catalog.get(entry::FRONT_PROXY_CLIENT).and_then(|e| e.cert()).map(|p| p.subject.cn.clone());
    flags.extend([
        format!("--secure-port={KUBELET_PORT}"),
        "--kubelet-preferred-address-types=InternalIP".into(),
        "--kubelet-use-node-status-port".into(),
        "--metric-resolution=15s".into(),
        format!("--requestheader-allowed-names={}", front_proxy_client.unwrap_or_default()),
        "--tls-min-version=VersionTLS12".into(),
    ]);
    flags.sort();
    let q = |s: &str| serde_json::to_string(s).expect("strings serialize");
    let mut y = String::new();
    let _ = writeln!(y, "# metrics-server, as kubepki wires it. Its certificates and the CAs it trusts come from a");
    let _ = writeln!(
        y,
        "# Secret made from the tree (run at the top of the tree, the first control plane's /etc/kubernetes):"
    );
    let _ = write!(y, "#   kubectl -n {NAMESPACE} create secret generic {SECRET}");
    for f in &secret_files {
        let _ = write!(y, " \\\n#     --from-file={}", f.display());
    }
    let _ = writeln!(y, "\n# then: kubectl apply -f addons/metrics-server.yaml");
    let sa = format!("  - kind: ServiceAccount\n    name: {NAME}\n    namespace: {NAMESPACE}\n");
    let labels = format!("  labels:\n    k8s-app: {NAME}\n");
    let _ = write!(
        y,
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n{labels}  name: {NAME}\n  namespace: {NAMESPACE}\n"
    );
    let _ = write!(y, "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  labels:\n    k8s-app: {NAME}\n    rbac.authorization.k8s.io/aggregate-to-admin: \"true\"\n    rbac.authorization.k8s.io/aggregate-to-edit: \"true\"\n    rbac.authorization.k8s.io/aggregate-to-view: \"true\"\n  name: system:aggregated-metrics-reader\nrules:\n- apiGroups:\n  - metrics.k8s.io\n  resources:\n  - pods\n  - nodes\n  verbs:\n  - get\n  - list\n  - watch\n");
    let _ = write!(y, "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n{labels}  name: system:{NAME}\nrules:\n- apiGroups:\n  - \"\"\n  resources:\n  - nodes/metrics\n  verbs:\n  - get\n- apiGroups:\n  - \"\"\n  resources:\n  - pods\n  - nodes\n  verbs:\n  - get\n  - list\n  - watch\n");
    let _ = write!(y, "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n{labels}  name: {NAME}-auth-reader\n  namespace: kube-system\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: extension-apiserver-authentication-reader\nsubjects:\n{sa}");
    let _ = write!(y, "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n{labels}  name: {NAME}:system:auth-delegator\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: system:auth-delegator\nsubjects:\n{sa}");
    let _ = write!(y, "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n{labels}  name: system:{NAME}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: system:{NAME}\nsubjects:\n{sa}");
    // Kubelets authorize the scraper's client certificate by its user (a SubjectAccessReview for
    // nodes/metrics, or nodes/stats for older paths): that user gets those two and nothing else.
    let user = catalog.get(entry::METRICS_SERVER_KUBELET_CLIENT).and_then(|e| e.cert()).map(|p| p.subject.cn.clone());
    let user = user.unwrap_or_default();
    let _ = write!(y, "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n{labels}  name: kubepki:{user}\nrules:\n- apiGroups:\n  - \"\"\n  resources:\n  - nodes/metrics\n  - nodes/stats\n  verbs:\n  - get\n");
    let _ = write!(y, "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n{labels}  name: kubepki:{user}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: kubepki:{user}\nsubjects:\n- apiGroup: rbac.authorization.k8s.io\n  kind: User\n  name: {}\n", q(&user));
    let _ = write!(y, "---\napiVersion: v1\nkind: Service\nmetadata:\n{labels}  name: {NAME}\n  namespace: {NAMESPACE}\nspec:\n  ports:\n  - name: https\n    port: {SERVICE_PORT}\n    protocol: TCP\n    targetPort: https\n  selector:\n    k8s-app: {NAME}\n");
    let _ = write!(y, "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n{labels}  name: {NAME}\n  namespace: {NAMESPACE}\nspec:\n  selector:\n    matchLabels:\n      k8s-app: {NAME}\n  strategy:\n    rollingUpdate:\n      maxUnavailable: 0\n  template:\n    metadata:\n      labels:\n        k8s-app: {NAME}\n    spec:\n      containers:\n      - args:\n");
    for f in &flags {
        let _ = writeln!(y, "        - {}", q(f));
    }
    let _ = write!(y, "        image: {IMAGE}\n        imagePullPolicy: IfNotPresent\n        livenessProbe:\n          failureThreshold: 3\n          httpGet:\n            path: /livez\n            port: https\n            scheme: HTTPS\n          periodSeconds: 10\n        name: {NAME}\n        ports:\n        - containerPort: {KUBELET_PORT}\n          name: https\n          protocol: TCP\n        readinessProbe:\n          failureThreshold: 3\n          httpGet:\n            path: /readyz\n            port: https\n            scheme: HTTPS\n          initialDelaySeconds: 20\n          periodSeconds: 10\n        resources:\n          requests:\n            cpu: 100m\n            memory: 200Mi\n        securityContext:\n          allowPrivilegeEscalation: false\n          capabilities:\n            drop:\n            - ALL\n          readOnlyRootFilesystem: true\n          runAsNonRoot: true\n          runAsUser: 1000\n          seccompProfile:\n            type: RuntimeDefault\n        volumeMounts:\n        - mountPath: {PKI}\n          name: pki\n          readOnly: true\n      nodeSelector:\n        kubernetes.io/os: linux\n      priorityClassName: system-cluster-critical\n      serviceAccountName: {NAME}\n      volumes:\n      - name: pki\n        secret:\n          secretName: {SECRET}\n");
    let bundle = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let _ = write!(y, "---\napiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata:\n{labels}  name: {API_SERVICE}\nspec:\n  caBundle: {bundle}\n  group: metrics.k8s.io\n  groupPriorityMinimum: 100\n  service:\n    name: {NAME}\n    namespace: {NAMESPACE}\n    port: {SERVICE_PORT}\n  version: v1beta1\n  versionPriority: 100\n");
    y
}

/// The write that keeps the tree's `APIService` trusting what its CA file holds when CA `ca`
/// is rotated: `addons/metrics-server.yaml` with its `caBundle` set to `ca_pem` (the bundle of
/// old and new at `start`, the new CA at `finish`). Nothing when the tree has no such manifest,
/// it has no `caBundle`, or `ca` does not sign metrics-server's certificate.
pub fn ca_bundle_rewritten(
    root: &std::path::Path,
    catalog: &Catalog,
    ca: &str,
    ca_pem: &str,
) -> Result<Option<(PathBuf, Vec<u8>)>> {
    let signs = catalog.get(entry::METRICS_SERVER).and_then(|e| e.issuer()).is_some_and(|i| *i == ca);
    let rel = PathBuf::from(crate::model::vocabulary::layout::METRICS_SERVER_ADDON);
    if !signs || !root.join(&rel).is_file() {
        return Ok(None);
    }
    let text = crate::disk::readfile::read_text(&root.join(&rel), crate::disk::readfile::Limit::Kubeconfig)?;
    let bundle = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let mut found = false;
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_start();
        if body.starts_with("caBundle:") && !found {
            found = true;
            let indent = &line[..line.len() - body.len()];
            let _ = writeln!(out, "{indent}caBundle: {bundle}");
        } else {
            out.push_str(line);
        }
    }
    Ok(found.then(|| (rel, out.into_bytes())))
}

/// After `init --replace-ca ca`: the `caBundle` of the tree's metrics-server manifest set to
/// the new CA file (when `ca` signs metrics-server's certificate and the manifest has one).
pub fn trust_new_ca(root: &std::path::Path, catalog: &Catalog, ca: &str) -> Result<()> {
    let Some(file) = catalog.get(ca).and_then(|e| e.cert_and_key_files()).map(|(c, _)| c.to_path_buf()) else {
        return Ok(());
    };
    let pem = crate::disk::readfile::read_text(&root.join(file), crate::disk::readfile::Limit::Pem)?;
    if let Some((path, text)) = ca_bundle_rewritten(root, catalog, ca, &pem)? {
        // As any file a run replaces: saved in the run's backup first.
        let mut batch = crate::disk::store::Batch::new();
        batch.add(root.join(path), text, crate::disk::store::Mode::Public);
        batch.commit_in(root)?;
    }
    Ok(())
}
