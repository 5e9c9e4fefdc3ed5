//! Signed bundles (SPEC §10): `.signatures.json` at the root of a bundle lists the SHA-256 of every
//! bundle file and carries an Ed25519 signature over a canonical byte encoding of that list
//! (`docs/fleet.md` documents it byte by byte). `warden bundle sign` writes it; a reload checks it:
//! - with `--bundle-verify-key`, a bundle activates only when `.signatures.json` is present, its
//!   signature verifies with one of the keys, and the files match it exactly;
//! - without a key, a `.signatures.json` that is present is still a completeness check (the files must
//!   match it exactly): an uploader writes it last, so a half-written upload never activates.
//!
//! The bundle files are those the loader reads (`runtime::files::read_files`: hidden names, such as
//! `.signatures.json` itself, are not bundle files). Keys are PEM: the private key PKCS#8 as
//! `openssl genpkey -algorithm ed25519` writes it, the public key SubjectPublicKeyInfo as
//! `openssl pkey -pubout` writes it. Pure: no I/O but [`check_dir`], which reads through
//! `runtime::files`.
use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _, EncodePublicKey as _};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use warden_core::policy::Problem;

/// The file name, at the root of the bundle.
pub const FILE: &str = ".signatures.json";
/// The first bytes of the signed message (a domain separator and the encoding's version).
pub const MAGIC: &[u8] = b"warden-bundle-signature-v1\n";
/// The one format version.
pub const VERSION: u32 = 1;
/// The one algorithm.
pub const ALGORITHM: &str = "ed25519";
/// Largest `.signatures.json` read (100,000 files of long paths fit).
pub const MAX_MANIFEST_BYTES: usize = 32 << 20;

/// `.signatures.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`VERSION`].
    pub version: u32,
    /// Always [`ALGORITHM`].
    pub algorithm: String,
    /// The id of the signing key ([`key_id`]); for messages only, not signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Every bundle file, sorted by path (byte order), each once.
    pub files: Vec<Entry>,
    /// The Ed25519 signature of [`canonical`] over `files`, standard base64 with padding.
    pub signature: String,
}

/// One file of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Bundle-relative path, `/`-separated.
    pub path: String,
    /// SHA-256 of the content, 64 lower-case hex digits.
    pub sha256: String,
}

/// A verification key and the file it came from (named in messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyKey {
    /// The `--bundle-verify-key` file.
    pub path: PathBuf,
    /// The key.
    pub key: VerifyingKey,
}

/// The SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn hex(bytes: &[u8]) -> String {
    let digit = |d: u8| char::from_digit(u32::from(d), 16).unwrap_or('0');
    let mut out = String::with_capacity(2 * bytes.len());
    for b in bytes {
        out.push(digit(b >> 4));
        out.push(digit(b & 0xf));
    }
    out
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The id of a public key: the first 16 hex digits of the SHA-256 of its 32 raw bytes.
pub fn key_id(key: &VerifyingKey) -> String {
    let mut h = hex(&sha256(key.as_bytes()));
    h.truncate(16);
    h
}

/// The signed message: [`MAGIC`], the number of files (u64, big-endian), then for each file in
/// ascending byte order of its path: the path's length in bytes (u64, big-endian), the path (UTF-8),
/// the 32 raw bytes of its SHA-256. `entries` must be sorted and unique (as [`digests`] returns them).
pub fn canonical(entries: &[(String, [u8; 32])]) -> Vec<u8> {
    let size = MAGIC.len() + 8 + entries.iter().map(|(p, _)| 8 + p.len() + 32).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(entries.len() as u64).to_be_bytes());
    for (path, digest) in entries {
        out.extend_from_slice(&(path.len() as u64).to_be_bytes());
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(digest);
    }
    out
}

/// The (path, SHA-256) of every file, sorted by path.
pub fn digests(files: &[(String, Vec<u8>)]) -> Vec<(String, [u8; 32])> {
    let mut out: Vec<(String, [u8; 32])> = files.iter().map(|(p, b)| (p.clone(), sha256(b))).collect();
    out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out
}

