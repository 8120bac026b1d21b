use super::*;

fn parse(text: &str) -> Result<ClusterSpec> {
    ClusterSpec::from_yaml(text, Path::new("cluster.yaml"))
}

fn error(text: &str) -> String {
    parse(text).expect_err("should be refused").to_string()
}

const ONE_NODE: &str = "nodes:\n- {name: cp, role: control-plane, addresses: [10.0.0.1]}\n";

#[test]
fn builtin_default_is_the_loopback_cluster() {
    let s = ClusterSpec::builtin_default();
    let names: Vec<_> = s.nodes.iter().map(|n| (n.name.as_str(), n.role, n.address().to_string())).collect();
    assert_eq!(
        names,
        [
            ("controlplane", Role::ControlPlane, "127.0.0.1".into()),
            ("node01", Role::Worker, "127.0.0.2".into()),
            ("node02", Role::Worker, "127.0.0.3".into())
        ]
    );
    assert_eq!(s.control_plane_endpoint.url(), "https://127.0.0.1:6443");
    assert_eq!(s.kubernetes_service_ip().to_string(), "10.96.0.1");
    assert_eq!(s.key_algorithm, KeyAlgorithm::EcdsaP256);
    assert_eq!(s.validity, Validity { ca: DAY * 3650, leaf: DAY * 365 });
}

#[test]
fn full_description_is_read() {
    let s = parse(
        r#"
clusterName: prod
controlPlaneEndpoint: "lb.example.com:8443"
serviceSubnet: "10.100.0.0/16,fd00:10::/108"
dnsDomain: corp.local
apiServerCertSANs: [api.example.com, 192.0.2.10]
etcd: {serverCertSANs: [etcd.example.com], peerCertSANs: ["10.9.9.9"]}
keyAlgorithm: RSA-3072
validity: {ca: 20y, leaf: 90d}
caLayout: single
nodes:
  - {name: w1, role: worker, addresses: ["10.0.0.11", "fd00::11"], dnsNames: [w1.example.com]}
  - {name: cp1, role: control-plane, addresses: ["10.0.0.1"]}
"#
        .replace("20y", "7300d")
        .as_str(),
    )
    .unwrap();
    assert_eq!(s.cluster_name, "prod");
    assert_eq!(s.control_plane_endpoint.url(), "https://lb.example.com:8443");
    assert_eq!(s.kubernetes_service_ip().to_string(), "10.100.0.1");
    assert_eq!(s.service_subnets.len(), 2);
    assert_eq!(s.api_server_cert_sans, [San::Dns("api.example.com".into()), San::Ip("192.0.2.10".parse().unwrap())]);
    assert_eq!(s.etcd_peer_cert_sans, [San::Ip("10.9.9.9".parse().unwrap())]);
    assert_eq!(s.key_algorithm, KeyAlgorithm::Rsa3072);
    assert_eq!(s.validity.leaf, DAY * 90);
    assert_eq!(s.ca_layout, CaLayout::Single);
    assert_eq!(s.nodes[0].name, "cp1", "control planes come first");
    assert_eq!(s.primary().name, "cp1");
    assert_eq!(s.nodes[1].dns_names, ["w1.example.com"]);
}

#[test]
fn endpoint_defaults_to_the_first_control_plane() {
    let s = parse(ONE_NODE).unwrap();
    assert_eq!(s.control_plane_endpoint.url(), "https://10.0.0.1:6443");
    let s = parse(&format!("apiServerPort: 7443\n{ONE_NODE}")).unwrap();
    assert_eq!(s.control_plane_endpoint.url(), "https://10.0.0.1:7443");
    assert_eq!(s.local_endpoint(&s.nodes[0]).url(), "https://10.0.0.1:7443");
    let s = parse("controlPlaneEndpoint: \"[fd00::1]:6443\"\nnodes:\n- {name: cp, role: control-plane, addresses: [\"fd00::2\"]}\nserviceSubnet: fd00:96::/112\n").unwrap();
    assert_eq!(s.control_plane_endpoint.url(), "https://[fd00::1]:6443");
    assert_eq!(s.kubernetes_service_ip().to_string(), "fd00:96::1");
}

