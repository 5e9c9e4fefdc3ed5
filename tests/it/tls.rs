//! TLS and mTLS on the gRPC TCP listener (SPEC §11), against the real server started in process with
//! certificates made at test time (rcgen): TLS clients are answered and plaintext ones refused; with
//! `--tls-client-ca` only clients with a certificate from that CA get through; changed certificate
//! files (a Kubernetes Secret's `..data` swap) serve new connections while open ones go on, and broken
//! ones keep the old certificate serving; a client that never finishes the TLS handshake loses its
//! connection at the handshake deadline; `warden healthcheck --tls-ca` and start-up errors.
use crate::support::{self, http_get, parse_prometheus, sample_sum};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use warden::config::{ConnectionLimits, ServeConfig};
use warden::proto::{self, Decision, authorizer_client::AuthorizerClient};
use warden::server::{Options, Running};

const ALICE: &str = "arn:aws:sts::111122223333:assumed-role/SageMakerStudioExecutionRoleTeam1/alice-Team1";
const PRESIGN: &str = "sagemaker:CreatePartnerAppPresignedUrl";
const COMET_APP: &str = "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-COMETTEAM001";
const TEST_TIMEOUT: Duration = Duration::from_secs(120);
const WAIT: Duration = Duration::from_secs(15);

async fn bounded<F: std::future::Future<Output = ()>>(body: F) {
    tokio::time::timeout(TEST_TIMEOUT, body).await.unwrap_or_else(|_| panic!("the test took over {TEST_TIMEOUT:?}"));
}

async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut).await.unwrap_or_else(|_| panic!("timed out after {WAIT:?}: {what}"))
}

// === certificates ===

/// A CA that signs server and client certificates.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

/// A certificate and its key.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { issuer: Issuer::new(params, key), pem }
    }

    /// A certificate for `localhost` and 127.0.0.1 (server or client), named `cn`.
    fn leaf(&self, cn: &str) -> Leaf {
        let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().clone() }
    }
}

/// The files of a Kubernetes Secret volume: `tls.crt`, `tls.key` and `ca.crt` are symlinks into
/// `..data`, itself a symlink to a timestamped directory that the kubelet replaces by retargeting
/// `..data` (an atomic rename of a new symlink over it).
struct SecretDir {
    dir: tempfile::TempDir,
    version: u32,
}

impl SecretDir {
    fn new(files: &[(&str, &str)]) -> SecretDir {
        let dir = support::temp_dir();
        let mut s = SecretDir { dir, version: 0 };
        s.swap(files);
        for (name, _) in files {
            std::os::unix::fs::symlink(format!("..data/{name}"), s.dir.path().join(name)).unwrap();
        }
        s
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `files` into a new timestamped directory and points `..data` at it, as the kubelet does.
    fn swap(&mut self, files: &[(&str, &str)]) {
        self.version += 1;
        let data = format!("..2026_01_01_00_00_{:02}.{}", self.version, self.version);
        std::fs::create_dir(self.dir.path().join(&data)).unwrap();
        for (name, text) in files {
            std::fs::write(self.dir.path().join(&data).join(name), text).unwrap();
        }
        let tmp = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&data, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.path().join("..data")).unwrap();
    }
}

// === the server under test ===

