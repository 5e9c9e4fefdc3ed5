//! A local AWS emulator for fleet-mode tests: moto's server mode (PyPI `moto[server]`, installed by
//! `.ci/run`) on 127.0.0.1, one process per test, killed on drop. The tests point Warden (and the
//! AWS CLI-free setup helpers) at it with `AWS_ENDPOINT_URL` and static dummy credentials.
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
}

impl Moto {
    /// Starts `moto_server` (or `python3 -m moto.server`) on a free loopback port and waits until it
    /// answers (at most 30 s).
    pub fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let python = std::env::var("WARDEN_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let child = Command::new(&python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{python} -m moto.server` (pip install 'moto[server]'): {e}"));
        let endpoint = format!("http://127.0.0.1:{port}");
        let mut moto = Moto { child, endpoint };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return moto;
            }
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto server exited at start: {status} (is `moto[server]` installed?)");
            }
            assert!(Instant::now() < deadline, "moto server did not listen on port {port} within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The environment a Warden process (or an SDK client in the test) needs to talk to this emulator.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
            // The SDK would otherwise read ~/.aws of whoever runs the tests.
            ("AWS_CONFIG_FILE", "/dev/null".to_owned()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_owned()),
        ]
    }

    /// Kills the emulator now (what a test of "the emulator dies mid-run" needs).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn the_emulator_starts_answers_and_stops() {
    let mut moto = Moto::start();
    let env = moto.env();
    assert!(env.iter().any(|(k, v)| *k == "AWS_ENDPOINT_URL" && v == &moto.endpoint));
    let port: u16 = moto.endpoint.rsplit(':').next().unwrap().parse().unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    moto.kill();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "still listening after kill");
}
