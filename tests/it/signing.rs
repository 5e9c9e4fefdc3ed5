//! Signed bundles (SPEC §10) without AWS: `warden bundle keygen | sign`, `warden validate
//! --bundle-verify-key`, keys made by OpenSSL, and a directory bundle served with
//! `--bundle-verify-key` (only signed content activates; the last good bundle keeps serving).
use crate::reload::{
    Sidecar, WAIT, alice_get, alice_json, authorize, bounded, bundle_in_temp, decision, first_answer_from, revision_of,
    status, write_then_rename,
};
use crate::support::{self, warden};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};
use warden::config::ServeConfig;
use warden::proto::Decision;
use warden::runtime::signatures;
use warden::server::{Options, ReloadOutcome, Running};

fn utf8(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

fn keygen(dir: &Path, name: &str) -> (String, String) {
    let (key, public) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.pub.pem")));
    let out = warden(["bundle", "keygen", "--key", utf8(&key), "--public-key", utf8(&public)]);
    assert_eq!(out.code, 0, "{}", out.dump());
    (utf8(&key).to_owned(), utf8(&public).to_owned())
}

const MALLORY: &str = r#"{"UserName": "mallory", "Arn": "arn:aws:iam::111122223333:user/mallory"}"#;

#[test]
fn keygen_sign_and_validate_refuse_every_change_naming_the_file_and_the_rule() {
    let tmp = support::temp_dir();
    let (key, public) = keygen(tmp.path(), "signer");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the private key is private");
    assert!(std::fs::read_to_string(&public).unwrap().starts_with("-----BEGIN PUBLIC KEY-----"));
    let again =
        warden(["bundle", "keygen", "--key", &key, "--public-key", &tmp.path().join("x").display().to_string()]);
    assert_eq!(again.code, 1, "{}", again.dump());
    assert!(again.stderr.contains("already exists: not overwritten"), "{}", again.dump());

    let bundle = tmp.path().join("bundle");
    support::copy_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"), &bundle, &|_| false);
    let b = utf8(&bundle);
    let unsigned = warden(["validate", b, "--bundle-verify-key", &public]);
    assert_eq!(unsigned.code, 1, "{}", unsigned.dump());
    assert!(unsigned.stderr.contains(".signatures.json: /: missing: with --bundle-verify-key"), "{}", unsigned.dump());

    let signed = warden(["bundle", "sign", "--key", &key, b]);
    assert_eq!(signed.code, 0, "{}", signed.dump());
    let files = warden::runtime::files::read_files(&bundle).unwrap().0.len();
    assert!(signed.stdout.contains(&format!("signed {files} files with key id")), "{}", signed.dump());
    let ok = warden(["validate", b, "--bundle-verify-key", &public]);
    assert_eq!(ok.code, 0, "{}", ok.dump());
    assert_eq!(support::revision_in(&ok), support::revision_in(&warden(["validate", "policies"])), "same revision");

    // A file added after signing: refused with the key, and without it (the list is the rule).
    support::write_files(&bundle, &[("iam/users/mallory.json", MALLORY)]);
    for args in [vec!["validate", b, "--bundle-verify-key", &public], vec!["validate", b]] {
        let out = warden(&args);
        assert_eq!(out.code, 1, "{args:?}: {}", out.dump());
        assert!(out.stderr.contains("iam/users/mallory.json: /: not listed in `.signatures.json`"), "{}", out.dump());
    }
    std::fs::remove_file(bundle.join("iam/users/mallory.json")).unwrap();

    // Another key.
    let (_, other_public) = keygen(tmp.path(), "other");
    let out = warden(["validate", b, "--bundle-verify-key", &other_public]);
    assert_eq!(out.code, 1, "{}", out.dump());
    assert!(out.stderr.contains(".signatures.json: /signature: the signature does not verify"), "{}", out.dump());
    // Either of two keys (rotation).
    let out = warden(["validate", b, "--bundle-verify-key", &other_public, "--bundle-verify-key", &public]);
    assert_eq!(out.code, 0, "{}", out.dump());

    // A private key where the public one belongs is a usage error naming the flag.
    let out = warden(["validate", b, "--bundle-verify-key", &key]);
    assert_eq!(out.code, 64, "{}", out.dump());
    assert!(out.stderr.contains("--bundle-verify-key: ") && out.stderr.contains("is a private key"), "{}", out.dump());
    let out = warden(["bundle", "sign", "--key", &public, b]);
    assert_eq!(out.code, 1, "{}", out.dump());
    assert!(out.stderr.contains("--key: ") && out.stderr.contains("is a public key"), "{}", out.dump());
}

#[test]
fn keys_made_by_openssl_sign_and_verify() {
    let tmp = support::temp_dir();
    let (key, public) = (tmp.path().join("k.pem"), tmp.path().join("k.pub"));
    let run = |args: &[&str]| {
        let s = std::process::Command::new("openssl").args(args).status().expect("openssl (Debian package `openssl`)");
        assert!(s.success(), "openssl {args:?}: {s}");
    };
    run(&["genpkey", "-algorithm", "ed25519", "-out", utf8(&key)]);
    run(&["pkey", "-in", utf8(&key), "-pubout", "-out", utf8(&public)]);
    let bundle = tmp.path().join("bundle");
    support::write_files(&bundle, &[("iam/users/alice.json", &alice_json("Allow", "Read"))]);
    assert_eq!(warden(["bundle", "sign", "--key", utf8(&key), utf8(&bundle)]).code, 0);
    let out = warden(["validate", utf8(&bundle), "--bundle-verify-key", utf8(&public)]);
    assert_eq!(out.code, 0, "{}", out.dump());
}

/// Writes `.signatures.json` for the files of `dir` (hidden temporary file, then a rename).
fn sign_dir(dir: &Path, key: &ed25519_dalek::SigningKey) {
    let files = warden::runtime::files::read_files(dir).unwrap().0;
    let tmp = dir.join(".signatures.json.tmp");
    std::fs::write(&tmp, signatures::sign(&files, key).to_json()).unwrap();
    std::fs::rename(&tmp, dir.join(signatures::FILE)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_bundle_with_a_verify_key_activates_only_signed_content() {
    bounded(async {
        let key = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
        let allow = alice_json("Allow", "Read");
        let bundle = bundle_in_temp(&[("iam/users/alice.json", &allow)]);
        sign_dir(bundle.path(), &key);
        let public = bundle.path().parent().unwrap().join("pub.pem");
        std::fs::write(&public, signatures::key_pair_pem(&key).unwrap().1).unwrap();
        let config =
            ServeConfig::from_flags(Some(utf8(bundle.path())), Some("127.0.0.1:0"), None, Some("off"), Some(5_000))
                .and_then(|c| c.with_bundle_checks(&[utf8(&public).to_owned()], None))
                .unwrap();
        let server = Sidecar::start_with(&config).await;
        let mut client = server.client().await;
        let r0 = revision_of(&[("iam/users/alice.json", &allow)]);
        assert_eq!(authorize(&mut client, alice_get()).await.bundle_revision, r0);

        // An edit that is not signed: the old revision keeps answering; the status names the file.
        let deny = alice_json("Deny", "Read");
        write_then_rename(&bundle.path().join("iam/users/alice.json"), &deny);
        let since = Instant::now();
        let error = loop {
            let s = status(&mut client).await;
            if !s.last_reload_error.is_empty() {
                break s.last_reload_error;
            }
            assert!(since.elapsed() < WAIT, "the unsigned edit was never refused: {s:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(error.contains("iam/users/alice.json: /: its sha256"), "{error}");
        let r = authorize(&mut client, alice_get()).await;
        assert_eq!((r.bundle_revision.as_str(), decision(&r)), (r0.as_str(), Decision::Allow));

        // Signed: activated.
        let r1 = revision_of(&[("iam/users/alice.json", &deny)]);
        let at = Instant::now();
        sign_dir(bundle.path(), &key);
        let (r, _) = first_answer_from(&mut client, &alice_get(), &r1, at).await;
        assert_eq!(decision(&r), Decision::ExplicitDeny);
        server.shutdown().await;

        // An unsigned bundle never activates with a key: the server starts NOT_SERVING.
        std::fs::remove_file(bundle.path().join(signatures::FILE)).unwrap();
        let running = Running::start(&config, Options::default()).await.unwrap();
        let mut first = running.first_load.clone();
        let outcome = first.wait_for(Option::is_some).await.unwrap().clone();
        match outcome {
            Some(ReloadOutcome::Rejected(p)) => {
                assert!(p.iter().any(|p| p.starts_with(".signatures.json: /: missing")), "{p:?}")
            }
            other => panic!("{other:?}"),
        }
        assert!(running.store.load().is_none());
        assert!(running.shutdown().await);
    })
    .await;
}

#[cfg(not(feature = "aws"))]
#[test]
fn an_s3_bundle_without_the_aws_feature_is_a_usage_error_saying_how_to_build_it() {
    let out = warden(["serve", "--bundle", "s3://bucket/prefix", "--listen", "127.0.0.1:0", "--admin-listen", "off"]);
    assert_eq!(out.code, 64, "{}", out.dump());
    assert!(out.stderr.contains("--bundle: `s3://bucket/prefix`"), "{}", out.dump());
    assert!(out.stderr.contains("built without the cargo feature `aws`"), "{}", out.dump());
    assert!(out.stderr.contains("cargo build --release --features aws"), "{}", out.dump());
}
