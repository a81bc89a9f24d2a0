//! `dynamodb:` — a key–value store in one Amazon DynamoDB table that every namespace shares,
//! through the official AWS SDK.
//!
//! URL: `dynamodb://TABLE?region=REGION[&endpoint=http://127.0.0.1:8000][&buckets=16]`.
//! `endpoint` points the SDK at an emulator (moto, DynamoDB Local); `buckets` is read only when
//! a namespace is first migrated. Credentials never appear in the URL (one with a user or a
//! password is refused): they come from the SDK's default chain, i.e. the environment
//! (`AWS_ACCESS_KEY_ID`…), a profile (`AWS_PROFILE`, SSO), or web identity (EKS's IRSA).
//!
//! Layout (README, "DynamoDB"): the partition key `pk` is `<namespace>#<bucket>`, where the
//! bucket is an FNV-1a hash of the key modulo the namespace's bucket count, and the sort key
//! `sk` is the key itself; the value is the binary attribute `v`. A namespace is spread over
//! its buckets, so it is not capped at one partition's ~1,000 writes/s. The bucket count is
//! fixed when the namespace is first migrated and kept in the item `<namespace>#meta`/`buckets`.
//!
//! Capabilities:
//! - [x] get, put, put-if-absent (`attribute_not_exists`), delete (`attribute_exists`)
//! - [x] ordered scan with a cursor: one `Query` per bucket (`sk > :after`), merged in byte
//!   order; the page's values are then read with `TransactGetItems`, which is serializable
//!   against `TransactWriteItems`, so a page never holds half of a batch's values
//! - [x] atomic batches: `TransactWriteItems`, one item per distinct key, inserts as
//!   conditions; at most [`MAX_BATCH_KEYS`] distinct keys per batch
//! - [ ] values: at most an item's 400 KB (key included); a larger one is a `Backend` error
//! - [ ] keys: 1 to [`MAX_KEY_BYTES`] bytes (a sort key's limit)
//! - [x] durability: DynamoDB's (acknowledged writes are replicated across three zones)
//! - [x] schema creation: `migrate` creates the table (on-demand) and waits until `ACTIVE`
//! - [x] fails fast while the endpoint is down or throttling, and recovers by itself

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CancellationReason, ConditionCheck, Delete,
    Get, KeySchemaElement, KeyType, Put, ScalarAttributeType, TableStatus, TransactGetItem,
    TransactWriteItem,
};

use super::{
    BatchOutcome, BatchWrite, ConnectOptions, KeyValue, ScanPage, StorageError, validate_namespace,
};

/// Buckets of a namespace migrated without `buckets=`: 16 partitions' worth of throughput
/// (~16,000 writes/s of items up to 1 KB) for 16 queries per scan page.
pub const DEFAULT_BUCKETS: u16 = 16;
/// Most buckets a namespace may have: every scan page queries each one.
pub const MAX_BUCKETS: u16 = 256;
/// Longest key in bytes: DynamoDB's limit for a sort key.
pub const MAX_KEY_BYTES: usize = 1024;
/// Most distinct keys one batch may touch: `TransactWriteItems` takes 100 items.
pub const MAX_BATCH_KEYS: usize = 100;
/// Most items one `TransactGetItems` reads.
const MAX_READ_ITEMS: usize = 100;

/// Attempts per SDK call, the first included. With the attempt timeout below, a call that keeps
/// timing out still ends within `storage.operation_timeout`; a refused connection or a throttle
/// is retried after 25–250 ms, well inside it. The standard mode's retry quota stops retries
/// altogether while most calls fail, so an outage does not triple the load.
const MAX_ATTEMPTS: u32 = 3;
const INITIAL_BACKOFF: Duration = Duration::from_millis(25);
const MAX_BACKOFF: Duration = Duration::from_millis(250);

/// Pause between two `DescribeTable`s while a new table is `CREATING`.
const CREATION_POLL: Duration = Duration::from_millis(250);

const PARTITION_KEY: &str = "pk";
const SORT_KEY: &str = "sk";
const VALUE: &str = "v";
/// The attribute of the namespace's meta item holding its bucket count.
const BUCKETS: &str = "buckets";

