//! repo-guard against real peers where they exist: SNS → SQS and DynamoDB in
//! moto, Slack on a local HTTP server.
//!
//! moto lacks CodeCommit's GetDifferences, GetBlob and GetCommit's parents
//! (FACTS.md), so the CodeCommit reads are answered by aws-smithy-mocks, and
//! the requests they receive are asserted.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_codecommit::operation::get_blob::GetBlobOutput;
use aws_sdk_codecommit::operation::get_commit::GetCommitOutput;
use aws_sdk_codecommit::operation::get_differences::GetDifferencesOutput;
use aws_sdk_codecommit::operation::get_file::GetFileError;
use aws_sdk_codecommit::operation::get_merge_options::GetMergeOptionsOutput;
use aws_sdk_codecommit::operation::get_repository::GetRepositoryOutput;
use aws_sdk_codecommit::operation::list_tags_for_resource::ListTagsForResourceOutput;
use aws_sdk_codecommit::primitives::Blob;
use aws_sdk_codecommit::types::error::FileDoesNotExistException;
use aws_sdk_codecommit::types::{
    BlobMetadata, Commit, Difference, MergeOptionTypeEnum, RepositoryMetadata, UserInfo,
};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use signalbox::aws::Aws;
use signalbox::config::Channels;
use signalbox::effects::{AwsEffects, Done, SlackWebhook};
use signalbox::flows::FunctionConfig;
use signalbox::flows::repo_guard::{self, Lookup as _};
use signalbox::idempotency::Ledger;
use signalbox::invocation::Invocation;
use signalbox::{Outcome, handle};
use signalbox_tests::{drain_queue, idempotency_table, moto_config, sample, topic_with_queue};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// An AWS access key id of AWS's alphabet, not one of its documented examples.
const PLANTED: &str = "AKIAQ7ZR2MXN4VTL6KPJ";
/// The commits of `codecommit-reference-updated-direct-push.json`.
const OLD: &str = "7f0103fMERGE8c1d2e3f4a5b6c7d8e9f0a1b2c3d";
const NEW: &str = "a1b2c3d4PUSH5e6f7a8b9c0d1e2f3a4b5c6d7e8f";

fn blob(id: &str, path: &str) -> BlobMetadata {
    BlobMetadata::builder()
        .blob_id(id)
        .path(path)
        .mode("100644")
        .build()
}

/// A repository whose push NEW (on top of OLD) adds `config/prod.env` with
/// the planted key, over two pages of GetDifferences.
fn codecommit() -> (aws_sdk_codecommit::Client, Vec<aws_smithy_mocks::Rule>) {
    let commit = mock!(aws_sdk_codecommit::Client::get_commit)
        .match_requests(|r| r.repository_name() == Some("MyDemoRepo") && r.commit_id() == Some(NEW))
        .then_output(|| {
            GetCommitOutput::builder()
                .commit(
                    Commit::builder()
                        .commit_id(NEW)
                        .message("Add the production settings\n")
                        .author(
                            UserInfo::builder()
                                .name("Mary Major")
                                .email("mary@example.com")
                                .build(),
                        )
                        .parents(OLD)
                        .build(),
                )
                .build()
        });
    let repository = mock!(aws_sdk_codecommit::Client::get_repository)
        .match_requests(|r| r.repository_name() == Some("MyDemoRepo"))
        .then_output(|| {
            GetRepositoryOutput::builder()
                .repository_metadata(RepositoryMetadata::builder().default_branch("main").build())
                .build()
        });
    let allow_file = mock!(aws_sdk_codecommit::Client::get_file)
        .match_requests(|r| {
            r.repository_name() == Some("MyDemoRepo")
                // The push is to the default branch: its allow file as it
                // was before the push, at the old commit.
                && r.commit_specifier() == Some(OLD)
                && r.file_path() == Some(".signalbox-allow")
        })
        .then_error(|| {
            GetFileError::FileDoesNotExistException(
                FileDoesNotExistException::builder().message("no").build(),
            )
        });
    let first_page = mock!(aws_sdk_codecommit::Client::get_differences)
        .match_requests(|r| {
            r.repository_name() == Some("MyDemoRepo")
                && r.before_commit_specifier() == Some(OLD)
                && r.after_commit_specifier() == Some(NEW)
                && r.next_token().is_none()
        })
        .then_output(|| {
            GetDifferencesOutput::builder()
                .differences(
                    Difference::builder()
                        .after_blob(blob("b-readme", "README.md"))
                        .before_blob(blob("b-readme-old", "README.md"))
                        .build(),
                )
                .next_token("page-2")
                .build()
        });
    let second_page = mock!(aws_sdk_codecommit::Client::get_differences)
        .match_requests(|r| {
            r.next_token() == Some("page-2") && r.before_commit_specifier() == Some(OLD)
        })
        .then_output(|| {
            GetDifferencesOutput::builder()
                .differences(
                    Difference::builder()
                        .after_blob(blob("b-env", "config/prod.env"))
                        .build(),
                )
                .differences(
                    Difference::builder()
                        .before_blob(blob("b-gone", "old.txt"))
                        .build(),
                )
                .build()
        });
    let blobs = mock!(aws_sdk_codecommit::Client::get_blob)
        .match_requests(|r| r.repository_name() == Some("MyDemoRepo"))
        .then_output(|| {
            // The mock cannot see the request here: every blob is the same
            // file, which is what the scan of each path then reads.
            GetBlobOutput::builder()
                .content(Blob::new(
                    format!("region=us-east-1\naws_access_key_id = {PLANTED}\n").into_bytes(),
                ))
                .build()
                .unwrap()
        });
    // CodeCommit has no GetMergeBase: GetMergeOptions's baseCommitId is it.
    let merge_base = mock!(aws_sdk_codecommit::Client::get_merge_options)
        .match_requests(|r| {
            r.repository_name() == Some("MyDemoRepo")
                && r.destination_commit_specifier() == Some(OLD)
                && r.source_commit_specifier() == Some(NEW)
        })
        .then_output(|| {
            GetMergeOptionsOutput::builder()
                .merge_options(MergeOptionTypeEnum::FastForwardMerge)
                .source_commit_id(NEW)
                .destination_commit_id(OLD)
                .base_commit_id(OLD)
                .build()
                .unwrap()
        });
    // A source repository: no signalbox:replica-of tag.
    let tags = mock!(aws_sdk_codecommit::Client::list_tags_for_resource)
        .match_requests(|r| {
            r.resource_arn() == Some("arn:aws:codecommit:us-east-1:123456789012:MyDemoRepo")
        })
        .then_output(|| ListTagsForResourceOutput::builder().build());
    let rules = vec![
        commit,
        repository,
        allow_file,
        first_page,
        second_page,
        blobs,
        merge_base,
        tags,
    ];
    let client = mock_client!(
        aws_sdk_codecommit,
        RuleMode::MatchAny,
        [
            &rules[0], &rules[1], &rules[2], &rules[3], &rules[4], &rules[5], &rules[6], &rules[7]
        ]
    );
    (client, rules)
}

