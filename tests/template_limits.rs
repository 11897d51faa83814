//! Limits the template must respect to deploy and to work as documented:
//! mirror retries that fit in the mirror build, a deploy-gate function name
//! within Lambda's 64 characters for any stack name, and queue alarms that
//! page on every new failure through a topic of their own.

// The rest of the module serves tests/template_wiring.rs.
#[allow(dead_code)]
mod template;

use serde_json::{Value, json};
use signalbox::config::{EnvReader, Mode};
use signalbox::flows::repo_replicate::{self, retry_delay};
use template::{Stack, referenced, single_key};

/// The time a mirror run needs after its wait (clone, push to each
/// replica), which docs/replication.md promises.
const MIRROR_RUN_SECONDS: u64 = 10 * 60;

/// Scenario 3: each retry sleeps its delay inside the mirror build, so the
/// delay of the last retry `MirrorRetries` allows, plus the mirror run, must
/// fit in the build's timeout; and repo-replicate accepts exactly that bound.
#[test]
fn every_mirror_retry_can_wait_and_mirror_within_the_mirror_builds_timeout() {
    let template = template::load();
    let most = template["Parameters"]["MirrorRetries"]["MaxValue"]
        .as_u64()
        .expect("MirrorRetries has a MaxValue");
    let timeout = template["Resources"]["MirrorProject"]["Properties"]["TimeoutInMinutes"]
        .as_u64()
        .expect("MirrorProject has a TimeoutInMinutes")
        * 60;
    for attempt in 1..=most {
        let delay = u64::from(retry_delay(attempt as u32));
        assert!(
            delay + MIRROR_RUN_SECONDS <= timeout,
            "the retry after attempt {attempt} waits {delay} s in a build of {timeout} s: \
             MirrorRetries may be at most {}",
            attempt - 1
        );
    }
    let read = |retries: u64| {
        let mut env = EnvReader::from_pairs(
            [
                (
                    "REPLICAS",
                    r#"{"A": [{"region": "eu-west-1", "repository": "A"}]}"#,
                ),
                ("MIRROR_PROJECT", "m"),
                ("MIRROR_RETRIES", &retries.to_string()),
                ("SNS_ENABLED", "false"),
                ("SLACK_ENABLED", "false"),
            ],
            Mode::Strict,
        );
        repo_replicate::Config::read(&mut env);
        env.finish()
    };
    assert!(read(most).is_ok(), "MIRROR_RETRIES={most} refused");
    assert!(
        read(most + 1).is_err(),
        "MIRROR_RETRIES={} accepted",
        most + 1
    );
}

/// The longest stack name CloudFormation accepts.
const LONGEST_STACK_NAME: usize = 128;

/// The id of a stack named `name` whose UUID is `uuid`.
fn stack_id(name: &str, uuid: &str) -> String {
    format!("arn:aws:cloudformation:us-east-1:123456789012:stack/{name}/{uuid}")
}

const UUID: &str = "51af3dc0-da77-11e4-872e-1234567db123";

/// A string value under the pseudo parameters of the stack `stack_id` named `name`.
fn evaluate(value: &Value, name: &str, stack_id: &str) -> String {
    let pseudo = |p: &str| match p {
        "AWS::StackName" => name.to_owned(),
        "AWS::StackId" => stack_id.to_owned(),
        "AWS::Region" => "us-east-1".to_owned(),
        "AWS::AccountId" => "123456789012".to_owned(),
        "AWS::Partition" => "aws".to_owned(),
        other => panic!("teach tests/template_limits.rs {other}"),
    };
    match value {
        Value::String(s) => s.clone(),
        _ => match single_key(value) {
            Some(("Ref", p)) => pseudo(p.as_str().expect("Ref name")),
            Some(("Fn::Sub", text)) => {
                let mut out = text.as_str().expect("Fn::Sub of a string").to_owned();
                for p in [
                    "AWS::StackName",
                    "AWS::StackId",
                    "AWS::Region",
                    "AWS::AccountId",
                    "AWS::Partition",
                ] {
                    out = out.replace(&format!("${{{p}}}"), &pseudo(p));
                }
                assert!(!out.contains("${"), "teach tests/template_limits.rs {out}");
                out
            }
            Some(("Fn::Join", args)) => {
                let separator = args[0].as_str().expect("separator");
                args[1]
                    .as_array()
                    .expect("Fn::Join list")
                    .iter()
                    .map(|v| evaluate(v, name, stack_id))
                    .collect::<Vec<_>>()
                    .join(separator)
            }
            Some(("Fn::Select", args)) => {
                let index = args[0]
                    .as_u64()
                    .or_else(|| args[0].as_str().and_then(|s| s.parse().ok()))
                    .expect("Fn::Select index") as usize;
                let list = split(&args[1], name, stack_id);
                list.get(index).cloned().expect("Fn::Select in range")
            }
            _ => panic!("teach tests/template_limits.rs {value}"),
        },
    }
}

