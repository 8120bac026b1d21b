//! The names kubeadm and Kubernetes define, written down once (as kubeadm's `constants.go` is
//! beside its `certlist.go`): identities and groups, default cluster settings, ports, the
//! layout of a tree and kubepki's own state in it. The catalog says which entry uses which;
//! everything else asks the catalog, not these strings.

/// The group that bypasses RBAC (only in the break-glass `super-admin.conf`).
pub const SYSTEM_MASTERS: &str = "system:masters";
/// The group kubeadm binds to `cluster-admin` (`admin.conf`, the apiserver's kubelet client).
pub const CLUSTER_ADMINS: &str = "kubeadm:cluster-admins";
/// The group of every kubelet's identity.
pub const SYSTEM_NODES: &str = "system:nodes";
/// The user name of a kubelet is this prefix and the node's name.
pub const NODE_USER_PREFIX: &str = "system:node:";

/// A kubelet's user name.
pub fn node_user(node: &str) -> String {
    format!("{NODE_USER_PREFIX}{node}")
}

/// The default cluster name (kubeadm's `clusterName`).
pub const DEFAULT_CLUSTER_NAME: &str = "kubernetes";
/// The default DNS domain of services.
pub const DEFAULT_DNS_DOMAIN: &str = "cluster.local";
/// The default service subnet; its first address is the `kubernetes` service.
pub const DEFAULT_SERVICE_SUBNET: &str = "10.96.0.0/12";
/// The apiserver's default secure port.
pub const DEFAULT_APISERVER_PORT: u16 = 6443;
/// Port kubelets serve on.
pub const KUBELET_PORT: u16 = 10250;
/// etcd's client port.
pub const ETCD_CLIENT_PORT: u16 = 2379;
/// etcd's peer port.
pub const ETCD_PEER_PORT: u16 = 2380;

/// The in-cluster names of the apiserver (before `kubernetes.default.svc.<dnsDomain>`).
pub const APISERVER_SERVICE_NAMES: [&str; 3] = ["kubernetes", "kubernetes.default", "kubernetes.default.svc"];

/// metrics-server as its upstream manifest installs it: a Service in `kube-system` on port 443,
/// which the aggregator dials by its in-cluster name, and the API group it serves.
pub mod metrics_server {
    /// Its name (Deployment, Service, ServiceAccount).
    pub const NAME: &str = "metrics-server";
    /// Its namespace.
    pub const NAMESPACE: &str = "kube-system";
    /// The Service's port.
    pub const SERVICE_PORT: u16 = 443;
    /// The name the aggregator dials (`<service>.<namespace>.svc`, the TLS server name it checks).
    pub const SERVICE_HOST: &str = "metrics-server.kube-system.svc";
    /// Its `APIService`.
    pub const API_SERVICE: &str = "v1beta1.metrics.k8s.io";
    /// The Secret its certificates are mounted from.
    pub const SECRET: &str = "metrics-server-pki";
}