#[tokio::test]
async fn codecommit_reads_ask_for_the_push_and_follow_every_page() {
    let (client, rules) = codecommit();
    let mut aws = Aws::new(&moto_config().await);
    aws.codecommit = client;
    let commit = aws.commit("MyDemoRepo", NEW).await.unwrap();
    assert_eq!(commit.parents, [OLD]);
    assert_eq!(commit.author, "Mary Major <mary@example.com>");
    assert_eq!(
        aws.default_branch("MyDemoRepo").await.unwrap().as_deref(),
        Some("main")
    );
    assert_eq!(
        aws.file("MyDemoRepo", OLD, ".signalbox-allow")
            .await
            .unwrap(),
        None,
        "a missing allow file is no allow file, not an error"
    );
    assert_eq!(
        aws.merge_base("MyDemoRepo", OLD, NEW)
            .await
            .unwrap()
            .as_deref(),
        Some(OLD)
    );
    assert_eq!(
        aws.replica_tag("arn:aws:codecommit:us-east-1:123456789012:MyDemoRepo")
            .await
            .unwrap(),
        None
    );
    let differences = aws
        .differences("MyDemoRepo", Some(OLD), NEW, 1_000)
        .await
        .unwrap();
    let paths: Vec<(&str, bool)> = differences
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.after_blob.is_some()))
        .collect();
    assert_eq!(
        paths,
        [
            ("README.md", true),
            ("config/prod.env", true),
            ("old.txt", false)
        ]
    );
    assert!(!differences.truncated);
    let cut = aws
        .differences("MyDemoRepo", Some(OLD), NEW, 2)
        .await
        .unwrap();
    assert_eq!(cut.files.len(), 2);
    assert!(cut.truncated, "past max_files the list says it was cut");
    assert!(rules[3].num_calls() == 2 && rules[4].num_calls() == 2);
}