fn split(value: &Value, name: &str, stack_id: &str) -> Vec<String> {
    let Some(("Fn::Split", args)) = single_key(value) else {
        panic!("Fn::Select of {value}")
    };
    let separator = args[0].as_str().expect("separator");
    evaluate(&args[1], name, stack_id)
        .split(separator)
        .map(str::to_owned)
        .collect()
}

/// Scenario 6: Lambda function names are at most 64 characters
/// (CreateFunction, FunctionName), and CodeDeploy's service role may invoke
/// only hooks named `CodeDeployHook_*`: deploy-gate's name must fit for every
/// stack name CloudFormation accepts, and stay distinct per stack.
#[test]
fn deploy_gates_name_fits_lambdas_limit_for_the_longest_stack_name() {
    let template = template::load();
    let mut named = 0;
    for f in template::functions(&template) {
        let Some(name) = f.properties.get("FunctionName") else {
            continue;
        };
        named += 1;
        let long = "s".repeat(LONGEST_STACK_NAME);
        let deployed = evaluate(name, &long, &stack_id(&long, UUID));
        assert!(
            deployed.len() <= 64,
            "{}: {deployed} has {} characters for a stack name of {LONGEST_STACK_NAME}",
            f.logical_id,
            deployed.len()
        );
        if f.binary == "deploy-gate" {
            assert!(deployed.starts_with("CodeDeployHook_"), "{deployed}");
        }
        // Two stacks of the same name in two regions, or one deleted and
        // created again, differ in their ids.
        let one = evaluate(name, "signalbox", &stack_id("signalbox", UUID));
        let other = evaluate(
            name,
            "signalbox",
            &stack_id("signalbox", "7d2c8e10-da77-11e4-872e-1234567db123"),
        );
        assert_ne!(one, other, "one name per stack");
    }
    assert!(named > 0, "deploy-gate is named for CodeDeploy");
}

/// Scenario 7: both failure queues alarm on every new message (messages
/// sent in a period, not the depth: a `Maximum > 0` alarm already in ALARM
/// says nothing of later failures; the scan queue's dead-letter queue, which
/// SQS fills without "sending", on its depth), and notify a topic of operations, never
/// the alert topic, whose own failures they may be reporting.
#[test]
fn each_new_failure_in_a_failure_queue_pages_through_an_operations_topic() {
    let template = template::load();
    let resources = template["Resources"].as_object().expect("Resources");
    let mut queues = Vec::new();
    for (id, alarm) in resources {
        if alarm["Type"] != "AWS::CloudWatch::Alarm" {
            continue;
        }
        let p = &alarm["Properties"];
        if p["Namespace"] != "AWS/SQS" {
            continue;
        }
        let queue = p["Dimensions"]
            .as_array()
            .and_then(|d| d.iter().find(|d| d["Name"] == "QueueName"))
            .and_then(|d| referenced(&d["Value"]))
            .unwrap_or_else(|| panic!("{id}: no QueueName dimension"));
        queues.push(queue.to_owned());
        if queue == "GuardScanDeadLetterQueue" {
            // SQS moves messages there itself (a redrive policy), which
            // NumberOfMessagesSent does not count: the depth alarms.
            assert_eq!(
                p["MetricName"], "ApproximateNumberOfMessagesVisible",
                "{id}"
            );
            assert_eq!(p["Statistic"], "Maximum", "{id}");
        } else {
            assert_eq!(p["MetricName"], "NumberOfMessagesSent", "{id}");
            assert_eq!(p["Statistic"], "Sum", "{id}");
        }
        assert_eq!(p["ComparisonOperator"], "GreaterThanThreshold", "{id}");
        assert_eq!(p["Threshold"], json!(0), "{id}");
        let actions = p["AlarmActions"].as_array().expect("AlarmActions");
        assert!(!actions.is_empty(), "{id}: notifies no one");
        for action in actions {
            let text = action.to_string();
            assert!(
                !text.contains("AlertTopic"),
                "{id}: notifies the alert topic"
            );
            assert!(
                text.contains("OperationsTopic"),
                "{id}: {text} is not the operations topic"
            );
        }
    }
    queues.sort();
    assert_eq!(
        queues,
        [
            "FailedInvocationsQueue",
            "GuardScanDeadLetterQueue",
            "UndeliveredEventsQueue"
        ]
    );
    assert!(
        template["Parameters"]["OperationsTopicArn"].is_object(),
        "a parameter names an operations topic of your own"
    );
}

