//! The real `git-webhook` binary under a local Lambda Runtime API, invoked
//! with Function URL requests (payload format 2.0): a signed GitHub push is
//! answered 202 and starts the pipeline; a forged one is answered 401 and
//! starts nothing.
//!
//! Behind its AWS calls: moto's DynamoDB (the delivery ledger); CodePipeline
//! goes to a local stand-in (wiremock) through `AWS_ENDPOINT_URL_CODEPIPELINE`,
//! which records the GetPipeline and StartPipelineExecution the binary sends.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::{Value, json};
use signalbox::git::verify::sign_hex;
use signalbox_tests::{idempotency_table, moto_config, moto_endpoint, unique};
use wiremock::matchers::{header, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const SECRET: &str = "runtime-api-secret";

async fn runtime_api(payloads: &[Value]) -> MockServer {
    let server = MockServer::start().await;
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 300_000;
    for (i, payload) in payloads.iter().enumerate() {
        Mock::given(method("GET"))
            .and(path(NEXT))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("Lambda-Runtime-Aws-Request-Id", format!("req-{}", i + 1))
                    .insert_header("Lambda-Runtime-Deadline-Ms", deadline.to_string())
                    .insert_header(
                        "Lambda-Runtime-Invoked-Function-Arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:signalbox-git-webhook",
                    )
                    .set_body_json(payload),
            )
            .up_to_n_times(1)
            .with_priority(u8::try_from(i + 1).unwrap())
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path(NEXT))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(600)))
        .with_priority(200)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(
            r"^/2018-06-01/runtime/(invocation/[^/]+/(response|error)|init/error)$",
        ))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    server
}

fn json_11(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .set_body_json(body)
}

async fn codepipeline() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("x-amz-target", "CodePipeline_20150709.GetPipeline"))
        .respond_with(json_11(json!({"pipeline": {
            "name": "web-pipeline", "roleArn": "arn:aws:iam::123456789012:role/p",
            "pipelineType": "V2",
            "variables": [{"name": "SIGNALBOX_GIT_PROVIDER"}, {"name": "SIGNALBOX_GIT_PROJECT"},
                          {"name": "SIGNALBOX_GIT_COMMIT"}],
            // Two connection sources: only acme/web's (the route's project)
            // gets the pushed commit; the other keeps its own branch head.
            "stages": [{"name": "Source", "actions": [{"name": "Source",
                "actionTypeId": {"category": "Source", "owner": "AWS",
                                 "provider": "CodeStarSourceConnection", "version": "1"},
                "configuration": {"FullRepositoryId": "acme/web", "BranchName": "main",
                                  "ConnectionArn": "arn:aws:codeconnections:us-east-1:123456789012:connection/x"}},
                {"name": "SharedLib",
                "actionTypeId": {"category": "Source", "owner": "AWS",
                                 "provider": "CodeStarSourceConnection", "version": "1"},
                "configuration": {"FullRepositoryId": "acme/shared-lib", "BranchName": "main",
                                  "ConnectionArn": "arn:aws:codeconnections:us-east-1:123456789012:connection/x"}}]}]
        }})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(header(
            "x-amz-target",
            "CodePipeline_20150709.StartPipelineExecution",
        ))
        .respond_with(json_11(json!({"pipelineExecutionId": "exec-1234"})))
        .mount(&server)
        .await;
    server
}

fn push_request(secret: &str) -> Value {
    let body = json!({
        "ref": "refs/heads/main", "after": "9fceb02d0ae598e95dc970b74767f19372d61af8",
        "repository": {"full_name": "acme/web", "clone_url": "https://github.com/acme/web.git"},
        "pusher": {"name": "mona"},
        "head_commit": {"message": "Add the checkout page"},
        "commits": []
    })
    .to_string();
    json!({
        "version": "2.0",
        "rawPath": "/",
        "headers": {
            "x-github-event": "push",
            "x-github-delivery": unique("delivery"),
            "x-hub-signature-256": format!("sha256={}", sign_hex(secret, body.as_bytes())),
        },
        "requestContext": {"http": {"method": "POST", "path": "/"}},
        "body": base64::engine::general_purpose::STANDARD.encode(&body),
        "isBase64Encoded": true
    })
}

fn start(runtime: &MockServer, env: &[(&str, String)]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_git-webhook"));
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime.address().to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "signalbox-git-webhook")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/git-webhook")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    command.spawn().expect("start the git-webhook binary")
}