/// Error codes after which the same call can succeed later: throttling, a server-side fault, a
/// transaction racing another on one item, and a table that is gone while the process serves
/// (being restored or re-created; at start-up a missing table is reported by `migrate`).
const TEMPORARY_CODES: [&str; 9] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
    "TransactionInProgressException",
    "LimitExceededException",
    "ResourceNotFoundException",
];

/// Cancellation reasons of a transaction that retrying can get through.
const TEMPORARY_CANCELLATIONS: [&str; 4] = [
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
];

/// A `dynamodb://` URL, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoDbUrl {
    /// The table every namespace shares.
    pub table: String,
    /// The AWS region (`region=`).
    pub region: String,
    /// Another endpoint than the region's (`endpoint=`), for an emulator.
    pub endpoint: Option<String>,
    /// The bucket count of a namespace migrated for the first time (`buckets=`).
    pub buckets: Option<u16>,
}

impl DynamoDbUrl {
    /// Parses `dynamodb://TABLE?region=…[&endpoint=…][&buckets=…]`; refuses credentials, a port
    /// or a path, and unknown parameters.
    ///
    /// ```
    /// use platform::storage::dynamodb::DynamoDbUrl;
    /// let url = DynamoDbUrl::parse("dynamodb://Kv-1?region=eu-west-1&endpoint=http://127.0.0.1:8000").unwrap();
    /// assert_eq!(url.table, "Kv-1");
    /// assert_eq!(url.endpoint.as_deref(), Some("http://127.0.0.1:8000"));
    /// assert!(DynamoDbUrl::parse("dynamodb://key:secret@Kv-1?region=eu-west-1").is_err());
    /// ```
    pub fn parse(url: &str) -> Result<DynamoDbUrl, StorageError> {
        let invalid = |reason: String| StorageError::InvalidUrl(format!("dynamodb url: {reason}"));
        // The parser's message never repeats the URL, so a password cannot leak through it.
        let parsed = url::Url::parse(url).map_err(|error| invalid(error.to_string()))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(invalid(
                "credentials do not belong in the URL; they come from the AWS SDK's chain \
                 (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, or web identity)"
                    .to_owned(),
            ));
        }
        if parsed.port().is_some() || !matches!(parsed.path(), "" | "/") {
            return Err(invalid(
                "expected dynamodb://TABLE?region=REGION with no port or path".to_owned(),
            ));
        }
        let table = parsed.host_str().unwrap_or_default().to_owned();
        let table_is_valid = (3..=255).contains(&table.len())
            && table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !table_is_valid {
            return Err(invalid(format!(
                "table `{table}` must be 3 to 255 of [A-Za-z0-9_.-]"
            )));
        }
        let mut region = None;
        let mut endpoint = None;
        let mut buckets = None;
        for (name, value) in parsed.query_pairs() {
            let duplicate = match name.as_ref() {
                "region" => region.replace(value.into_owned()).is_some(),
                "endpoint" => {
                    let endpoint_url = url::Url::parse(&value)
                        .map_err(|error| invalid(format!("endpoint: {error}")))?;
                    if !matches!(endpoint_url.scheme(), "http" | "https") {
                        return Err(invalid("endpoint must be http:// or https://".to_owned()));
                    }
                    endpoint.replace(value.into_owned()).is_some()
                }
                "buckets" => {
                    let count = value
                        .parse::<u16>()
                        .ok()
                        .filter(|count| (1..=MAX_BUCKETS).contains(count))
                        .ok_or_else(|| invalid(format!("buckets must be 1 to {MAX_BUCKETS}")))?;
                    buckets.replace(count).is_some()
                }
                other => {
                    return Err(invalid(format!(
                        "unknown parameter `{other}`; expected region, endpoint, buckets"
                    )));
                }
            };
            if duplicate {
                return Err(invalid(format!("`{name}` is given twice")));
            }
        }
        let region = region
            .filter(|region| !region.is_empty())
            .ok_or_else(|| invalid("`region=` is required".to_owned()))?;
        Ok(DynamoDbUrl {
            table,
            region,
            endpoint,
            buckets,
        })
    }
}