/// Signs `files` (the bundle files, as the loader reads them).
pub fn sign(files: &[(String, Vec<u8>)], key: &SigningKey) -> Manifest {
    let entries = digests(files);
    let signature = key.sign(&canonical(&entries));
    Manifest {
        version: VERSION,
        algorithm: ALGORITHM.to_owned(),
        key_id: Some(key_id(&key.verifying_key())),
        files: entries.into_iter().map(|(path, d)| Entry { path, sha256: hex(&d) }).collect(),
        signature: base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()),
    }
}

impl Manifest {
    /// The JSON text written to `.signatures.json` (pretty, one trailing newline).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }
}

/// Why a key file is not a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

/// An Ed25519 private key from PKCS#8 PEM (`openssl genpkey -algorithm ed25519`).
pub fn signing_key_from_pem(text: &str) -> Result<SigningKey, KeyError> {
    if text.contains("-----BEGIN PUBLIC KEY-----") {
        return Err(KeyError(
            "is a public key: signing needs the private key (PKCS#8 PEM, `-----BEGIN PRIVATE KEY-----`)".into(),
        ));
    }
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(KeyError(
            "is an encrypted private key: give it unencrypted (`openssl pkey -in KEY.pem -out PLAIN.pem`)".into(),
        ));
    }
    if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----") {
        return Err(KeyError(
            "is an OpenSSH key: give an Ed25519 key in PKCS#8 PEM (`openssl genpkey -algorithm ed25519`, or \
             `warden bundle keygen`)"
                .into(),
        ));
    }
    SigningKey::from_pkcs8_pem(text.trim()).map_err(|e| {
        KeyError(format!(
            "is not an Ed25519 private key in PKCS#8 PEM (as `openssl genpkey -algorithm ed25519` writes): {e}"
        ))
    })
}

/// An Ed25519 public key from SubjectPublicKeyInfo PEM (`openssl pkey -in KEY.pem -pubout`).
pub fn verifying_key_from_pem(text: &str) -> Result<VerifyingKey, KeyError> {
    if text.contains("PRIVATE KEY-----") {
        return Err(KeyError(
            "is a private key: give the public key (`openssl pkey -in KEY.pem -pubout`), never the private key to a \
             server"
                .into(),
        ));
    }
    VerifyingKey::from_public_key_pem(text.trim()).map_err(|e| {
        KeyError(format!("is not an Ed25519 public key in PEM (as `openssl pkey -in KEY.pem -pubout` writes): {e}"))
    })
}

/// The private key as PKCS#8 PEM and its public key as SubjectPublicKeyInfo PEM.
pub fn key_pair_pem(key: &SigningKey) -> Result<(String, String), KeyError> {
    let le = ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF;
    let private = key.to_pkcs8_pem(le).map_err(|e| KeyError(format!("cannot encode the private key: {e}")))?;
    let public = key
        .verifying_key()
        .to_public_key_pem(le)
        .map_err(|e| KeyError(format!("cannot encode the public key: {e}")))?;
    Ok((private.to_string(), public))
}

/// Reads the `--bundle-verify-key` files; every error names the flag and the file.
pub fn load_verify_keys(paths: &[PathBuf]) -> Result<Vec<VerifyKey>, String> {
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read(p)
                .map_err(|e| format!("--bundle-verify-key: cannot read `{}`: {e}", p.display()))
                .and_then(|b| {
                    String::from_utf8(b).map_err(|_| format!("--bundle-verify-key: `{}` is not PEM text", p.display()))
                })?;
            let key =
                verifying_key_from_pem(&text).map_err(|e| format!("--bundle-verify-key: `{}` {e}", p.display()))?;
            Ok(VerifyKey { path: p.clone(), key })
        })
        .collect()
}

fn problem(file: &str, field: &str, message: impl Into<String>) -> Problem {
    Problem { file: file.to_owned(), field: field.to_owned(), message: message.into() }
}

/// A parsed `.signatures.json`: the manifest, its (path, digest) entries, the signature.
type Parsed = (Manifest, Vec<(String, [u8; 32])>, Signature);

