//! A real Kubernetes API server for tests (and, later, the testbed in cluster mode): `etcd` and
//! `kube-apiserver` on 127.0.0.1 only, with no controllers, scheduler or kubelet, so whoever
//! uses it plays kubelet (binds pods with `spec.nodeName`, patches `status.podIP`).
//!
//! The programs come from PATH, where `scripts/kube.sh` puts them (`PATH="$(bash
//! scripts/kube.sh)$PATH"`): Debian's etcd and a kube-apiserver and kubectl built from the Go
//! module proxy. Each [`KubeApi`] is a fresh cluster: its etcd data lives in its own tmpfs
//! directory (etcd 3.4 has no flag to skip fsync), and dropping it stops both processes by pid
//! and removes that directory.
use crate::command::run;
use crate::error::Error;
use crate::layout::SERVICE_CIDR;
use crate::process::{ProcessRecord, log_tail};
use crate::random;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The programs [`KubeApi`] runs, as `scripts/kube.sh` installs them.
pub const PROGRAMS: [&str; 3] = ["etcd", "kube-apiserver", "kubectl"];
/// The admin user of the token file: in `system:masters`, so RBAC allows it everything.
pub const ADMIN_USER: &str = "weir-admin";
/// A cold kube-apiserver on a busy 2-core machine needs several seconds to be ready.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
const ETCD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a process gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A running etcd + kube-apiserver pair; stopped (by pid) when dropped.
#[derive(Debug)]
pub struct KubeApi {
    apiserver: Daemon,
    etcd: Daemon,
    /// etcd's data, on tmpfs; removed after both processes have stopped.
    data: Option<tempfile::TempDir>,
    paths: Paths,
    bins: Binaries,
    port: u16,
    etcd_port: u16,
    admin_token: String,
    place: Place,
}

/// Where the API server runs and listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The network namespace of etcd and kube-apiserver (none: this process's).
    pub netns: Option<String>,
    /// The address kube-apiserver listens on (etcd always listens on 127.0.0.1).
    pub address: Ipv4Addr,
}

impl Default for Place {
    fn default() -> Self {
        Place { netns: None, address: Ipv4Addr::LOCALHOST }
    }
}

impl Place {
    /// `program`, run inside the namespace (`ip netns exec` execs in place: same pid).
    fn command(&self, program: &Path) -> Command {
        match &self.netns {
            None => Command::new(program),
            Some(ns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns]).arg(program);
                cmd
            }
        }
    }
}

/// Where the programs are: found on PATH; kubectl is the one beside kube-apiserver, so an
/// older kubectl earlier on PATH (Debian's 1.20 lacks `--subresource`) is never picked.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// etcd.
    pub etcd: PathBuf,
    /// kube-apiserver.
    pub apiserver: PathBuf,
    /// The kubectl built with kube-apiserver.
    pub kubectl: PathBuf,
}

impl Binaries {
    /// Finds the programs, or names the missing ones and the script that installs them.
    pub fn find() -> Result<Self, Error> {
        let etcd = on_path("etcd");
        let apiserver = on_path("kube-apiserver");
        let kubectl = apiserver.as_ref().map(|a| a.with_file_name("kubectl")).filter(|k| k.is_file());
        match (etcd, apiserver, kubectl) {
            (Some(etcd), Some(apiserver), Some(kubectl)) => Ok(Binaries { etcd, apiserver, kubectl }),
            (etcd, apiserver, kubectl) => {
                let found = [etcd.is_some(), apiserver.is_some(), kubectl.is_some()];
                let missing: Vec<&str> = PROGRAMS.iter().zip(found).filter(|(_, f)| !f).map(|(p, _)| *p).collect();
                Err(Error::invalid(
                    "PATH",
                    missing.join(", "),
                    "not found (kubectl must be beside kube-apiserver); install them and put them first on PATH \
                     with PATH=\"$(bash scripts/kube.sh)$PATH\"",
                ))
            }
        }
    }