#[test]
fn every_bad_input_names_file_field_and_problem() {
    let cases: &[(&str, &str, &str)] = &[
        ("nodes: [", "cluster.yaml: ", "did not find expected"),
        ("bogus: 1\n", "cluster.yaml: line 1", "unknown field `bogus`"),
        ("nodes:\n- {name: cp, role: control-plane, addresses: [10.0.0.300]}\n", "nodes[0].addresses[0]", "'10.0.0.300' is not an IP address"),
        ("nodes:\n- {name: cp, role: boss, addresses: [10.0.0.1]}\n", "cluster.yaml", "unknown variant `boss`"),
        ("serviceSubnet: 10.96.0.0/40\n", "serviceSubnet", "prefix /40 is longer than /32"),
        ("serviceSubnet: 10.96.0.0\n", "serviceSubnet", "is not a CIDR"),
        ("apiServerCertSANs: [\"bad_name!\"]\n", "apiServerCertSANs[0]", "neither an IP address nor a valid DNS name"),
        ("apiServerCertSANs: [\"1.2.3.256\"]\n", "apiServerCertSANs[0]", "not a valid IP address"),
        ("nodes:\n- {name: Control_Plane, role: control-plane, addresses: [10.0.0.1]}\n", "nodes[0].name", "not a valid node name"),
        ("nodes:\n- {name: a, role: control-plane, addresses: [10.0.0.1]}\n- {name: a, role: worker, addresses: [10.0.0.2]}\n", "nodes[1].name", "duplicate node name 'a'"),
        ("nodes:\n- {name: a, role: control-plane, addresses: [10.0.0.1]}\n- {name: b, role: worker, addresses: [10.0.0.1]}\n", "nodes[1].addresses[0]", "10.0.0.1 is used by another node"),
        ("nodes:\n- {name: a, role: worker, addresses: [10.0.0.1]}\n", "nodes", "at least one node with role: control-plane"),
        ("nodes:\n- {name: a, role: control-plane}\n", "nodes[0].addresses", "at least one IP address"),
        ("controlPlaneEndpoint: lb:99999\n", "controlPlaneEndpoint", "port '99999' is not a number from 1 to 65535"),
        ("controlPlaneEndpoint: \"lb:0\"\n", "controlPlaneEndpoint", "port '0'"),
        ("keyAlgorithm: ed25519\n", "keyAlgorithm", "unsupported key algorithm 'ed25519'"),
        ("validity: {leaf: 3650d, ca: 365d}\n", "validity.leaf", "cannot be valid longer than its CA"),
        ("validity: {leaf: soon}\n", "validity.leaf", "'soon' is not a duration"),
        ("caLayout: two\n", "caLayout", "'two' is not 'kubeadm' or 'single'"),
        ("dnsDomain: \"bad domain\"\n", "dnsDomain", "not a valid DNS domain"),
        ("nodes:\n- {name: a, role: control-plane, addresses: [10.0.0.1], dnsNames: [\"-x\"]}\n", "nodes[0].dnsNames[0]", "not a valid DNS name"),
    ];
    for (text, field, problem) in cases {
        let text = if text.contains("nodes") { text.to_string() } else { format!("{text}{ONE_NODE}") };
        let err = error(&text);
        assert!(err.starts_with("cluster.yaml: "), "{text:?} -> {err}");
        assert!(err.contains(field), "{text:?} -> {err} (want field {field})");
        assert!(err.contains(problem), "{text:?} -> {err} (want {problem})");
    }
}

#[test]
fn durations_in_kubeadm_and_day_forms() {
    assert_eq!(duration_text::parse("8760h0m0s").unwrap(), DAY * 365);
    assert_eq!(duration_text::parse("87600h").unwrap(), DAY * 3650);
    assert_eq!(duration_text::parse("1d12h").unwrap(), time::Duration::hours(36));
    assert!(duration_text::parse("10m").is_err(), "shorter than an hour");
    assert!(duration_text::parse("h").is_err());
    assert_eq!(duration_text::format(DAY * 365), "365d");
}

const KUBEADM_V1BETA4: &str = r#"
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 172.30.1.2
  bindPort: 6443
