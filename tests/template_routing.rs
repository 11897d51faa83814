//! The template routes as `signalbox::route` does, decided by a real
//! EventBridge pattern matcher (moto's): each function's rule pattern from
//! `template.yaml` goes on a bus with an SQS queue as target, every sample in
//! `events/` is put on that bus, and the queues that received it must be
//! exactly those of the functions `route::functions` names (none when it
//! ignores the event). The mirror project's name, known only once deployed,
//! is `signalbox-mirror` here (a stack named `signalbox`); the scheduled
//! reconciliation is a Schedule event, not a pattern, and is checked in
//! tests/template_wiring.rs.

// The rest of the module serves tests/template_wiring.rs.
#[allow(dead_code)]
mod template;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use signalbox::event::Event;
use signalbox::route::{Function, RULES, Route, THE_MIRROR_PROJECT, route};
use signalbox_tests::{moto_config, unique};
use template::Stack;

/// One bus with a rule and a queue per function, patterns as `stack` resolves them.
struct Bus {
    name: String,
    events: aws_sdk_eventbridge::Client,
    sqs: aws_sdk_sqs::Client,
    queues: BTreeMap<Function, String>,
}

impl Bus {
    async fn new(stack: &Stack<'_>) -> Bus {
        let config = moto_config().await;
        let events = aws_sdk_eventbridge::Client::new(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        let name = unique("signalbox-bus");
        events
            .create_event_bus()
            .name(&name)
            .send()
            .await
            .expect("create_event_bus");
        let mut queues = BTreeMap::new();
        for function in template::functions(stack.template) {
            let which = Function::from_name(&function.binary).unwrap_or_else(|| {
                panic!(
                    "{} builds {}, which is no signalbox function",
                    function.logical_id, function.binary
                )
            });
            let queue_url = sqs
                .create_queue()
                .queue_name(unique(&function.binary))
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
            for (event_name, rule) in function.eventbridge_rules() {
                let pattern = stack
                    .resolve(&rule["Pattern"])
                    .expect("a pattern is never AWS::NoValue");
                let pattern = name_the_mirror_project(pattern);
                let rule_name = format!("{}{event_name}", function.logical_id);
                events
                    .put_rule()
                    .name(&rule_name)
                    .event_bus_name(&name)
                    .event_pattern(pattern.to_string())
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("put_rule {rule_name} {pattern}: {e:?}"));
                events
                    .put_targets()
                    .rule(&rule_name)
                    .event_bus_name(&name)
                    .targets(
                        aws_sdk_eventbridge::types::Target::builder()
                            .id(&function.binary)
                            .arn(&queue_arn)
                            .build()
                            .expect("target"),
                    )
                    .send()
                    .await
                    .expect("put_targets");
            }
            assert!(
                queues.insert(which, queue_url).is_none(),
                "two template functions build {which}"
            );
        }
        Bus {
            name,
            events,
            sqs,
            queues,
        }
    }

    /// Puts `sample` on the bus; the functions whose queue received it.
    async fn deliver(&self, sample: &Value) -> Vec<Function> {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.name)
            .source(sample["source"].as_str().expect("source"))
            .detail_type(sample["detail-type"].as_str().expect("detail-type"))
            .detail(sample["detail"].to_string())
            .build();
        let output = self
            .events
            .put_events()
            .entries(entry)
            .send()
            .await
            .expect("put_events");
        assert_eq!(
            output.failed_entry_count, 0,
            "put_events failed: {output:?}"
        );
        let mut received = Vec::new();
        for (function, queue_url) in &self.queues {
            let messages = self
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive_message")
                .messages
                .unwrap_or_default();
            for message in &messages {
                let body: Value =
                    serde_json::from_str(message.body().expect("body")).expect("event JSON");
                assert_eq!(
                    body["detail"], sample["detail"],
                    "{function}'s queue got another event"
                );
                self.sqs
                    .delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(message.receipt_handle().expect("receipt handle"))
                    .send()
                    .await
                    .expect("delete_message");
            }
            assert!(messages.len() <= 1, "{function} got the event twice");
            if !messages.is_empty() {
                received.push(*function);
            }
        }
        received
    }
}