struct Server {
    running: Option<Running>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// A server on `127.0.0.1:0` with TLS from `cert`/`key` (mTLS with `client_ca`), a Unix socket and
    /// an admin listener, bundle `policies/`.
    async fn start(cert: &Path, key: &Path, client_ca: Option<&Path>, limits: ConnectionLimits) -> Server {
        let dir = support::temp_dir();
        let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let socket = dir.path().join("warden.sock");
        let utf8 = |p: &Path| p.to_str().expect("a UTF-8 path").to_owned();
        let mut config = ServeConfig::from_flags(
            Some(&utf8(&policies)),
            Some("127.0.0.1:0"),
            Some(&utf8(&socket)),
            Some("127.0.0.1:0"),
            Some(2_000),
        )
        .and_then(|c| c.with_tls(Some(&utf8(cert)), Some(&utf8(key)), client_ca.map(utf8).as_deref()))
        .expect("valid flags");
        config.connections = limits;
        let running = within("Running::start", Running::start(&config, Options::default()))
            .await
            .unwrap_or_else(|e| panic!("Running::start: {e:#}"));
        let store = running.store.clone();
        within("the bundle to become active", async {
            while store.load().is_none() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        Server { running: Some(running), _dir: dir }
    }

    fn running(&self) -> &Running {
        self.running.as_ref().expect("the server is running")
    }

    fn grpc(&self) -> SocketAddr {
        self.running().grpc_addr.expect("a TCP listener")
    }

    async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let answer = http_get(self.running().admin_addr.expect("an admin listener"), "/metrics").await;
        assert_eq!(answer.status, 200, "GET /metrics: {answer:?}");
        let samples = parse_prometheus(&answer.body);
        if name == "warden_tls_reloads_total" {
            for result in ["activated", "rejected"] {
                assert!(
                    samples
                        .iter()
                        .any(|s| s.name == name && s.labels.get("result").map(String::as_str) == Some(result)),
                    "{name}{{result={result:?}}} is rendered from the start: {}",
                    answer.body
                );
            }
        }
        sample_sum(&samples, name, labels)
    }

    async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            within("shutdown", r.shutdown()).await;
        }
    }
}

fn allow_request() -> proto::AuthorizeRequest {
    let context: pbjson_types::Struct = [(
        "aws:SourceIp".to_owned(),
        pbjson_types::Value { kind: Some(pbjson_types::value::Kind::StringValue("10.100.10.7".to_owned())) },
    )]
    .into_iter()
    .collect();
    proto::AuthorizeRequest {
        principal: Some(proto::Principal { arn: ALICE.to_owned(), ..proto::Principal::default() }),
        action: PRESIGN.to_owned(),
        resource: COMET_APP.to_owned(),
        context: Some(context),
        ..proto::AuthorizeRequest::default()
    }
}

/// A tonic channel over TLS trusting `ca`, presenting `identity` if given.
async fn tls_channel(addr: SocketAddr, ca: &str, identity: Option<&Leaf>) -> Result<Channel, String> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)).domain_name("localhost");
    if let Some(leaf) = identity {
        tls = tls.identity(Identity::from_pem(&leaf.cert_pem, &leaf.key_pem));
    }
    let endpoint = Endpoint::from_shared(format!("https://{addr}")).unwrap().tls_config(tls).unwrap();
    within("connect over TLS", endpoint.connect()).await.map_err(|e| format!("{e:?}"))
}

/// One Authorize and one Health/Check on `channel`: ALLOW and SERVING, or the first error.
async fn answered(channel: Channel) -> Result<(), tonic::Status> {
    let r = within("Authorize", AuthorizerClient::new(channel.clone()).authorize(allow_request())).await?.into_inner();
    assert_eq!(r.decision(), Decision::Allow, "{r:?}");
    let h = within("Health/Check", HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }))
        .await?
        .into_inner();
    assert_eq!(h.status(), ServingStatus::Serving);
    Ok(())
}

/// Connects with TLS trusting `ca` (and presenting `identity`), or fails.
async fn connect_tls(addr: SocketAddr, ca: &str, identity: Option<&Leaf>) -> Result<Channel, String> {
    let channel = tls_channel(addr, ca, identity).await?;
    answered(channel.clone()).await.map_err(|s| format!("{s:?}"))?;
    Ok(channel)
}

/// The certificate the server presents to a new TLS connection (a raw rustls client trusting `ca`).
async fn peer_certificate(addr: SocketAddr, ca: &str) -> CertificateDer<'static> {
    let mut roots = RootCertStore::empty();
    for c in rustls::pki_types::pem::PemObject::pem_slice_iter(ca.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut config = ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = within("connect", TcpStream::connect(addr)).await.unwrap();
    let tls = within("TLS handshake", connector.connect(ServerName::try_from("localhost").unwrap(), tcp))
        .await
        .expect("TLS handshake");
    let (_, session) = tls.get_ref();
    assert_eq!(session.alpn_protocol(), Some(&b"h2"[..]), "ALPN h2");
    session.peer_certificates().and_then(|c| c.first()).expect("a server certificate").clone().into_owned()
}