/// Collects every log line written while it is the default subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_planted_key_alerts_once_on_sns_and_slack_and_is_in_no_log_or_message() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    // The test runs on one thread (tokio's current-thread runtime).
    let _guard = tracing::subscriber::set_default(subscriber);

    let config = moto_config().await;
    let (topic_arn, queue_url) = topic_with_queue(&config).await;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    let table = idempotency_table(&config).await;
    // The deployment's fingerprint key, as the template's parameter holds it.
    Aws::new(&config)
        .ssm
        .put_parameter()
        .name("/signalbox/fingerprint-key")
        .value("a key of this moto deployment")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .expect("put_parameter");
    let (client, _rules) = codecommit();
    let mut lookup = Aws::new(&config);
    lookup.codecommit = client;
    let aws = Aws::new(&config);
    let mut webhook = SlackWebhook::new(slack.uri());
    webhook.first_backoff = Duration::from_millis(20);
    let effects = AwsEffects {
        slack: Some(webhook),
        ledger: Some(settling(Ledger::new(aws.dynamodb.clone(), &table))),
        failure_queue: None,
        aws,
        routes: Default::default(),
    };
    let function = FunctionConfig::RepoGuard(repo_guard::Config {
        channels: Channels {
            topic_arn: Some(topic_arn),
            slack_parameter: Some("/unused/in/this/test".into()),
            idempotency_table: Some(table),
            routing_parameter: None,
            routing_path: None,
            routing_topics: None,
            routing: Default::default(),
        },
        protected_branches: vec!["main".into()],
        notify_direct_push_only: false,
        repositories: Vec::new(),
        secret_scan: true,
        // The secret alert alone.
        protected_notices: false,
        scan_max_commits: 50,
        scan_max_bytes: 50 * 1024 * 1024,
        replicas: Default::default(),
        fingerprint_key_parameter: Some("/signalbox/fingerprint-key".into()),
        scan_queue_url: None,
    });

    let event = sample("codecommit-reference-updated-direct-push.json");
    let mut redelivered = event.clone();
    redelivered["id"] = "another-delivery-of-the-same-push".into();
    let mut outcomes = Vec::new();
    for e in [&event, &redelivered] {
        let outcome = handle(e, &function, &lookup, &effects, &Invocation::local())
            .await
            .expect("handled");
        outcomes.push(format!("{outcome:?}"));
        let Outcome::Handled { done, .. } = outcome else {
            panic!("not handled: {outcome:?}")
        };
        if std::ptr::eq(e, &event) {
            assert!(
                done.iter().all(|d| matches!(d, Done::Executed(_))),
                "{done:?}"
            );
        } else {
            assert_eq!(
                done,
                [Done::AlreadyDone, Done::AlreadyDone],
                "a second event, one alert"
            );
        }
    }

    let published = drain_queue(&config, &queue_url).await;
    assert_eq!(published.len(), 1, "exactly one SNS message");
    let sns = &published[0];
    let attributes = &sns["MessageAttributes"];
    assert_eq!(attributes["kind"]["Value"], "secret");
    assert_eq!(attributes["severity"]["Value"], "error");
    assert_eq!(attributes["source"]["Value"], "aws.codecommit");
    let text = sns["Message"].as_str().unwrap();
    assert!(text.contains("config/prod.env:2"), "{text}");
    assert!(text.contains("AKIA…"), "{text}");

    let posts = slack.received_requests().await.unwrap();
    assert_eq!(posts.len(), 1, "exactly one Slack message");
    let body = String::from_utf8(posts[0].body.clone()).unwrap();
    assert!(body.contains("config/prod.env"), "{body}");

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        !logs.is_empty(),
        "the run logged nothing: the capture is broken"
    );
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(PLANTED);
    let sns_envelopes = serde_json::to_string(&published).unwrap();
    for (what, text) in [
        ("a log line", logs.as_str()),
        ("the SNS message", sns_envelopes.as_str()),
        ("the Slack post", body.as_str()),
        ("the outcomes", &outcomes.join("\n")),
    ] {
        assert!(!text.contains(PLANTED), "the key is in {what}");
        assert!(!text.contains(&PLANTED[4..]), "the key's body is in {what}");
        assert!(!text.contains(&encoded), "the key, base64, is in {what}");
    }
}

/// A CodeCommit stand-in (AWS JSON 1.1) holding a push of `commits` new
/// commits on top of OLD, the last NEW, each adding one file; a key in
/// commits 3 and 35. Each GetBlob answers after `blob_delay`, so the scan
/// takes longer than one short invocation allows.
struct LargePush {
    commits: Vec<(String, String)>,
    blob_delay: Duration,
    /// The commits whose file holds a key (each a different one).
    keys: Vec<usize>,
    /// The commits whose file is binary (not scanned, said).
    binary: Vec<usize>,
}

/// A key of AWS's alphabet per commit `i`, each different.
fn key_of(i: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let tail: String = (0..4)
        .map(|d| ALPHABET[(i * (d + 3) + 7 * d + 5) % 32] as char)
        .collect();
    format!("AKIAQ7ZR2MXN4VTL{tail}")
}

impl LargePush {
    fn new(commits: usize, blob_delay: Duration) -> LargePush {
        Self::with(commits, blob_delay, &[3, 35], &[])
    }

    fn with(commits: usize, blob_delay: Duration, keys: &[usize], binary: &[usize]) -> LargePush {
        let ids: Vec<String> = (0..commits)
            .map(|i| {
                if i + 1 == commits {
                    NEW.to_owned()
                } else {
                    format!("{i:04}c0ffee{}", "0".repeat(30))
                }
            })
            .collect();
        let commits = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let parent = if i == 0 {
                    OLD.to_owned()
                } else {
                    ids[i - 1].clone()
                };
                (id.clone(), parent)
            })
            .collect();
        LargePush {
            commits,
            blob_delay,
            keys: keys.to_vec(),
            binary: binary.to_vec(),
        }
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.commits.iter().position(|(c, _)| c == id)
    }

    fn text(&self, i: usize) -> Vec<u8> {
        if self.binary.contains(&i) {
            return b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        }
        match i {
            3 if self.keys == [3, 35] => "aws_access_key_id = AKIAQ7ZR2MXN4VTL6KPJ\n".to_owned(),
            35 if self.keys == [3, 35] => "aws_access_key_id = AKIAZ7YR2MXN4VTL6KPQ\n".to_owned(),
            i if self.keys.contains(&i) => format!("aws_access_key_id = {}\n", key_of(i)),
            _ => format!("step {i}\n"),
        }
        .into_bytes()
    }
}

