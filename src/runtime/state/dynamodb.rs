//! `--state dynamodb://TABLE` (cargo feature `aws`): the fleet's admin state as ONE item of a DynamoDB
//! table (docs/fleet.md). Key schema: partition key `pk` (string), no sort key; the item
//! `pk = "admins"` holds `version` (number: the optimistic-concurrency counter), `admins` (string: the
//! [`AdminMemory`] as JSON, the content of `--state-dir/admins.json`), `revision` (string: the bundle
//! revision that wrote it, or `revoke`) and `updated_at` (string: RFC 3339). Reads are strongly
//! consistent GetItems; writes are PutItems conditioned on the version read
//! (`#v = :read`, or `attribute_not_exists(pk)` for the first). One item, not one per app: a reload
//! changes every app at once (an app removed from the bundle is forgotten) and must be one atomic
//! write before the bundle activates, which one conditional PutItem is; per-app items would need a
//! transaction over up to 100 items for the same effect. An item holds 400 KB, thousands of apps'
//! admin lists; a memory that outgrows it is refused with an error, never cut.
use crate::runtime::state::fleet::{BoxFuture, Table, TableError, Versioned};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata as _, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use std::time::Duration;
use warden_core::identity::AdminMemory;

/// The URL scheme of `--state`.
pub const SCHEME: &str = "dynamodb://";
/// The partition key attribute of the table (string).
pub const KEY_ATTRIBUTE: &str = "pk";
/// The key of the item that holds the admin state.
pub const ITEM_KEY: &str = "admins";
/// The optimistic-concurrency counter (number).
pub const VERSION_ATTRIBUTE: &str = "version";
/// The admin memory, JSON (string).
pub const ADMINS_ATTRIBUTE: &str = "admins";
/// What wrote the item last (string).
pub const REVISION_ATTRIBUTE: &str = "revision";
/// When the item was written last (string, RFC 3339).
pub const UPDATED_AT_ATTRIBUTE: &str = "updated_at";
/// The largest admin memory written: DynamoDB items hold 400 KB (names and values together); the rest
/// is headroom for the other attributes.
pub const MAX_ADMINS_BYTES: usize = 390 * 1024;

/// Connection and attempt timeouts, so an unreachable table is an error in seconds (and the poll keeps
/// its pace) rather than a hang.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

/// The state table of a fleet.
#[derive(Debug, Clone)]
pub struct DynamoTable {
    client: Client,
    table: String,
    name: String,
}

/// What an item read from the table holds.
#[derive(Debug, Clone)]
pub struct Item {
    /// The version and memory.
    pub versioned: Versioned,
    /// What wrote it (`revision` attribute).
    pub revision: Option<String>,
    /// When (`updated_at` attribute).
    pub updated_at: Option<String>,
}