/// A key–value namespace spread over the buckets of one DynamoDB table.
#[derive(Clone)]
pub struct DynamoDbKeyValue {
    client: Client,
    table: String,
    namespace: String,
    buckets: u16,
}

impl std::fmt::Debug for DynamoDbKeyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoDbKeyValue")
            .field("table", &self.table)
            .field("namespace", &self.namespace)
            .field("buckets", &self.buckets)
            .finish_non_exhaustive()
    }
}

impl DynamoDbKeyValue {
    /// Opens `namespace` in the table named by `url`. With `migrate`, creates the table when
    /// it is missing and waits, within `startup_timeout`, until it is `ACTIVE`, and records the
    /// namespace's bucket count when it is new; without, both must exist already.
    pub async fn connect(
        url: &str,
        namespace: &str,
        migrate: bool,
        options: &ConnectOptions,
    ) -> Result<DynamoDbKeyValue, StorageError> {
        validate_namespace(namespace)?;
        let url = DynamoDbUrl::parse(url)?;
        let client = client(&url, options, None).await;
        if migrate {
            create_table(&client, &url.table).await?;
            wait_until_active(&client, &url.table, options.startup_timeout).await?;
        } else {
            describe_table(&client, &url.table).await?;
        }
        let buckets =
            namespace_buckets(&client, &url.table, namespace, url.buckets, migrate).await?;
        Ok(DynamoDbKeyValue {
            client,
            table: url.table,
            namespace: namespace.to_owned(),
            buckets,
        })
    }

    /// The number of buckets this namespace is spread over.
    pub fn buckets(&self) -> u16 {
        self.buckets
    }

    /// Deletes the whole table, every namespace in it: for test clean-up.
    pub async fn drop_table(&self) -> Result<(), StorageError> {
        self.client
            .delete_table()
            .table_name(&self.table)
            .send()
            .await
            .map(|_| ())
            .map_err(map_sdk_error)
    }

    fn partition(&self, key: &str) -> String {
        let bucket = fnv1a(key.as_bytes()) % u64::from(self.buckets);
        format!("{}#{bucket}", self.namespace)
    }