impl wiremock::Respond for LargePush {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        use base64::Engine as _;
        let target = request
            .headers
            .get("x-amz-target")
            .and_then(|t| t.to_str().ok())
            .unwrap_or_default();
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let field = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
        let json = signalbox_tests::json_11;
        match target.rsplit('.').next().unwrap_or_default() {
            "GetRepository" => json(serde_json::json!({
                "repositoryMetadata": {"repositoryName": "MyDemoRepo", "defaultBranch": "main"}
            })),
            "ListTagsForResource" => json(serde_json::json!({"tags": {}})),
            "GetFile" => ResponseTemplate::new(400)
                .insert_header("content-type", "application/x-amz-json-1.1")
                .set_body_json(serde_json::json!({
                    "__type": "FileDoesNotExistException", "message": "no such file"
                })),
            // A linear push: the old tip is the merge base.
            "GetMergeOptions" => json(serde_json::json!({
                "mergeOptions": ["FAST_FORWARD_MERGE"],
                "sourceCommitId": NEW, "destinationCommitId": OLD, "baseCommitId": OLD
            })),
            "GetCommit" => {
                let id = field("commitId");
                let parents: Vec<String> = match self.index(&id) {
                    Some(i) => vec![self.commits[i].1.clone()],
                    None => Vec::new(),
                };
                json(serde_json::json!({"commit": {
                    "commitId": id, "parents": parents, "message": "step\n",
                    "author": {"name": "Mary Major", "email": "mary@example.com"}
                }}))
            }
            "GetDifferences" => {
                let after = field("afterCommitSpecifier");
                let differences = match self.index(&after) {
                    Some(i) if field("beforeCommitSpecifier") == self.commits[i].1 => {
                        serde_json::json!([{
                            "afterBlob": {"blobId": format!("blob-{i}"), "path": format!("src/f{i}.env"), "mode": "100644"},
                            "changeType": "A"
                        }])
                    }
                    _ => serde_json::json!([]),
                };
                json(serde_json::json!({"differences": differences}))
            }
            "GetBlob" => {
                let i: usize = field("blobId")
                    .strip_prefix("blob-")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_default();
                let content = base64::engine::general_purpose::STANDARD.encode(self.text(i));
                json(serde_json::json!({"content": content})).set_delay(self.blob_delay)
            }
            other => {
                ResponseTemplate::new(400).set_body_string(format!("not stood in for: {other}"))
            }
        }
    }
}

/// The SQS event Lambda's event source mapping hands repo-guard for `body`
/// from the queue at `queue_url` (moto's `<endpoint>/<account>/<name>`).
fn sqs_event(body: &str, queue_url: &str) -> serde_json::Value {
    sqs_event_received(body, queue_url, 1)
}

/// [`sqs_event`], handed out for the `receives`th time.
fn sqs_event_received(body: &str, queue_url: &str, receives: u32) -> serde_json::Value {
    let mut path = queue_url.rsplit('/');
    let name = path.next().unwrap_or_default();
    let account = path.next().unwrap_or_default();
    serde_json::json!({"Records": [{
        "messageId": "2e8f0c1a-4b3d-4e5f-8a9b-0c1d2e3f4a5b",
        "receiptHandle": "AQEB-local",
        "body": body,
        "attributes": {"ApproximateReceiveCount": receives.to_string()},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": format!("arn:aws:sqs:us-east-1:{account}:{name}"),
        "awsRegion": "us-east-1"
    }]})
}

