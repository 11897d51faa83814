//! What the integration tests share: the moto server the test command started,
//! and AWS SDK configuration pointing at it.

use std::sync::atomic::{AtomicU32, Ordering};

/// The variable through which `scripts/test` tells the tests where moto listens.
pub const MOTO_ENDPOINT: &str = "SIGNALBOX_MOTO_ENDPOINT";

/// The moto server's URL. Panics (fails the test) when the test command did
/// not start one: a test that needs moto never silently skips.
pub fn moto_endpoint() -> String {
    match std::env::var(MOTO_ENDPOINT) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{MOTO_ENDPOINT} is unset: these tests need the moto server that ./scripts/test starts \
             (run ./scripts/test, or start `moto_server -p PORT` and export {MOTO_ENDPOINT}=http://127.0.0.1:PORT)"
        ),
    }
}

/// SDK configuration for moto: fixed test credentials, us-east-1, moto's endpoint.
pub async fn moto_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(signalbox::aws::Https::new())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "signalbox-tests",
        ))
        .endpoint_url(moto_endpoint())
        .load()
        .await
}

/// A name no other test in this run uses (moto's state is shared by all tests).
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// An SQS queue in moto (a function's failure queue); returns its URL.
pub async fn queue(config: &aws_config::SdkConfig) -> String {
    aws_sdk_sqs::Client::new(config)
        .create_queue()
        .queue_name(unique("failures"))
        .send()
        .await
        .expect("create_queue")
        .queue_url
        .expect("queue url")
}

/// An SNS topic in moto with an SQS queue subscribed: `(topic_arn, queue_url)`.
pub async fn topic_with_queue(config: &aws_config::SdkConfig) -> (String, String) {
    let sns = aws_sdk_sns::Client::new(config);
    let sqs = aws_sdk_sqs::Client::new(config);
    let topic_arn = sns
        .create_topic()
        .name(unique("alerts"))
        .send()
        .await
        .expect("create_topic")
        .topic_arn
        .expect("topic arn");
    let queue_url = sqs
        .create_queue()
        .queue_name(unique("inbox"))
        .send()
        .await
        .expect("create_queue")
        .queue_url
        .expect("queue url");
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("get_queue_attributes")
        .attributes
        .and_then(|mut a| a.remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .expect("queue arn");
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .send()
        .await
        .expect("subscribe");
    (topic_arn, queue_url)
}

/// Every SNS envelope (JSON) waiting in the queue, removed from it.
pub async fn drain_queue(
    config: &aws_config::SdkConfig,
    queue_url: &str,
) -> Vec<serde_json::Value> {
    let sqs = aws_sdk_sqs::Client::new(config);
    let mut bodies = Vec::new();
    loop {
        let messages = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive_message")
            .messages
            .unwrap_or_default();
        if messages.is_empty() {
            return bodies;
        }
        for message in messages {
            bodies.push(
                serde_json::from_str(message.body().expect("body")).expect("SNS envelope is JSON"),
            );
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(message.receipt_handle().expect("receipt handle"))
                .send()
                .await
                .expect("delete_message");
        }
    }
}

/// An idempotency table in moto with signalbox's key schema; returns its name.
pub async fn idempotency_table(config: &aws_config::SdkConfig) -> String {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let name = unique("idempotency");
    aws_sdk_dynamodb::Client::new(config)
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(signalbox::idempotency::KEY)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute definition"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(signalbox::idempotency::KEY)
                .key_type(KeyType::Hash)
                .build()
                .expect("key schema"),
        )
        .send()
        .await
        .expect("create_table");
    name
}

/// A sample event from `events/`, as JSON.
pub fn sample(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A local Slack receiver that answers 200 to every post, and an SSM
/// SecureString in moto holding its webhook URL: `(receiver, parameter name)`.
/// The URL ends in `SECRET`, so tests can check it never leaks.
pub async fn slack_with_parameter(
    config: &aws_config::SdkConfig,
) -> (wiremock::MockServer, String) {
    let slack = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    let parameter = format!("/{}/slack", unique("signalbox"));
    aws_sdk_ssm::Client::new(config)
        .put_parameter()
        .name(&parameter)
        .value(format!("{}/services/T/B/SECRET", slack.uri()))
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("put_parameter");
    (slack, parameter)
}

/// The bytes of a generated archive of `size` bytes, from `offset` on: a
/// fixed pseudo-random sequence (xorshift), the same on every call, so the
/// stand-in need not hold the archive and a test can hash it again.
pub fn archive_bytes(offset: u64, buffer: &mut [u8]) {
    for (i, byte) in buffer.iter_mut().enumerate() {
        let mut x = (offset + i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *byte = (x >> 24) as u8;
    }
}

/// A git host's archive API stand-in: answers every GET with a generated
/// archive of `size` bytes ([`archive_bytes`]), written in 64 KiB pieces
/// as they are generated (never held whole), with `Content-Length` when
/// `with_length`, else delimited by closing the connection. A request
/// without `authorization: <expected>` gets 401. Returns its base URL and
/// the request lines it received.
pub async fn archive_host(
    size: u64,
    with_length: bool,
    expected_authorization: &str,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    archive_host_stalling(
        size,
        with_length,
        expected_authorization,
        std::time::Duration::ZERO,
    )
    .await
}

/// [`archive_host`] that, once its answer's head is out, waits `stall`
/// before the first byte of the body: a slow host.
pub async fn archive_host_stalling(
    size: u64,
    with_length: bool,
    expected_authorization: &str,
    stall: std::time::Duration,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the archive stand-in");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let requests = seen.clone();
    let expected = expected_authorization.to_ascii_lowercase();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let requests = requests.clone();
            let expected = expected.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut byte).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&byte[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                let first = head.lines().next().unwrap_or_default().to_owned();
                requests.lock().expect("requests").push(first);
                if !head.contains(&format!("authorization: {expected}\r\n")) {
                    let _ = socket
                        .write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                    return;
                }
                let length = if with_length {
                    format!("content-length: {size}\r\n")
                } else {
                    String::new()
                };
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/zip\r\n{length}connection: close\r\n\r\n"
                );
                if socket.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
                tokio::time::sleep(stall).await;
                let mut piece = vec![0u8; 64 * 1024];
                let mut offset = 0u64;
                while offset < size {
                    let n = (size - offset).min(piece.len() as u64) as usize;
                    archive_bytes(offset, &mut piece[..n]);
                    if socket.write_all(&piece[..n]).await.is_err() {
                        return;
                    }
                    offset += n as u64;
                }
                let _ = socket.shutdown().await;
            });
        }
    });
    (url, seen)
}