nodeRegistration:
  name: controlplane
  criSocket: unix:///var/run/containerd/containerd.sock
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.31.0
clusterName: lab
controlPlaneEndpoint: k8s.example.com
encryptionAlgorithm: ECDSA-P384
certificateValidityPeriod: 2160h0m0s
caCertificateValidityPeriod: 43800h0m0s
networking:
  serviceSubnet: 10.43.0.0/16
  dnsDomain: lab.local
apiServer:
  certSANs: [api.example.com, 10.0.0.100]
etcd:
  local:
    serverCertSANs: [etcd.example.com]
    peerCertSANs: [10.0.0.200]
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
"#;

#[test]
fn kubeadm_configuration_is_mapped() {
    let s = parse(KUBEADM_V1BETA4).unwrap();
    assert_eq!(s.cluster_name, "lab");
    assert_eq!(s.nodes.len(), 1);
    assert_eq!(s.primary().name, "controlplane");
    assert_eq!(s.primary().address().to_string(), "172.30.1.2");
    assert_eq!(s.control_plane_endpoint.url(), "https://k8s.example.com:6443");
    assert_eq!(s.kubernetes_service_ip().to_string(), "10.43.0.1");
    assert_eq!(s.dns_domain, "lab.local");
    assert_eq!(s.key_algorithm, KeyAlgorithm::EcdsaP384);
    assert_eq!(s.validity, Validity { ca: DAY * 1825, leaf: DAY * 90 });
    assert_eq!(s.api_server_cert_sans.len(), 2);
    assert_eq!(s.etcd_server_cert_sans, [San::Dns("etcd.example.com".into())]);
    assert_eq!(s.etcd_peer_cert_sans, [San::Ip("10.0.0.200".parse().unwrap())]);
    let v1beta3 = KUBEADM_V1BETA4.replace("v1beta4", "v1beta3");
    assert_eq!(parse(&v1beta3).unwrap().cluster_name, "lab");
}

#[test]
fn kubeadm_errors_use_kubeadm_field_names() {
    let bad_ip = KUBEADM_V1BETA4.replace("172.30.1.2", "172.30.1.999");
    let err = error(&bad_ip);
    assert!(err.contains("InitConfiguration.localAPIEndpoint.advertiseAddress"), "{err}");
    let bad_alg = KUBEADM_V1BETA4.replace("ECDSA-P384", "ED25519");
    assert!(error(&bad_alg).contains("ClusterConfiguration.encryptionAlgorithm: unsupported key algorithm"));
    let bad_san = KUBEADM_V1BETA4.replace("api.example.com,", "\"bad san\",");
    assert!(error(&bad_san).contains("ClusterConfiguration.apiServer.certSANs[0]"));
    let old = KUBEADM_V1BETA4.replace("v1beta4", "v1beta2");
    assert!(error(&old).contains("'kubeadm.k8s.io/v1beta2' is not supported"));
    let no_address = KUBEADM_V1BETA4.replace("  advertiseAddress: 172.30.1.2\n", "");
    assert!(error(&no_address).contains("advertiseAddress: required"));
}

const POOL_CP: &str = "nodes:\n- {name: cp1, role: control-plane, addresses: [10.0.0.1]}\n";

#[test]
fn node_pools_expand_names_and_consecutive_addresses() {
    let s = parse(&format!(
        "{POOL_CP}nodePools:\n\
         - {{namePattern: \"worker-{{index:04}}\", role: worker, count: 300, firstAddress: 10.1.0.250, firstIndex: 1}}\n\
         - {{namePattern: \"edge{{index}}\", count: 2, firstIndex: 0, firstAddress: [\"192.168.0.1\", \"fd00::ffff\"], dnsNames: [\"{{name}}.edge.example.com\"]}}\n"
    ))
    .unwrap();
    assert_eq!(s.nodes.len(), 303);
    let w = &s.nodes[1];
    assert_eq!((w.name.as_str(), w.role, w.address().to_string()), ("worker-0001", Role::Worker, "10.1.0.250".into()));
    let last = &s.nodes[300];
    assert_eq!((last.name.as_str(), last.address().to_string()), ("worker-0300", "10.1.2.37".into()));
    let e = &s.nodes[302];
    assert_eq!(e.name, "edge1");
    assert_eq!(e.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(), ["192.168.0.2", "fd00::1:0"]);
    assert_eq!(e.dns_names, ["edge1.edge.example.com"]);
    assert_eq!(s.nodes[301].name, "edge0");
}