/// Parses `.signatures.json` and checks its own shape: version, algorithm, sorted unique paths, hex
/// digests, a 64-byte signature. Returns the entries and the signature.
fn parse(bytes: &[u8]) -> Result<Parsed, Vec<Problem>> {
    let m: Manifest = serde_json::from_slice(bytes)
        .map_err(|e| vec![problem(FILE, "", format!("malformed (see `warden bundle sign`): {e}"))])?;
    let mut problems = Vec::new();
    if m.version != VERSION {
        problems.push(problem(
            FILE,
            "/version",
            format!("version {} is not the one this warden reads ({VERSION})", m.version),
        ));
    }
    if m.algorithm != ALGORITHM {
        problems.push(problem(FILE, "/algorithm", format!("`{}` is not `{ALGORITHM}`", m.algorithm)));
    }
    let mut entries = Vec::with_capacity(m.files.len());
    for (i, e) in m.files.iter().enumerate() {
        match unhex32(&e.sha256) {
            Some(d) => entries.push((e.path.clone(), d)),
            None => problems.push(problem(FILE, &format!("/files/{i}/sha256"), "not 64 lower-case hex digits")),
        }
        if i > 0 && m.files.get(i - 1).is_some_and(|prev| prev.path.as_bytes() >= e.path.as_bytes()) {
            problems.push(problem(
                FILE,
                &format!("/files/{i}/path"),
                format!("`{}` is out of order or repeated: paths are sorted by byte order, each once", e.path),
            ));
        }
    }
    let signature = base64::engine::general_purpose::STANDARD
        .decode(m.signature.trim())
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b.as_slice()).ok())
        .map(|b| Signature::from_bytes(&b));
    let Some(signature) = signature else {
        problems.push(problem(FILE, "/signature", "not the base64 of a 64-byte Ed25519 signature"));
        return Err(problems);
    };
    if problems.is_empty() { Ok((m, entries, signature)) } else { Err(problems) }
}

/// Checks the bundle files (as the loader read them) against `.signatures.json` (`None`: there is
/// none) and the verify keys (empty: no `--bundle-verify-key`). Every problem names the file and the
/// rule; none means the bundle may be activated.
pub fn check(files: &[(String, Vec<u8>)], manifest: Option<&[u8]>, keys: &[VerifyKey]) -> Vec<Problem> {
    let Some(bytes) = manifest else {
        if keys.is_empty() {
            return Vec::new();
        }
        return vec![problem(
            FILE,
            "",
            "missing: with --bundle-verify-key a bundle activates only when it is signed (`warden bundle sign --key \
             KEY.pem DIR`)",
        )];
    };
    let (m, entries, signature) = match parse(bytes) {
        Ok(p) => p,
        Err(problems) => return problems,
    };
    let mut problems = Vec::new();
    if !keys.is_empty() {
        let message = canonical(&entries);
        if !keys.iter().any(|k| k.key.verify_strict(&message, &signature).is_ok()) {
            let ids: Vec<String> =
                keys.iter().map(|k| format!("`{}` (key id {})", k.path.display(), key_id(&k.key))).collect();
            let signed_by = m.key_id.as_deref().map(|id| format!(" (signed with key id {id})")).unwrap_or_default();
            problems.push(problem(
                FILE,
                "/signature",
                format!(
                    "the signature does not verify with --bundle-verify-key {}{signed_by}: the bundle or its \
                     `.signatures.json` was changed after signing, or signed with another key",
                    ids.join(", ")
                ),
            ));
        }
    }
    let listed: std::collections::BTreeMap<&str, &[u8; 32]> = entries.iter().map(|(p, d)| (p.as_str(), d)).collect();
    let mut present = std::collections::BTreeSet::new();
    for (path, bytes) in files {
        present.insert(path.as_str());
        match listed.get(path.as_str()) {
            None => problems.push(problem(
                path,
                "",
                "not listed in `.signatures.json`: every bundle file must be signed (an upload still under way, or a \
                 file added after signing: sign the bundle again)",
            )),
            Some(d) if **d != sha256(bytes) => problems.push(problem(
                path,
                "",
                format!(
                    "its sha256 {} is not the one in `.signatures.json` ({}): changed after signing, or an upload \
                     still under way",
                    hex(&sha256(bytes)),
                    hex(*d)
                ),
            )),
            Some(_) => {}
        }
    }
    for path in listed.keys().filter(|p| !present.contains(*p)) {
        problems.push(problem(
            path,
            "",
            "listed in `.signatures.json` but missing from the bundle (deleted after signing, or an upload still under \
             way)",
        ));
    }
    problems
}