    fn item_key(&self, key: &str) -> Result<HashMap<String, AttributeValue>, StorageError> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(StorageError::Backend(
                format!(
                    "a DynamoDB key is 1 to {MAX_KEY_BYTES} bytes; this one is {}",
                    key.len()
                )
                .into(),
            ));
        }
        Ok(HashMap::from([
            (PARTITION_KEY.to_owned(), text(self.partition(key))),
            (SORT_KEY.to_owned(), text(key.to_owned())),
        ]))
    }

    fn item(
        &self,
        key: &str,
        value: &[u8],
    ) -> Result<HashMap<String, AttributeValue>, StorageError> {
        let mut item = self.item_key(key)?;
        item.insert(VALUE.to_owned(), AttributeValue::B(Blob::new(value)));
        Ok(item)
    }

    /// Up to `wanted` keys of `bucket` after `after`, in order; follows the pages DynamoDB cuts
    /// at 1 MB read.
    async fn keys_after(
        &self,
        bucket: u16,
        after: Option<&str>,
        wanted: usize,
    ) -> Result<Vec<String>, StorageError> {
        let partition = format!("{}#{bucket}", self.namespace);
        let mut keys = Vec::new();
        let mut start = None;
        while keys.len() < wanted {
            let remaining = i32::try_from(wanted - keys.len()).unwrap_or(i32::MAX);
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .projection_expression("#sk")
                .expression_attribute_names("#pk", PARTITION_KEY)
                .expression_attribute_names("#sk", SORT_KEY)
                .expression_attribute_values(":pk", text(partition.clone()))
                .set_exclusive_start_key(start.take())
                .limit(remaining);
            query = match after {
                Some(after) => query
                    .key_condition_expression("#pk = :pk AND #sk > :after")
                    .expression_attribute_values(":after", text(after.to_owned())),
                None => query.key_condition_expression("#pk = :pk"),
            };
            let output = query.send().await.map_err(map_sdk_error)?;
            for item in output.items() {
                keys.push(string_attribute(item, SORT_KEY)?);
            }
            match output.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => break,
            }
        }
        Ok(keys)
    }

    /// The values of `keys` as one serializable read per 100 keys; `None` for a key deleted
    /// since it was listed.
    async fn values_of(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        let mut values = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(MAX_READ_ITEMS) {
            let gets = chunk
                .iter()
                .map(|key| {
                    let get = Get::builder()
                        .table_name(&self.table)
                        .set_key(Some(self.item_key(key)?))
                        .build()
                        .map_err(|error| StorageError::Backend(Box::new(error)))?;
                    Ok(TransactGetItem::builder().get(get).build())
                })
                .collect::<Result<Vec<_>, StorageError>>()?;
            let output = self
                .client
                .transact_get_items()
                .set_transact_items(Some(gets))
                .send()
                .await
                .map_err(map_sdk_error)?;
            let responses = output.responses();
            if responses.len() != chunk.len() {
                return Err(StorageError::Backend(
                    format!(
                        "TransactGetItems answered {} items for {} keys",
                        responses.len(),
                        chunk.len()
                    )
                    .into(),
                ));
            }
            for response in responses {
                values.push(response.item().map(value_of).transpose()?);
            }
        }
        Ok(values)
    }

    /// Sends `items` as one transaction; `keys[i]` is the key of `items[i]`. A cancellation by
    /// a failed condition is the conflict of the first such key.
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        keys: &[&str],
    ) -> Result<BatchOutcome, StorageError> {
        let sent = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let error = match sent {
            Ok(_) => return Ok(BatchOutcome::Applied),
            Err(error) => error,
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
            error.as_service_error()
        else {
            return Err(map_sdk_error(error));
        };
        let reasons = cancelled.cancellation_reasons();
        let code_is = |reason: &CancellationReason, codes: &[&str]| {
            reason.code().is_some_and(|code| codes.contains(&code))
        };
        if let Some(index) = reasons
            .iter()
            .position(|reason| code_is(reason, &["ConditionalCheckFailed"]))
            && let Some(key) = keys.get(index)
        {
            return Ok(BatchOutcome::Conflict {
                key: (*key).to_owned(),
            });
        }
        let message = DisplayErrorContext(&error).to_string();
        if reasons
            .iter()
            .any(|reason| code_is(reason, &TEMPORARY_CANCELLATIONS))
        {
            Err(StorageError::Unavailable(message.into()))
        } else {
            Err(StorageError::Backend(message.into()))
        }
    }

    fn condition_check(&self, key: &str) -> Result<TransactWriteItem, StorageError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(self.item_key(key)?))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .build()
            .map_err(|error| StorageError::Backend(Box::new(error)))?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    fn write_item(
        &self,
        key: &str,
        planned: &Planned<'_>,
    ) -> Result<TransactWriteItem, StorageError> {
        let absent = planned.must_be_absent;
        let built = match planned.last {
            Some(value) => {
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(self.item(key, value)?));
                let put = if absent {
                    put.condition_expression("attribute_not_exists(#pk)")
                        .expression_attribute_names("#pk", PARTITION_KEY)
                } else {
                    put
                };
                put.build()
                    .map(|put| TransactWriteItem::builder().put(put).build())
            }
            None => {
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(self.item_key(key)?));
                let delete = if absent {
                    delete
                        .condition_expression("attribute_not_exists(#pk)")
                        .expression_attribute_names("#pk", PARTITION_KEY)
                } else {
                    delete
                };
                delete
                    .build()
                    .map(|delete| TransactWriteItem::builder().delete(delete).build())
            }
        };
        built.map_err(|error| StorageError::Backend(Box::new(error)))
    }
}

/// What a batch does to one key: its last write (`Some(value)` stores, `None` deletes), and
/// whether the key had to be absent before the batch (its first write was an insert).
struct Planned<'a> {
    last: Option<&'a [u8]>,
    must_be_absent: bool,
}

