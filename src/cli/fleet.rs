//! Fleet mode's table from the command line (cargo feature `aws`): `warden state create-table URL`,
//! `warden admins list --state URL`, `warden admins revoke --state URL` and `validate --state URL`. They work on the table
//! directly, with the standard AWS credential chain and `AWS_ENDPOINT_URL`, and need no running
//! server: the replicas apply a revoke made here at their next poll. Exit 0, 1 when the table says no
//! or cannot be reached, 64 for a URL that is not `dynamodb://TABLE` (or a build without `aws`).
use anyhow::Result;
use std::process::ExitCode;

/// The table `url` names, or the exit code of a usage error (printed).
fn table_of(url: &str) -> Result<String, ExitCode> {
    crate::config::state_table(url).map_err(|e| {
        eprintln!("warden: {e}");
        ExitCode::from(64)
    })
}

/// `warden state create-table dynamodb://TABLE`.
pub fn create_table(url: &str) -> Result<ExitCode> {
    match table_of(url) {
        Ok(table) => imp::create_table(&table),
        Err(code) => Ok(code),
    }
}

/// `warden admins list --state dynamodb://TABLE`: the memory as `GET /v1/admins` prints it, and its
/// version on standard error.
pub fn list(url: &str) -> Result<ExitCode> {
    match table_of(url) {
        Ok(table) => imp::list(&table),
        Err(code) => Ok(code),
    }
}

/// The admin memory in the table (`validate --state dynamodb://TABLE`), or the exit code of an error
/// (printed).
pub fn read_memory(url: &str) -> Result<warden_core::identity::AdminMemory, ExitCode> {
    let table = table_of(url)?;
    imp::read_memory(&table)
}

/// `warden admins revoke --state dynamodb://TABLE --app ARN --user NAME`.
pub fn revoke(url: &str, app: &str, user: &str) -> Result<ExitCode> {
    match table_of(url) {
        Ok(table) => imp::revoke(&table, app, user),
        Err(code) => Ok(code),
    }
}

#[cfg(feature = "aws")]
mod imp {
    use crate::runtime::state::dynamodb::DynamoTable;
    use crate::runtime::state::fleet::{self, Table as _, UpdateError};
    use anyhow::{Context as _, Result};
    use std::io::Write as _;
    use std::process::ExitCode;
    use std::time::Duration;

    /// How long `create-table` waits for the table to become active.
    const CREATE_WAIT: Duration = Duration::from_secs(120);

    fn block_on<F: std::future::Future<Output = Result<ExitCode>>>(f: F) -> Result<ExitCode> {
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?.block_on(f)
    }

    async fn connect(table: &str) -> Result<DynamoTable, ExitCode> {
        DynamoTable::connect(table).await.map_err(|e| {
            eprintln!("warden: --state: {e}");
            ExitCode::from(1)
        })
    }

    pub(super) fn create_table(table: &str) -> Result<ExitCode> {
        block_on(async {
            let t = match connect(table).await {
                Ok(t) => t,
                Err(code) => return Ok(code),
            };
            match t.create_table(CREATE_WAIT).await {
                Ok(done) => {
                    writeln!(std::io::stdout().lock(), "{done}")?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("warden: state create-table: {}: {e}", t.name());
                    Ok(ExitCode::from(1))
                }
            }
        })
    }

    pub(super) fn list(table: &str) -> Result<ExitCode> {
        block_on(async {
            let t = match connect(table).await {
                Ok(t) => t,
                Err(code) => return Ok(code),
            };
            match t.read_item().await {
                Ok(item) => {
                    writeln!(std::io::stdout().lock(), "{}", serde_json::to_string_pretty(&item.versioned.memory)?)?;
                    let by = match (&item.revision, &item.updated_at) {
                        (Some(r), Some(at)) => format!(", written by `{r}` at {at}"),
                        _ => String::new(),
                    };
                    eprintln!("{}: version {}{by}", t.name(), item.versioned.version);
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("warden: --state: {}: {e}", t.name());
                    Ok(ExitCode::from(1))
                }
            }
        })
    }

    pub(super) fn read_memory(table: &str) -> Result<warden_core::identity::AdminMemory, ExitCode> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
            eprintln!("warden: starting the runtime: {e}");
            ExitCode::from(1)
        })?;
        rt.block_on(async {
            let t = connect(table).await?;
            t.read_item().await.map(|i| i.versioned.memory).map_err(|e| {
                eprintln!("warden: --state: {}: {e}", t.name());
                ExitCode::from(1)
            })
        })
    }

    pub(super) fn revoke(table: &str, app: &str, user: &str) -> Result<ExitCode> {
        block_on(async {
            let t = match connect(table).await {
                Ok(t) => t,
                Err(code) => return Ok(code),
            };
            match fleet::update(&t, fleet::RETRY, "revoke", |v| v.memory.revoke(app, user)).await {
                Ok(u) => {
                    writeln!(
                        std::io::stdout().lock(),
                        "revoked `{user}` on `{app}` (version {}); every replica applies it at its next poll",
                        u.version
                    )?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(UpdateError::Refused(e)) => {
                    eprintln!("warden: {e}");
                    Ok(ExitCode::from(1))
                }
                Err(e) => {
                    eprintln!("warden: --state: {e}");
                    Ok(ExitCode::from(1))
                }
            }
        })
    }
}

/// Without the feature `table_of` already refused the URL; this says so again if it is ever reached.
#[cfg(not(feature = "aws"))]
mod imp {
    use anyhow::{Result, bail};
    use std::process::ExitCode;

    fn without_aws(table: &str) -> Result<ExitCode> {
        bail!("--state: `dynamodb://{table}` needs a warden built with the cargo feature `aws`")
    }

    pub(super) fn create_table(table: &str) -> Result<ExitCode> {
        without_aws(table)
    }

    pub(super) fn list(table: &str) -> Result<ExitCode> {
        without_aws(table)
    }

    pub(super) fn revoke(table: &str, _app: &str, _user: &str) -> Result<ExitCode> {
        without_aws(table)
    }

    pub(super) fn read_memory(table: &str) -> Result<warden_core::identity::AdminMemory, ExitCode> {
        eprintln!("warden: --state: `dynamodb://{table}` needs a warden built with the cargo feature `aws`");
        Err(ExitCode::from(64))
    }
}