async fn results(runtime: &MockServer, count: usize) -> Vec<Request> {
    let started = Instant::now();
    loop {
        let posted: Vec<Request> = runtime
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.method.as_str() == "POST")
            .collect();
        if posted.len() >= count {
            return posted;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the function posted {} of {count} results",
            posted.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn response(posted: &[Request], request_id: &str, logs: &str) -> Value {
    let path = format!("/2018-06-01/runtime/invocation/{request_id}/response");
    let request = posted
        .iter()
        .find(|r| r.url.path() == path)
        .unwrap_or_else(|| panic!("no POST {path}; logs:\n{logs}"));
    serde_json::from_slice(&request.body).unwrap()
}

#[tokio::test]
async fn a_signed_github_push_is_answered_202_and_a_forged_one_401() {
    let config = moto_config().await;
    let table = idempotency_table(&config).await;
    let pipelines = codepipeline().await;
    let routes = std::env::temp_dir().join(format!("{}.yaml", unique("git-webhook-routes")));
    std::fs::write(
        &routes,
        format!(
            "routes:\n  - provider: github\n    project: acme/web\n    secrets: [{{ value: \"{SECRET}\" }}]\n    targets: [{{ pipeline: web-pipeline, on: [push], branches: [main] }}]\n"
        ),
    )
    .unwrap();
    let env = [
        ("AWS_ENDPOINT_URL", moto_endpoint()),
        ("AWS_ENDPOINT_URL_CODEPIPELINE", pipelines.uri()),
        ("IDEMPOTENCY_TABLE", table),
        ("GIT_WEBHOOK_CONFIG", routes.display().to_string()),
    ];
    let requests = [push_request(SECRET), push_request("forged-secret")];
    let runtime = runtime_api(&requests).await;
    let mut child = start(&runtime, &env);
    let posted = results(&runtime, 2).await;
    let _ = child.kill();
    let output = child.wait_with_output().expect("function output");
    let logs = String::from_utf8_lossy(&output.stdout).into_owned();

    let signed = response(&posted, "req-1", &logs);
    assert_eq!(signed["statusCode"], 202, "{signed}\n{logs}");
    let body: Value = serde_json::from_str(signed["body"].as_str().unwrap()).unwrap();
    assert!(
        body["started"][0]["result"]
            .as_str()
            .unwrap()
            .contains("exec-1234"),
        "{body}"
    );
    let forged = response(&posted, "req-2", &logs);
    assert_eq!(forged["statusCode"], 401, "{forged}\n{logs}");
    // What was sent (the signatures; the secret is only known here) never
    // reaches the logs: neither the forged request's signature nor the good one's.
    for request in &requests {
        let signature = request["headers"]["x-hub-signature-256"].as_str().unwrap();
        let hex = signature.trim_start_matches("sha256=");
        assert!(!logs.contains(hex), "a signature in the logs:\n{logs}");
    }
    assert!(!logs.contains(SECRET), "{logs}");

    let starts: Vec<Value> = pipelines
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| {
            r.headers
                .get("x-amz-target")
                .is_some_and(|t| t == "CodePipeline_20150709.StartPipelineExecution")
        })
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(
        starts.len(),
        1,
        "one start, none for the forged request: {starts:?}"
    );
    assert_eq!(starts[0]["name"], "web-pipeline");
    assert_eq!(
        starts[0]["sourceRevisions"],
        json!([{"actionName": "Source", "revisionType": "COMMIT_ID",
               "revisionValue": "9fceb02d0ae598e95dc970b74767f19372d61af8"}])
    );
    let names: Vec<&str> = starts[0]["variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "SIGNALBOX_GIT_PROVIDER",
            "SIGNALBOX_GIT_PROJECT",
            "SIGNALBOX_GIT_COMMIT"
        ]
    );
    let _ = std::fs::remove_file(routes);
}
