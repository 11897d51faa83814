//! Connections opened during init are the ones the SDK clients' calls use:
//! a local HTTP server counts the TCP connections it accepts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use signalbox::aws::{Https, Service, endpoint, origin, sdk_config_with};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A keep-alive HTTP/1.1 server answering every request with SSM's
/// GetParameter reply; counts connections and requests.
async fn server() -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (connections, requests) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (c, r) = (connections.clone(), requests.clone());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            c.fetch_add(1, Ordering::SeqCst);
            let r = r.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut reader = BufReader::new(read);
                loop {
                    let mut length = 0;
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let header = header.trim_end().to_ascii_lowercase();
                        if header.is_empty() {
                            break;
                        }
                        if let Some(v) = header.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).await.unwrap();
                    r.fetch_add(1, Ordering::SeqCst);
                    let reply =
                        r#"{"Parameter":{"Name":"/p","Type":"String","Value":"v","Version":1}}"#;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n",
                        reply.len()
                    );
                    if write.write_all(head.as_bytes()).await.is_err()
                        || write.write_all(reply.as_bytes()).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (url, connections, requests)
}

/// An SSM client of `config` (its endpoint and HTTPS client) with fake
/// credentials and a region, so nothing is read from the environment.
fn ssm(config: &aws_config::SdkConfig) -> aws_sdk_ssm::Client {
    let conf = aws_sdk_ssm::config::Builder::from(config)
        .credentials_provider(aws_sdk_ssm::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .region(aws_sdk_ssm::config::Region::new("us-east-1"))
        .build();
    aws_sdk_ssm::Client::from_conf(conf)
}

#[tokio::test]
async fn connections_opened_during_init_serve_the_first_calls_side_by_side() {
    let (url, connections, requests) = server().await;
    let https = Https::new();
    let config = sdk_config_with(Some(&url), https.clone()).await;
    // Two calls will run side by side: two connections opened.
    https.warm(&[(url.clone(), 2)]).await;
    assert_eq!(connections.load(Ordering::SeqCst), 2, "warming opened");
    assert_eq!(requests.load(Ordering::SeqCst), 2);

    let ssm = ssm(&config);
    let (a, b) = tokio::join!(
        ssm.get_parameter().name("/a").send(),
        ssm.get_parameter().name("/b").send()
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(
        connections.load(Ordering::SeqCst),
        2,
        "the calls opened a connection of their own instead of using the warm ones"
    );
    assert_eq!(requests.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn without_warming_the_first_calls_open_their_own_connections() {
    // The control: what the test above would see without `warm`.
    let (url, connections, _) = server().await;
    let config = sdk_config_with(Some(&url), Https::new()).await;
    let ssm = ssm(&config);
    ssm.get_parameter().name("/a").send().await.unwrap();
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn warming_a_host_that_does_not_answer_gives_up_within_its_time() {
    // Accepts connections but never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            held.push(stream);
        }
    });
    let started = std::time::Instant::now();
    Https::new().warm(&[(url, 1)]).await;
    let took = started.elapsed();
    assert!(
        took >= signalbox::aws::WARM_TIMEOUT && took < signalbox::aws::WARM_TIMEOUT * 2,
        "warming took {took:?}"
    );
}

#[tokio::test]
async fn each_service_is_warmed_at_the_endpoint_its_client_uses() {
    let regional = aws_config::SdkConfig::builder()
        .region(aws_config::Region::new("eu-west-1"))
        .build();
    assert_eq!(
        endpoint(&regional, Service::Sns).await.as_deref(),
        Some("https://sns.eu-west-1.amazonaws.com")
    );
    assert_eq!(
        endpoint(&regional, Service::Logs).await.as_deref(),
        Some("https://logs.eu-west-1.amazonaws.com")
    );
    assert_eq!(
        endpoint(&regional, Service::CodePipeline).await.as_deref(),
        Some("https://codepipeline.eu-west-1.amazonaws.com")
    );
    let fips = aws_config::SdkConfig::builder()
        .region(aws_config::Region::new("us-east-1"))
        .use_fips(true)
        .build();
    assert_eq!(
        endpoint(&fips, Service::DynamoDb).await.as_deref(),
        Some("https://dynamodb-fips.us-east-1.amazonaws.com")
    );
    // An endpoint set in code (moto, replay --execute) serves every service.
    let local = sdk_config_with(Some("http://127.0.0.1:5000"), Https::new()).await;
    assert_eq!(
        endpoint(&local, Service::CodeBuild).await.as_deref(),
        Some("http://127.0.0.1:5000")
    );
}

#[test]
fn a_warming_request_goes_to_the_origin_and_never_carries_the_path() {
    // The Slack webhook's path is its secret: only the host is contacted.
    assert_eq!(
        origin("https://hooks.slack.com/services/T000/B000/XXXX"),
        "https://hooks.slack.com/"
    );
    assert_eq!(
        origin("http://127.0.0.1:5000/x?y#z"),
        "http://127.0.0.1:5000/"
    );
}