/// What [`slow_completion_proxy`] holds back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// The CompleteMultipartUpload request, passed on after the delay.
    Request,
    /// S3's answer to it: the upload is completed at once, the answer
    /// comes after the delay.
    Answer,
}

/// A TCP proxy in front of moto that holds each CompleteMultipartUpload
/// request (`POST …?uploadId=`), or its answer, for `delay`, and passes it
/// on even when the client has given up by then: S3 completing an upload
/// whose answer comes too late. Returns its `http://` URL.
pub async fn slow_completion_proxy(
    upstream: &str,
    delay: std::time::Duration,
    hold: Hold,
) -> String {
    let (url, _held) = holding_proxy(upstream, delay, hold, |chunk| {
        let first_line = chunk
            .split(|b| *b == b'\n')
            .next()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        first_line.starts_with("POST ") && first_line.contains("uploadId=")
    })
    .await;
    url
}

/// A TCP proxy in front of moto that holds, for `delay`, each request that
/// contains `needle` (in its headers or its body), or its answer, and
/// passes it on even when the client has given up by then: a slow service
/// that still carries out what it was sent. Returns its `http://` URL and
/// how many requests it has held so far (so a test can tell that the hold
/// happened at all).
pub async fn slow_requests_proxy(
    upstream: &str,
    delay: std::time::Duration,
    hold: Hold,
    needle: &'static str,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    holding_proxy(upstream, delay, hold, move |chunk| {
        chunk.windows(needle.len()).any(|w| w == needle.as_bytes())
    })
    .await
}

/// The proxy of [`slow_completion_proxy`] and [`slow_requests_proxy`]:
/// holds each chunk a client sends that `matches` (or the answer to it).
/// Returns its URL and the count of chunks it held.
async fn holding_proxy(
    upstream: &str,
    delay: std::time::Duration,
    hold: Hold,
    matches: impl Fn(&[u8]) -> bool + Clone + Send + Sync + 'static,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let held = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = held.clone();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upstream = upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the proxy");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                return;
            };
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let matches = matches.clone();
            let counted = counted.clone();
            let completing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let answering = completing.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 64 * 1024];
                loop {
                    let n = match server_read.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if answering.swap(false, std::sync::atomic::Ordering::SeqCst) {
                        tokio::time::sleep(delay).await;
                    }
                    if client_write.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                }
            });
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 64 * 1024];
                loop {
                    let n = match client_read.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if matches(&buffer[..n]) {
                        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        match hold {
                            Hold::Request => tokio::time::sleep(delay).await,
                            Hold::Answer => {
                                completing.store(true, std::sync::atomic::Ordering::SeqCst)
                            }
                        }
                    }
                    if server_write.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, held)
}

/// A stand-in's answer in the AWS JSON 1.1 protocol (CodeDeploy, CodePipeline).
pub fn json_11(body: serde_json::Value) -> wiremock::ResponseTemplate {
    wiremock::ResponseTemplate::new(200)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .set_body_json(body)
}

/// The hook statuses a CodeDeploy stand-in received
/// (`PutLifecycleEventHookExecutionStatus`): `(hook execution id, status)`.
pub async fn hook_statuses(stand_in: &wiremock::MockServer) -> Vec<(String, String)> {
    stand_in
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| {
            r.headers
                .get("x-amz-target")
                .is_some_and(|t| t == "CodeDeploy_20141006.PutLifecycleEventHookExecutionStatus")
        })
        .map(|r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            (
                body["lifecycleEventHookExecutionId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                body["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// A ZIP archive of `files`, deflated, as CodeBuild writes an output
/// artifact (pipeline-gate's input artifacts in its runtime and CLI tests).
pub fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in files {
        writer.start_file(*name, options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// The storm of pipeline failures (tests/storm_moto.rs, benches/storm.rs).
pub mod storm;