/// Every sample event (events/*.json; events/invalid/ holds negative samples).
fn samples() -> Vec<(String, Value)> {
    let dir: PathBuf = template::repo_root().join("events");
    let mut samples: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let name = path
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&path).expect("sample");
            let json =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
            (name, json)
        })
        .collect();
    samples.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        samples.len() >= 5,
        "events/ should hold samples for every function, found {}",
        samples.len()
    );
    samples
}

/// The mirror project's name in this test's stack.
const MIRROR_PROJECT: &str = "signalbox-mirror";

/// The pattern with `!Ref MirrorProject` replaced by the project's name.
fn name_the_mirror_project(pattern: Value) -> Value {
    match pattern {
        Value::Object(map) if map.get("Ref") == Some(&Value::from("MirrorProject")) => {
            Value::from(MIRROR_PROJECT)
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, name_the_mirror_project(v)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(name_the_mirror_project).collect())
        }
        other => other,
    }
}

fn routed(name: &str, sample: &Value) -> Route {
    let event = Event::parse(sample).unwrap_or_else(|e| panic!("{name}: {e}"));
    route(&event)
}

/// The functions whose EventBridge rules match the sample, as `route` decides
/// with the mirror project named [`MIRROR_PROJECT`]; schedules deliver no sample.
fn routed_to(name: &str, sample: &Value) -> Vec<Function> {
    let event = Event::parse(sample).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut functions = Vec::new();
    for rule in RULES.iter().filter(|r| r.matches(&event)) {
        let names_the_mirror = rule
            .detail
            .iter()
            .any(|(_, values)| values.contains(&THE_MIRROR_PROJECT));
        if !rule.is_eventbridge_pattern()
            || (names_the_mirror && event.raw_detail["project-name"] != MIRROR_PROJECT)
        {
            continue;
        }
        if !functions.contains(&rule.function) {
            functions.push(rule.function);
        }
    }
    functions.sort();
    functions
}

