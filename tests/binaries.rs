//! Each function binary links only the AWS SDK clients its own code calls
//! (the cargo features of `shared/Cargo.toml`). Asked of cargo itself: the
//! normal (non-dev) dependency tree of each function crate, resolved as
//! `cargo lambda build -p <function>` and `sam build` resolve it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use signalbox::route::Function;

/// The optional SDK clients; every function also links SNS, SSM, DynamoDB
/// (alerts, the webhook URL, the idempotency ledger) and SQS (failure reports).
const OPTIONAL_CLIENTS: [&str; 9] = [
    "aws-sdk-cloudwatch",
    "aws-sdk-cloudwatchlogs",
    "aws-sdk-codebuild",
    "aws-sdk-codecommit",
    "aws-sdk-codedeploy",
    "aws-sdk-codepipeline",
    "aws-sdk-lambda",
    "aws-sdk-s3",
    "aws-sdk-secretsmanager",
];

/// The clients each function's own reads and actions call.
fn expected(function: Function) -> &'static [&'static str] {
    match function {
        Function::PrCheck => &["aws-sdk-codebuild", "aws-sdk-codecommit"],
        Function::BuildReport => &["aws-sdk-cloudwatchlogs", "aws-sdk-codecommit"],
        Function::PipelineAlert => &[
            "aws-sdk-cloudwatchlogs",
            "aws-sdk-codebuild",
            "aws-sdk-codepipeline",
        ],
        Function::DeployNotify => &["aws-sdk-codedeploy"],
        Function::RepoReplicate => &["aws-sdk-codebuild"],
        Function::RepoGuard => &["aws-sdk-codecommit"],
        Function::DeployGate => &["aws-sdk-cloudwatch", "aws-sdk-codedeploy", "aws-sdk-lambda"],
        Function::GitWebhook => &[
            "aws-sdk-codebuild",
            "aws-sdk-codepipeline",
            "aws-sdk-s3",
            "aws-sdk-secretsmanager",
        ],
        // S3: the job's input artifact, read with the job's credentials.
        Function::PipelineGate => &[
            "aws-sdk-cloudwatch",
            "aws-sdk-codepipeline",
            "aws-sdk-lambda",
            "aws-sdk-s3",
        ],
        Function::GitStatus => &[
            "aws-sdk-codebuild",
            "aws-sdk-codepipeline",
            "aws-sdk-secretsmanager",
        ],
    }
}

/// `function`'s normal dependency tree for Lambda's arm64 target, one line
/// per package in cargo tree's `format`.
fn tree(function: Function, format: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = Command::new(env!("CARGO"))
        .current_dir(&root)
        .args([
            "tree",
            "--locked",
            "--offline",
            "--target",
            "aarch64-unknown-linux-gnu",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["--format", format, "-p", function.name()])
        .output()
        .expect("run cargo tree");
    assert!(
        output.status.success(),
        "cargo tree -p {function} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| line.trim_end_matches(" (*)").to_owned())
        .collect()
}

/// The package names in `function`'s normal dependency tree.
fn linked(function: Function) -> BTreeSet<String> {
    tree(function, "{p}")
        .iter()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn each_function_binary_links_only_the_sdk_clients_it_calls() {
    for function in Function::ALL {
        let packages = linked(function);
        let clients: Vec<&str> = OPTIONAL_CLIENTS
            .into_iter()
            .filter(|c| packages.contains(*c))
            .collect();
        assert_eq!(
            clients,
            expected(function),
            "{function} links other optional SDK clients than its own code calls \
             (its crate must depend on signalbox with features = [\"{function}\"] only)"
        );
        for always in [
            "aws-sdk-sns",
            "aws-sdk-ssm",
            "aws-sdk-dynamodb",
            "aws-sdk-sqs",
        ] {
            assert!(packages.contains(always), "{function} lacks {always}");
        }
    }
}

#[test]
fn the_tests_and_the_cli_see_every_function_built_in() {
    for function in Function::ALL {
        assert!(
            function.is_built_in(),
            "{function} is not in the `all` feature of shared/Cargo.toml"
        );
    }
}

/// sam build builds one function after another in one target dir: a crate
/// two functions link is compiled once only if both turn on the same
/// features of it. Event streams (aws-sdk-cloudwatchlogs) or http-body 0.4
/// (aws-sdk-lambda) in some functions only made it compile the SDK's core,
/// and every SDK crate on it, three times.
#[test]
fn every_function_builds_the_crates_they_share_with_the_same_features() {
    let mut seen: BTreeMap<String, (Function, String)> = BTreeMap::new();
    for function in Function::ALL {
        for line in tree(function, "{p}|{f}") {
            let Some((package, features)) = line.split_once('|') else {
                continue;
            };
            // The function's own crate, and the shared crate with its feature.
            if package.starts_with("signalbox ") || package.starts_with(&format!("{function} ")) {
                continue;
            }
            match seen.get(package) {
                Some((first, theirs)) => assert_eq!(
                    features, theirs,
                    "{package}: {function} builds it with other features than {first}, \
                     so sam build compiles it (and what depends on it) again"
                ),
                None => {
                    seen.insert(package.to_owned(), (function, features.to_owned()));
                }
            }
        }
    }
}