#[tokio::test]
async fn a_large_push_continues_through_the_scan_queue_and_a_redelivered_piece_sends_one_continuation()
 {
    let config = moto_config().await;
    let (topic_arn, inbox) = topic_with_queue(&config).await;
    let scan_queue = signalbox_tests::queue(&config).await;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    let table = idempotency_table(&config).await;
    Aws::new(&config)
        .ssm
        .put_parameter()
        .name("/signalbox/fingerprint-key")
        .value("a key of this moto deployment")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .expect("put_parameter");
    // 40 commits, GetBlob at 100 ms: 4 s of reads.
    let stand_in = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(LargePush::new(40, Duration::from_millis(100)))
        .mount(&stand_in)
        .await;
    let mut lookup = Aws::new(&config);
    lookup.codecommit = aws_sdk_codecommit::Client::from_conf(
        aws_sdk_codecommit::config::Builder::from(&config)
            .endpoint_url(stand_in.uri())
            .build(),
    );
    let aws = Aws::new(&config);
    let mut webhook = SlackWebhook::new(slack.uri());
    webhook.first_backoff = Duration::from_millis(20);
    let effects = AwsEffects {
        slack: Some(webhook),
        ledger: Some(settling(Ledger::new(aws.dynamodb.clone(), &table))),
        failure_queue: None,
        aws,
        routes: Default::default(),
    };
    let function = FunctionConfig::RepoGuard(repo_guard::Config {
        channels: Channels {
            topic_arn: Some(topic_arn),
            slack_parameter: Some("/unused/in/this/test".into()),
            idempotency_table: Some(table),
            routing_parameter: None,
            routing_path: None,
            routing_topics: None,
            routing: Default::default(),
        },
        protected_branches: vec!["main".into()],
        notify_direct_push_only: false,
        repositories: Vec::new(),
        secret_scan: true,
        protected_notices: false,
        scan_max_commits: 50,
        scan_max_bytes: 50 * 1024 * 1024,
        replicas: Default::default(),
        fingerprint_key_parameter: Some("/signalbox/fingerprint-key".into()),
        scan_queue_url: Some(scan_queue.clone()),
    });
    let event = sample("codecommit-reference-updated-direct-push.json");

    // Piece 1, in an invocation of 12 s: about 1.5 s of scan time.
    let first = handle(
        &event,
        &function,
        &lookup,
        &effects,
        &Invocation::within(Duration::from_secs(12)),
    )
    .await
    .expect("piece 1 handled");
    let Outcome::Handled { plan, done } = first else {
        panic!("piece 1 not handled: {first:?}")
    };
    assert!(
        plan.actions.iter().any(|a| a.kind() == "SendMessage"),
        "{plan:?}"
    );
    assert!(
        done.iter().all(|d| matches!(d, Done::Executed(_))),
        "{done:?}"
    );
    // SQS delivers at least once: the same piece again sends nothing twice.
    let again = handle(
        &event,
        &function,
        &lookup,
        &effects,
        &Invocation::within(Duration::from_secs(12)),
    )
    .await
    .expect("piece 1 handled again");
    let Outcome::Handled { plan, done } = again else {
        panic!("piece 1 not handled again: {again:?}")
    };
    assert!(plan.actions.iter().any(|a| a.kind() == "SendMessage"));
    assert!(done.iter().all(|d| *d == Done::AlreadyDone), "{done:?}");

    let continuations = drain_queue(&config, &scan_queue).await;
    assert_eq!(
        continuations.len(),
        1,
        "one continuation: {continuations:?}"
    );
    let message = &continuations[0];
    assert_eq!(message["source"], "signalbox.repo-guard");
    assert_eq!(
        message["id"],
        format!("{}#2", event["id"].as_str().unwrap())
    );

    // Piece 2, as Lambda's SQS event source delivers it, in a full invocation.
    let second = handle(
        &sqs_event(&message.to_string(), &scan_queue),
        &function,
        &lookup,
        &effects,
        &Invocation::within(Duration::from_secs(30)),
    )
    .await
    .expect("piece 2 handled");
    let Outcome::Handled { plan, done } = second else {
        panic!("piece 2 not handled: {second:?}")
    };
    assert!(
        !plan.actions.iter().any(|a| a.kind() == "SendMessage"),
        "the push ends in piece 2: {plan:?}"
    );
    assert!(
        done.iter().all(|d| matches!(d, Done::Executed(_))),
        "{done:?}"
    );
    assert!(drain_queue(&config, &scan_queue).await.is_empty());

    let published = drain_queue(&config, &inbox).await;
    let texts: Vec<&str> = published
        .iter()
        .map(|m| m["Message"].as_str().unwrap())
        .collect();
    let all = texts.join("\n");
    assert_eq!(published.len(), 2, "one alert per piece: {all}");
    assert_eq!(all.matches("src/f3.env:1").count(), 1, "{all}");
    assert_eq!(all.matches("src/f35.env:1").count(), 1, "{all}");
    // Piece 1 alerted the key of commit 3 and said the scan goes on; piece
    // 2 the key of commit 35, "continued", with the totals.
    let first = published
        .iter()
        .find(|m| m["Message"].as_str().unwrap().contains("src/f3.env:1"))
        .unwrap();
    let last = published
        .iter()
        .find(|m| m["Message"].as_str().unwrap().contains("src/f35.env:1"))
        .unwrap();
    let text = first["Message"].as_str().unwrap();
    assert!(text.contains("continued in a further invocation"), "{text}");
    assert!(
        last["Subject"].as_str().unwrap().contains("continued"),
        "{last}"
    );
    let text = last["Message"].as_str().unwrap();
    assert!(
        text.contains("in all 40 of the 40 new commit(s), 40 file(s) over 2 part(s)"),
        "{text}"
    );
    assert_eq!(slack.received_requests().await.unwrap().len(), 2);
}

/// repo-guard wired to moto (SNS → an inbox queue, DynamoDB's ledger, SSM's
/// fingerprint key, its scan queue), a local Slack, and a CodeCommit
/// stand-in holding `push`.
struct Guard {
    config: aws_config::SdkConfig,
    inbox: String,
    scan_queue: String,
    slack: MockServer,
    lookup: Aws,
    effects: AwsEffects,
    function: FunctionConfig,
    _stand_in: MockServer,
}