/// Compares EventBridge's deliveries with `expected` for every sample.
async fn check(stack: &Stack<'_>, mut expected: impl FnMut(&str, &Value) -> Vec<Function>) {
    let bus = Bus::new(stack).await;
    let mut mismatches = Vec::new();
    let mut handled = BTreeMap::<Function, usize>::new();
    for (name, sample) in samples() {
        let want = expected(&name, &sample);
        let got = bus.deliver(&sample).await;
        if got != want {
            mismatches.push(format!(
                "{name}: route says {want:?}, EventBridge delivered to {got:?}"
            ));
        }
        for f in want {
            *handled.entry(f).or_default() += 1;
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    // deploy-gate has no rule: CodeDeploy invokes it directly.
    for function in Function::ALL
        .into_iter()
        .filter(|f| signalbox::route::RULES.iter().any(|r| r.function == *f))
    {
        assert!(
            handled.contains_key(&function),
            "no sample in events/ reaches {function}: the agreement is unproven for it"
        );
    }
}

#[tokio::test]
async fn template_rules_route_every_sample_as_route_does() {
    let template = template::load();
    let stack = Stack::with_defaults(&template);
    let mut ignored = 0;
    let mut both = 0;
    check(&stack, |name, sample| {
        let functions = routed_to(name, sample);
        match routed(name, sample) {
            // `route` names the first of the functions EventBridge delivers to
            // (a schedule delivers without a pattern, so none here).
            Route::Handle(f) if sample["source"] != "aws.events" => {
                assert!(functions.contains(&f), "{name}: {f} not in {functions:?}")
            }
            Route::Handle(_) => assert!(functions.is_empty(), "{name}"),
            Route::Ignore(_) => ignored += 1,
        }
        both += usize::from(functions.len() > 1);
        functions
    })
    .await;
    assert!(
        both > 0,
        "no sample reaches two functions: delivery to every matching rule is unproven"
    );
    assert!(
        ignored > 0,
        "no sample is ignored: the negative side is unproven"
    );
}

/// The repository of a CodeCommit event (PR events list theirs).
fn repositories(sample: &Value) -> Vec<String> {
    let detail = &sample["detail"];
    match (&detail["repositoryName"], &detail["repositoryNames"]) {
        (Value::String(one), _) => vec![one.clone()],
        (_, Value::Array(many)) => many
            .iter()
            .filter_map(|r| r.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn narrowing_parameters_keep_other_repositories_and_pipelines_out() {
    let template = template::load();
    let stack = Stack::with(
        &template,
        &[
            ("RepositoryNames", "MyDemoRepo,OtherRepo"),
            ("PipelineNames", "myPipeline"),
        ],
    );
    let mut narrowed_out = Vec::new();
    check(&stack, |name, sample| {
        let mut kept = Vec::new();
        for want in routed_to(name, sample) {
            let keep = match want {
                // Repository narrowing applies to CodeCommit events, not to
                // the mirror project's builds.
                Function::PrCheck | Function::RepoReplicate
                    if sample["source"] == "aws.codecommit" =>
                {
                    repositories(sample)
                        .iter()
                        .any(|r| r == "MyDemoRepo" || r == "OtherRepo")
                }
                Function::PipelineAlert => sample["detail"]["pipeline"] == "myPipeline",
                _ => true,
            };
            if keep {
                kept.push(want);
            } else {
                narrowed_out.push(name.to_owned());
            }
        }
        kept
    })
    .await;
    assert!(
        !narrowed_out.is_empty(),
        "no sample is from another repository or pipeline: narrowing is unproven"
    );
}

/// Issue 21, item 9: a mirror build that repo-replicate's role did not start
/// notifies the operations topic when it ends. CloudTrail's `StartBuild`
/// record (`MirrorStartedByOthersRule`) reaches EventBridge only while a trail
/// logs management events, and only when its `requestParameters` name the
/// project as the rule expects; the build's own `CodeBuild Build State
/// Change` always names the project and, in `additional-information`, its
/// `initiator` (`<role name>/<session name>` for an assumed role). The
/// template's pattern goes on a bus of moto's EventBridge with a queue as
/// target; each case is the mirror sample with another status, project or
/// initiator, and only the alerting ones arrive.
#[tokio::test]
async fn a_mirror_build_not_started_by_repo_replicate_alerts_when_it_ends() {
    const ROLE: &str = "signalbox-RepoReplicateRole-1A2B3C4D5E6F";
    let template = template::load();
    let stack = Stack::with_defaults(&template);
    let rule = &template["Resources"]["MirrorBuiltByOthersRule"];
    assert_eq!(
        rule["Type"], "AWS::Events::Rule",
        "the template has no rule MirrorBuiltByOthersRule"
    );
    let target = &rule["Properties"]["Targets"][0];
    assert_eq!(
        target["Arn"]["Fn::If"][1],
        serde_json::json!({"Ref": "OperationsTopic"}),
        "the rule notifies the operations topic"
    );
    assert_eq!(
        target["DeadLetterConfig"]["Arn"],
        serde_json::json!({"Fn::GetAtt": ["UndeliveredEventsQueue", "Arn"]}),
        "what EventBridge cannot deliver goes to the undelivered-events queue"
    );
    assert!(
        target["RetryPolicy"]["MaximumRetryAttempts"].as_u64() > Some(0),
        "EventBridge retries the notice: {target}"
    );
    // EventBridge may publish to the created topic, and send what it cannot
    // deliver to the undelivered-events queue, only for rules named in their
    // policies.
    let rule_arn =
        serde_json::json!({"Fn::GetAtt": ["MirrorBuiltByOthersRule", "Arn"]}).to_string();
    for policy in ["OperationsTopicPolicy", "UndeliveredEventsQueuePolicy"] {
        assert!(
            template["Resources"][policy]
                .to_string()
                .contains(&rule_arn),
            "{policy} does not name MirrorBuiltByOthersRule"
        );
    }
    /// `!Sub` with repo-replicate's role name (the stack's only variable here).
    fn name_the_role(pattern: Value) -> Value {
        match pattern {
            Value::Object(map) => match map.get("Fn::Sub") {
                Some(Value::String(text)) => {
                    Value::from(text.replace("${RepoReplicateRole}", ROLE))
                }
                _ => Value::Object(
                    map.into_iter()
                        .map(|(k, v)| (k, name_the_role(v)))
                        .collect(),
                ),
            },
            Value::Array(items) => Value::Array(items.into_iter().map(name_the_role).collect()),
            other => other,
        }
    }
    let pattern = stack
        .resolve(&rule["Properties"]["EventPattern"])
        .expect("a pattern");
    let pattern = name_the_role(name_the_mirror_project(pattern)).to_string();
    let config = signalbox_tests::moto_config().await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let bus = unique("mirror-builds");
    events
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .expect("create_event_bus");
    let queue_url = sqs
        .create_queue()
        .queue_name(&bus)
        .send()
        .await
        .expect("create_queue")
        .queue_url
        .expect("queue url");
    events
        .put_rule()
        .name(&bus)
        .event_bus_name(&bus)
        .event_pattern(&pattern)
        .send()
        .await
        .unwrap_or_else(|e| panic!("put_rule {pattern}: {e:?}"));
    events
        .put_targets()
        .rule(&bus)
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("operations")
                .arn(format!("arn:aws:sqs:us-east-1:123456789012:{bus}"))
                .build()
                .expect("target"),
        )
        .send()
        .await
        .expect("put_targets");
    let sample: Value = serde_json::from_str(
        &std::fs::read_to_string(
            template::repo_root().join("events/codebuild-mirror-build-failed.json"),
        )
        .expect("the mirror sample"),
    )
    .expect("JSON");
    assert!(
        sample["detail"]["additional-information"]["initiator"]
            .as_str()
            .is_some_and(|i| i.starts_with(&format!("{ROLE}/"))),
        "the sample is a build repo-replicate's role started"
    );
    let ours = format!("{ROLE}/signalbox-RepoReplicateFunction-1A2B3C4D5E6F");
    let cases = [
        (
            "repo-replicate's failed build",
            "FAILED",
            MIRROR_PROJECT,
            ours.as_str(),
        ),
        ("repo-replicate's build", "SUCCEEDED", MIRROR_PROJECT, &ours),
        ("another role", "SUCCEEDED", MIRROR_PROJECT, "Admin/alice"),
        ("an IAM user", "FAILED", MIRROR_PROJECT, "mallory"),
        (
            "a pipeline",
            "SUCCEEDED",
            MIRROR_PROJECT,
            "codepipeline/deploy",
        ),
        (
            "a role named alike",
            "STOPPED",
            MIRROR_PROJECT,
            &format!("{ROLE}-copy/s"),
        ),
        (
            "another role, timed out",
            "TIMED_OUT",
            MIRROR_PROJECT,
            "Admin/alice",
        ),
        (
            "another role, fault",
            "FAULT",
            MIRROR_PROJECT,
            "Admin/alice",
        ),
        // When it starts too: whoever started it chooses when it ends.
        (
            "another role, just started",
            "IN_PROGRESS",
            MIRROR_PROJECT,
            "Admin/alice",
        ),
        (
            "repo-replicate's build, started",
            "IN_PROGRESS",
            MIRROR_PROJECT,
            &ours,
        ),
        // A build event without an initiator: alerted, never passed over.
        ("no initiator", "FAILED", MIRROR_PROJECT, ""),
        (
            "another project",
            "FAILED",
            "someone-elses-project",
            "Admin/alice",
        ),
    ];
    for (who, status, project, initiator) in &cases {
        let mut detail = sample["detail"].clone();
        detail["build-status"] = Value::from(*status);
        detail["project-name"] = Value::from(*project);
        if initiator.is_empty() {
            if let Some(info) = detail["additional-information"].as_object_mut() {
                info.remove("initiator");
            }
        } else {
            detail["additional-information"]["initiator"] = Value::from(*initiator);
        }
        detail["signalbox-test-case"] = Value::from(*who);
        let output = events
            .put_events()
            .entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .event_bus_name(&bus)
                    .source("aws.codebuild")
                    .detail_type("CodeBuild Build State Change")
                    .detail(detail.to_string())
                    .build(),
            )
            .send()
            .await
            .expect("put_events");
        assert_eq!(output.failed_entry_count, 0, "{output:?}");
    }
    let mut alerted: Vec<String> = signalbox_tests::drain_queue(&config, &queue_url)
        .await
        .iter()
        .map(|m| {
            m["detail"]["signalbox-test-case"]
                .as_str()
                .unwrap_or("?")
                .to_owned()
        })
        .collect();
    alerted.sort();
    let mut expected = vec![
        "a pipeline",
        "a role named alike",
        "an IAM user",
        "another role",
        "another role, fault",
        "another role, just started",
        "another role, timed out",
        "no initiator",
    ];
    expected.sort();
    assert_eq!(alerted, expected, "{pattern}");
}