/// A batch folded into one write per key, in the order of each key's first write, since a
/// transaction may touch an item once. `conflict` is the key of an insert that an earlier
/// write of the same batch already made present: the batch cannot apply, whatever the table
/// holds.
struct Plan<'a> {
    keys: Vec<&'a str>,
    writes: Vec<Planned<'a>>,
    conflict: Option<&'a str>,
}

fn plan(writes: &[BatchWrite]) -> Plan<'_> {
    let mut plan = Plan {
        keys: Vec::new(),
        writes: Vec::new(),
        conflict: None,
    };
    let mut index: HashMap<&str, usize> = HashMap::new();
    for write in writes {
        let key = write.key();
        let (value, insert) = match write {
            BatchWrite::Put { value, .. } => (Some(value.as_slice()), false),
            BatchWrite::Insert { value, .. } => (Some(value.as_slice()), true),
            BatchWrite::Delete { .. } => (None, false),
        };
        match index.get(key).and_then(|at| plan.writes.get_mut(*at)) {
            Some(planned) => {
                if insert && planned.last.is_some() {
                    plan.conflict = Some(key);
                    return plan;
                }
                planned.last = value;
            }
            None => {
                index.insert(key, plan.writes.len());
                plan.keys.push(key);
                plan.writes.push(Planned {
                    last: value,
                    must_be_absent: insert,
                });
            }
        }
    }
    plan
}

/// A client for `url` whose every call is bounded by `options.operation_timeout`, retried as
/// [`MAX_ATTEMPTS`] says, over rustls with ring (the crypto every other TLS user here links).
/// Its credentials come from the SDK's default chain, unless `credentials` are given (tests
/// talking to an emulator).
pub(crate) async fn client(
    url: &DynamoDbUrl,
    options: &ConnectOptions,
    credentials: Option<aws_sdk_dynamodb::config::Credentials>,
) -> Client {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(options.connect_timeout)
        .operation_timeout(options.operation_timeout)
        .operation_attempt_timeout(options.operation_timeout / MAX_ATTEMPTS)
        .build();
    let retries = RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF);
    // A fixed behaviour version: an SDK upgrade does not change defaults behind our back.
    let mut loader = aws_config::defaults(BehaviorVersion::v2026_01_12())
        .region(Region::new(url.region.clone()))
        .http_client(http_client)
        .timeout_config(timeouts)
        .retry_config(retries);
    if let Some(endpoint) = &url.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some(credentials) = credentials {
        loader = loader.credentials_provider(credentials);
    }
    Client::new(&loader.load().await)
}

/// Creates `table` (on-demand, keys `pk` and `sk`) unless it exists.
pub(crate) async fn create_table(client: &Client, table: &str) -> Result<(), StorageError> {
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|error| StorageError::Backend(Box::new(error)))
    };
    let key = |name: &str, key_type: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .map_err(|error| StorageError::Backend(Box::new(error)))
    };
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(PARTITION_KEY)?)
        .attribute_definitions(attribute(SORT_KEY)?)
        .key_schema(key(PARTITION_KEY, KeyType::Hash)?)
        .key_schema(key(SORT_KEY, KeyType::Range)?)
        .send()
        .await;
    match created {
        Ok(_) => Ok(()),
        // Created by another replica, or by an earlier start.
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|error| error.is_resource_in_use_exception()) =>
        {
            Ok(())
        }
        Err(error) => Err(map_sdk_error(error)),
    }
}

/// Polls `DescribeTable` until `table` can take reads and writes, for at most `limit`.
pub(crate) async fn wait_until_active(
    client: &Client,
    table: &str,
    limit: Duration,
) -> Result<(), StorageError> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let status = match describe_table(client, table).await {
            Ok(status) => Some(status),
            // Just created: the table may not be visible to every endpoint yet.
            Err(StorageError::Unavailable(_)) => None,
            Err(error) => return Err(error),
        };
        if matches!(status, Some(TableStatus::Active | TableStatus::Updating)) {
            return Ok(());
        }
        if tokio::time::Instant::now() + CREATION_POLL > deadline {
            return Err(StorageError::Unavailable(
                format!("DynamoDB table `{table}` is not ACTIVE after {limit:?} ({status:?})")
                    .into(),
            ));
        }
        tokio::time::sleep(CREATION_POLL).await;
    }
}