impl Guard {
    async fn new(push: LargePush, protected_notices: bool, slack_delay: Duration) -> Guard {
        let config = moto_config().await;
        let (topic_arn, inbox) = topic_with_queue(&config).await;
        let scan_queue = signalbox_tests::queue(&config).await;
        let slack = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_string("ok")
                    .set_delay(slack_delay),
            )
            .mount(&slack)
            .await;
        let table = idempotency_table(&config).await;
        Aws::new(&config)
            .ssm
            .put_parameter()
            .name("/signalbox/fingerprint-key")
            .value("a key of this moto deployment")
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .expect("put_parameter");
        let stand_in = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(push)
            .mount(&stand_in)
            .await;
        let mut lookup = Aws::new(&config);
        lookup.codecommit = aws_sdk_codecommit::Client::from_conf(
            aws_sdk_codecommit::config::Builder::from(&config)
                .endpoint_url(stand_in.uri())
                .build(),
        );
        let aws = Aws::new(&config);
        let mut webhook = SlackWebhook::new(slack.uri());
        webhook.first_backoff = Duration::from_millis(20);
        let effects = AwsEffects {
            slack: Some(webhook),
            ledger: Some(settling(Ledger::new(aws.dynamodb.clone(), &table))),
            failure_queue: None,
            aws,
            routes: Default::default(),
        };
        let function = FunctionConfig::RepoGuard(repo_guard::Config {
            channels: Channels {
                topic_arn: Some(topic_arn),
                slack_parameter: Some("/unused/in/this/test".into()),
                idempotency_table: Some(table),
                routing_parameter: None,
                routing_path: None,
                routing_topics: None,
                routing: Default::default(),
            },
            protected_branches: vec!["main".into()],
            notify_direct_push_only: false,
            repositories: Vec::new(),
            secret_scan: true,
            protected_notices,
            scan_max_commits: 50,
            scan_max_bytes: 50 * 1024 * 1024,
            replicas: Default::default(),
            fingerprint_key_parameter: Some("/signalbox/fingerprint-key".into()),
            scan_queue_url: Some(scan_queue.clone()),
        });
        Guard {
            config,
            inbox,
            scan_queue,
            slack,
            lookup,
            effects,
            function,
            _stand_in: stand_in,
        }
    }

    /// `handle` of `event` in an invocation of `seconds`.
    async fn handle(
        &self,
        event: &serde_json::Value,
        seconds: u64,
    ) -> Result<Outcome, signalbox::HandleError> {
        // On the heap: two of them side by side overflow a test thread's stack.
        Box::pin(handle(
            event,
            &self.function,
            &self.lookup,
            &self.effects,
            &Invocation::within(Duration::from_secs(seconds)),
        ))
        .await
    }

    /// Every continuation in the scan queue handled, as SQS delivers them,
    /// in full invocations (a failed one delivered again), until none is left.
    async fn finish_the_push(&self) -> usize {
        let mut pieces = 0;
        loop {
            let messages = drain_queue(&self.config, &self.scan_queue).await;
            if messages.is_empty() {
                return pieces;
            }
            for message in messages {
                pieces += 1;
                assert!(pieces < 40, "more pieces than the bound");
                let event = sqs_event(&message.to_string(), &self.scan_queue);
                let mut tries = 0;
                while let Err(e) = self.handle(&event, 30).await {
                    tries += 1;
                    assert!(tries < 3, "{e}");
                }
            }
        }
    }

    /// Every SNS message published so far: (kind, subject, message).
    async fn published(&self) -> Vec<(String, String, String)> {
        drain_queue(&self.config, &self.inbox)
            .await
            .into_iter()
            .map(|m| {
                (
                    m["MessageAttributes"]["kind"]["Value"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    m["Subject"].as_str().unwrap_or_default().to_owned(),
                    m["Message"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}

/// repo-guard's ledger, as `lambda::executor_reading` makes it: a sent
/// alert is settled.
fn settling(mut ledger: Ledger) -> Ledger {
    ledger.settles_sent = true;
    ledger
}

/// Every key of `push` is in some secret alert.
fn assert_every_key_alerted(published: &[(String, String, String)], keys: &[usize]) {
    let all: String = published
        .iter()
        .filter(|(kind, ..)| kind == "secret")
        .map(|(_, _, m)| m.as_str())
        .collect();
    for i in keys {
        assert!(
            all.contains(&format!("src/f{i}.env:1")),
            "the key of commit {i} was never alerted: {all}"
        );
    }
}

/// The last piece found a key and a binary file: its secret alert and its
/// not-scanned alert are two actions of one plan, each under its own key,
/// so the ledger sends both.
#[tokio::test]
async fn the_last_piece_with_a_finding_and_a_binary_file_publishes_both_alerts() {
    let push = LargePush::with(40, Duration::from_millis(100), &[3, 35], &[30]);
    let guard = Guard::new(push, false, Duration::ZERO).await;
    let event = sample("codecommit-reference-updated-direct-push.json");
    guard.handle(&event, 12).await.expect("piece 1");
    assert!(guard.finish_the_push().await >= 1, "not continued");
    let published = guard.published().await;
    let kinds: Vec<&str> = published.iter().map(|(k, ..)| k.as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "not-scanned").count(),
        1,
        "{published:#?}"
    );
    assert_every_key_alerted(&published, &[3, 35]);
    let last = published
        .iter()
        .find(|(k, _, m)| k == "secret" && m.contains("src/f35.env:1"))
        .unwrap();
    assert!(last.1.contains("continued"), "{last:?}");
    let not_scanned = &published
        .iter()
        .find(|(k, ..)| k == "not-scanned")
        .unwrap()
        .2;
    assert!(not_scanned.contains("src/f30.env"), "{not_scanned}");
}

/// Piece 1 of a continued push to a protected branch: the protected-branch
/// notice and the secret alert of the key it found both reach SNS and Slack.
#[tokio::test]
async fn a_continued_push_to_a_protected_branch_publishes_its_notice_and_its_first_secret_alert() {
    let push = LargePush::new(40, Duration::from_millis(100));
    let guard = Guard::new(push, true, Duration::ZERO).await;
    let event = sample("codecommit-reference-updated-direct-push.json");
    let outcome = guard.handle(&event, 12).await.expect("piece 1");
    let Outcome::Handled { plan, done } = outcome else {
        panic!("piece 1 not handled: {outcome:?}")
    };
    assert!(
        plan.actions.iter().any(|a| a.kind() == "SendMessage"),
        "{plan:?}"
    );
    assert!(
        done.iter().all(|d| matches!(d, Done::Executed(_))),
        "{done:?}"
    );
    let published = guard.published().await;
    // Sent side by side: in either order.
    let mut kinds: Vec<&str> = published.iter().map(|(k, ..)| k.as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["protected-push", "secret"], "{published:#?}");
    assert_eq!(guard.slack.received_requests().await.unwrap().len(), 2);
    assert_every_key_alerted(&published, &[3]);
}

/// Piece 1's continuation fails once (its queue is not there yet: SQS
/// answers QueueDoesNotExist) after its alert went out; the retry, in a
/// longer invocation, cuts the piece later. The keys between the two cuts
/// are alerted by the retry: a different cut is a different alert.
#[tokio::test]
async fn a_continuation_sent_on_the_retry_after_a_later_cut_leaves_no_key_unalerted() {
    // 48 commits (within SCAN_MAX_COMMITS), GetBlob at 100 ms; keys in commits 3, 20 and 45.
    let push = LargePush::with(48, Duration::from_millis(100), &[3, 20, 45], &[]);
    let guard = Guard::new(push, false, Duration::ZERO).await;
    let sqs = aws_sdk_sqs::Client::new(&guard.config);
    let name = guard.scan_queue.rsplit('/').next().unwrap().to_owned();
    sqs.delete_queue()
        .queue_url(&guard.scan_queue)
        .send()
        .await
        .expect("delete_queue");
    let event = sample("codecommit-reference-updated-direct-push.json");
    // About 1.5 s of scan: the key of commit 3, not of 20.
    let first = guard.handle(&event, 12).await;
    assert!(first.is_err(), "the continuation cannot be sent: {first:?}");
    let mut published = guard.published().await;
    assert_every_key_alerted(&published, &[3]);
    assert!(
        !published.iter().any(|(_, _, m)| m.contains("src/f20.env")),
        "the first attempt's cut is past commit 20: {published:#?}"
    );
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .expect("create_queue")
        .queue_url
        .unwrap();
    assert_eq!(url, guard.scan_queue);
    // Lambda's retry, in a longer invocation (about 4 s of scan): past
    // commit 20, not to the end.
    let retry = guard.handle(&event, 17).await.expect("the retry");
    let Outcome::Handled { plan, .. } = retry else {
        panic!("{retry:?}")
    };
    assert!(
        plan.actions.iter().any(|a| a.kind() == "SendMessage"),
        "the retry cut the push too: {plan:?}"
    );
    guard.finish_the_push().await;
    published.extend(guard.published().await);
    assert_every_key_alerted(&published, &[3, 20, 45]);
}

/// Two deliveries of one push handled at once (EventBridge and SQS deliver
/// at least once), cut at different commits; Slack is slow, so the one cut
/// first still holds its Slack claim when the other is done scanning. One
/// continuation is sent, and every key is alerted.
#[tokio::test]
async fn two_deliveries_of_one_piece_handled_at_once_leave_no_key_unalerted() {
    let push = LargePush::with(48, Duration::from_millis(100), &[3, 20, 45], &[]);
    let guard = Guard::new(push, false, Duration::from_secs(4)).await;
    let event = sample("codecommit-reference-updated-direct-push.json");
    let (short, long) = tokio::join!(guard.handle(&event, 12), guard.handle(&event, 17));
    for outcome in [short, long] {
        if outcome.is_err() {
            // Lambda (or SQS) delivers it again.
            guard.handle(&event, 30).await.expect("delivered again");
        }
    }
    let continuations = drain_queue(&guard.config, &guard.scan_queue).await;
    assert_eq!(continuations.len(), 1, "{continuations:#?}");
    let sqs = aws_sdk_sqs::Client::new(&guard.config);
    sqs.send_message()
        .queue_url(&guard.scan_queue)
        .message_body(continuations[0].to_string())
        .send()
        .await
        .expect("send_message");
    guard.finish_the_push().await;
    assert_every_key_alerted(&guard.published().await, &[3, 20, 45]);
}

/// Two deliveries of one piece at once cut at about the same place, with
/// the same findings, so their alerts share a key. One posts to Slack, which
/// waits 4 s and answers 500; the other, finding that key recorded done
/// meanwhile, must not take the alert as sent and send the continuation
/// from its cut: the failed one's retry, in a shorter invocation, cuts
/// earlier, and what lies between the two cuts would never reach Slack.
#[tokio::test]
async fn a_delivery_whose_alert_another_is_still_sending_holds_its_continuation() {
    let push = LargePush::with(48, Duration::from_millis(100), &[3, 20, 45], &[]);
    let guard = Guard::new(push, false, Duration::ZERO).await;
    /// Slack answering 500 after 4 s while `failing` holds; what it took
    /// (answered 200) in `taken`.
    struct Flaky {
        failing: Arc<std::sync::atomic::AtomicBool>,
        taken: Arc<Mutex<String>>,
    }
    impl wiremock::Respond for Flaky {
        fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
            if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
                ResponseTemplate::new(500).set_delay(Duration::from_secs(4))
            } else {
                self.taken
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&request.body));
                ResponseTemplate::new(200).set_body_string("ok")
            }
        }
    }
    let failing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let taken = Arc::new(Mutex::new(String::new()));
    Mock::given(method("POST"))
        .respond_with(Flaky {
            failing: failing.clone(),
            taken: taken.clone(),
        })
        .with_priority(1)
        .mount(&guard.slack)
        .await;
    let event = sample("codecommit-reference-updated-direct-push.json");
    let (one, other) = tokio::join!(guard.handle(&event, 17), guard.handle(&event, 17));
    failing.store(false, std::sync::atomic::Ordering::SeqCst);
    let failed = [&one, &other].iter().filter(|o| o.is_err()).count();
    assert!(failed >= 1, "Slack's 500 fails one: {one:?} {other:?}");
    for _ in 0..failed {
        // Delivered again, in a shorter invocation (a cold start, or SQS's
        // last delivery): it cuts earlier.
        guard.handle(&event, 12).await.expect("delivered again");
    }
    guard.finish_the_push().await;
    let slack = taken.lock().unwrap().clone();
    for i in [3, 20, 45] {
        assert!(
            slack.contains(&format!("src/f{i}.env:1")),
            "the key of commit {i} never reached Slack: {slack}"
        );
    }
}