#[test]
fn node_pools_can_hold_the_control_planes_and_sort_first() {
    let s = parse(
        "nodePools:\n- {namePattern: \"w{index}\", count: 2, firstAddress: 10.1.0.1}\n\
         - {namePattern: \"cp{index}\", role: control-plane, count: 3, firstAddress: \"fd00::1\"}\n",
    )
    .unwrap();
    let names: Vec<_> = s.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["cp1", "cp2", "cp3", "w1", "w2"]);
    assert_eq!(s.primary().address().to_string(), "fd00::1");
    assert_eq!(s.control_plane_endpoint.url(), "https://[fd00::1]:6443");
}

#[test]
fn node_pool_errors_name_the_pool_and_field() {
    let cases: &[(&str, &str, &str)] = &[
        ("- {namePattern: \"w{index}\", count: 10, firstAddress: 255.255.255.250}", "nodePools[0].count", "run past the last address"),
        ("- {namePattern: \"w{index}\", count: 3, firstAddress: \"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\"}", "nodePools[0].count", "node 'w2' (index 2): ff00:: is a multicast address"),
        ("- {namePattern: \"w{index}\", count: 5, firstAddress: 9.0.0.1}\n- {namePattern: \"v{index}\", count: 5, firstAddress: 223.255.255.254}", "nodePools[1].count", "224.0.0.0 is a multicast address"),
        ("- {namePattern: \"w{index}\", count: 5, firstAddress: 9.0.0.1}\n- {namePattern: \"v{index}\", count: 5, firstAddress: 10.0.0.1}", "nodePools[1].firstAddress", "address 10.0.0.1 of 'v1' is used by another node ('cp1')"),
        ("- {namePattern: \"w{index}\", count: 5, firstAddress: 10.1.0.1}\n- {namePattern: \"v{index}\", count: 5, firstAddress: [10.2.0.1, 10.1.0.3]}", "nodePools[1].firstAddress[1]", "address 10.1.0.3 of 'v1' is used by another node ('w3')"),
        ("- {namePattern: \"w{index}\", count: 5, firstAddress: 10.1.0.1}\n- {namePattern: \"w{index}\", count: 5, firstAddress: 10.2.0.1, firstIndex: 5}", "nodePools[1].namePattern", "duplicate node name 'w5' (index 5)"),
        ("- {namePattern: \"cp{index}\", count: 2, firstAddress: 10.1.0.1}", "nodePools[0].namePattern", "duplicate node name 'cp1' (index 1)"),
        ("- {namePattern: \"Worker-{index}\", count: 2, firstAddress: 10.1.0.1}", "nodePools[0].namePattern", "'Worker-1' (index 1) is not a valid node name"),
        ("- {namePattern: \"worker\", count: 2, firstAddress: 10.1.0.1}", "nodePools[0].namePattern", "has no {index}"),
        ("- {namePattern: \"w{idx}\", count: 2, firstAddress: 10.1.0.1}", "nodePools[0].namePattern", "unknown placeholder '{idx}'"),
        ("- {namePattern: \"w{index}\", count: -1, firstAddress: 10.1.0.1}", "nodePools[0].count", "-1 is not a node count"),
        ("- {namePattern: \"w{index}\", count: 100001, firstAddress: 10.1.0.1}", "nodePools[0].count", "is not a node count (0 to 100000)"),
        ("- {namePattern: \"w{index}\", count: 2, firstIndex: -3, firstAddress: 10.1.0.1}", "nodePools[0].firstIndex", "-3 is negative"),
        ("- {namePattern: \"w{index}\", count: 2, firstAddress: 10.1.0.300}", "nodePools[0].firstAddress", "'10.1.0.300' is not an IP address"),
        ("- {namePattern: \"w{index}\", count: 2, firstAddress: []}", "nodePools[0].firstAddress", "at least one first address"),
        ("- {namePattern: \"w{index}\", count: 2, firstAddress: 10.1.0.1, dnsNames: [\"{name}_x\"]}", "nodePools[0].dnsNames[0]", "'w1_x' is not a valid DNS name (for 'w1')"),
        ("- {namePattern: \"w{index}\", count: 2, firstAddress: 10.1.0.1, colour: red}", "cluster.yaml: line", "unknown field `colour`"),
        ("- {namePattern: \"w{index}\", firstAddress: 10.1.0.1}", "cluster.yaml: line", "missing field `count`"),
    ];
    for (pools, field, problem) in cases {
        let text = format!("{POOL_CP}nodePools:\n{pools}\n");
        let err = error(&text);
        assert!(err.starts_with("cluster.yaml: "), "{text:?} -> {err}");
        assert!(err.contains(field), "{text:?} -> {err} (want field {field})");
        assert!(err.contains(problem), "{text:?} -> {err} (want {problem})");
    }
    let too_many =
        "nodePools:\n- {namePattern: \"cp{index}\", role: control-plane, count: 60000, firstAddress: 10.0.0.1}\n\
                    - {namePattern: \"w{index}\", count: 60000, firstAddress: 10.128.0.1}\n";
    assert!(error(too_many).contains("nodePools[1].count: the description would have more than 100000 nodes"));
    assert!(error("nodePools: []\n").contains("nodes: the cluster needs at least one node with role: control-plane"));
}