/// The names of catalog entries: kubeadm's certificate and kubeconfig names (and kubepki's
/// additions). An entry's id is its name, and `@node` for what each node has its own of.
pub mod entry {
    /// The cluster CA.
    pub const CA: &str = "ca";
    /// The etcd CA (kubeadm layout).
    pub const ETCD_CA: &str = "etcd-ca";
    /// The front-proxy CA (kubeadm layout).
    pub const FRONT_PROXY_CA: &str = "front-proxy-ca";
    /// The service-account signing key pair.
    pub const SA: &str = "sa";
    /// The apiserver's serving certificate (per control plane).
    pub const APISERVER: &str = "apiserver";
    /// The apiserver's client certificate for kubelets.
    pub const APISERVER_KUBELET_CLIENT: &str = "apiserver-kubelet-client";
    /// The apiserver's client certificate for etcd.
    pub const APISERVER_ETCD_CLIENT: &str = "apiserver-etcd-client";
    /// The apiserver's client certificate for aggregated API servers.
    pub const FRONT_PROXY_CLIENT: &str = "front-proxy-client";
    /// etcdctl's health-check client certificate.
    pub const ETCD_HEALTHCHECK_CLIENT: &str = "etcd-healthcheck-client";
    /// etcd's serving certificate (per control plane).
    pub const ETCD_SERVER: &str = "etcd-server";
    /// etcd's peer certificate (per control plane).
    pub const ETCD_PEER: &str = "etcd-peer";
    /// A kubelet's CA-signed serving certificate (per node; kubepki's).
    pub const KUBELET_SERVING: &str = "kubelet-serving";
    /// Administrators' kubeconfig.
    pub const ADMIN_CONF: &str = "admin.conf";
    /// The break-glass kubeconfig.
    pub const SUPER_ADMIN_CONF: &str = "super-admin.conf";
    /// kube-controller-manager's kubeconfig (per control plane).
    pub const CONTROLLER_MANAGER_CONF: &str = "controller-manager.conf";
    /// kube-scheduler's kubeconfig (per control plane).
    pub const SCHEDULER_CONF: &str = "scheduler.conf";
    /// A kubelet's kubeconfig (per node).
    pub const KUBELET_CONF: &str = "kubelet.conf";
    /// kube-proxy's kubeconfig (kubepki's).
    pub const KUBE_PROXY_CONF: &str = "kube-proxy.conf";
    /// metrics-server's serving certificate (the `metrics-server` add-on).
    pub const METRICS_SERVER: &str = "metrics-server";
    /// metrics-server's client certificate for kubelets (the `metrics-server` add-on).
    pub const METRICS_SERVER_KUBELET_CLIENT: &str = "metrics-server-kubelet-client";

    /// Every entry name, CAs first.
    pub const ALL: [&str; 20] = [
        CA,
        ETCD_CA,
        FRONT_PROXY_CA,
        SA,
        APISERVER,
        APISERVER_KUBELET_CLIENT,
        APISERVER_ETCD_CLIENT,
        FRONT_PROXY_CLIENT,
        ETCD_HEALTHCHECK_CLIENT,
        ETCD_SERVER,
        ETCD_PEER,
        KUBELET_SERVING,
        ADMIN_CONF,
        SUPER_ADMIN_CONF,
        CONTROLLER_MANAGER_CONF,
        SCHEDULER_CONF,
        KUBELET_CONF,
        KUBE_PROXY_CONF,
        METRICS_SERVER,
        METRICS_SERVER_KUBELET_CLIENT,
    ];
}

/// Where things are in a tree (relative to its root, as in kubeadm's `/etc/kubernetes`). A
/// kubeconfig's file is named as its entry (`admin.conf`), in its node's home.
pub mod layout {
    /// The cluster CA (`.crt`, `.key`).
    pub const CA: &str = "pki/ca";
    /// The etcd CA.
    pub const ETCD_CA: &str = "pki/etcd/ca";
    /// The front-proxy CA.
    pub const FRONT_PROXY_CA: &str = "pki/front-proxy-ca";
    /// The service-account private key.
    pub const SA_KEY: &str = "pki/sa.key";
    /// The service-account public key.
    pub const SA_PUB: &str = "pki/sa.pub";
    /// The apiserver's serving certificate.
    pub const APISERVER: &str = "pki/apiserver";
    /// The apiserver's client certificate for kubelets.
    pub const APISERVER_KUBELET_CLIENT: &str = "pki/apiserver-kubelet-client";
    /// The apiserver's client certificate for etcd.
    pub const APISERVER_ETCD_CLIENT: &str = "pki/apiserver-etcd-client";
    /// The apiserver's client certificate for aggregated API servers.
    pub const FRONT_PROXY_CLIENT: &str = "pki/front-proxy-client";
    /// etcdctl's health-check client certificate.
    pub const ETCD_HEALTHCHECK_CLIENT: &str = "pki/etcd/healthcheck-client";
    /// etcd's serving certificate.
    pub const ETCD_SERVER: &str = "pki/etcd/server";
    /// etcd's peer certificate.
    pub const ETCD_PEER: &str = "pki/etcd/peer";
    /// metrics-server's serving certificate.
    pub const METRICS_SERVER: &str = "pki/metrics-server";
    /// metrics-server's client certificate for kubelets.
    pub const METRICS_SERVER_KUBELET_CLIENT: &str = "pki/metrics-server-kubelet-client";
    /// The static pod manifests.
    pub const MANIFESTS: &str = "manifests";
    /// metrics-server's manifest (`kubectl apply -f`): its Deployment, Service, RBAC and
    /// APIService.
    pub const METRICS_SERVER_ADDON: &str = "addons/metrics-server.yaml";
    /// The node bundles: `nodes/<node>/` mirrors a node's filesystem.
    pub const NODES: &str = "nodes";
    /// A node's `/etc/kubernetes`, inside its bundle.
    pub const ETC_KUBERNETES: &str = "etc/kubernetes";
    /// A kubelet's serving certificate, inside its node's bundle.
    pub const KUBELET_SERVING: &str = "var/lib/kubelet/pki/kubelet";

