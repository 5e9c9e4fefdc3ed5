//! `warden bundle sign --key KEY.pem DIR` and `warden bundle keygen --key KEY.pem --public-key PUB.pem`
//! (SPEC §10): signed bundles, on `runtime::signatures`.
use crate::runtime::{files, signatures};
use anyhow::{Context as _, Result, anyhow, bail};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::process::ExitCode;

/// Writes `DIR/.signatures.json` for the files the loader reads in `dir` (written to a hidden
/// temporary file, then renamed: a reader never sees half of it).
pub(super) fn sign(key: &Path, dir: &Path) -> Result<ExitCode> {
    let text = std::fs::read(key).with_context(|| format!("--key: cannot read `{}`", key.display()))?;
    let text = String::from_utf8(text).map_err(|_| anyhow!("--key: `{}` is not PEM text", key.display()))?;
    let sk = signatures::signing_key_from_pem(&text).map_err(|e| anyhow!("--key: `{}` {e}", key.display()))?;
    let (found, problems) = match files::read_files(dir) {
        Ok(r) => r,
        Err(problems) => {
            super::print_problems(&problems);
            return Ok(ExitCode::from(1));
        }
    };
    if !problems.is_empty() {
        super::print_problems(&problems);
        eprintln!("warden: `{}` not signed: every entry of a bundle must read cleanly", dir.display());
        return Ok(ExitCode::from(1));
    }
    if found.is_empty() {
        bail!("`{}` has no bundle files to sign", dir.display());
    }
    let manifest = signatures::sign(&found, &sk);
    let path = dir.join(signatures::FILE);
    let tmp = dir.join(format!("{}.tmp", signatures::FILE));
    {
        let mut f = std::fs::File::create(&tmp).with_context(|| format!("writing `{}`", tmp.display()))?;
        f.write_all(&manifest.to_json()).with_context(|| format!("writing `{}`", tmp.display()))?;
        f.sync_all().with_context(|| format!("writing `{}`", tmp.display()))?;
    }
    std::fs::rename(&tmp, &path).with_context(|| format!("renaming into `{}`", path.display()))?;
    say!(
        "{}: signed {} files with key id {} into {}",
        dir.display(),
        manifest.files.len(),
        signatures::key_id(&sk.verifying_key()),
        path.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Makes a key pair from 32 bytes of the system's random source; never overwrites a file.
pub(super) fn keygen(key: &Path, public_key: &Path) -> Result<ExitCode> {
    for (flag, p) in [("--key", key), ("--public-key", public_key)] {
        if std::fs::symlink_metadata(p).is_ok() {
            bail!("{flag}: `{}` already exists: not overwritten", p.display());
        }
    }
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .context("reading 32 bytes from /dev/urandom")?;
    let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
    seed.fill(0);
    let (private, public) = signatures::key_pair_pem(&sk).map_err(|e| anyhow!("{e}"))?;
    let write = |flag: &str, p: &Path, mode: u32, text: &str| -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(p)
            .with_context(|| format!("{flag}: cannot create `{}`", p.display()))?;
        f.write_all(text.as_bytes()).with_context(|| format!("{flag}: writing `{}`", p.display()))?;
        f.sync_all().with_context(|| format!("{flag}: writing `{}`", p.display()))
    };
    write("--key", key, 0o600, &private)?;
    write("--public-key", public_key, 0o644, &public)?;
    say!(
        "key id {}: private key {} (keep it secret: `warden bundle sign --key`), public key {} (`warden serve \
         --bundle-verify-key`)",
        signatures::key_id(&sk.verifying_key()),
        key.display(),
        public_key.display()
    )?;
    Ok(ExitCode::SUCCESS)
}