/// Formats an SDK error with its chain of causes, each once (`service error: ResourceNotFoundException:
/// Requested resource not found`, `dispatch failure: io error: …: Connection refused (os error 111)`),
/// without the SDK's debug dump of the raw response.
fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        // A wrapper often repeats its source's text: keep what is new.
        if !parts.last().is_some_and(|p| p.ends_with(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

impl DynamoTable {
    /// A client for `table` from the standard AWS configuration (credential and region chains,
    /// `AWS_ENDPOINT_URL`), with bounded timeouts and retries. Reads nothing yet; fails only when no
    /// region is configured.
    pub async fn connect(table: &str) -> Result<DynamoTable, String> {
        let sdk = crate::aws::sdk_config().await;
        if sdk.region().is_none() {
            return Err(format!(
                "{SCHEME}{table}: no AWS region is configured: set AWS_REGION (or the region of the AWS profile in use)"
            ));
        }
        let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
            .timeout_config(
                aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            )
            .retry_config(
                aws_sdk_dynamodb::config::retry::RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(100)),
            )
            .build();
        let where_ = match (sdk.region(), sdk.endpoint_url()) {
            (Some(r), Some(e)) => format!(" (region {r}, endpoint {e})"),
            (Some(r), None) => format!(" (region {r})"),
            _ => String::new(),
        };
        Ok(DynamoTable {
            client: Client::from_conf(config),
            table: table.to_owned(),
            name: format!("{SCHEME}{table}{where_}"),
        })
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Reads the state item, strongly consistent, with its bookkeeping attributes.
    pub async fn read_item(&self) -> Result<Item, TableError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, AttributeValue::S(ITEM_KEY.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| {
                let hint = if e.as_service_error().is_some_and(|s| s.code() == Some("ResourceNotFoundException")) {
                    format!(
                        " (create it: `warden state create-table {SCHEME}{}`; its schema is in docs/fleet.md)",
                        self.table
                    )
                } else {
                    String::new()
                };
                TableError::Failed(format!("GetItem on table `{}` failed: {}{hint}", self.table, cause(&e)))
            })?;
        let Some(item) = out.item() else {
            return Ok(Item {
                versioned: Versioned { version: 0, memory: AdminMemory::default() },
                revision: None,
                updated_at: None,
            });
        };
        let bad = |what: String| {
            TableError::Failed(format!(
                "the item `{KEY_ATTRIBUTE} = {ITEM_KEY}` of table `{}` is not Warden admin state: {what} (fix or delete \
                 the item; deleting it forgets every remembered admin)",
                self.table
            ))
        };
        let version = item
            .get(VERSION_ATTRIBUTE)
            .and_then(|v| v.as_n().ok())
            .ok_or_else(|| bad(format!("no number attribute `{VERSION_ATTRIBUTE}`")))?;
        let version: u64 =
            version.parse().map_err(|_| bad(format!("`{VERSION_ATTRIBUTE}` = {version} is not a whole number")))?;
        let admins = item
            .get(ADMINS_ATTRIBUTE)
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| bad(format!("no string attribute `{ADMINS_ATTRIBUTE}`")))?;
        let memory: AdminMemory = serde_json::from_str(admins)
            .map_err(|e| bad(format!("`{ADMINS_ATTRIBUTE}` is not the admin state: {e}")))?;
        if memory.version != warden_core::identity::admins::VERSION {
            return Err(bad(format!(
                "format version {}, this warden reads {}",
                memory.version,
                warden_core::identity::admins::VERSION
            )));
        }
        let text = |attr: &str| item.get(attr).and_then(|v| v.as_s().ok()).cloned();
        Ok(Item {
            versioned: Versioned { version, memory },
            revision: text(REVISION_ATTRIBUTE),
            updated_at: text(UPDATED_AT_ATTRIBUTE),
        })
    }

    async fn write_item(&self, read_version: u64, memory: &AdminMemory, revision: &str) -> Result<u64, TableError> {
        let admins = serde_json::to_string(memory)
            .map_err(|e| TableError::Failed(format!("cannot serialize the admin state: {e}")))?;
        if admins.len() > MAX_ADMINS_BYTES {
            return Err(TableError::Failed(format!(
                "the admin state is {} bytes, over the {MAX_ADMINS_BYTES} bytes one DynamoDB item of table `{}` can \
                 hold (400 KB per item): nothing was written; remove partner apps or revoke remembered admins",
                admins.len(),
                self.table
            )));
        }
        let next = read_version
            .checked_add(1)
            .ok_or_else(|| TableError::Failed(format!("`{VERSION_ATTRIBUTE}` {read_version} cannot grow")))?;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(KEY_ATTRIBUTE, AttributeValue::S(ITEM_KEY.to_owned()))
            .item(VERSION_ATTRIBUTE, AttributeValue::N(next.to_string()))
            .item(ADMINS_ATTRIBUTE, AttributeValue::S(admins))
            .item(REVISION_ATTRIBUTE, AttributeValue::S(revision.to_owned()))
            .item(UPDATED_AT_ATTRIBUTE, AttributeValue::S(now));
        let put = if read_version == 0 {
            put.condition_expression("attribute_not_exists(#k)").expression_attribute_names("#k", KEY_ATTRIBUTE)
        } else {
            put.condition_expression("#v = :read")
                .expression_attribute_names("#v", VERSION_ATTRIBUTE)
                .expression_attribute_values(":read", AttributeValue::N(read_version.to_string()))
        };
        match put.send().await {
            Ok(_) => Ok(next),
            Err(SdkError::ServiceError(e)) if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) => {
                Err(TableError::Conflict)
            }
            Err(e) => Err(TableError::Failed(format!("PutItem on table `{}` failed: {}", self.table, cause(&e)))),
        }
    }

    /// Creates the table (on-demand capacity, key schema as documented) and waits until it is active.
    /// A table that exists already is an error only if its key schema is not Warden's.
    pub async fn create_table(&self, wait: Duration) -> Result<String, String> {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        let attribute = AttributeDefinition::builder()
            .attribute_name(KEY_ATTRIBUTE)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| e.to_string())?;
        let key = KeySchemaElement::builder()
            .attribute_name(KEY_ATTRIBUTE)
            .key_type(KeyType::Hash)
            .build()
            .map_err(|e| e.to_string())?;
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(attribute)
            .key_schema(key)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        let existed = match created {
            Ok(_) => false,
            Err(e) if e.as_service_error().is_some_and(|s| s.code() == Some("ResourceInUseException")) => true,
            Err(e) => return Err(format!("CreateTable `{}` failed: {}", self.table, cause(&e))),
        };
        use aws_sdk_dynamodb::client::Waiters as _;
        self.client
            .wait_until_table_exists()
            .table_name(&self.table)
            .wait(wait)
            .await
            .map_err(|e| format!("table `{}` did not become active within {wait:?}: {}", self.table, cause(&e)))?;
        let described = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| format!("DescribeTable `{}` failed: {}", self.table, cause(&e)))?;
        let keys: Vec<(String, String)> = described
            .table()
            .map(|t| {
                t.key_schema()
                    .iter()
                    .map(|k| (k.attribute_name().to_owned(), k.key_type().as_str().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        if keys != [(KEY_ATTRIBUTE.to_owned(), "HASH".to_owned())] {
            return Err(format!(
                "table `{}` exists with the key schema {keys:?}; Warden needs a partition key `{KEY_ATTRIBUTE}` (string) \
                 and no sort key",
                self.table
            ));
        }
        Ok(if existed {
            format!("table `{}` exists already with Warden's key schema", self.table)
        } else {
            format!("table `{}` created (partition key `{KEY_ATTRIBUTE}`, on-demand capacity)", self.table)
        })
    }
}

impl Table for DynamoTable {
    fn name(&self) -> &str {
        &self.name
    }

    fn read(&self) -> BoxFuture<'_, Result<Versioned, TableError>> {
        Box::pin(async move { self.read_item().await.map(|i| i.versioned) })
    }

    fn write<'a>(
        &'a self,
        read_version: u64,
        memory: &'a AdminMemory,
        revision: &'a str,
    ) -> BoxFuture<'a, Result<u64, TableError>> {
        Box::pin(self.write_item(read_version, memory, revision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::identity::admins::AppAdmins;

    /// A table whose client points nowhere: only what happens before a request can be tested.
    fn offline(table: &str) -> DynamoTable {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        DynamoTable { client: Client::from_conf(config), table: table.to_owned(), name: format!("{SCHEME}{table}") }
    }

    #[tokio::test]
    async fn a_memory_over_the_item_limit_is_refused_before_any_request() {
        let mut m = AdminMemory { version: warden_core::identity::admins::VERSION, ..AdminMemory::default() };
        for i in 0..4_000 {
            m.apps.insert(
                format!("arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-{i:012}"),
                AppAdmins {
                    app_type: "comet".into(),
                    admin_users: (0..5).map(|u| format!("admin-{u}-with-a-longer-name")).collect(),
                    remembered: (0..5).map(|u| format!("former-{u}-with-a-longer-name")).collect(),
                },
            );
        }
        let size = serde_json::to_string(&m).map(|s| s.len()).unwrap_or_default();
        assert!(size > MAX_ADMINS_BYTES, "{size}");
        let e = offline("warden-state").write(3, &m, "sha256:x").await.unwrap_err();
        let TableError::Failed(text) = e else { panic!("{e:?}") };
        assert!(text.contains(&format!("the admin state is {size} bytes")), "{text}");
        assert!(text.contains("400 KB per item") && text.contains("`warden-state`"), "{text}");
        assert!(text.contains("nothing was written"), "{text}");
        // Under the limit the same table would send the request (and fail to connect here).
        let small = AdminMemory { version: warden_core::identity::admins::VERSION, ..AdminMemory::default() };
        let e = offline("warden-state").write(3, &small, "sha256:x").await.unwrap_err();
        assert!(
            matches!(&e, TableError::Failed(t) if t.starts_with("PutItem on table `warden-state` failed")),
            "{e:?}"
        );
    }
}