/// A continued piece whose secret alert Slack keeps refusing (500, a
/// transient error): on an early delivery the error makes SQS deliver it
/// again; on the last one SQS makes, a not-scanned alert says the scan
/// stopped, why, and which commits it left, and the piece still fails, so
/// SQS moves the message (the rest of the push) to the dead-letter queue,
/// whose alarm pages and from where it can be redriven. Delivered again
/// (a redrive), the stopped alert is not repeated.
#[tokio::test]
async fn a_piece_failing_on_its_last_delivery_says_the_scan_stopped_and_is_dead_lettered() {
    let push = LargePush::new(40, Duration::from_millis(100));
    let guard = Guard::new(push, false, Duration::ZERO).await;
    let event = sample("codecommit-reference-updated-direct-push.json");
    guard.handle(&event, 12).await.expect("piece 1");
    let continuations = drain_queue(&guard.config, &guard.scan_queue).await;
    assert_eq!(continuations.len(), 1, "{continuations:#?}");
    let body = continuations[0].to_string();
    guard.published().await;

    Mock::given(method("POST"))
        .and(wiremock::matchers::body_string_contains(
            "Secret scan continued (part 2)",
        ))
        .respond_with(ResponseTemplate::new(500))
        .with_priority(1)
        .mount(&guard.slack)
        .await;
    let early = guard
        .handle(&sqs_event_received(&body, &guard.scan_queue, 1), 30)
        .await;
    assert!(early.is_err(), "delivered again: {early:?}");
    let secret = guard.published().await;
    assert_eq!(secret.len(), 1, "SNS took the secret alert: {secret:#?}");

    let last_delivery = sqs_event_received(
        &body,
        &guard.scan_queue,
        repo_guard::SCAN_QUEUE_MAX_RECEIVES,
    );
    let last = guard.handle(&last_delivery, 30).await;
    assert!(
        last.is_err(),
        "not acknowledged: SQS dead-letters the continuation: {last:?}"
    );
    let published = guard.published().await;
    assert_eq!(published.len(), 1, "{published:#?}");
    let (kind, _, text) = &published[0];
    assert_eq!(kind, "not-scanned");
    assert!(
        text.contains("the scan stopped, part 2 failed on each of its 5 deliveries"),
        "{text}"
    );
    let first = continuations[0]["detail"]["commits"][0]["id"]
        .as_str()
        .unwrap()
        .chars()
        .take(12)
        .collect::<String>();
    assert!(
        text.contains(&format!("commit(s) from {first} on")),
        "{text}"
    );
    assert!(
        drain_queue(&guard.config, &guard.scan_queue)
            .await
            .is_empty()
    );
    let again = guard.handle(&last_delivery, 30).await;
    assert!(again.is_err(), "{again:?}");
    let repeated = guard.published().await;
    assert!(
        repeated.iter().all(|(kind, ..)| kind != "not-scanned"),
        "the stopped alert is sent once: {repeated:#?}"
    );
}