#[test]
fn a_five_thousand_node_pool_resolves_quickly() {
    let start = std::time::Instant::now();
    let s = parse(&format!(
        "{POOL_CP}nodePools:\n- {{namePattern: \"worker-{{index:04}}\", count: 5000, firstAddress: 10.1.0.1}}\n"
    ))
    .unwrap();
    assert_eq!(s.nodes.len(), 5001);
    assert_eq!(s.nodes[5000].address().to_string(), "10.1.19.136");
    // Not a benchmark: a generous bound that only an accidentally quadratic expansion breaks.
    assert!(start.elapsed() < std::time::Duration::from_secs(5), "{:?}", start.elapsed());
}

/// Issue 12: addresses no node can have, as a node, a pool's or a command line's.
#[test]
fn addresses_no_node_can_have_are_refused_everywhere() {
    for (ip, why) in [
        ("0.0.0.0", "the unspecified address"),
        ("::", "the unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("255.255.255.255", "the broadcast address"),
        ("::ffff:10.0.0.1", "an IPv4 address written as IPv6: write 10.0.0.1"),
    ] {
        let text = format!("nodes:\n- {{name: a, role: control-plane, addresses: [\"{ip}\"]}}\n");
        let err = error(&text);
        assert!(err.starts_with("cluster.yaml: nodes[0].addresses[0]: "), "{ip}: {err}");
        assert!(err.contains(why), "{ip}: {err}");
        let pool =
            format!("{ONE_NODE}nodePools:\n- {{namePattern: \"w{{index}}\", count: 1, firstAddress: \"{ip}\"}}\n");
        assert!(error(&pool).contains("nodePools[0].firstAddress"), "{ip}");
        let spec = ClusterSpec::builtin_default();
        for role in [Role::Worker, Role::ControlPlane] {
            let n = NewNode { name: "n3".into(), role, addresses: vec![ip.into()], dns_names: vec![] };
            let err = spec.with_node(&n).unwrap_err().to_string();
            assert!(err.starts_with("node add: --ip: ") && err.contains(why), "{ip}: {err}");
        }
    }
}

#[test]
fn a_node_added_is_checked_as_a_described_one() {
    let spec = ClusterSpec::builtin_default();
    let node = |name: &str, role, ips: &[&str], dns: &[&str]| NewNode {
        name: name.into(),
        role,
        addresses: ips.iter().map(|s| s.to_string()).collect(),
        dns_names: dns.iter().map(|s| s.to_string()).collect(),
    };
    let cp = spec.with_node(&node("cp2", Role::ControlPlane, &["127.0.0.5"], &["CP2.example.com"])).unwrap();
    let names: Vec<&str> = cp.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["controlplane", "cp2", "node01", "node02"], "control planes first");
    assert_eq!(cp.nodes[1].dns_names, ["cp2.example.com"]);
    for (n, expected) in [
        (node("n3", Role::Worker, &["127.0.0.4"], &["*.evil.com"]), "node add: --dns: '*.evil.com' is a wildcard"),
        (node("n3", Role::Worker, &["127.0.0.4"], &["-x"]), "node add: --dns: '-x' is not a valid DNS name"),
        (node("N3", Role::Worker, &["127.0.0.4"], &[]), "node add: NAME: 'N3' is not a valid node name"),
        (node("node01", Role::Worker, &["127.0.0.4"], &[]), "node add: NAME: duplicate node name 'node01'"),
        (node("n3", Role::Worker, &[], &[]), "node add: --ip: a node needs at least one IP address"),
        (
            node("n3", Role::Worker, &["127.0.0.2"], &[]),
            "node add: --ip: address 127.0.0.2 is used by another node ('node01')",
        ),
        (node("n3", Role::Worker, &["10.0.0.9", "10.0.0.9"], &[]), "is used by another node ('n3')"),
        (node("n3", Role::Worker, &["10.0.0.300"], &[]), "node add: --ip: '10.0.0.300' is not an IP address"),
    ] {
        let err = spec.with_node(&n).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
    }
    let wildcard = format!("{ONE_NODE}nodePools:\n- {{namePattern: \"w{{index}}\", count: 1, firstAddress: 10.1.0.1, dnsNames: [\"*.{{name}}.x\"]}}\n");
    assert!(error(&wildcard).contains("nodePools[0].dnsNames[0]: '*.w1.x' is a wildcard"), "{}", error(&wildcard));
}