/// The descriptions of the template's rule `name` whose assertions fail
/// for the given parameters (empty: CloudFormation accepts them).
fn refused_by(name: &str, overrides: &[(&str, &str)]) -> Vec<String> {
    let template = template::load();
    let rule = &template["Rules"][name];
    assert!(rule.is_object(), "no rule {name}");
    let stack = Stack::with(&template, overrides);
    if rule.get("RuleCondition").is_some_and(|c| !stack.holds(c)) {
        return Vec::new();
    }
    rule["Assertions"]
        .as_array()
        .expect("Assertions")
        .iter()
        .filter(|a| !stack.holds(&a["Assert"]))
        .map(|a| a["AssertDescription"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// The queue alarms report a failing alert topic: they must not notify it.
#[test]
fn the_operations_topic_cannot_be_the_alert_topic() {
    const RULE: &str = "OperationsTopicIsNotTheAlertTopic";
    let same = "arn:aws:sns:us-east-1:123456789012:alerts";
    let refused = refused_by(
        RULE,
        &[("AlertTopicArn", same), ("OperationsTopicArn", same)],
    );
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("OperationsTopicArn"), "{refused:?}");
    for accepted in [
        &[
            ("AlertTopicArn", same),
            (
                "OperationsTopicArn",
                "arn:aws:sns:us-east-1:123456789012:ops",
            ),
        ][..],
        &[("AlertTopicArn", same)][..],
        &[("OperationsTopicArn", same)][..],
        &[][..],
    ] {
        assert_eq!(
            refused_by(RULE, accepted),
            Vec::<String>::new(),
            "{accepted:?}"
        );
    }
}

/// Issue 21, item 9: the mirror role pulls only the sources listed in
/// `ReplicaSources`, so `Replicas` without that list (or with an empty item
/// in it) is refused before anything is created, and so is a list without
/// `Replicas`.
#[test]
fn replicas_without_replica_sources_are_refused_by_a_rule() {
    const NEEDS_SOURCES: &str = "ReplicationNeedsReplicaSources";
    const NEEDS_REPLICAS: &str = "ReplicaSourcesNeedReplicas";
    let replicas = r#"{"A": [{"region": "eu-west-1", "repository": "A"}], "my-repo.v2": [{"region": "eu-west-1", "repository": "my-repo.v2"}]}"#;
    // An empty list fails both assertions (no empty item, not all empty);
    // an empty item among names fails the first only.
    for (sources, failed) in [("", 2), ("A,,my-repo.v2", 1), ("A,my-repo.v2,", 1)] {
        let refused = refused_by(
            NEEDS_SOURCES,
            &[("Replicas", replicas), ("ReplicaSources", sources)],
        );
        assert_eq!(refused.len(), failed, "{sources:?}: {refused:?}");
        for description in &refused {
            assert!(description.contains("ReplicaSources"), "{refused:?}");
        }
    }
    let refused = refused_by(NEEDS_REPLICAS, &[("ReplicaSources", "A")]);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].contains("ReplicaSources must be empty"),
        "{refused:?}"
    );
    for accepted in [
        &[("Replicas", replicas), ("ReplicaSources", "A,my-repo.v2")][..],
        &[][..],
        &[("Replicas", "{}"), ("ReplicaSources", "")][..],
    ] {
        for rule in [NEEDS_SOURCES, NEEDS_REPLICAS] {
            assert_eq!(
                refused_by(rule, accepted),
                Vec::<String>::new(),
                "{rule} {accepted:?}"
            );
        }
    }
}

