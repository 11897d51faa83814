//! Every Allow statement of `template.yaml` grants what it says, checked
//! against the Service Authorization Reference as cfn-lint ships it
//! (`cfnlint/data/AdditionalSpecs/Policies.json` in the repository's `.venv`,
//! which `./scripts/test` installs from scripts/requirements.txt).
//!
//! The reference lists, for each action, the resource types it can be scoped
//! to; an action with none "does not support specifying a resource ARN in the
//! Resource element" and needs `"Resource": "*"`
//! (<https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html>).
//! A statement that scopes such an action to an ARN, or a typed action to an
//! ARN of another type, grants nothing for it: AccessDenied once deployed.
//!
//! The statements are found wherever a resource has a `PolicyDocument` (role
//! inline policies, queue and topic policies), each `Fn::If` taken both ways,
//! so a function or role added later is checked without changing this file.

// The rest of the module serves tests/template_wiring.rs.
#[allow(dead_code)]
mod template;

use std::collections::BTreeMap;
use std::path::PathBuf;

use regex::Regex;
use serde_json::Value;
use template::{Stack, every_variant, single_key};

const PARTITION: &str = "aws";
const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";

/// Sample values of parameters that hold ARNs or names and default to empty:
/// what a user would pass. A parameter used in a statement with an empty
/// default and no sample here fails the test with its name.
const SAMPLE_PARAMETERS: &[(&str, &str)] = &[
    ("AlertTopicArn", "arn:aws:sns:us-east-1:123456789012:alerts"),
    (
        "SlackWebhookKmsKeyArn",
        "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    ),
    (
        "GateFunctionArns",
        "arn:aws:lambda:us-east-1:123456789012:function:smoke,arn:aws:lambda:us-east-1:123456789012:function:probe",
    ),
    ("PrCheckProjectName", "my-pr-check"),
    ("RoutingParameter", "/signalbox/routing"),
    (
        "RoutingTopicArns",
        "arn:aws:sns:us-east-1:123456789012:payments,arn:aws:sns:us-east-1:123456789012:platform",
    ),
    (
        "BuildLogGroupArns",
        "arn:aws:logs:us-east-1:123456789012:log-group:/custom/builds,arn:aws:logs:us-east-1:123456789012:log-group:/team/ci",
    ),
    ("PrCheckRepositoryName", "MyDemoRepo"),
    (
        "GateConfigKmsKeyArn",
        "arn:aws:kms:us-east-1:123456789012:key/abcd1234-ab12-cd34-ef56-abcdef123456",
    ),
    (
        "GitWebhookPipelineArns",
        "arn:aws:codepipeline:us-east-1:123456789012:payments-pipeline",
    ),
    (
        "GitWebhookBuildProjectArns",
        "arn:aws:codebuild:us-east-1:123456789012:project/payments-mr-check",
    ),
    (
        "GitWebhookSecretArns",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:signalbox/git/gitlab-AbCdEf",
    ),
    (
        "GitWebhookSecretParameterArns",
        "arn:aws:ssm:us-east-1:123456789012:parameter/signalbox/git/github",
    ),
    (
        "GitTokenKmsKeyArn",
        "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-0a1b-2c3d-4e5f-0a1b2c3d4e5f",
    ),
    ("FingerprintKeyParameterName", "/signalbox/fingerprint-key"),
    // Fn::ForEach generates one mirror policy per source (template::load_with).
    ("ReplicaSources", "MyDemoRepo,my-repo.v2"),
    ("GitWebhookArchiveBucket", "acme-sources"),
    ("GitWebhookArchivePrefix", "sources/"),
    (
        "GitWebhookArchiveKmsKeyArn",
        "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-0a1b-2c3d-4e5f-0a1b2c3d4e5f",
    ),
];

/// Policies.json under the repository's `.venv` (any Python version).
fn policies_json() -> PathBuf {
    let lib = template::repo_root().join(".venv/lib");
    let entries = std::fs::read_dir(&lib).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run scripts/setup-venv (./scripts/test does) to install cfn-lint",
            lib.display()
        )
    });
    entries
        .filter_map(Result::ok)
        .map(|e| {
            e.path()
                .join("site-packages/cfnlint/data/AdditionalSpecs/Policies.json")
        })
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no cfnlint Policies.json under {}", lib.display()))
}

/// The reference: per service prefix, per lowercase action, its resource
/// types' ARN patterns (empty: the action takes no resource type).
struct Reference {
    services: Value,
}

impl Reference {
    fn load() -> Reference {
        let path = policies_json();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        Reference {
            services: serde_json::from_str(&text).expect("Policies.json is JSON"),
        }
    }

    /// The ARN patterns of `action`'s resource types, or Err when the
    /// reference does not know the action.
    fn resource_patterns(&self, action: &str) -> Result<Vec<(String, Regex)>, String> {
        let (service, name) = action
            .split_once(':')
            .ok_or_else(|| format!("{action}: not service:Action"))?;
        let service = &self.services[service.to_ascii_lowercase()];
        let entry = &service["Actions"][name.to_ascii_lowercase()];
        if entry.is_null() {
            return Err(format!(
                "{action}: not in the Service Authorization Reference"
            ));
        }
        Ok(entry["Resources"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                let t = t.as_str().expect("resource type name");
                // The data names some types in another case in an action's
                // list than in its Resources (secretsmanager: Secret, secret).
                let resources = service["Resources"].as_object().expect("Resources");
                let formats = resources
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(t))
                    .map(|(_, resource)| &resource["ARNFormats"])
                    .unwrap_or(&serde_json::Value::Null)
                    .as_array()
                    .unwrap_or_else(|| panic!("{action}: resource type {t} has no ARN format"));
                let alternatives: Vec<String> = formats
                    .iter()
                    .map(|f| arn_format_regex(f.as_str().expect("ARN format")))
                    .collect();
                let regex = Regex::new(&format!("^(?:{})$", alternatives.join("|")))
                    .expect("ARN format as regex");
                (t.to_owned(), regex)
            })
            .collect())
    }
}

