//! The decision log on a file system that fails writes (issue 10 item 7, SPEC §6.1): the real binary runs
//! with a file-size limit (`ulimit -f`, SIGXFSZ ignored so writes past it fail with EFBIG, the way a full
//! disk fails them), 3,000 decisions are made, and then every line of the log is a whole JSON record,
//! the records missing from the file are exactly the ones counted in
//! `warden_decision_log_dropped_total`, and the failure is logged once, not once per record.
use crate::support::{self, http_get, parse_prometheus, sample_sum};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::Endpoint;
use warden::proto::{self, authorizer_client::AuthorizerClient};

const ALICE: &str = "arn:aws:sts::111122223333:assumed-role/SageMakerStudioExecutionRoleTeam1/alice-Team1";
const COMET_APP: &str = "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-COMETTEAM001";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_10_a_failing_decision_log_drops_whole_records_and_counts_them() {
    let dir = support::temp_dir();
    let log = dir.path().join("decisions.jsonl");
    let stderr = dir.path().join("stderr");
    let (grpc, admin) = (free_port(), free_port());
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    // 64 KiB of log: a few hundred records fit, the rest must be dropped and counted.
    let script = format!(
        "trap '' XFSZ; ulimit -f 64; exec \"$0\" serve --bundle \"$1\" --listen 127.0.0.1:{grpc} \
         --admin-listen 127.0.0.1:{admin} --decision-log \"$2\""
    );
    let child = Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg(support::warden_bin())
        .arg(&policies)
        .arg(&log)
        .env("WARDEN_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("spawn warden serve");
    let _child = Killed(child);
    let admin_addr = format!("127.0.0.1:{admin}").parse().expect("addr");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if std::net::TcpStream::connect(admin_addr).is_ok() && http_get(admin_addr, "/readyz").await.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let channel = Endpoint::from_shared(format!("http://127.0.0.1:{grpc}")).expect("uri").connect().await.expect("c");
    let mut client = AuthorizerClient::new(channel);
    const CALLS: usize = 3000;
    for i in 0..CALLS {
        let req = proto::AuthorizeRequest {
            principal: Some(proto::Principal { arn: ALICE.into(), ..proto::Principal::default() }),
            action: "sagemaker:CreatePartnerAppPresignedUrl".into(),
            resource: COMET_APP.into(),
            // Distinct requests, so that each one is decided and logged (not only cached).
            context: Some([("warden:Seq".to_owned(), pbjson_types::Value::from(format!("{i}")))].into_iter().collect()),
            ..proto::AuthorizeRequest::default()
        };
        client.authorize(req).await.expect("answered while the log fails");
    }
    // Let the writer drain.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (lines, dropped) = loop {
        let text = http_get(admin_addr, "/metrics").await.body;
        let dropped = sample_sum(&parse_prometheus(&text), "warden_decision_log_dropped_total", &[]);
        let content = std::fs::read(&log).expect("the log exists");
        let lines = content.iter().filter(|b| **b == b'\n').count();
        if lines as f64 + dropped >= CALLS as f64 || Instant::now() > deadline {
            break (lines, dropped);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let content = std::fs::read_to_string(&log).expect("UTF-8 log");
    assert!(
        content.is_empty() || content.ends_with('\n'),
        "no torn last line: {:?}",
        &content[content.len().saturating_sub(80)..]
    );
    for (i, line) in content.lines().enumerate() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("line {i} is not a whole record ({e}): {line}"));
        assert!(v.get("decision_id").is_some(), "{line}");
    }
    assert!(lines > 0 && lines < CALLS, "some records fit under the limit, most do not: {lines}");
    assert_eq!(lines as f64 + dropped, CALLS as f64, "every record is in the file or counted as dropped");
    let err = std::fs::read_to_string(&stderr).unwrap_or_default();
    let warnings = err.matches("decision log: writes fail").count();
    assert!((1..=3).contains(&warnings), "the failure is named once, not per record: {warnings} times\n{err}");
}