#[test]
fn service_subnets_are_unicast() {
    for subnet in ["224.0.0.0/4", "ff00::/8"] {
        let err = error(&format!("serviceSubnet: \"{subnet}\"\n{ONE_NODE}"));
        assert!(err.contains("serviceSubnet") && err.contains("not a unicast range"), "{err}");
    }
    let err = error(&format!("serviceSubnet: \"::ffff:10.96.0.0/108\"\n{ONE_NODE}"));
    assert!(err.contains("IPv4 written as IPv6"), "{err}");
}

/// Issue 12: `validity: {ca: 3000000d}` passed and made init panic.
#[test]
fn validity_is_bounded_when_read() {
    for (text, problem) in [
        ("validity: {ca: 3000000d}\n", "validity.ca: '3000000d' is longer than 36500 days (100 years)"),
        ("validity: {ca: 99999999999999999999d}\n", "is longer than 36500 days"),
        ("validity: {ca: 9223372036854775807h}\n", "is longer than 36500 days"),
        ("validity: {leaf: 36501d}\n", "validity.leaf: '36501d' is longer"),
    ] {
        let err = error(&format!("{text}{ONE_NODE}"));
        assert!(err.contains(problem), "{text}: {err}");
    }
    assert_eq!(
        parse(&format!("validity: {{ca: 36500d, leaf: 876000h}}\n{ONE_NODE}")).unwrap().validity.ca,
        DAY * 36_500
    );
    let kubeadm = KUBEADM_V1BETA4.replace("43800h0m0s", "87600000h");
    let err = ClusterSpec::from_yaml(&kubeadm, Path::new("kubeadm.yaml")).unwrap_err().to_string();
    assert!(
        err.starts_with("kubeadm.yaml: ClusterConfiguration.caCertificateValidityPeriod: '87600000h' is longer"),
        "{err}"
    );
}

#[test]
fn kubeadm_configs_with_an_unknown_kind_or_two_of_one_are_refused() {
    let read = |text: &str| ClusterSpec::from_yaml(text, Path::new("kubeadm.yaml"));
    let unknown = format!("{KUBEADM_V1BETA4}---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfig\n");
    let err = read(&unknown).unwrap_err().to_string();
    assert!(err.contains("document 4.kind: 'InitConfig' is not a kind of kubeadm.k8s.io/v1beta4"), "{err}");
    let twice = format!("{KUBEADM_V1BETA4}---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint: {{advertiseAddress: 10.0.0.9}}\n");
    let err = read(&twice).unwrap_err().to_string();
    assert!(err.contains("document 4: a second InitConfiguration"), "{err}");
    let join = format!("{KUBEADM_V1BETA4}---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n");
    assert!(read(&join).is_ok());
}
