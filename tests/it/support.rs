//! What the tests share: a temp dir that owns a tree, running the kubepki binary, free
//! loopback ports, child processes that are always killed, and polling instead of sleeping.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A temporary directory for one test.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv { dir: tempfile::tempdir().expect("temp dir") }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write a file in the env (for cluster descriptions).
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Run kubepki with these arguments, in the env's directory.
    pub fn kubepki(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_kubepki")).args(args).current_dir(self.path()).output().expect("run kubepki")
    }

    /// Run kubepki and insist it succeeds; returns stdout.
    pub fn kubepki_ok(&self, args: &[&str]) -> String {
        let out = self.kubepki(args);
        assert!(
            out.status.success(),
            "kubepki {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `kubepki init --dir <env>/<name>` with extra arguments; returns the tree's path.
    pub fn init(&self, name: &str, extra: &[&str]) -> PathBuf {
        let dir = self.path().join(name);
        let mut args = vec!["init", "--dir", dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.kubepki_ok(&args);
        dir
    }
}

/// Whether an external program is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {program}")).output().is_ok_and(|o| o.status.success())
}

/// A free TCP port on this loopback address (bound and released; the caller binds it next).
pub fn free_port(ip: &str) -> u16 {
    let l = TcpListener::bind((ip, 0)).unwrap_or_else(|e| panic!("bind {ip}:0: {e}"));
    l.local_addr().unwrap().port()
}

/// A child process killed (hard) and reaped when dropped, so it never outlives a failed test.
pub struct Guard {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Guard {
    /// Start `cmd` with stdout and stderr going to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Guard {
        let file = std::fs::File::create(log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Guard { name: name.into(), child, log: log.to_path_buf() }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panic with the log if the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited with {status}:\n{}", self.name, self.log_text());
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Poll `ready` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait until something accepts TCP connections at `ip:port`.
pub fn wait_for_port(guard: &mut Guard, ip: &str, port: u16) {
    let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
    wait_until(&format!("{} to listen on {addr}", guard.name), Duration::from_secs(20), || {
        guard.assert_running();
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    });
}

/// Run a command and return (success, stdout + stderr).
pub fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Every file under a tree (not its directories).
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Every file under a tree with its bytes, by path relative to the tree; not the lock file,
/// which every run that changes the tree (or tries to) takes and signs.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    content_files(dir)
        .into_iter()
        .map(|p| (p.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&p).unwrap()))
        .collect()
}

/// Every file under a tree but its lock file (`.kubepki/lock`).
pub fn content_files(dir: &Path) -> Vec<PathBuf> {
    files(dir).into_iter().filter(|p| p.strip_prefix(dir).unwrap() != Path::new(".kubepki/lock")).collect()
}

/// The real kubeadm v1.29 tree kept with the tests (`tests/fixtures/kubeadm-v1.29`, see its README).
pub fn kubeadm_fixture_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kubeadm-v1.29")
}

/// A copy of the real kubeadm v1.29 tree in the env, as `etc-kubernetes` (leaves expired
/// 2025-02-03, CAs valid to 2034). With `node_modes`, keys and kubeconfigs get the 0600 a real
/// node has (git keeps no modes).
pub fn kubeadm_fixture(env: &TestEnv, node_modes: bool) -> PathBuf {
    let fixture = kubeadm_fixture_source();
    assert!(fixture.is_dir(), "fixture {} is missing", fixture.display());
    let dest = env.path().join("etc-kubernetes");
    let (ok, text) = run(Command::new("cp").arg("-a").arg(&fixture).arg(&dest));
    assert!(ok, "{text}");
    let mut script = format!("chmod -R u+w {}", dest.display());
    if node_modes {
        script.push_str(&format!(
            " && find {} \\( -name '*.key' -o -name '*.conf' \\) -exec chmod 600 {{}} +",
            dest.display()
        ));
    }
    let (ok, text) = run(Command::new("sh").arg("-c").arg(script));
    assert!(ok, "{text}");
    dest
}