    /// For tests: whether the programs are found. Without them a test skips, saying why,
    /// unless `WEIR_REQUIRE_KUBE` is set (`scripts/test.sh` sets it, so CI cannot skip
    /// silently): then their absence panics.
    pub fn available_for_tests() -> bool {
        match Binaries::find() {
            Ok(_) => true,
            Err(e) if std::env::var_os("WEIR_REQUIRE_KUBE").is_some() => panic!("WEIR_REQUIRE_KUBE is set but {e}"),
            Err(e) => {
                eprintln!("skipped: {e} (set WEIR_REQUIRE_KUBE=1 to make this a failure)");
                false
            }
        }
    }
}

/// The files of one cluster, under the directory given to [`KubeApi::start`].
#[derive(Debug, Clone)]
struct Paths {
    dir: PathBuf,
}

impl Paths {
    fn pki_dir(&self) -> PathBuf {
        self.dir.join("pki")
    }
    fn pki(&self, name: &str) -> PathBuf {
        self.pki_dir().join(name)
    }
    fn log(&self, program: &str) -> PathBuf {
        self.dir.join(format!("{program}.log"))
    }
    fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }
}

/// A process this module started. Holding the `Child` (not reaped until stopped) guarantees
/// the pid is still ours when it is signalled.
#[derive(Debug)]
struct Daemon {
    what: &'static str,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    fn spawn(what: &'static str, cmd: &mut Command, log: PathBuf) -> Result<Self, Error> {
        let out = File::create(&log).map_err(|e| Error::io(&log, e))?;
        Daemon::spawn_to(what, cmd, out, log)
    }

    fn spawn_to(what: &'static str, cmd: &mut Command, out: File, log: PathBuf) -> Result<Self, Error> {
        let err = out.try_clone().map_err(|e| Error::io(&log, e))?;
        // Its own process group: a Ctrl-C meant for the command that started it (which may
        // detach it, see `KubeApi::detach`) does not reach it.
        cmd.process_group(0);
        let child =
            cmd.stdin(Stdio::null()).stdout(out).stderr(err).spawn().map_err(|e| Error::io(cmd.get_program(), e))?;
        Ok(Daemon { what, child: Some(child), log })
    }

    fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// An error if the process has exited, with the end of its log.
    fn check_running(&mut self) -> Result<(), Error> {
        let exited = match self.child.as_mut() {
            Some(c) => c.try_wait().map_err(|e| Error::io(&self.log, e))?.is_some(),
            None => true,
        };
        if exited {
            return Err(Error::Died {
                what: self.what.to_string(),
                log: self.log.clone(),
                tail: log_tail(&self.log, 20),
            });
        }
        Ok(())
    }

    /// SIGTERM, then SIGKILL after [`STOP_GRACE`]; reaps the process.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        // SAFETY: kill(2) on our own unreaped child: its pid cannot have been reused.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < STOP_GRACE {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl KubeApi {
    /// Generates the PKI, starts etcd and kube-apiserver on free loopback ports, waits until
    /// `/readyz` answers 200 and writes an admin kubeconfig; `dir` (created if missing) keeps
    /// the PKI, the logs and the kubeconfig.
    pub fn start(dir: &Path) -> Result<Self, Error> {
        KubeApi::start_at(dir, Place::default())
    }

    /// As [`KubeApi::start`], in `place`: a testbed's node namespace, listening on the node's
    /// address, so every node's agent reaches it over the underlay as in a cluster.
    pub fn start_at(dir: &Path, place: Place) -> Result<Self, Error> {
        let bins = Binaries::find()?;
        let paths = Paths { dir: dir.to_path_buf() };
        std::fs::create_dir_all(paths.pki_dir()).map_err(|e| Error::io(paths.pki_dir(), e))?;
        let admin_token = hex(&random::bytes::<16>());
        write_pki(&paths, &admin_token, place.address)?;
        let data = tempfile::Builder::new()
            .prefix("weir-kube-etcd-")
            // etcd warns about any other mode: its data is only for its user.
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in("/dev/shm")
            .map_err(|e| Error::io("/dev/shm", e))?;
        let [etcd_port, peer_port, port] = free_ports::<3>()?;

        let mut etcd_cmd = etcd_command(place.command(&bins.etcd), data.path(), etcd_port, peer_port);
        let etcd = Daemon::spawn("etcd", &mut etcd_cmd, paths.log("etcd"))?;
        let apiserver = Daemon { what: "kube-apiserver", child: None, log: paths.log("kube-apiserver") };
        let mut api = KubeApi { apiserver, etcd, data: Some(data), paths, bins, port, etcd_port, admin_token, place };
        api.wait_for_etcd(etcd_port)?;
        api.spawn_apiserver()?;
        api.write_kubeconfig()?;
        api.wait_until_ready()?;
        Ok(api)
    }

    /// Stops kube-apiserver (by pid) and starts it again on the same port and etcd, so every
    /// object stays and every client's watch breaks, as in an API server upgrade; returns once
    /// it is ready again.
    pub fn restart_apiserver(&mut self) -> Result<(), Error> {
        self.apiserver.stop();
        self.spawn_apiserver()?;
        self.wait_until_ready()
    }

    fn spawn_apiserver(&mut self) -> Result<(), Error> {
        self.apiserver = spawn_apiserver(&self.bins.apiserver, &self.paths, &self.place, self.etcd_port, self.port)?;
        Ok(())
    }

    /// The API server's URL, `https://<address>:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}:{}", self.place.address, self.port)
    }

    /// The admin kubeconfig (token user in `system:masters`, the cluster's CA).
    pub fn kubeconfig(&self) -> PathBuf {
        self.paths.kubeconfig()
    }

    /// The admin bearer token.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The CA certificate that signed the serving certificate.
    pub fn ca_cert(&self) -> PathBuf {
        self.paths.pki("ca.crt")
    }

    /// etcd's data directory on tmpfs (until stopped).
    pub fn etcd_data_dir(&self) -> Option<&Path> {
        self.data.as_ref().map(|d| d.path())
    }

    /// The programs in use.
    pub fn binaries(&self) -> &Binaries {
        &self.bins
    }

    /// The pids of kube-apiserver and etcd (until stopped).
    pub fn pids(&self) -> Vec<i32> {
        [&self.apiserver, &self.etcd].iter().filter_map(|d| d.pid()).collect()
    }

    /// `kubectl --kubeconfig <admin kubeconfig>`, to add arguments to.
    pub fn kubectl(&self) -> Command {
        let mut cmd = self.place.command(&self.bins.kubectl);
        cmd.arg("--kubeconfig").arg(self.kubeconfig());
        cmd
    }

    /// Leaves both processes running and etcd's data in place, for whoever keeps the returned
    /// record (a testbed, whose `down` stops them).
    pub fn detach(mut self) -> Result<KubeRecord, Error> {
        let record = |d: &mut Daemon| {
            let child = d.child.take();
            let pid = child.as_ref().map_or(0, |c| c.id() as i32);
            let started = crate::process::start_time(pid);
            if let Some(child) = child {
                reap_when_done(child);
            }
            started
                .map(|start_time| ProcessRecord { pid, start_time })
                .ok_or_else(|| Error::Died { what: d.what.into(), log: d.log.clone(), tail: log_tail(&d.log, 20) })
        };
        let apiserver = record(&mut self.apiserver)?;
        let etcd = record(&mut self.etcd)?;
        let etcd_data = self.data.take().map(|d| d.keep()).unwrap_or_default();
        Ok(KubeRecord {
            dir: self.paths.dir.clone(),
            netns: self.place.netns.clone(),
            address: self.place.address,
            port: self.port,
            etcd_port: self.etcd_port,
            apiserver_program: self.bins.apiserver.clone(),
            url: self.url(),
            kubectl: self.bins.kubectl.clone(),
            kubeconfig: self.kubeconfig(),
            apiserver,
            etcd,
            etcd_data,
        })
    }

    /// Stops kube-apiserver, then etcd, and removes etcd's tmpfs directory (as dropping does).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.apiserver.stop();
        self.etcd.stop();
        if let Some(data) = self.data.take() {
            let _ = data.close();
        }
    }

    /// etcd takes a moment to open its (empty) database; kube-apiserver started before it
    /// would only retry.
    fn wait_for_etcd(&mut self, port: u16) -> Result<(), Error> {
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into();
        let pid = self.etcd.pid();
        self.wait("etcd accepting connections", ETCD_TIMEOUT, |api| match (&api.place.netns, pid) {
            (None, _) => TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok(),
            // Not reachable from here: its namespace's socket table says whether it listens.
            (Some(_), Some(pid)) => listens(pid, port),
            (Some(_), None) => false,
        })
    }

    fn wait_until_ready(&mut self) -> Result<(), Error> {
        self.wait("kube-apiserver /readyz", READY_TIMEOUT, |api| {
            api.kubectl()
                .args(["get", "--raw=/readyz"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    }

    /// Polls `ready` until it holds, failing early (with the log) if either process died.
    fn wait(&mut self, what: &str, timeout: Duration, mut ready: impl FnMut(&Self) -> bool) -> Result<(), Error> {
        let start = Instant::now();
        loop {
            self.etcd.check_running()?;
            if self.apiserver.child.is_some() {
                self.apiserver.check_running()?;
            }
            if ready(&*self) {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(Error::Timeout { what: what.to_string(), seconds: timeout.as_secs_f64() });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn write_kubeconfig(&self) -> Result<(), Error> {
        self.write_token_kubeconfig(&self.kubeconfig(), ADMIN_USER, &self.admin_token)
    }

    /// Writes a kubeconfig to `path` that reaches this API server as the holder of `token`
    /// (e.g. a ServiceAccount's, from `kubectl create token`), named `user`.
    pub fn write_token_kubeconfig(&self, path: &Path, user: &str, token: &str) -> Result<(), Error> {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: weir-test\n  cluster:\n    server: {url}\n    \
             certificate-authority: {ca}\nusers:\n- name: {user}\n  user:\n    token: {token}\ncontexts:\n\
             - name: weir-test\n  context:\n    cluster: weir-test\n    user: {user}\ncurrent-context: weir-test\n",
            url = self.url(),
            ca = self.ca_cert().display(),
        );
        std::fs::write(path, text).map_err(|e| Error::io(path, e))
    }
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts kube-apiserver, its output appended to its log (a restart keeps the first run's).
fn spawn_apiserver(program: &Path, paths: &Paths, place: &Place, etcd_port: u16, port: u16) -> Result<Daemon, Error> {
    let mut cmd = apiserver_command(place.command(program), paths, etcd_port, port, place.address);
    let log = paths.log("kube-apiserver");
    let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).map_err(|e| Error::io(&log, e))?;
    Daemon::spawn_to("kube-apiserver", &mut cmd, out, log)
}

fn etcd_command(mut cmd: Command, data: &Path, port: u16, peer_port: u16) -> Command {
    let client = format!("http://127.0.0.1:{port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    // etcd reads every ETCD_* environment variable as a flag: none of ours may leak in.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ETCD_") {
            cmd.env_remove(name);
        }
    }
    cmd.arg("--name=weir-test")
        .arg("--data-dir")
        .arg(data)
        .arg(format!("--listen-client-urls={client}"))
        .arg(format!("--advertise-client-urls={client}"))
        .arg(format!("--listen-peer-urls={peer}"))
        .arg(format!("--initial-advertise-peer-urls={peer}"))
        .arg(format!("--initial-cluster=weir-test={peer}"))
        .args(["--logger=zap", "--log-level=warn"]);
    cmd
}

fn apiserver_command(mut cmd: Command, paths: &Paths, etcd_port: u16, port: u16, address: Ipv4Addr) -> Command {
    let pki = |name: &str| paths.pki(name).display().to_string();
    cmd.args([
        format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
        format!("--bind-address={address}"),
        format!("--advertise-address={address}"),
        // The default reconcilers refuse a loopback address for the `kubernetes` Service's
        // endpoints; nothing here runs in-cluster and reads them.
        "--endpoint-reconciler-type=none".into(),
        format!("--secure-port={port}"),
        // Certificates it would generate for itself go here, never into a system directory.
        format!("--cert-dir={}", paths.dir.join("apiserver-certs").display()),
        format!("--tls-cert-file={}", pki("apiserver.crt")),
        format!("--tls-private-key-file={}", pki("apiserver.key")),
        format!("--token-auth-file={}", pki("tokens.csv")),
        // The TokenRequest API (`kubectl create token`) needs an issuer and a signing key.
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
        format!("--service-account-key-file={}", pki("sa.pub")),
        format!("--service-account-signing-key-file={}", pki("sa.key")),
        format!("--service-cluster-ip-range={SERVICE_CIDR}"),
        "--authorization-mode=RBAC".into(),
        // No controller creates a namespace's `default` ServiceAccount, so pods would be refused.
        "--disable-admission-plugins=ServiceAccount".into(),
        "--allow-privileged=true".into(),
        "--profiling=false".into(),
    ]);
    cmd
}

/// The cluster's keys and certificates, made with the `openssl` CLI: no PKI crate is in the
/// workspace, and the CLI (which scripts/kube.sh installs with etcd) costs no build time.
/// EC P-256 keys, which both kube-apiserver's TLS and its service-account signer (ES256)
/// accept, are made in milliseconds where RSA takes a noticeable fraction of a second.
fn write_pki(paths: &Paths, admin_token: &str, address: Ipv4Addr) -> Result<(), Error> {
    let p = |name: &str| paths.pki(name);
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(openssl()
        .args(["req", "-x509", "-days", "30", "-subj", "/CN=weir-test-ca"])
        .args(ec)
        .arg("-keyout")
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("ca.crt")))?;
    run(openssl()
        .args(["req", "-new", "-subj", "/CN=kube-apiserver"])
        .args(ec)
        .arg("-keyout")
        .arg(p("apiserver.key"))
        .arg("-out")
        .arg(p("apiserver.csr")))?;
    let ext = p("apiserver.ext");
    let sans = format!(
        "subjectAltName=IP:127.0.0.1,IP:{address},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,\
         DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n\
         extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n"
    );
    std::fs::write(&ext, sans).map_err(|e| Error::io(&ext, e))?;
    run(openssl()
        .args(["x509", "-req", "-days", "30", "-set_serial", "2"])
        .arg("-in")
        .arg(p("apiserver.csr"))
        .arg("-CA")
        .arg(p("ca.crt"))
        .arg("-CAkey")
        .arg(p("ca.key"))
        .arg("-extfile")
        .arg(&ext)
        .arg("-out")
        .arg(p("apiserver.crt")))?;
    run(openssl().args(["ecparam", "-name", "prime256v1", "-genkey", "-noout"]).arg("-out").arg(p("sa.key")))?;
    run(openssl().args(["ec", "-pubout"]).arg("-in").arg(p("sa.key")).arg("-out").arg(p("sa.pub")))?;
    // token,user,uid,"groups"
    let tokens = p("tokens.csv");
    let line = format!("{admin_token},{ADMIN_USER},{ADMIN_USER},\"system:masters\"\n");
    std::fs::write(&tokens, line).map_err(|e| Error::io(&tokens, e))
}

fn openssl() -> Command {
    let mut cmd = Command::new("openssl");
    cmd.stdin(Stdio::null());
    cmd
}

/// `N` distinct ports free on 127.0.0.1 now: all held at once so they differ, then released
/// for the daemons to bind (another process could take one in between; unlikely on loopback).
fn free_ports<const N: usize>() -> Result<[u16; N], Error> {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<_, _>>()
        .map_err(|e| Error::socket("bind 127.0.0.1:0", e))?;
    let mut ports = [0; N];
    for (port, l) in ports.iter_mut().zip(&listeners) {
        *port = l.local_addr().map_err(|e| Error::socket("local address", e))?.port();
    }
    Ok(ports)
}

/// The first `name` on PATH that is an executable file.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// Waits for a detached process on a thread of its own, so that once stopped (by pid, see
/// [`KubeRecord::stop`]) it does not linger as a zombie of a process that runs on.
fn reap_when_done(mut child: Child) {
    std::thread::spawn(move || child.wait());
}

/// Whether a TCP socket in the network namespace of `pid` listens on 127.0.0.1:`port`.
fn listens(pid: i32, port: u16) -> bool {
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
    let local = format!("0100007F:{port:04X}");
    // Columns: sl, local_address, rem_address, st (0A: LISTEN), ...
    table.lines().skip(1).any(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        cols.get(1) == Some(&local.as_str()) && cols.get(3) == Some(&"0A")
    })
}

/// A detached API server ([`KubeApi::detach`]), as a testbed's state records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KubeRecord {
    /// Its PKI, logs and kubeconfig.
    pub dir: PathBuf,
    /// The network namespace it runs in.
    pub netns: Option<String>,
    /// kube-apiserver's address.
    pub address: Ipv4Addr,
    /// kube-apiserver's port.
    pub port: u16,
    /// etcd's client port (on 127.0.0.1 in `netns`).
    pub etcd_port: u16,
    /// The kube-apiserver program.
    pub apiserver_program: PathBuf,
    /// kube-apiserver's URL.
    pub url: String,
    /// The kubectl built with it.
    pub kubectl: PathBuf,
    /// The admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// kube-apiserver.
    pub apiserver: ProcessRecord,
    /// etcd.
    pub etcd: ProcessRecord,
    /// etcd's data directory (tmpfs).
    pub etcd_data: PathBuf,
}

impl KubeRecord {
    /// `kubectl --kubeconfig <admin kubeconfig>` inside the API server's namespace.
    pub fn kubectl(&self) -> Command {
        let place = Place { netns: self.netns.clone(), address: Ipv4Addr::LOCALHOST };
        let mut cmd = place.command(&self.kubectl);
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        cmd
    }

    /// Stops kube-apiserver and starts it again on the same port and etcd (every object stays,
    /// every client's watch breaks, as in an API server upgrade); returns once it is ready.
    /// The caller saves the new pid (in the testbed's state).
    pub fn restart_apiserver(&mut self) -> Result<(), Error> {
        self.apiserver.stop(STOP_GRACE);
        let place = Place { netns: self.netns.clone(), address: self.address };
        let paths = Paths { dir: self.dir.clone() };
        let mut daemon = spawn_apiserver(&self.apiserver_program, &paths, &place, self.etcd_port, self.port)?;
        let child = daemon.child.take().expect("just spawned");
        let pid = child.id() as i32;
        reap_when_done(child);
        let start_time = crate::process::start_time(pid).ok_or_else(|| Error::Died {
            what: "kube-apiserver".into(),
            log: daemon.log.clone(),
            tail: log_tail(&daemon.log, 20),
        })?;
        self.apiserver = ProcessRecord { pid, start_time };
        let ready = crate::ovs::wait_until(READY_TIMEOUT, || {
            !self.apiserver.alive()
                || self.kubectl().args(["get", "--raw=/readyz"]).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
        });
        if ready.is_err() || !self.apiserver.alive() {
            return Err(Error::Died { what: "kube-apiserver (restarted)".into(), log: daemon.log.clone(), tail: log_tail(&daemon.log, 20) });
        }
        Ok(())
    }

    /// Compacts etcd's history up to its current revision, as etcd's periodic compaction
    /// does: a watch that resumes from an older resourceVersion is answered `410 Gone`.
    /// Returns the revision. Through etcd's JSON gateway, with curl in the API server's namespace.
    pub fn compact_etcd(&self) -> Result<u64, Error> {
        let url = |what: &str| format!("http://127.0.0.1:{}/v3/kv/{what}", self.etcd_port);
        let post = |what: &str, body: &str| -> Result<serde_json::Value, Error> {
            let mut cmd = Place { netns: self.netns.clone(), address: self.address }.command(Path::new("curl"));
            let out = run(cmd.args(["-sS", "--fail", "-X", "POST", &url(what), "-d", body]))?;
            serde_json::from_str(&out).map_err(|e| Error::invalid("etcd answer", what, e.to_string()))
        };
        // Any range answers with the store's current revision in its header.
        let answer = post("range", r#"{"key":"AA=="}"#)?;
        let revision = answer["header"]["revision"].as_str().and_then(|r| r.parse::<u64>().ok());
        let revision = revision.ok_or_else(|| Error::invalid("etcd answer", "header.revision", answer.to_string()))?;
        post("compaction", &format!(r#"{{"revision":"{revision}","physical":true}}"#))?;
        Ok(revision)
    }

    /// Stops kube-apiserver, then etcd (by pid, checked against their start times), and
    /// removes etcd's data.
    pub fn stop(&self) {
        self.apiserver.stop(STOP_GRACE);
        self.etcd.stop(STOP_GRACE);
        if !self.etcd_data.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.etcd_data);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