    /// `<base>.crt`.
    pub fn crt(base: &str) -> String {
        format!("{base}.crt")
    }

    /// `<base>.key`.
    pub fn key(base: &str) -> String {
        format!("{base}.key")
    }
}

/// kubepki's own state in a tree.
pub mod state {
    /// The description the tree was made from.
    pub const CLUSTER: &str = ".kubepki/cluster.json";
    /// The issuance log: one JSON object per certificate signed.
    pub const ISSUANCE_LOG: &str = ".kubepki/issued.jsonl";
    /// Rotations under way: `rotation/<ca>/`.
    pub const ROTATION: &str = ".kubepki/rotation";
    /// Backups: a folder per command run (see `backup.rs`).
    pub const BACKUP: &str = ".kubepki-backup";
    /// The lock a command that changes the tree holds (see `run.rs`).
    pub const LOCK: &str = ".kubepki/lock";
    /// The journal of a batch being renamed into place.
    pub const JOURNAL: &str = ".kubepki-journal";
}

/// What `kubeadm certs check-expiration` lists, in its order (by name): the name it shows for
/// each certificate and kubeconfig it manages and for each CA, and the file (relative to the
/// tree) that holds it. kubelet.conf is not among them: the kubelet rotates its own credential.
pub mod check_expiration {
    use super::{entry, layout};

    /// The certificates and kubeconfigs: (kubeadm's name, file).
    pub fn certificates() -> [(&'static str, String); 11] {
        [
            (entry::ADMIN_CONF, entry::ADMIN_CONF.into()),
            (entry::APISERVER, layout::crt(layout::APISERVER)),
            (entry::APISERVER_ETCD_CLIENT, layout::crt(layout::APISERVER_ETCD_CLIENT)),
            (entry::APISERVER_KUBELET_CLIENT, layout::crt(layout::APISERVER_KUBELET_CLIENT)),
            (entry::CONTROLLER_MANAGER_CONF, entry::CONTROLLER_MANAGER_CONF.into()),
            (entry::ETCD_HEALTHCHECK_CLIENT, layout::crt(layout::ETCD_HEALTHCHECK_CLIENT)),
            (entry::ETCD_PEER, layout::crt(layout::ETCD_PEER)),
            (entry::ETCD_SERVER, layout::crt(layout::ETCD_SERVER)),
            (entry::FRONT_PROXY_CLIENT, layout::crt(layout::FRONT_PROXY_CLIENT)),
            (entry::SCHEDULER_CONF, entry::SCHEDULER_CONF.into()),
            (entry::SUPER_ADMIN_CONF, entry::SUPER_ADMIN_CONF.into()),
        ]
    }

    /// The CAs: (kubeadm's name, file).
    pub fn authorities() -> [(&'static str, String); 3] {
        [
            (entry::CA, layout::crt(layout::CA)),
            (entry::ETCD_CA, layout::crt(layout::ETCD_CA)),
            (entry::FRONT_PROXY_CA, layout::crt(layout::FRONT_PROXY_CA)),
        ]
    }

    /// kubeadm's name for the certificate at `file`, if it lists it.
    pub fn name_of(file: &std::path::Path) -> Option<&'static str> {
        // Asked for every row of a tree's check: the list made once.
        static ALL: std::sync::OnceLock<Vec<(&'static str, String)>> = std::sync::OnceLock::new();
        let all = ALL.get_or_init(|| certificates().into_iter().chain(authorities()).collect());
        all.iter().find(|(_, f)| std::path::Path::new(f) == file).map(|(n, _)| *n)
    }
}
