//! Each function binary links only the AWS SDK clients its own code calls
//! (the cargo features of `shared/Cargo.toml`). Asked of cargo itself: the
//! normal (non-dev) dependency tree of each function crate, resolved as
//! `cargo lambda build -p <function>` and `sam build` resolve it.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use signalbox::route::Function;

/// The optional SDK clients; every function also links SNS, SSM, DynamoDB
/// (alerts, the webhook URL, the idempotency ledger) and SQS (failure reports).
const OPTIONAL_CLIENTS: [&str; 7] = [
    "aws-sdk-cloudwatch",
    "aws-sdk-cloudwatchlogs",
    "aws-sdk-codebuild",
    "aws-sdk-codecommit",
    "aws-sdk-codedeploy",
    "aws-sdk-codepipeline",
    "aws-sdk-lambda",
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
    }
}

/// The package names in `function`'s normal dependency tree.
fn linked(function: Function) -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = Command::new(env!("CARGO"))
        .current_dir(&root)
        .args([
            "tree",
            "--locked",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["--format", "{p}", "-p", function.name()])
        .output()
        .expect("run cargo tree");
    assert!(
        output.status.success(),
        "cargo tree -p {function} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
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