/// Review of issue 21, finding 2: the ReplicationNeedsReplicaSources rule
/// refuses an empty ReplicaSources however it reaches the Rules, as one
/// empty member (`[""]`, what an empty CommaDelimitedList gives) or as no
/// member at all (`[]`). The evaluator writes a list parameter as
/// CloudFormation's documented split does (never `[]`), so the `[]` case
/// puts the list in place of the rule's `Ref`s.
#[test]
fn replicas_with_an_empty_replica_sources_list_are_refused_in_either_form() {
    let template = template::load();
    let rule = &template["Rules"]["ReplicationNeedsReplicaSources"];
    let replicas = r#"{"A": [{"region": "eu-west-1", "repository": "A"}]}"#;
    let stack = Stack::with(&template, &[("Replicas", replicas)]);
    assert!(stack.holds(&rule["RuleCondition"]));
    let failed = |sources: &Value| {
        rule["Assertions"]
            .as_array()
            .expect("Assertions")
            .iter()
            .filter(|a| !stack.holds(&with_list(&a["Assert"], "ReplicaSources", sources)))
            .count()
    };
    for sources in [json!([""]), json!([])] {
        assert!(
            failed(&sources) > 0,
            "ReplicaSources {sources} with Replicas is accepted"
        );
    }
    assert_eq!(failed(&json!(["A"])), 0, "a listed source is accepted");
}

/// `value` with every `{"Ref": name}` replaced by `list`.
fn with_list(value: &Value, name: &str, list: &Value) -> Value {
    match value {
        Value::Object(map) if map.len() == 1 && map.get("Ref") == Some(&json!(name)) => {
            list.clone()
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), with_list(v, name, list)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|i| with_list(i, name, list)).collect())
        }
        other => other.clone(),
    }
}

/// Review of issue 21, finding 1: IAM reads `*` and `?` in a Resource as
/// wildcards, so a ReplicaSources member `*` or `team-*` would grant GitPull
/// on many repositories. The parameter's AllowedPattern, which
/// CloudFormation applies to each member of a CommaDelimitedList, admits
/// CodeCommit repository names only (or the empty default).
#[test]
fn a_wildcard_in_replica_sources_is_refused_by_the_parameters_pattern() {
    let template = template::load();
    let parameter = &template["Parameters"]["ReplicaSources"];
    let pattern = parameter["AllowedPattern"]
        .as_str()
        .expect("ReplicaSources has an AllowedPattern");
    assert!(
        parameter["ConstraintDescription"].is_string(),
        "a ConstraintDescription says what is refused"
    );
    let pattern = regex::Regex::new(pattern).expect("AllowedPattern is a regex");
    // What CloudFormation checks: each member, trimmed, matched whole.
    let members = |list: &str| -> Vec<String> {
        match Stack::with(&template, &[("ReplicaSources", list)])
            .resolve(&json!({"Ref": "ReplicaSources"}))
        {
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| i.as_str().expect("string member").to_owned())
                .collect(),
            other => panic!("{other:?}"),
        }
    };
    let accepts = |list: &str| {
        members(list).iter().all(|m| {
            pattern
                .find(m)
                .is_some_and(|found| found.start() == 0 && found.end() == m.len())
        })
    };
    for refused in ["*", "team-*", "A,team-*", "app?", "A/B", &"a".repeat(101)] {
        assert!(!accepts(refused), "{refused:?} is accepted");
    }
    for accepted in [
        "",
        "A",
        "MyDemoRepo,my-repo.v2,my_repo",
        "A, my-repo.v2",
        &"a".repeat(100),
    ] {
        assert!(accepts(accepted), "{accepted:?} is refused");
    }
}