/// The status of `table`; an error when it does not exist.
async fn describe_table(client: &Client, table: &str) -> Result<TableStatus, StorageError> {
    let output = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(map_sdk_error)?;
    Ok(output
        .table()
        .and_then(|table| table.table_status())
        .cloned()
        .unwrap_or_else(|| TableStatus::from("UNKNOWN")))
}

/// The bucket count of `namespace`, recorded on its first migration: `wanted` (the URL's
/// `buckets=`) or [`DEFAULT_BUCKETS`]. A URL asking for another count than the recorded one is
/// refused, since items are found by their bucket.
async fn namespace_buckets(
    client: &Client,
    table: &str,
    namespace: &str,
    wanted: Option<u16>,
    migrate: bool,
) -> Result<u16, StorageError> {
    let meta_key = HashMap::from([
        (PARTITION_KEY.to_owned(), text(format!("{namespace}#meta"))),
        (SORT_KEY.to_owned(), text(BUCKETS.to_owned())),
    ]);
    let read = || async {
        let output = client
            .get_item()
            .table_name(table)
            .set_key(Some(meta_key.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(map_sdk_error)?;
        output
            .item()
            .map(|item| {
                string_attribute(item, BUCKETS)?
                    .parse::<u16>()
                    .ok()
                    .filter(|count| (1..=MAX_BUCKETS).contains(count))
                    .ok_or_else(|| {
                        StorageError::Backend(
                            format!("namespace `{namespace}` has a corrupt bucket count").into(),
                        )
                    })
            })
            .transpose()
    };
    let mut recorded = read().await?;
    if recorded.is_none() && migrate {
        let mut item = meta_key.clone();
        let count = wanted.unwrap_or(DEFAULT_BUCKETS);
        item.insert(BUCKETS.to_owned(), text(count.to_string()));
        let put = client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .send()
            .await;
        match put {
            Ok(_) => recorded = Some(count),
            // Another replica recorded it first: use what it recorded.
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|error| error.is_conditional_check_failed_exception()) =>
            {
                recorded = read().await?;
            }
            Err(error) => return Err(map_sdk_error(error)),
        }
    }
    let Some(recorded) = recorded else {
        return Err(StorageError::Backend(
            format!(
                "namespace `{namespace}` is not in DynamoDB table `{table}`; run `migrate` first"
            )
            .into(),
        ));
    };
    match wanted {
        Some(wanted) if wanted != recorded => Err(StorageError::InvalidUrl(format!(
            "dynamodb url asks for buckets={wanted}, but namespace `{namespace}` was created \
             with {recorded}; the count is fixed when a namespace is first migrated"
        ))),
        _ => Ok(recorded),
    }
}

/// FNV-1a, 64 bits: stable across builds and platforms, unlike `std`'s hasher, since an item is
/// found again by the bucket its key hashed to when it was written.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn text(value: String) -> AttributeValue {
    AttributeValue::S(value)
}

fn string_attribute(
    item: &HashMap<String, AttributeValue>,
    name: &str,
) -> Result<String, StorageError> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value.clone()),
        _ => Err(StorageError::Backend(
            format!("a DynamoDB item lacks its string attribute `{name}`").into(),
        )),
    }
}

fn value_of(item: &HashMap<String, AttributeValue>) -> Result<Vec<u8>, StorageError> {
    match item.get(VALUE) {
        Some(AttributeValue::B(blob)) => Ok(blob.as_ref().to_vec()),
        _ => Err(StorageError::Backend(
            format!("a DynamoDB item lacks its binary attribute `{VALUE}`").into(),
        )),
    }
}

/// Whether a conditional write was applied: a failed condition is `false`, not an error.
fn condition_held<T, E>(result: Result<T, SdkError<E, HttpResponse>>) -> Result<bool, StorageError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(error) if error.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(error) => Err(map_sdk_error(error)),
    }
}