// === the tests ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_clients_are_answered_and_plaintext_ones_refused() {
    bounded(async {
        let ca = Ca::new("Warden test CA");
        let leaf = ca.leaf("warden server");
        let files = SecretDir::new(&[("tls.crt", &leaf.cert_pem), ("tls.key", &leaf.key_pem)]);
        let server =
            Server::start(&files.path("tls.crt"), &files.path("tls.key"), None, ConnectionLimits::default()).await;
        let addr = server.grpc();
        // Both results are there from the start (`metric` checks).
        server.metric("warden_tls_reloads_total", &[]).await;

        connect_tls(addr, &ca.pem, None).await.expect("a TLS client is answered");
        assert_eq!(peer_certificate(addr, &ca.pem).await, leaf.der);

        // A plaintext gRPC client gets no answer: its HTTP/2 preface is not a TLS ClientHello.
        let before = server.metric("warden_connections_closed_total", &[("reason", "tls_handshake_failed")]).await;
        let plain = Endpoint::from_shared(format!("http://{addr}")).unwrap();
        let refused = match within("plaintext connect", plain.connect()).await {
            Err(_) => true,
            Ok(ch) => within("plaintext call", AuthorizerClient::new(ch).authorize(allow_request())).await.is_err(),
        };
        assert!(refused, "a plaintext client was answered over TLS");
        let after = server.metric("warden_connections_closed_total", &[("reason", "tls_handshake_failed")]).await;
        assert!(after > before, "the failed handshake is counted: {before} -> {after}");

        // A client that does not trust the server's CA refuses it.
        let other = Ca::new("another CA");
        assert!(connect_tls(addr, &other.pem, None).await.is_err(), "a client trusting another CA connected");

        // The Unix socket stays plaintext.
        let path = server.running().uds.clone().expect("a Unix socket");
        let endpoint = Endpoint::try_from("http://[::]:50051").unwrap();
        let channel = within(
            "connect over the Unix socket",
            endpoint.connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tokio::net::UnixStream::connect(path).await?))
                }
            })),
        )
        .await
        .expect("connect");
        answered(channel).await.expect("the Unix socket answers in plaintext");
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_admits_only_clients_with_a_certificate_from_the_client_ca() {
    bounded(async {
        let server_ca = Ca::new("server CA");
        let client_ca = Ca::new("client CA");
        let leaf = server_ca.leaf("warden server");
        let dir = support::temp_dir();
        support::write_files(
            dir.path(),
            &[("tls.crt", &leaf.cert_pem), ("tls.key", &leaf.key_pem), ("clients.crt", &client_ca.pem)],
        );
        let p = |n: &str| dir.path().join(n);
        let server =
            Server::start(&p("tls.crt"), &p("tls.key"), Some(&p("clients.crt")), ConnectionLimits::default()).await;
        let addr = server.grpc();

        let gateway = client_ca.leaf("gateway");
        connect_tls(addr, &server_ca.pem, Some(&gateway)).await.expect("a client with a certificate from the CA");

        let anonymous = connect_tls(addr, &server_ca.pem, None).await;
        assert!(anonymous.is_err(), "a client without a certificate was answered");

        let stranger = Ca::new("client CA").leaf("gateway");
        let foreign = connect_tls(addr, &server_ca.pem, Some(&stranger)).await;
        assert!(foreign.is_err(), "a client with a certificate from another CA (same name) was answered");

        // A server certificate is no client certificate of the client CA either.
        let wrong = connect_tls(addr, &server_ca.pem, Some(&leaf)).await;
        assert!(wrong.is_err(), "the server's own certificate got a client through");

        // `warden healthcheck` with and without a client identity.
        let w = |n: &str| p(n).to_str().unwrap().to_owned();
        support::write_files(
            dir.path(),
            &[("server-ca.crt", &server_ca.pem), ("gw.crt", &gateway.cert_pem), ("gw.key", &gateway.key_pem)],
        );
        let healthcheck = |extra: Vec<String>| {
            let mut args: Vec<String> =
                ["healthcheck", "--tls-server-name", "localhost", "--timeout-ms", "5000", "--addr"]
                    .map(str::to_owned)
                    .to_vec();
            args.push(addr.to_string());
            args.extend(extra);
            tokio::task::spawn_blocking(move || support::warden(args))
        };
        let with_id = ["--tls-ca", &w("server-ca.crt"), "--tls-cert", &w("gw.crt"), "--tls-key", &w("gw.key")];
        let ok = healthcheck(with_id.map(str::to_owned).to_vec()).await.unwrap();
        assert_eq!(ok.code, 0, "healthcheck with a client certificate: {}", ok.dump());
        assert!(ok.stdout.contains("SERVING"), "{}", ok.dump());
        let no_id = healthcheck(vec!["--tls-ca".to_owned(), w("server-ca.crt")]).await.unwrap();
        assert_eq!(no_id.code, 1, "healthcheck without a client certificate: {}", no_id.dump());
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_certificate_files_serve_new_connections_and_broken_ones_keep_the_old() {
    bounded(async {
        let ca = Ca::new("Warden test CA");
        let first = ca.leaf("warden server 1");
        let mut files = SecretDir::new(&[("tls.crt", &first.cert_pem), ("tls.key", &first.key_pem)]);
        let server =
            Server::start(&files.path("tls.crt"), &files.path("tls.key"), None, ConnectionLimits::default()).await;
        let addr = server.grpc();
        let activated = || server.metric("warden_tls_reloads_total", &[("result", "activated")]);
        let rejected = || server.metric("warden_tls_reloads_total", &[("result", "rejected")]);
        let (activated0, rejected0) = (activated().await, rejected().await);
        assert_eq!(peer_certificate(addr, &ca.pem).await, first.der);
        let open = connect_tls(addr, &ca.pem, None).await.expect("a TLS client");

        // The kubelet's swap: a new certificate and key behind `..data`.
        let second = ca.leaf("warden server 2");
        let swapped = Instant::now();
        files.swap(&[("tls.crt", &second.cert_pem), ("tls.key", &second.key_pem)]);
        within("a new connection to see the new certificate", async {
            while peer_certificate(addr, &ca.pem).await != second.der {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        eprintln!("the new certificate served {:?} after the swap", swapped.elapsed());
        assert_eq!(activated().await, activated0 + 1.0);
        assert_eq!(rejected().await, rejected0);
        // The connection opened before the swap goes on.
        answered(open.clone()).await.expect("an open connection goes on after the swap");
        connect_tls(addr, &ca.pem, None).await.expect("a new TLS client");

        // Broken replacements: a key that does not match, then a certificate that is not PEM.
        let third = ca.leaf("warden server 3");
        files.swap(&[("tls.crt", &third.cert_pem), ("tls.key", &second.key_pem)]);
        within("the mismatched key to be refused", async {
            while rejected().await < rejected0 + 1.0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        files.swap(&[("tls.crt", "not a certificate"), ("tls.key", &third.key_pem)]);
        within("the garbage certificate to be refused", async {
            while rejected().await < rejected0 + 2.0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert_eq!(peer_certificate(addr, &ca.pem).await, second.der, "the last good certificate serves");
        connect_tls(addr, &ca.pem, None).await.expect("new clients are still answered");
        answered(open).await.expect("the open connection still goes on");
        // The same broken files are not counted again at the next checks.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(rejected().await, rejected0 + 2.0);
        assert_eq!(activated().await, activated0 + 1.0);

        // Fixed again: activated.
        files.swap(&[("tls.crt", &third.cert_pem), ("tls.key", &third.key_pem)]);
        within("the fixed files to serve", async {
            while peer_certificate(addr, &ca.pem).await != third.der {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert_eq!(activated().await, activated0 + 2.0);
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_the_tls_handshake_is_closed_at_the_handshake_deadline() {
    bounded(async {
        let ca = Ca::new("Warden test CA");
        let leaf = ca.leaf("warden server");
        let dir = support::temp_dir();
        support::write_files(dir.path(), &[("tls.crt", &leaf.cert_pem), ("tls.key", &leaf.key_pem)]);
        let timeout = Duration::from_millis(300);
        let limits = ConnectionLimits { handshake_timeout: timeout, max_connections: 4, ..ConnectionLimits::default() };
        let server = Server::start(&dir.path().join("tls.crt"), &dir.path().join("tls.key"), None, limits).await;
        let addr = server.grpc();
        let before = server.metric("warden_connections_closed_total", &[("reason", "handshake_timeout")]).await;

        // Four silent clients fill every slot; each is closed at the deadline, freeing it.
        let start = Instant::now();
        let mut silent = Vec::new();
        for _ in 0..4 {
            silent.push(within("connect", TcpStream::connect(addr)).await.unwrap());
        }
        for s in &mut silent {
            let mut buf = [0u8; 64];
            let closed = within("a silent client to be closed", async {
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            });
            closed.await;
        }
        let t = start.elapsed();
        assert!(t >= timeout - Duration::from_millis(50) && t < Duration::from_secs(3), "closed after {t:?}");
        let after = server.metric("warden_connections_closed_total", &[("reason", "handshake_timeout")]).await;
        assert!(after >= before + 4.0, "the timeouts are counted: {before} -> {after}");

        // The slots are free again, and a TLS connection past its handshake stays beyond the deadline.
        let channel = connect_tls(addr, &ca.pem, None).await.expect("a TLS client after the silent ones");
        tokio::time::sleep(timeout * 3).await;
        answered(channel).await.expect("a connection past its handshake stays");
        server.stop().await;
    })
    .await;
}

#[test]
fn serve_refuses_to_start_with_unusable_tls_files_naming_the_flag() {
    let ca = Ca::new("Warden test CA");
    let (a, b) = (ca.leaf("a"), ca.leaf("b"));
    let dir = support::temp_dir();
    support::write_files(dir.path(), &[("a.crt", &a.cert_pem), ("b.key", &b.key_pem), ("junk.crt", "junk")]);
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let serve = |extra: &[&str]| {
        let args =
            ["serve", "--bundle", policies.to_str().unwrap(), "--listen", "127.0.0.1:0", "--admin-listen", "off"];
        support::warden_timed(Duration::from_secs(20), args.iter().copied().chain(extra.iter().copied()))
    };
    for (extra, flag, says) in [
        (vec!["--tls-cert", &p("a.crt"), "--tls-key", &p("b.key")], "--tls-key", "does not match the certificate"),
        (vec!["--tls-cert", &p("missing.crt"), "--tls-key", &p("b.key")], "--tls-cert", "cannot read"),
        (vec!["--tls-cert", &p("junk.crt"), "--tls-key", &p("b.key")], "--tls-cert", "holds no PEM CERTIFICATE"),
        (vec!["--tls-cert", &p("a.crt"), "--tls-key", &p("a.crt")], "--tls-key", "no usable PEM private key"),
        (vec!["--tls-cert", &p("a.crt")], "--tls-key", "is required with --tls-cert"),
        (
            vec!["--tls-cert", &p("a.crt"), "--tls-key", &p("b.key"), "--tls-client-ca", &p("junk.crt")],
            "--tls-client-ca",
            "holds no PEM CERTIFICATE",
        ),
    ] {
        let run = serve(&extra);
        assert!(!run.killed, "{extra:?}: still running\n{}", run.out.dump());
        assert_eq!(run.out.code, 64, "{extra:?}: {}", run.out.dump());
        let line = run.out.stderr.trim();
        assert!(line.starts_with(&format!("warden: {flag}")) && line.contains(says), "{extra:?}: {line}");
    }
}