/// Reads the bundle directory `dir` as the loader does and checks it against its `.signatures.json`
/// and `keys` (for `warden validate`). Problems reading the bundle itself are left to the loader.
pub fn check_dir(dir: &Path, keys: &[VerifyKey]) -> Vec<Problem> {
    let Ok((files, _)) = crate::runtime::files::read_files(dir) else { return Vec::new() };
    match crate::runtime::files::read_manifest(dir) {
        Ok(m) => check(&files, m.as_deref(), keys),
        Err(p) => vec![p],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Made with `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` (OpenSSL 3.0).
    const OPENSSL_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIBPW3XVfWMyiLD8cqPJwvJpUWONwbPKjancAwOuL/q3o\n-----END PRIVATE KEY-----\n";
    const OPENSSL_PUB: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAjlTkX9DuzJ3FhyxdZuxLbaqheSkLQRQMxmwCkIfmFkw=\n-----END PUBLIC KEY-----\n";
    /// `openssl pkeyutl -sign -rawin -inkey KEY` over the canonical encoding of [`vector_files`],
    /// built by the Python reference of docs/fleet.md: an independent implementation of the encoding.
    const OPENSSL_SIGNATURE: &str =
        "Jy1my+17BEF8Ph3VwpqJapVbRVTTkdt8umOq3nnqMpUuZmtNYU3n4P1N/k9m/cIQubDfE2XVu6IZ4OiE1goRAQ==";

    fn vector_files() -> Vec<(String, Vec<u8>)> {
        vec![
            ("iam/users/alice.json".to_owned(), b"{\"UserName\":\"alice\"}\n".to_vec()),
            ("README.md".to_owned(), b"notes\n".to_vec()),
        ]
    }

    fn vkey(key: VerifyingKey) -> VerifyKey {
        VerifyKey { path: PathBuf::from("pub.pem"), key }
    }

    fn manifest_with(files: &[(String, Vec<u8>)], signature: &str) -> Vec<u8> {
        let entries = digests(files);
        Manifest {
            version: VERSION,
            algorithm: ALGORITHM.to_owned(),
            key_id: None,
            files: entries.into_iter().map(|(path, d)| Entry { path, sha256: hex(&d) }).collect(),
            signature: signature.to_owned(),
        }
        .to_json()
    }

    #[test]
    fn openssl_keys_parse_and_an_openssl_signature_of_the_documented_encoding_verifies() {
        let sk = signing_key_from_pem(OPENSSL_KEY).unwrap();
        let pk = verifying_key_from_pem(OPENSSL_PUB).unwrap();
        assert_eq!(sk.verifying_key(), pk);
        let files = vector_files();
        let m = manifest_with(&files, OPENSSL_SIGNATURE);
        assert_eq!(check(&files, Some(&m), &[vkey(pk)]), Vec::<Problem>::new());
        // Ed25519 is deterministic: our own signature of the same message is the same bytes.
        let ours = sign(&files, &sk);
        assert_eq!(ours.signature, OPENSSL_SIGNATURE);
        // The encoding itself, byte by byte, for the first entry (sorted: `README.md` < `iam/…`).
        let c = canonical(&digests(&files));
        assert!(c.starts_with(b"warden-bundle-signature-v1\n\0\0\0\0\0\0\0\x02\0\0\0\0\0\0\0\x09README.md"));
        assert_eq!(c.len(), MAGIC.len() + 8 + (8 + 9 + 32) + (8 + 20 + 32));
    }

    #[test]
    fn our_pem_round_trips_and_wrong_kinds_of_key_are_named() {
        let sk = SigningKey::from_bytes(&[7u8; 32]);
        let (private, public) = key_pair_pem(&sk).unwrap();
        assert!(private.starts_with("-----BEGIN PRIVATE KEY-----"), "{private}");
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"), "{public}");
        assert_eq!(signing_key_from_pem(&private).unwrap().to_bytes(), sk.to_bytes());
        assert_eq!(verifying_key_from_pem(&public).unwrap(), sk.verifying_key());
        assert!(signing_key_from_pem(&public).unwrap_err().to_string().contains("is a public key"));
        assert!(verifying_key_from_pem(&private).unwrap_err().to_string().contains("is a private key"));
        assert!(verifying_key_from_pem("hello").unwrap_err().to_string().contains("not an Ed25519 public key"));
        let enc = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(signing_key_from_pem(enc).unwrap_err().to_string().contains("encrypted"));
        // An RSA public key is a public key, but not Ed25519.
        let rsa = "-----BEGIN PUBLIC KEY-----\nMFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAMBzWLZ6V6Q6i1M3kFhG1PgmK3m0m4fZ\nf5cZbN3iD8s7ytO4ZHx2Jx4bdy7lOyDgTzWwdvb2QCgOqQxP0PaeQlcCAwEAAQ==\n-----END PUBLIC KEY-----\n";
        assert!(verifying_key_from_pem(rsa).is_err());
    }

    #[test]
    fn each_rule_is_named() {
        let sk = SigningKey::from_bytes(&[1u8; 32]);
        let other = SigningKey::from_bytes(&[2u8; 32]);
        let files = vector_files();
        let good = sign(&files, &sk).to_json();
        let keys = [vkey(sk.verifying_key())];
        assert!(check(&files, Some(&good), &keys).is_empty());
        assert!(check(&files, Some(&good), &[]).is_empty(), "without a key: the completeness check passes");
        assert!(check(&files, None, &[]).is_empty(), "unsigned, no key: nothing to check");

        let missing = check(&files, None, &keys);
        assert_eq!(missing.len(), 1);
        assert!(missing[0].to_string().starts_with(".signatures.json: /: missing"), "{}", missing[0]);

        let wrong_key = check(&files, Some(&sign(&files, &other).to_json()), &keys);
        assert_eq!(wrong_key.len(), 1, "{wrong_key:?}");
        assert!(wrong_key[0].to_string().contains("/signature: the signature does not verify"), "{}", wrong_key[0]);
        assert!(wrong_key[0].message.contains(&key_id(&other.verifying_key())), "{}", wrong_key[0]);
        // Any one of several keys (rotation).
        assert!(
            check(&files, Some(&sign(&files, &other).to_json()), &[keys[0].clone(), vkey(other.verifying_key())])
                .is_empty()
        );

        let mut extra = files.clone();
        extra.push(("iam/users/mallory.json".to_owned(), b"{}".to_vec()));
        let p = check(&extra, Some(&good), &keys);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].file, "iam/users/mallory.json");
        assert!(p[0].message.starts_with("not listed in `.signatures.json`"), "{}", p[0]);
        // Without a key the same file list is still the rule.
        assert_eq!(check(&extra, Some(&good), &[]), p);

        let fewer = vec![files[0].clone()];
        let p = check(&fewer, Some(&good), &[]);
        assert_eq!((p.len(), p[0].file.as_str()), (1, "README.md"), "{p:?}");
        assert!(p[0].message.starts_with("listed in `.signatures.json` but missing"), "{}", p[0]);

        let mut changed = files.clone();
        changed[0].1 = b"{\"UserName\":\"alice\"} ".to_vec();
        let p = check(&changed, Some(&good), &keys);
        assert_eq!((p.len(), p[0].file.as_str()), (1, "iam/users/alice.json"), "{p:?}");
        assert!(p[0].message.contains("is not the one in `.signatures.json`"), "{}", p[0]);

        // A list edited to match the changed file no longer verifies.
        let mut m: Manifest = serde_json::from_slice(&good).unwrap();
        let i = m.files.iter().position(|e| e.path == "iam/users/alice.json").unwrap();
        m.files[i].sha256 = hex(&sha256(&changed[0].1));
        let p = check(&changed, Some(&m.to_json()), &keys);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].field, "/signature");
        assert!(check(&changed, Some(&m.to_json()), &[]).is_empty(), "without a key only the list is checked");
    }

    #[test]
    fn a_malformed_manifest_is_refused_naming_the_field() {
        let files = vector_files();
        let cases: [(&[u8], &str); 6] = [
            (b"{", "malformed"),
            (br#"{"version":1,"algorithm":"ed25519","files":[],"signature":"","extra":1}"#, "unknown field"),
            (br#"{"version":2,"algorithm":"ed25519","files":[],"signature":""}"#, "/version"),
            (br#"{"version":1,"algorithm":"rsa","files":[],"signature":""}"#, "/algorithm"),
            (
                br#"{"version":1,"algorithm":"ed25519","files":[{"path":"a","sha256":"XY"}],"signature":""}"#,
                "/files/0/sha256",
            ),
            (br#"{"version":1,"algorithm":"ed25519","files":[],"signature":"AAAA"}"#, "/signature"),
        ];
        for (bytes, says) in cases {
            let p = check(&files, Some(bytes), &[]);
            assert!(p.iter().any(|p| p.to_string().contains(says)), "{}: {p:?}", String::from_utf8_lossy(bytes));
        }
        let d = "0".repeat(64);
        let unsorted = format!(
            r#"{{"version":1,"algorithm":"ed25519","files":[{{"path":"b","sha256":"{d}"}},{{"path":"a","sha256":"{d}"}}],"signature":"{}"}}"#,
            base64::engine::general_purpose::STANDARD.encode([0u8; 64])
        );
        let p = check(&files, Some(unsorted.as_bytes()), &[]);
        assert!(p.iter().any(|p| p.field == "/files/1/path" && p.message.contains("out of order")), "{p:?}");
    }

    fn arb_files() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
        proptest::collection::btree_map(
            "[a-z]{1,3}(/[a-zA-Z0-9._-]{1,4}){0,2}",
            proptest::collection::vec(any::<u8>(), 0..40),
            0..8,
        )
        .prop_map(|m| m.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// What is signed verifies, whatever the order the files were read in; any change of one
        /// byte, one path, or one file more or less is refused.
        #[test]
        fn signed_bundles_verify_and_any_change_is_refused(
            files in arb_files(),
            seed in any::<[u8; 32]>(),
            pick in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let sk = SigningKey::from_bytes(&seed);
            let keys = [vkey(sk.verifying_key())];
            let m = sign(&files, &sk).to_json();
            let mut reversed = files.clone();
            reversed.reverse();
            prop_assert!(check(&reversed, Some(&m), &keys).is_empty());
            if !files.is_empty() {
                let i = pick.index(files.len());
                let mut changed = files.clone();
                changed[i].1.push(byte);
                prop_assert!(!check(&changed, Some(&m), &keys).is_empty());
                let mut renamed = files.clone();
                renamed[i].0.push('x');
                prop_assert!(!check(&renamed, Some(&m), &keys).is_empty());
                let mut fewer = files.clone();
                fewer.remove(i);
                prop_assert!(!check(&fewer, Some(&m), &keys).is_empty());
            }
            let mut more = files.clone();
            more.push(("zz/new.json".to_owned(), vec![byte]));
            prop_assert!(!check(&more, Some(&m), &keys).is_empty());
        }

        /// The encoding is injective: two different file lists never encode alike (length prefixes
        /// keep a path from running into the next entry).
        #[test]
        fn different_lists_encode_differently(a in arb_files(), b in arb_files()) {
            let (da, db) = (digests(&a), digests(&b));
            prop_assert_eq!(da == db, canonical(&da) == canonical(&db));
        }
    }
}
