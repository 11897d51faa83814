//! git-webhook's archive target (issue 18): "The archive target streams a
//! multi-megabyte archive from a local HTTP stand-in of the host's API into
//! moto S3. Peak RSS stays well under the archive's size."
//!
//! Through the real path, planner and executor (`carry_out`), with a
//! deadline of its own: git-webhook's 8-second answer budget (whose
//! refusal `git_webhook_moto.rs` tests) is too short for this debug build
//! on a loaded machine.
//!
//! The one test of its binary, so the process's peak RSS (`VmHWM`, reset
//! through `/proc/self/clear_refs` just before the request) is this
//! request's: the host stand-in generates the archive as it writes it, and
//! moto keeps the object in its own process.

use std::time::{Duration, Instant};

use serde_json::json;
use sha2::Digest;
use signalbox::aws::Aws;
use signalbox::effects::archive::{ArchiveHosts, WebhookEffects};
use signalbox::effects::slack::UrlRule;
use signalbox::effects::{AwsEffects, Done};
use signalbox::git::Provider;
use signalbox::git::config::RoutesConfig;
use signalbox::git::payload::{Hook, parse};
use signalbox::invocation::Deadline;
use signalbox::webhook::Routes;
use signalbox_tests::{archive_bytes, archive_host, moto_config, unique};

const SIZE: u64 = 64 * 1024 * 1024;
const COMMIT: &str = "9fceb02d0ae598e95dc970b74767f19372d61af8";

/// A field of /proc/self/status in KiB (`VmRSS`, `VmHWM`).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_archive_target_streams_a_multi_megabyte_archive_into_moto_s3_and_peak_rss_stays_under_a_quarter_of_its_size()
 {
    let config = moto_config().await;
    let aws = Aws::new(&config);
    let bucket = unique("archives");
    aws.s3
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create_bucket");
    let token = "gh-archive-token";
    let parameter = format!("/signalbox/git/{}", unique("gh-archive"));
    aws.ssm
        .put_parameter()
        .name(&parameter)
        .value(token)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("put_parameter");
    let (host, requests) = archive_host(SIZE, true, &format!("Bearer {token}")).await;
    let routes_text = format!(
        r#"
routes:
  - provider: github
    project: acme/web
    secrets: [{{ value: "gh-secret" }}]
    api_url: {host}
    archive_token: {{ parameter: "{parameter}" }}
    targets:
      - archive: {{ bucket: {bucket}, key: "{{project}}/{{branch}}/source.zip", max_bytes: 134217728 }}
        branches: [main]
"#
    );
    let parsed = RoutesConfig::parse(&routes_text).expect("routes");
    let routes = Routes::inline(parsed.clone()).expect("inline secrets");
    let mut archives = ArchiveHosts::read(&aws, &parsed).await;
    archives.url_rule = UrlRule::TestOnlyAllowHttp;
    let effects = WebhookEffects {
        aws: AwsEffects {
            aws: aws.clone(),
            slack: None,
            ledger: None,
            failure_queue: None,
            routes: Default::default(),
        },
        archives,
    };
    let body = json!({
        "ref": "refs/heads/main",
        "before": "1111111111111111111111111111111111111111",
        "after": COMMIT,
        "repository": {"full_name": "acme/web", "clone_url": "https://github.com/acme/web.git"},
        "pusher": {"name": "dev"},
        "head_commit": {"id": COMMIT, "message": "ship it"},
        "commits": [{"id": COMMIT, "message": "ship it", "added": ["src/a.rs"], "modified": [], "removed": []}]
    })
    .to_string();
    // The peak from here on: "5" resets VmHWM to the current RSS (proc(5),
    // /proc/pid/clear_refs).
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
    let before_kib = status_kib("VmRSS");
    let started = Instant::now();
    let Hook::Changes(events) =
        parse(Provider::Github, "push", body.as_bytes()).expect("a GitHub push")
    else {
        panic!("a push is a change")
    };
    let route = routes
        .config
        .route(Provider::Github, "acme/web")
        .expect("the route");
    let plan = signalbox::flows::git_webhook::plan("delivery-1", route, &events, &aws)
        .await
        .expect("planned")
        .expect("a start");
    let done =
        signalbox::carry_out(&plan, &effects, Deadline::after(Duration::from_secs(120))).await;
    let took = started.elapsed();
    let peak_kib = status_kib("VmHWM");
    let grown = (peak_kib.saturating_sub(before_kib)) * 1024;
    eprintln!(
        "archive of {SIZE} bytes: stored in {took:?}; RSS before {before_kib} KiB, peak {peak_kib} KiB, grown {} KiB",
        grown / 1024
    );
    let [(key, Ok(Done::Executed(said)))] = done.as_slice() else {
        panic!("one archive stored: {done:?}")
    };
    assert_eq!(
        key,
        &format!("git-webhook#github:delivery-1#PutArchive#s3://{bucket}/acme/web/main/source.zip")
    );
    assert!(
        said.contains(&format!(
            "{SIZE} bytes stored at s3://{bucket}/acme/web/main/source.zip"
        )),
        "{said}"
    );
    assert_eq!(
        requests.lock().unwrap().as_slice(),
        [format!("get /repos/acme/web/zipball/{COMMIT} http/1.1")],
        "one read of the commit's zipball"
    );
    assert!(
        grown < SIZE / 4,
        "peak RSS grew by {grown} bytes streaming a {SIZE}-byte archive"
    );

    // The object holds exactly the archive's bytes.
    let mut expected = sha2::Sha256::new();
    let mut piece = vec![0u8; 1024 * 1024];
    let mut offset = 0;
    while offset < SIZE {
        archive_bytes(offset, &mut piece);
        expected.update(&piece);
        offset += piece.len() as u64;
    }
    let mut stored = sha2::Sha256::new();
    let mut object = aws
        .s3
        .get_object()
        .bucket(&bucket)
        .key("acme/web/main/source.zip")
        .send()
        .await
        .expect("get_object")
        .body;
    let mut length = 0u64;
    while let Some(chunk) = object.try_next().await.expect("read the object") {
        length += chunk.len() as u64;
        stored.update(&chunk);
    }
    assert_eq!(length, SIZE);
    assert_eq!(
        hex::encode(stored.finalize()),
        hex::encode(expected.finalize()),
        "the stored object is the archive, byte for byte"
    );
}