/// The one place SDK errors become [`StorageError`] kinds: no answer (timeout, refused or
/// broken connection), a throttle, a 5xx or another [`TEMPORARY_CODES`] is `Unavailable`;
/// anything else (validation, access denied, an item over 400 KB) is `Backend`.
pub(crate) fn map_sdk_error<E>(error: SdkError<E, HttpResponse>) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let temporary = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            service.raw().status().is_server_error()
                || error
                    .code()
                    .is_some_and(|code| TEMPORARY_CODES.contains(&code))
        }
        // A request the SDK could not build, such as missing credentials in the chain.
        _ => false,
    };
    let message = DisplayErrorContext(&error).to_string();
    if temporary {
        StorageError::Unavailable(message.into())
    } else {
        StorageError::Backend(message.into())
    }
}

#[async_trait]
impl KeyValue for DynamoDbKeyValue {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(self.item_key(key)?))
            .consistent_read(true)
            .send()
            .await
            .map_err(map_sdk_error)?;
        output.item().map(value_of).transpose()
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.item(key, value)?))
            .send()
            .await
            .map(|_| ())
            .map_err(map_sdk_error)
    }

    async fn put_if_absent(&self, key: &str, value: &[u8]) -> Result<bool, StorageError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.item(key, value)?))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .send()
            .await;
        condition_held(put)
    }

    /// A conditional delete, so whether the key existed costs no read and no returned value.
    async fn delete(&self, key: &str) -> Result<bool, StorageError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(self.item_key(key)?))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .send()
            .await;
        condition_held(deleted)
    }

    /// One `Query` per bucket, concurrently, for at most `limit + 1` keys each; the smallest
    /// `limit + 1` keys of all are the page and tell whether another follows. `limit` is
    /// clamped to at least 1, as in every backend.
    async fn scan(&self, after: Option<&str>, limit: usize) -> Result<ScanPage, StorageError> {
        let limit = limit.max(1);
        let wanted = limit.saturating_add(1);
        let queries = (0..self.buckets).map(|bucket| self.keys_after(bucket, after, wanted));
        let mut keys: Vec<String> = futures::future::try_join_all(queries)
            .await?
            .into_iter()
            .flatten()
            .collect();
        // `String`'s order is its bytes' order, the order of DynamoDB's string sort keys.
        keys.sort_unstable();
        let more = keys.len() > limit;
        keys.truncate(limit);
        let next = if more { keys.last().cloned() } else { None };
        let values = self.values_of(&keys).await?;
        let entries = keys
            .into_iter()
            .zip(values)
            .filter_map(|(key, value)| value.map(|value| (key, value)))
            .collect();
        Ok(ScanPage { entries, next })
    }

    async fn write_batch(&self, writes: &[BatchWrite]) -> Result<BatchOutcome, StorageError> {
        let plan = plan(writes);
        if plan.keys.len() > MAX_BATCH_KEYS {
            return Err(StorageError::Backend(
                format!(
                    "a DynamoDB batch touches at most {MAX_BATCH_KEYS} keys; this one {}",
                    plan.keys.len()
                )
                .into(),
            ));
        }
        if let Some(conflict) = plan.conflict {
            // The batch fails on this insert, unless an earlier insert's key exists already:
            // then that one is the first conflict. Check those, writing nothing.
            let (keys, checks): (Vec<&str>, Vec<_>) = plan
                .keys
                .iter()
                .zip(&plan.writes)
                .filter(|(_, planned)| planned.must_be_absent)
                .map(|(key, _)| (*key, self.condition_check(key)))
                .unzip();
            let checks = checks.into_iter().collect::<Result<Vec<_>, _>>()?;
            if !checks.is_empty()
                && let BatchOutcome::Conflict { key } = self.transact(checks, &keys).await?
            {
                return Ok(BatchOutcome::Conflict { key });
            }
            return Ok(BatchOutcome::Conflict {
                key: conflict.to_owned(),
            });
        }
        if plan.keys.is_empty() {
            return Ok(BatchOutcome::Applied);
        }
        let items = plan
            .keys
            .iter()
            .zip(&plan.writes)
            .map(|(key, planned)| self.write_item(key, planned))
            .collect::<Result<Vec<_>, _>>()?;
        self.transact(items, &plan.keys).await
    }

    async fn ping(&self) -> Result<(), StorageError> {
        describe_table(&self.client, &self.table).await.map(|_| ())
    }

    fn backend(&self) -> &'static str {
        "dynamodb"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_keeps_the_table_name_as_written() {
        let url = DynamoDbUrl::parse("dynamodb://My.Table-1?region=eu-west-1&buckets=4").unwrap();
        assert_eq!(
            url,
            DynamoDbUrl {
                table: "My.Table-1".to_owned(),
                region: "eu-west-1".to_owned(),
                endpoint: None,
                buckets: Some(4),
            }
        );
    }

    #[test]
    fn url_refuses_credentials_without_repeating_them() {
        for url in [
            "dynamodb://AKIA:secret@table?region=eu-west-1",
            "dynamodb://AKIA@table?region=eu-west-1",
        ] {
            let error = DynamoDbUrl::parse(url).unwrap_err();
            let message = error.to_string();
            assert!(matches!(error, StorageError::InvalidUrl(_)), "{url}");
            assert!(message.contains("credentials"), "{message}");
            assert!(
                !message.contains("secret") && !message.contains("AKIA"),
                "{message}"
            );
        }
    }

    #[test]
    fn url_needs_a_region_and_knows_its_parameters() {
        let cases = [
            ("dynamodb://table", "region"),
            ("dynamodb://table?region=", "region"),
            ("dynamodb://table?region=a&region=b", "twice"),
            ("dynamodb://table?region=a&colour=blue", "colour"),
            ("dynamodb://table?region=a&buckets=0", "buckets"),
            ("dynamodb://table?region=a&buckets=257", "buckets"),
            ("dynamodb://table?region=a&endpoint=ftp://x", "endpoint"),
            ("dynamodb://t?region=a", "table"),
            ("dynamodb://table:8000?region=a", "port"),
            ("dynamodb://table/path?region=a", "path"),
        ];
        for (url, expected) in cases {
            let message = DynamoDbUrl::parse(url).unwrap_err().to_string();
            assert!(message.contains(expected), "{url}: {message}");
        }
    }

    #[test]
    fn buckets_are_stable_and_spread() {
        // Fixed values: a change here would lose every stored item.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        let mut counts = [0u32; 16];
        for n in 0..16_000 {
            let index = usize::try_from(fnv1a(format!("user{n}").as_bytes()) % 16).unwrap();
            counts[index] += 1;
        }
        assert!(
            counts.iter().all(|count| (800..1200).contains(count)),
            "{counts:?}"
        );
    }

    fn keys(plan: &Plan<'_>) -> Vec<(String, Option<Vec<u8>>, bool)> {
        plan.keys
            .iter()
            .zip(&plan.writes)
            .map(|(key, planned)| {
                (
                    (*key).to_owned(),
                    planned.last.map(<[u8]>::to_vec),
                    planned.must_be_absent,
                )
            })
            .collect()
    }

    #[test]
    fn a_batch_is_one_write_per_key_in_first_write_order() {
        let writes = [
            BatchWrite::put("a", b"1"),
            BatchWrite::insert("b", b"2"),
            BatchWrite::delete("c"),
            BatchWrite::put("a", b"3"),
            BatchWrite::delete("b"),
            BatchWrite::insert("c", b"4"),
        ];
        let plan = plan(&writes);
        assert_eq!(plan.conflict, None);
        assert_eq!(
            keys(&plan),
            [
                ("a".to_owned(), Some(b"3".to_vec()), false),
                ("b".to_owned(), None, true),
                ("c".to_owned(), Some(b"4".to_vec()), false),
            ]
        );
    }

    #[test]
    fn an_insert_after_a_write_of_its_key_conflicts_without_a_round_trip() {
        let writes = [
            BatchWrite::insert("a", b"1"),
            BatchWrite::put("b", b"2"),
            BatchWrite::insert("b", b"3"),
        ];
        assert_eq!(plan(&writes).conflict, Some("b"));
    }
}