/// An ARN format of the reference (`arn:${Partition}:logs:${Region}:${Account}:log-group:.*`)
/// as a regex: its placeholders match one ARN field, `.*` anything.
fn arn_format_regex(format: &str) -> String {
    let placeholder = Regex::new(r"\$\{[^}]+\}").expect("regex");
    let mut out = String::new();
    let mut last = 0;
    for m in placeholder.find_iter(format) {
        out.push_str(&regex::escape(&format[last..m.start()]).replace(r"\.\*", ".*"));
        out.push_str("[^:]*");
        last = m.end();
    }
    out.push_str(&regex::escape(&format[last..]).replace(r"\.\*", ".*"));
    out
}

/// Statements of every `PolicyDocument` in the template: (resource id, statement).
fn allow_statements(template: &Value) -> Vec<(String, Value)> {
    fn walk(id: &str, node: &Value, out: &mut Vec<(String, Value)>) {
        match node {
            Value::Object(map) => {
                for (key, value) in map {
                    if key == "PolicyDocument" {
                        // A statement this test cannot read must not pass
                        // unchecked.
                        let statements = value["Statement"].as_array().unwrap_or_else(|| {
                            panic!(
                                "{id}: a PolicyDocument's Statement must be a list, found {}",
                                value["Statement"]
                            )
                        });
                        for statement in statements {
                            for variant in every_variant(statement) {
                                out.push((id.to_owned(), variant));
                            }
                        }
                    } else {
                        walk(id, value, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(id, i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (id, resource) in template["Resources"].as_object().expect("Resources") {
        walk(id, &resource["Properties"], &mut out);
    }
    // A Deny too (the scan queue's policy): one naming a resource its
    // action does not take denies nothing.
    out.retain(|(_, s)| s["Effect"] == "Allow" || s["Effect"] == "Deny");
    out
}

/// A value of the template as the strings it stands for once deployed:
/// parameters at `stack`'s values, pseudo parameters and resources' names and
/// ARNs at sample values of their type.
struct Arns<'a> {
    stack: &'a Stack<'a>,
    template: &'a Value,
}

impl Arns<'_> {
    fn strings(&self, value: &Value) -> Vec<String> {
        match value {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items.iter().flat_map(|i| self.strings(i)).collect(),
            _ => match single_key(value) {
                Some(("Ref", name)) => self.reference(name.as_str().expect("Ref name")),
                Some(("Fn::GetAtt", args)) => {
                    let id = args[0].as_str().expect("GetAtt resource");
                    let attribute = args[1].as_str().expect("GetAtt attribute");
                    vec![self.attribute(id, attribute)]
                }
                Some(("Fn::Sub", args)) => vec![self.sub(args)],
                Some(("Fn::Join", args)) => {
                    let separator = args[0].as_str().expect("Join separator");
                    vec![self.strings(&args[1]).join(separator)]
                }
                Some(("Fn::Split", args)) => {
                    let separator = args[0].as_str().expect("Split separator");
                    self.strings(&args[1])
                        .iter()
                        .flat_map(|s| s.split(separator).map(str::to_owned).collect::<Vec<_>>())
                        .collect()
                }
                _ => panic!("teach tests/template_iam.rs to evaluate {value}"),
            },
        }
    }

    fn one(&self, value: &Value) -> String {
        match self.strings(value).as_slice() {
            [one] => one.clone(),
            many => panic!("one string expected from {value}, found {many:?}"),
        }
    }

    fn reference(&self, name: &str) -> Vec<String> {
        match name {
            "AWS::Partition" => return vec![PARTITION.into()],
            "AWS::Region" => return vec![REGION.into()],
            "AWS::AccountId" => return vec![ACCOUNT.into()],
            "AWS::StackName" => return vec!["signalbox".into()],
            _ => {}
        }
        if self.template["Parameters"].get(name).is_some() {
            let value = self
                .stack
                .resolve(&serde_json::json!({ "Ref": name }))
                .expect("a parameter has a value");
            let values = self.strings(&value);
            assert!(
                values.iter().all(|v| !v.is_empty()),
                "parameter {name} is empty by default: add a sample value to SAMPLE_PARAMETERS"
            );
            return values;
        }
        let kind = self.resource_type(name);
        vec![match kind {
            "AWS::SNS::Topic" => format!("arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{name}"),
            "AWS::SQS::Queue" => format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"),
            _ => name.to_owned(),
        }]
    }

    fn attribute(&self, id: &str, attribute: &str) -> String {
        let kind = self.resource_type(id);
        assert_eq!(
            attribute, "Arn",
            "teach tests/template_iam.rs {kind}.{attribute}"
        );
        match kind {
            "AWS::SQS::Queue" => format!("arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{id}"),
            "AWS::SNS::Topic" => format!("arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{id}"),
            "AWS::DynamoDB::Table" => {
                format!("arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{id}")
            }
            // A log group's Arn ends in `:*` (AWS::Logs::LogGroup return values).
            "AWS::Logs::LogGroup" => {
                format!("arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{id}:*")
            }
            "AWS::CodeBuild::Project" => {
                format!("arn:{PARTITION}:codebuild:{REGION}:{ACCOUNT}:project/{id}")
            }
            "AWS::Serverless::Function" | "AWS::Lambda::Function" => {
                format!("arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{id}")
            }
            "AWS::IAM::Role" => format!("arn:{PARTITION}:iam::{ACCOUNT}:role/{id}"),
            "AWS::Events::Rule" => format!("arn:{PARTITION}:events:{REGION}:{ACCOUNT}:rule/{id}"),
            other => panic!("teach tests/template_iam.rs the Arn of {other}"),
        }
    }

    fn sub(&self, args: &Value) -> String {
        let (text, locals) = match args {
            Value::String(text) => (text.as_str(), None),
            Value::Array(items) => (
                items[0].as_str().expect("Sub text"),
                items.get(1).and_then(Value::as_object),
            ),
            other => panic!("Fn::Sub of {other}"),
        };
        let placeholder = Regex::new(r"\$\{([^!}][^}]*)\}").expect("regex");
        placeholder
            .replace_all(text, |c: &regex::Captures<'_>| {
                let name = &c[1];
                if let Some(local) = locals.and_then(|l| l.get(name)) {
                    return self.one(local);
                }
                match name.split_once('.') {
                    Some((id, attribute)) => self.attribute(id, attribute),
                    None => self.one(&serde_json::json!({ "Ref": name })),
                }
            })
            .into_owned()
    }

    fn resource_type(&self, id: &str) -> &str {
        self.template["Resources"][id]["Type"]
            .as_str()
            .unwrap_or_else(|| panic!("no resource {id}"))
    }
}

/// Each action of each Allow statement accepts each of the statement's
/// resources: `"*"` for an action without resource types, else an ARN of one
/// of the action's types.
#[test]
fn every_allowed_action_accepts_its_statements_resources_per_the_service_reference() {
    let template = template::load_with(SAMPLE_PARAMETERS);
    let reference = Reference::load();
    let stack = Stack::with(&template, SAMPLE_PARAMETERS);
    let arns = Arns {
        stack: &stack,
        template: &template,
    };
    let mut checked = BTreeMap::<String, usize>::new();
    let mut problems = Vec::new();
    for (id, statement) in allow_statements(&template) {
        let sid = statement["Sid"].as_str().unwrap_or("(no Sid)").to_owned();
        let Some(resource) = statement.get("Resource") else {
            problems.push(format!("{id} {sid}: Allow without Resource"));
            continue;
        };
        let resources = arns.strings(resource);
        let actions: Vec<&str> = match &statement["Action"] {
            Value::String(a) => vec![a.as_str()],
            Value::Array(a) => a.iter().map(|a| a.as_str().expect("action")).collect(),
            other => panic!("{id} {sid}: Action {other}"),
        };
        for action in actions {
            *checked.entry(id.clone()).or_default() += 1;
            let patterns = match reference.resource_patterns(action) {
                Ok(p) => p,
                Err(e) => {
                    problems.push(format!("{id} {sid}: {e}"));
                    continue;
                }
            };
            // cfn-lint's data gives a log stream the ARN format of a log
            // group (`log-group:.*`); the CloudWatch Logs reference names a
            // stream `…:log-group:NAME:log-stream:STREAM`, and IAM policies
            // grant a group's streams as `…:log-group:NAME:*`
            // (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/iam-access-control-overview-cwl.html).
            // A bare group ARN grants no stream action.
            let on_streams = action.to_ascii_lowercase().starts_with("logs:")
                && patterns.iter().any(|(t, _)| t == "log-stream");
            for arn in &resources {
                if on_streams && arn != "*" && !is_log_stream_arn(arn) {
                    problems.push(format!(
                        "{id} {sid}: {action} acts on log streams, {arn} names none \
                         (…:log-group:NAME:* or …:log-stream:…)"
                    ));
                }
                if patterns.is_empty() {
                    if arn != "*" {
                        problems.push(format!(
                            "{id} {sid}: {action} has no resource type, needs \"*\", not {arn}"
                        ));
                    }
                } else if arn != "*" && !patterns.iter().any(|(_, r)| r.is_match(arn)) {
                    let types: Vec<&str> = patterns.iter().map(|(t, _)| t.as_str()).collect();
                    problems.push(format!(
                        "{id} {sid}: {action} takes {types:?}, {arn} is none of them"
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "statements granting nothing once deployed:\n{}",
        problems.join("\n")
    );
    // Every role and every policy resource (queue, topic, IAM policies) was
    // looked at: one whose statements this test cannot find fails here.
    let unchecked: Vec<&String> = template["Resources"]
        .as_object()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| {
            let kind = r["Type"].as_str().unwrap_or_default();
            kind == "AWS::IAM::Role" || kind.ends_with("Policy")
        })
        .map(|(id, _)| id)
        .filter(|id| !checked.contains_key(*id))
        .collect();
    assert!(
        unchecked.is_empty(),
        "not checked: {unchecked:?} (checked {checked:?})"
    );
}

/// Whether an IAM resource pattern of CloudWatch Logs covers log streams:
/// a group's streams (`…:log-group:NAME:*`, or a name ending in a wildcard
/// that runs on into the stream part) or a stream (`…:log-stream:…`).
fn is_log_stream_arn(arn: &str) -> bool {
    Regex::new(r"^arn:[^:]+:logs:[^:]*:[^:]*:log-group:[^:]+(?::log-stream:.+|:\*|\*)$")
        .expect("regex")
        .is_match(arn)
}

/// The log-stream check itself: a bare group ARN is refused, its streams
/// and a stream are accepted.
#[test]
fn a_bare_log_group_arn_is_no_log_stream_arn() {
    let group = format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/f");
    assert!(!is_log_stream_arn(&group));
    assert!(is_log_stream_arn(&format!("{group}:*")));
    assert!(is_log_stream_arn(&format!("{group}:log-stream:abc")));
    assert!(is_log_stream_arn(&format!(
        "arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/codebuild/*"
    )));
}

/// The checker itself: a statement the reference rejects is found.
#[test]
fn the_reference_check_rejects_a_deployment_group_arn_for_list_deployment_targets() {
    let reference = Reference::load();
    let targets = reference
        .resource_patterns("codedeploy:ListDeploymentTargets")
        .expect("known action");
    assert!(targets.is_empty(), "{targets:?}");
    let get = reference
        .resource_patterns("codedeploy:GetDeployment")
        .expect("known action");
    let group = format!("arn:aws:codedeploy:{REGION}:{ACCOUNT}:deploymentgroup:*");
    assert!(get.iter().any(|(_, r)| r.is_match(&group)));
    let bucket = "arn:aws:s3:::bucket";
    assert!(!get.iter().any(|(_, r)| r.is_match(bucket)));
    assert!(
        reference
            .resource_patterns("codedeploy:NoSuchAction")
            .is_err()
    );
}

/// An IAM resource pattern (`*` any run of characters, `?` one) as a regex.
fn iam_glob(pattern: &str) -> Regex {
    let body = regex::escape(pattern)
        .replace(r"\*", ".*")
        .replace(r"\?", ".");
    Regex::new(&format!("^{body}$")).expect("glob as regex")
}

/// Scenario 1: `PrCheckRepositoryName=A`, `PrCheckRepositories=A,B`,
/// `PrCheckProjectsByRepository={"B":"b-check"}`. A PR in B must be readable,
/// commentable and approvable by pr-check and build-report exactly as one in A.
#[test]
fn a_pr_in_a_repository_mapped_to_its_own_project_gets_the_grants_of_the_created_projects() {
    let template = template::load();
    let stack = Stack::with(
        &template,
        &[
            ("PrCheckRepositoryName", "A"),
            ("PrCheckRepositories", "A,B"),
            ("PrCheckProjectsByRepository", r#"{"B":"b-check"}"#),
            ("PrApproval", "true"),
        ],
    );
    let arns = Arns {
        stack: &stack,
        template: &template,
    };
    let repository = |name: &str| format!("arn:{PARTITION}:codecommit:{REGION}:{ACCOUNT}:{name}");
    for role in ["PrCheckRole", "BuildReportRole"] {
        let policies = stack
            .resolve(&template["Resources"][role]["Properties"]["Policies"])
            .expect("Policies");
        let statements: Vec<&Value> = policies
            .as_array()
            .expect("Policies list")
            .iter()
            .flat_map(|p| {
                p["PolicyDocument"]["Statement"]
                    .as_array()
                    .expect("Statement")
            })
            .filter(|s| s["Effect"] == "Allow")
            .collect();
        let granted_on = |arn: &str| -> Vec<String> {
            let mut out: Vec<String> = statements
                .iter()
                .filter(|s| {
                    arns.strings(&s["Resource"])
                        .iter()
                        .any(|r| iam_glob(r).is_match(arn))
                })
                .flat_map(|s| match &s["Action"] {
                    Value::String(a) => vec![a.clone()],
                    other => other
                        .as_array()
                        .expect("Action list")
                        .iter()
                        .map(|a| a.as_str().expect("action").to_owned())
                        .collect(),
                })
                .filter(|a| a.starts_with("codecommit:"))
                .collect();
            out.sort();
            out.dedup();
            out
        };
        let on_a = granted_on(&repository("A"));
        assert!(!on_a.is_empty(), "{role}: nothing granted on A");
        assert_eq!(
            granted_on(&repository("B")),
            on_a,
            "{role}: B, mapped to b-check"
        );
    }
}

/// Scenario 5: a project that logs to a CloudWatch group of its own (its
/// `logs` settings, which build-report and pipeline-alert read the tail
/// from) gets its log tail: the groups listed in `BuildLogGroupArns` are
/// granted to both, besides `/aws/codebuild/*`.
#[test]
fn a_build_logging_to_a_custom_group_has_its_log_tail_read() {
    let template = template::load();
    let stack = Stack::with(
        &template,
        &[
            (
                "BuildLogGroupArns",
                "arn:aws:logs:us-east-1:123456789012:log-group:/custom/builds,arn:aws:logs:us-east-1:123456789012:log-group:/team/ci",
            ),
            ("PrCheckProjectsByRepository", r#"{"B":"b-check"}"#),
        ],
    );
    let arns = Arns {
        stack: &stack,
        template: &template,
    };
    for role in ["BuildReportRole", "PipelineAlertRole"] {
        let policies = stack
            .resolve(&template["Resources"][role]["Properties"]["Policies"])
            .expect("Policies");
        let granted: Vec<String> = policies
            .as_array()
            .expect("Policies list")
            .iter()
            .flat_map(|p| {
                p["PolicyDocument"]["Statement"]
                    .as_array()
                    .expect("Statement")
            })
            .filter(|s| s["Effect"] == "Allow" && s["Action"] == "logs:GetLogEvents")
            .flat_map(|s| arns.strings(&s["Resource"]))
            .collect();
        for group in ["/custom/builds", "/team/ci", "/aws/codebuild/b-check"] {
            let stream =
                format!("arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{group}:log-stream:abc");
            assert!(
                granted.iter().any(|g| iam_glob(g).is_match(&stream)),
                "{role}: no logs:GetLogEvents on {stream}: {granted:?}"
            );
        }
    }
}

/// Scenario 9: starting the mirror project is write access to the replicas,
/// so a start by anyone but repo-replicate's role alerts. The template's
/// rule pattern on a bus of moto's EventBridge (a real pattern matcher; its
/// TestEventPattern is a stub) with a queue as target, and CloudTrail's
/// StartBuild, StartBuildBatch, RetryBuild and RetryBuildBatch records (the
/// project by name or ARN, a build or batch by id or ARN) put on the bus:
/// only the alerting ones arrive.
#[tokio::test]
async fn a_mirror_build_started_by_anyone_but_repo_replicate_alerts() {
    let template = template::load();
    let rule = &template["Resources"]["MirrorStartedByOthersRule"];
    assert_eq!(rule["Type"], "AWS::Events::Rule");
    assert!(
        rule["Properties"]["Targets"][0]["Arn"]
            .to_string()
            .contains("OperationsTopic"),
        "the rule notifies the operations topic"
    );
    const ROLE: &str = "signalbox-RepoReplicateRole-1A2B3C";
    const MIRROR: &str = "signalbox-mirror";
    const MIRROR_ARN: &str = "arn:aws:codebuild:us-east-1:123456789012:project/signalbox-mirror";
    assert_eq!(
        MIRROR_ARN,
        format!("arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{MIRROR}")
    );
    fn deployed(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                if map.get("Ref") == Some(&serde_json::json!("MirrorProject")) {
                    return serde_json::json!(MIRROR);
                }
                if map.get("Fn::GetAtt") == Some(&serde_json::json!(["MirrorProject", "Arn"])) {
                    return serde_json::json!(MIRROR_ARN);
                }
                if let Some(Value::String(text)) = map.get("Fn::Sub") {
                    return serde_json::json!(
                        text.replace("${AWS::Partition}", "aws")
                            .replace("${AWS::Region}", REGION)
                            .replace("${AWS::AccountId}", ACCOUNT)
                            .replace("${RepoReplicateRole}", ROLE)
                            .replace("${MirrorProject}", MIRROR)
                    );
                }
                Value::Object(map.iter().map(|(k, v)| (k.clone(), deployed(v))).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(deployed).collect()),
            other => other.clone(),
        }
    }
    let pattern = deployed(&rule["Properties"]["EventPattern"]).to_string();
    let config = signalbox_tests::moto_config().await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let bus = signalbox_tests::unique("mirror-starts");
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
    let queue_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{bus}");
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
                .arn(&queue_arn)
                .build()
                .expect("target"),
        )
        .send()
        .await
        .expect("put_targets");
    // CloudTrail's userIdentity of a role's session, and of an IAM user.
    let role_session = |role: &str| {
        serde_json::json!({"type": "AssumedRole",
            "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/session-1"),
            "sessionContext": {"sessionIssuer": {"type": "Role",
                "arn": format!("arn:aws:iam::{ACCOUNT}:role/{role}")}}})
    };
    let user = serde_json::json!({"type": "IAMUser", "userName": "mallory",
        "arn": format!("arn:aws:iam::{ACCOUNT}:user/mallory")});
    let build = format!("arn:aws:codebuild:{REGION}:{ACCOUNT}:build/{MIRROR}:0b1c");
    let batch = format!("arn:aws:codebuild:{REGION}:{ACCOUNT}:build-batch/{MIRROR}:0b1c");
    let calls = [
        (
            "repo-replicate",
            "StartBuild",
            serde_json::json!({"projectName": MIRROR}),
            role_session(ROLE),
        ),
        (
            "repo-replicate's retry",
            "RetryBuild",
            serde_json::json!({"id": format!("{MIRROR}:0b1c")}),
            role_session(ROLE),
        ),
        (
            "another role",
            "StartBuild",
            serde_json::json!({"projectName": MIRROR}),
            role_session("Admin"),
        ),
        (
            "an IAM user",
            "StartBuild",
            serde_json::json!({"projectName": MIRROR}),
            user.clone(),
        ),
        (
            "by ARN",
            "StartBuild",
            serde_json::json!({"projectName": MIRROR_ARN}),
            role_session("Admin"),
        ),
        (
            "a batch",
            "StartBuildBatch",
            serde_json::json!({"projectName": MIRROR}),
            role_session("Admin"),
        ),
        (
            "a batch by ARN",
            "StartBuildBatch",
            serde_json::json!({"projectName": MIRROR_ARN}),
            user.clone(),
        ),
        (
            "a retry",
            "RetryBuild",
            serde_json::json!({"id": format!("{MIRROR}:0b1c")}),
            role_session("Admin"),
        ),
        (
            "a retry by ARN",
            "RetryBuild",
            serde_json::json!({"id": build}),
            user.clone(),
        ),
        (
            "a batch retry",
            "RetryBuildBatch",
            serde_json::json!({"id": format!("{MIRROR}:0b1c")}),
            role_session("Admin"),
        ),
        (
            "a batch retry by ARN",
            "RetryBuildBatch",
            serde_json::json!({"id": batch}),
            user.clone(),
        ),
        (
            "another project",
            "StartBuild",
            serde_json::json!({"projectName": "someone-elses-project"}),
            role_session("Admin"),
        ),
        (
            "another project named alike",
            "RetryBuild",
            serde_json::json!({"id": format!("{MIRROR}-copy:0b1c")}),
            role_session("Admin"),
        ),
    ];
    for (who, call, parameters, identity) in &calls {
        let detail = serde_json::json!({
            "eventSource": "codebuild.amazonaws.com", "eventName": call,
            "userIdentity": identity, "requestParameters": parameters,
            "additionalEventData": {"who": who}
        });
        events
            .put_events()
            .entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .event_bus_name(&bus)
                    .source("aws.codebuild")
                    .detail_type("AWS API Call via CloudTrail")
                    .detail(detail.to_string())
                    .build(),
            )
            .send()
            .await
            .expect("put_events");
    }
    let mut alerted: Vec<String> = signalbox_tests::drain_queue(&config, &queue_url)
        .await
        .iter()
        .map(|m| {
            m["detail"]["additionalEventData"]["who"]
                .as_str()
                .unwrap_or("?")
                .to_owned()
        })
        .collect();
    alerted.sort();
    let mut expected = vec![
        "a batch",
        "a batch by ARN",
        "a batch retry",
        "a batch retry by ARN",
        "a retry",
        "a retry by ARN",
        "an IAM user",
        "another role",
        "by ARN",
    ];
    expected.sort();
    assert_eq!(alerted, expected, "{pattern}");
}

/// A statement the checker cannot read fails it rather than passing
/// unchecked.
#[test]
#[should_panic(expected = "Statement must be a list")]
fn a_statement_that_is_not_a_list_fails_the_check() {
    let template = serde_json::json!({"Resources": {"Role": {
        "Type": "AWS::IAM::Role",
        "Properties": {"Policies": [{"PolicyName": "p", "PolicyDocument": {
            "Statement": {"Effect": "Allow", "Action": "sns:Publish", "Resource": "arn:aws:sns:us-east-1:123456789012:t"}
        }}]}
    }}});
    allow_statements(&template);
}

/// Every Allow statement of the mirror role: its inline policies and the
/// policies attached to it (`AWS::IAM::RolePolicy`, one per source of
/// `ReplicaSources`) whose resource condition holds, `Fn::If` resolved.
fn mirror_role_statements(template: &Value, stack: &Stack) -> Vec<Value> {
    let mut documents = Vec::new();
    let role = stack
        .resolve(&template["Resources"]["MirrorProjectRole"]["Properties"]["Policies"])
        .expect("MirrorProjectRole has Policies");
    for policy in role.as_array().expect("Policies list") {
        documents.push(policy["PolicyDocument"].clone());
    }
    for resource in template["Resources"]
        .as_object()
        .expect("Resources")
        .values()
    {
        let attached = resource["Type"] == "AWS::IAM::RolePolicy"
            && template::referenced(&resource["Properties"]["RoleName"])
                == Some("MirrorProjectRole");
        let created = resource["Condition"]
            .as_str()
            .is_none_or(|c| stack.condition(c));
        if attached && created {
            documents.push(
                stack
                    .resolve(&resource["Properties"]["PolicyDocument"])
                    .expect("PolicyDocument"),
            );
        }
    }
    documents
        .iter()
        .flat_map(|d| d["Statement"].as_array().expect("Statement").clone())
        .filter(|s| s["Effect"] == "Allow")
        .collect()
}

/// One request as IAM sees it: action, resource, and the context keys the
/// mirror role's conditions read.
struct Request<'a> {
    action: &'a str,
    arn: String,
    /// `aws:RequestedRegion`.
    region: &'a str,
    /// `aws:ResourceTag/signalbox:replica-of` (the repository's tag).
    resource_tag: Option<&'a str>,
    /// `aws:RequestTag/signalbox:replica-of` (CreateRepository's tag).
    request_tag: Option<&'a str>,
}

/// Whether one of `statements` allows `request`: action and resource
/// matched as IAM globs, each condition operator over the keys above
/// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html:
/// a `StringNotEquals` on a missing key holds, a `StringEquals` or
/// `StringLike` does not). An operator or key this test does not know fails.
fn allows(arns: &Arns, statements: &[Value], request: &Request) -> bool {
    statements.iter().any(|statement| {
        let actions: Vec<String> = arns.strings(&statement["Action"]);
        let resources: Vec<String> = arns.strings(&statement["Resource"]);
        if !actions.iter().any(|a| iam_glob(a).is_match(request.action))
            || !resources.iter().any(|r| iam_glob(r).is_match(&request.arn))
        {
            return false;
        }
        let Some(conditions) = statement.get("Condition") else {
            return true;
        };
        conditions
            .as_object()
            .expect("Condition object")
            .iter()
            .all(|(operator, keys)| {
                keys.as_object()
                    .expect("condition keys")
                    .iter()
                    .all(|(key, wanted)| {
                        let actual = match key.as_str() {
                            "aws:RequestedRegion" => Some(request.region),
                            "aws:ResourceTag/signalbox:replica-of" => request.resource_tag,
                            "aws:RequestTag/signalbox:replica-of" => request.request_tag,
                            other => panic!("teach allows() the condition key {other}"),
                        };
                        let wanted = arns.strings(wanted);
                        match (operator.as_str(), actual) {
                            ("StringEquals", Some(a)) => wanted.iter().any(|w| w == a),
                            ("StringNotEquals", Some(a)) => wanted.iter().all(|w| w != a),
                            ("StringNotEquals", None) => true,
                            ("StringLike", Some(a)) => {
                                wanted.iter().any(|w| iam_glob(w).is_match(a))
                            }
                            ("StringEquals" | "StringLike", None) => false,
                            (other, _) => panic!("teach allows() the condition operator {other}"),
                        }
                    })
            })
    })
}

/// Two sources with replicas, as a user would deploy them: `Replicas` and
/// `ReplicaSources` listing the same sources.
const TWO_SOURCES: &[(&str, &str)] = &[
    (
        "Replicas",
        r#"{"A": [{"region": "eu-west-1", "repository": "A"}], "my-repo.v2": [{"region": "eu-west-1", "repository": "my-repo.v2"}]}"#,
    ),
    ("ReplicaSources", "A,my-repo.v2"),
    ("CreateMissingReplicas", "true"),
];

fn repository(region: &str, name: &str) -> String {
    format!("arn:{PARTITION}:codecommit:{region}:{ACCOUNT}:{name}")
}

/// Issue 21, item 9: the mirror role may clone the sources listed in
/// `ReplicaSources` (exactly their ARNs) and no other repository of the
/// region, tagged or not.
#[test]
fn the_mirror_role_pulls_the_listed_sources_and_no_other_repository_of_the_region() {
    let template = template::load_with(TWO_SOURCES);
    let stack = Stack::with(&template, TWO_SOURCES);
    let arns = Arns {
        stack: &stack,
        template: &template,
    };
    let statements = mirror_role_statements(&template, &stack);
    // The unconditional GitPull grants name exactly the two sources.
    let mut sources: Vec<String> = statements
        .iter()
        .filter(|s| s.get("Condition").is_none())
        .filter(|s| {
            arns.strings(&s["Action"])
                .iter()
                .any(|a| a == "codecommit:GitPull")
        })
        .flat_map(|s| arns.strings(&s["Resource"]))
        .collect();
    sources.sort();
    assert_eq!(
        sources,
        [repository(REGION, "A"), repository(REGION, "my-repo.v2")]
    );
    let pull = |name: &str, tag: Option<&str>| {
        allows(
            &arns,
            &statements,
            &Request {
                action: "codecommit:GitPull",
                arn: repository(REGION, name),
                region: REGION,
                resource_tag: tag,
                request_tag: None,
            },
        )
    };
    assert!(pull("A", None));
    assert!(pull("my-repo.v2", None));
    for other in ["B", "A-fork", "my-repo", "my-repo.v2x", "payments"] {
        assert!(!pull(other, None), "{other} is no listed source");
        assert!(
            !pull(other, Some("us-east-1/A")),
            "{other} in the source region, even tagged"
        );
    }
}

/// Issue 21, item 9: pushes (and default-branch updates, and creating a
/// missing replica) go only to repositories of other regions tagged
/// `signalbox:replica-of = <region>/<a listed source>` exactly; a replica
/// tagged for an unlisted source, or for a look-alike name, is refused.
#[test]
fn a_replica_tagged_for_an_unlisted_source_is_refused_by_the_push_condition() {
    let template = template::load_with(TWO_SOURCES);
    let stack = Stack::with(&template, TWO_SOURCES);
    let arns = Arns {
        stack: &stack,
        template: &template,
    };
    let statements = mirror_role_statements(&template, &stack);
    let may = |action: &str, region: &str, tag: Option<&str>| {
        let create = action == "codecommit:CreateRepository";
        allows(
            &arns,
            &statements,
            &Request {
                action,
                arn: repository(region, "replica"),
                region,
                resource_tag: if create { None } else { tag },
                request_tag: if create { tag } else { None },
            },
        )
    };
    for action in [
        "codecommit:GitPush",
        "codecommit:UpdateDefaultBranch",
        "codecommit:GitPull",
        "codecommit:CreateRepository",
    ] {
        for tag in ["us-east-1/A", "us-east-1/my-repo.v2"] {
            assert!(may(action, "eu-west-1", Some(tag)), "{action} {tag}");
            assert!(
                !may(action, REGION, Some(tag)),
                "{action} {tag} in the source region"
            );
        }
        for tag in [
            "us-east-1/B",
            "us-east-1/A-fork",
            "us-east-1/my-repo",
            "us-east-1/*",
            "eu-west-1/A",
            "",
        ] {
            assert!(!may(action, "eu-west-1", Some(tag)), "{action} {tag:?}");
        }
        assert!(!may(action, "eu-west-1", None), "{action} untagged");
    }
}

/// With no replication (`ReplicaSources` empty, which CloudFormation passes
/// as one empty item), the generated policy is not created: the mirror role
/// may pull and push nothing.
#[test]
fn with_no_replica_sources_the_mirror_role_may_pull_and_push_nothing() {
    let template = template::load();
    let stack = Stack::with_defaults(&template);
    let arns = Arns {
        stack: &stack,
        template: &template,
    };
    let generated: Vec<&String> = template["Resources"]
        .as_object()
        .expect("Resources")
        .keys()
        .filter(|k| k.starts_with("MirrorSourcePolicy"))
        .collect();
    assert_eq!(generated, ["MirrorSourcePolicy"], "the empty item's policy");
    assert!(
        !stack.condition(
            template["Resources"]["MirrorSourcePolicy"]["Condition"]
                .as_str()
                .expect("the generated policy has a condition")
        )
    );
    let statements = mirror_role_statements(&template, &stack);
    for action in ["codecommit:GitPull", "codecommit:GitPush"] {
        for (region, tag) in [
            (REGION, None),
            ("eu-west-1", Some("us-east-1/A")),
            ("eu-west-1", Some("us-east-1/")),
        ] {
            let request = Request {
                action,
                arn: repository(region, "A"),
                region,
                resource_tag: tag,
                request_tag: None,
            };
            assert!(
                !allows(&arns, &statements, &request),
                "{action} {region} {tag:?}"
            );
        }
    }
}

/// The value with every function replaced by the string it stands for
/// (`Arns`), as IAM stores the policy.
fn deployed(arns: &Arns, value: &Value) -> Value {
    if single_key(value).is_some() {
        return Value::String(arns.one(value));
    }
    match value {
        Value::Array(items) => Value::Array(items.iter().map(|i| deployed(arns, i)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), deployed(arns, v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The worst cases docs/replication.md and template.yaml promise fit the
/// mirror role: (number of sources, length of each name).
const MIRROR_SOURCE_LIMITS: [(usize, usize); 2] = [(8, 100), (9, 40)];

/// Region and partition names longer than the samples' (`us-east-1`,
/// `aws`) grow each ARN: at most 15 characters for a region name (e.g.
/// `ap-southeast-5` is 14) and 10 for a partition (`aws-us-gov`).
const LONGEST_REGION: usize = 15;
const LONGEST_PARTITION: usize = 10;

/// IAM counts every inline policy of a role against one quota of 10,240
/// characters, whitespace excluded
/// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html).
/// The mirror role's own policy plus one generated policy per source must
/// fit for the documented worst cases, with `CreateMissingReplicas` on, in
/// any region and partition (each occurrence of the samples' region and
/// partition counted at the longest's length), leaving 100 characters for a
/// long stack name.
#[test]
fn the_documented_number_of_sources_fits_the_mirror_roles_inline_policy_quota() {
    for (count, length) in MIRROR_SOURCE_LIMITS {
        let size = mirror_inline_policy_size(count, length);
        assert!(
            size + 100 <= 10_240,
            "{count} sources of {length} characters: {size} characters of inline policy"
        );
        println!("{count} sources of {length} characters: {size} of 10,240 characters");
    }
}

/// The characters (whitespace excluded, worst region and partition) of the
/// mirror role's inline policies with `count` sources of `length`
/// characters each.
fn mirror_inline_policy_size(count: usize, length: usize) -> usize {
    let names: Vec<String> = (0..count)
        .map(|i| format!("{i}-{}", "s".repeat(length - 2)))
        .collect();
    let replicas = serde_json::to_string(
        &names
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    serde_json::json!([{"region": "eu-west-1", "repository": n}]),
                )
            })
            .collect::<serde_json::Map<_, _>>(),
    )
    .expect("JSON");
    let list = names.join(",");
    let overrides = [
        ("Replicas", replicas.as_str()),
        ("ReplicaSources", list.as_str()),
        ("CreateMissingReplicas", "true"),
    ];
    let template = template::load_with(&overrides);
    let stack = Stack::with(&template, &overrides);
    let arns = Arns {
        stack: &stack,
        template: &template,
    };
    let mut documents = vec![];
    let role = stack
        .resolve(&template["Resources"]["MirrorProjectRole"]["Properties"]["Policies"])
        .expect("Policies");
    documents.extend(
        role.as_array()
            .expect("list")
            .iter()
            .map(|p| p["PolicyDocument"].clone()),
    );
    for (id, resource) in template["Resources"].as_object().expect("Resources") {
        if id.starts_with("MirrorSourcePolicy") {
            documents.push(
                stack
                    .resolve(&resource["Properties"]["PolicyDocument"])
                    .expect("PolicyDocument"),
            );
        }
    }
    assert_eq!(documents.len(), 1 + count);
    documents
        .iter()
        .map(|d| {
            let text: String = serde_json::to_string(&deployed(&arns, d))
                .expect("JSON")
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            text.chars().count()
                + text.matches(REGION).count() * (LONGEST_REGION - REGION.len())
                + text.matches(&format!("arn:{PARTITION}:")).count()
                    * (LONGEST_PARTITION - PARTITION.len())
        })
        .sum()
}

/// The expansion as the Fn::ForEach reference describes it (and as SAM CLI
/// 1.170.0's expansion did when tried): `&{Source}` drops `-` and `.` from
/// the logical id, `${Source}` keeps the name as it is.
#[test]
fn each_sources_policy_is_named_by_its_source_without_non_alphanumerics() {
    let template = template::load_with(&[("ReplicaSources", "my-repo.v2,A")]);
    let resources = template["Resources"].as_object().expect("Resources");
    let mut generated: Vec<(&str, &str)> = resources
        .iter()
        .filter(|(id, _)| id.starts_with("MirrorSourcePolicy"))
        .map(|(id, r)| {
            (
                id.as_str(),
                r["Properties"]["PolicyName"]["Fn::Sub"]
                    .as_str()
                    .expect("PolicyName"),
            )
        })
        .collect();
    generated.sort();
    assert_eq!(
        generated,
        [
            ("MirrorSourcePolicyA", "mirror-A"),
            ("MirrorSourcePolicymyrepov2", "mirror-my-repo.v2")
        ]
    );
    assert!(
        !serde_json::to_string(&template)
            .unwrap()
            .contains("Fn::ForEach")
    );
}

/// Two sources whose names differ only in `.`, `_` or `-` make one logical id
/// twice: the transform refuses the template (SAM CLI 1.170.0: "produced
/// logical IDs that conflict"), and so does this evaluator.
#[test]
#[should_panic(expected = "MirrorSourcePolicymyrepo generated twice")]
fn two_sources_differing_only_in_punctuation_are_refused() {
    template::load_with(&[("ReplicaSources", "my-repo,my_repo")]);
}
