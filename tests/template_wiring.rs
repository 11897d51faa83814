//! `template.yaml` deploys what the code expects: one function per folder under
//! `functions/`, rule patterns equal to `signalbox::route::RULES`, a dead-letter
//! queue, bounded retries, an on-failure queue and a log group with retention
//! for every function, every variable a function reads, and IAM roles that
//! allow only the calls each function makes.

mod template;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use signalbox::config::{EnvReader, Mode};
use signalbox::flows::FunctionConfig;
use signalbox::route::{Function, RULES};
use template::{FunctionResource, Stack, every_variant, referenced, single_key};

/// Write actions allowed on `"Resource": "*"`, each with the reason (an API
/// without resource-level permissions).
const STAR_RESOURCE_ALLOWED: &[(&str, &str)] = &[
    (
        "codedeploy:PutLifecycleEventHookExecutionStatus",
        "the Service Authorization Reference lists no resource type for it (tests/template_iam.rs)",
    ),
    (
        "codepipeline:PutJobSuccessResult",
        "the Service Authorization Reference lists no resource type for it (tests/template_iam.rs)",
    ),
    (
        "codepipeline:PutJobFailureResult",
        "the Service Authorization Reference lists no resource type for it (tests/template_iam.rs)",
    ),
];

/// What each function's role may do besides writing its own log group and
/// sending to the failed-invocations queue: exactly the calls the function makes.
fn calls(function: Function) -> BTreeSet<&'static str> {
    let calls: &[&str] = match function {
        Function::PrCheck => &[
            "codebuild:StartBuild",
            "codebuild:StopBuild",
            "codebuild:ListBuildsForProject",
            "codebuild:BatchGetBuilds",
            "codecommit:GetPullRequest",
            "codecommit:GetFile",
            "codecommit:PostCommentForPullRequest",
            // Activity notices: the comment, and the alert channels.
            "codecommit:GetComment",
            "sns:Publish",
            "ssm:GetParameter",
            "kms:Decrypt",
            "dynamodb:PutItem",
            "dynamodb:GetItem",
            "dynamodb:DeleteItem",
        ],
        Function::BuildReport => &[
            "logs:GetLogEvents",
            "codecommit:GetPullRequest",
            "codecommit:GetCommentsForPullRequest",
            "codecommit:PostCommentForPullRequest",
            "codecommit:PostCommentReply",
            "codecommit:UpdatePullRequestApprovalState",
        ],
        Function::PipelineAlert => &[
            "codepipeline:GetPipelineExecution",
            "codepipeline:ListActionExecutions",
            "codebuild:BatchGetBuilds",
            "logs:GetLogEvents",
            "sns:Publish",
            "ssm:GetParameter",
            "kms:Decrypt",
            "dynamodb:PutItem",
            "dynamodb:GetItem",
            "dynamodb:DeleteItem",
            // The state item of recovered notices (flows::recovery).
            "dynamodb:UpdateItem",
        ],
        Function::DeployNotify => &[
            "codedeploy:GetDeployment",
            "codedeploy:GetDeploymentGroup",
            "codedeploy:ListDeploymentTargets",
            "codedeploy:BatchGetDeploymentTargets",
            "codedeploy:ListDeploymentInstances",
            "codedeploy:BatchGetDeploymentInstances",
            "sns:Publish",
            "ssm:GetParameter",
            "kms:Decrypt",
            "dynamodb:PutItem",
            "dynamodb:GetItem",
            "dynamodb:DeleteItem",
            // The state item of recovered notices (flows::recovery).
            "dynamodb:UpdateItem",
        ],
        Function::RepoReplicate => &[
            "codebuild:StartBuild",
            "codebuild:ListBuildsForProject",
            "codebuild:BatchGetBuilds",
            "sns:Publish",
            "ssm:GetParameter",
            "kms:Decrypt",
            "dynamodb:PutItem",
            "dynamodb:GetItem",
            "dynamodb:DeleteItem",
        ],
        Function::RepoGuard => &[
            "codecommit:GetCommit",
            "codecommit:GetDifferences",
            "codecommit:GetBlob",
            "codecommit:GetRepository",
            "codecommit:GetFile",
            // The merge base of a push (GetMergeOptions' baseCommitId).
            "codecommit:GetMergeOptions",
            // The default branch's commit, carried by a continued scan.
            "codecommit:GetBranch",
            "codecommit:ListTagsForResource",
            // Its scan queue, read by Lambda's event source mapping with the
            // function's role (its SendMessage to that queue: see
            // repo_guard_may_send_only_to_its_own_scan_queue).
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sns:Publish",
            "ssm:GetParameter",
            "kms:Decrypt",
            "dynamodb:PutItem",
            "dynamodb:GetItem",
            "dynamodb:DeleteItem",
        ],
        Function::DeployGate => &[
            "codedeploy:GetDeployment",
            "codedeploy:ListDeploymentTargets",
            "codedeploy:BatchGetDeploymentTargets",
            "codedeploy:PutLifecycleEventHookExecutionStatus",
            "lambda:InvokeFunction",
            "cloudwatch:DescribeAlarms",
            "sns:Publish",
            "ssm:GetParameter",
            "kms:Decrypt",
            "dynamodb:PutItem",
            "dynamodb:GetItem",
            "dynamodb:DeleteItem",
        ],
        Function::GitWebhook => &[
            "codepipeline:GetPipeline",
            "codepipeline:StartPipelineExecution",
            "codebuild:StartBuild",
            "ssm:GetParameter",
            "secretsmanager:GetSecretValue",
            "s3:PutObject",
            "s3:AbortMultipartUpload",
            // ListParts: did a Complete that did not answer store the archive?
            "s3:ListMultipartUploadParts",
            // An SSE-KMS archive bucket (GitWebhookArchiveKmsKeyArn).
            "kms:GenerateDataKey",
            "kms:Decrypt",
            "dynamodb:PutItem",
            "dynamodb:GetItem",
            "dynamodb:DeleteItem",
        ],
        // The configuration, the checks, the verdict and its ledger; no notices.
        Function::PipelineGate => &[
            "codepipeline:PutJobSuccessResult",
            "codepipeline:PutJobFailureResult",
            "lambda:InvokeFunction",
            "cloudwatch:DescribeAlarms",
            "ssm:GetParameter",
            "kms:Decrypt",
            "dynamodb:PutItem",
            "dynamodb:GetItem",
            "dynamodb:DeleteItem",
        ],
        // The run read again, the routes and tokens, the ledger; no SNS.
        Function::GitStatus => &[
            "codepipeline:GetPipelineExecution",
            "codebuild:BatchGetBuilds",
            "ssm:GetParameter",
            "kms:Decrypt",
            "secretsmanager:GetSecretValue",
            "dynamodb:PutItem",
            "dynamodb:GetItem",
            "dynamodb:DeleteItem",
        ],
    };
    calls.iter().copied().collect()
}

fn function_of(resource: &FunctionResource) -> Function {
    Function::from_name(&resource.binary)
        .unwrap_or_else(|| panic!("{}: no function {}", resource.logical_id, resource.binary))
}

fn resource_type<'a>(template: &'a Value, id: &str) -> &'a str {
    template["Resources"][id]["Type"]
        .as_str()
        .unwrap_or_else(|| panic!("no resource {id}"))
}

#[test]
fn every_function_folder_has_exactly_one_template_function_and_back() {
    let template = template::load();
    let functions = template::functions(&template);
    let mut in_template = BTreeMap::<String, usize>::new();
    for f in &functions {
        *in_template.entry(f.binary.clone()).or_default() += 1;
        assert_eq!(
            f.metadata["BuildMethod"], "rust-cargolambda",
            "{}",
            f.logical_id
        );
        // sam build runs `cargo lambda build --bin <Binary>` in CodeUri and
        // copies the workspace's target/lambda/<Binary>/bootstrap. CodeUri is
        // the function's crate: run there, cargo builds that crate alone, with
        // only its own feature of the shared crate (from the workspace root it
        // would unify every member's features and link every SDK client).
        assert_eq!(
            f.properties["CodeUri"],
            format!("functions/{}", f.binary),
            "{}",
            f.logical_id
        );
        assert_eq!(f.properties["Handler"], "bootstrap", "{}", f.logical_id);
        assert_eq!(
            f.properties["Runtime"], "provided.al2023",
            "{}",
            f.logical_id
        );
        assert_eq!(
            f.properties["Architectures"],
            json!(["arm64"]),
            "{}",
            f.logical_id
        );
    }
    let root = template::repo_root();
    let folders: BTreeSet<String> = std::fs::read_dir(root.join("functions"))
        .expect("functions/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    for folder in &folders {
        let manifest =
            std::fs::read_to_string(root.join("functions").join(folder).join("Cargo.toml"))
                .expect("Cargo.toml");
        assert!(
            manifest.contains(&format!("name = \"{folder}\"")),
            "functions/{folder}: the package (and so its binary) must be named {folder}"
        );
        assert_eq!(
            in_template.get(folder),
            Some(&1),
            "functions/{folder} needs exactly one AWS::Serverless::Function with Binary: {folder}"
        );
    }
    for binary in in_template.keys() {
        assert!(
            folders.contains(binary),
            "template builds {binary}, but functions/{binary} does not exist"
        );
    }
    assert_eq!(folders.len(), Function::ALL.len());
}

#[test]
fn default_rule_patterns_are_the_route_table() {
    let template = template::load();
    let stack = Stack::with_defaults(&template);
    for f in template::functions(&template) {
        let function = function_of(&f);
        // Scheduled events come from a Schedule event, repo-guard's
        // continuations from its scan queue: not from a pattern.
        let mut rules: Vec<Value> = RULES
            .iter()
            .filter(|r| r.function == function && r.is_eventbridge_pattern())
            .map(|r| r.event_pattern())
            .collect();
        let mut patterns: Vec<Value> = f
            .eventbridge_rules()
            .iter()
            .map(|(_, event)| stack.resolve(&event["Pattern"]).expect("a pattern"))
            .collect();
        rules.sort_by_key(Value::to_string);
        patterns.sort_by_key(Value::to_string);
        assert_eq!(
            patterns, rules,
            "{}: the template's patterns differ from route::RULES",
            f.logical_id
        );
        let schedules = f.events_of("Schedule");
        let scheduled = RULES
            .iter()
            .any(|r| r.function == function && r.source == "aws.events");
        assert_eq!(
            !schedules.is_empty(),
            scheduled,
            "{}: a Schedule event exactly when route::RULES routes Scheduled Events to it",
            f.logical_id
        );
    }
}

/// The function's EventBridge rules and schedules: what EventBridge delivers
/// to it, each needing a dead-letter queue and a retry policy.
fn deliveries(f: &FunctionResource) -> Vec<(&str, &Value)> {
    let mut all = f.eventbridge_rules();
    all.extend(f.events_of("Schedule"));
    all
}

#[test]
fn every_rule_target_has_a_dead_letter_queue_and_a_retry_policy() {
    let template = template::load();
    let queue_policies: Vec<&Value> = template["Resources"]
        .as_object()
        .expect("Resources")
        .values()
        .filter(|r| r["Type"] == "AWS::SQS::QueuePolicy")
        .collect();
    for f in template::functions(&template) {
        for (event_name, event) in deliveries(&f) {
            let queue = referenced(&event["DeadLetterConfig"]["Arn"])
                .unwrap_or_else(|| panic!("{}: rule without DeadLetterConfig.Arn", f.logical_id));
            assert_eq!(resource_type(&template, queue), "AWS::SQS::Queue");
            let retry = &event["RetryPolicy"];
            assert!(
                retry["MaximumRetryAttempts"].is_u64()
                    && retry["MaximumEventAgeInSeconds"].is_u64(),
                "{}: rule without a RetryPolicy",
                f.logical_id
            );
            // SAM names the rule <function><event>; EventBridge may only send to
            // the DLQ if the queue policy lets that rule do so.
            let rule_id = format!("{}{event_name}", f.logical_id);
            let allowed = queue_policies.iter().any(|p| {
                p["Properties"]["Queues"]
                    .as_array()
                    .is_some_and(|qs| qs.iter().any(|q| referenced(q) == Some(queue)))
                    && p["Properties"]["PolicyDocument"]["Statement"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|s| {
                            s["Principal"]["Service"] == "events.amazonaws.com"
                                && s["Action"] == "sqs:SendMessage"
                                && s["Condition"]["ArnEquals"]["aws:SourceArn"]
                                    .as_array()
                                    .is_some_and(|arns| {
                                        arns.iter().any(|a| referenced(a) == Some(&rule_id))
                                    })
                        })
            });
            assert!(
                allowed,
                "{queue}'s policy does not let rule {rule_id} send to it"
            );
        }
    }
}

/// The role resource of a function (explicit, so SAM adds no managed policy).
fn role_of<'a>(template: &'a Value, f: &FunctionResource) -> (&'a str, &'a Value) {
    let id = referenced(&f.properties["Role"])
        .unwrap_or_else(|| panic!("{}: needs its own Role", f.logical_id));
    let (key, role) = template["Resources"]
        .as_object()
        .expect("Resources")
        .get_key_value(id)
        .unwrap_or_else(|| panic!("no role {id}"));
    assert_eq!(role["Type"], "AWS::IAM::Role");
    (key.as_str(), role)
}

/// Every statement of a role's inline policies, each `Fn::If` taken both ways.
fn statements(role: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for policy in role["Properties"]["Policies"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for statement in policy["PolicyDocument"]["Statement"]
            .as_array()
            .into_iter()
            .flatten()
        {
            out.extend(every_variant(statement));
        }
    }
    assert!(
        role["Properties"]["ManagedPolicyArns"].is_null(),
        "roles list their permissions inline"
    );
    out
}

fn listed(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    }
}

fn actions(statement: &Value) -> Vec<String> {
    listed(&statement["Action"])
        .iter()
        .map(|a| a.as_str().expect("action name").to_owned())
        .collect()
}

/// Whether a statement allows `action` on the resource `target` (a `Ref`/`GetAtt` of it).
fn allows(statements: &[Value], action: &str, target: &str) -> bool {
    statements.iter().any(|s| {
        s["Effect"] == "Allow"
            && actions(s).iter().any(|a| a == action)
            && listed(&s["Resource"])
                .iter()
                .any(|r| referenced(r) == Some(target))
    })
}

#[test]
fn every_function_has_bounded_retries_and_an_on_failure_queue() {
    let template = template::load();
    for f in template::functions(&template) {
        let config = &f.properties["EventInvokeConfig"];
        let retries = config["MaximumRetryAttempts"].as_u64();
        assert!(
            matches!(retries, Some(0..=2)),
            "{}: MaximumRetryAttempts {retries:?}",
            f.logical_id
        );
        let age = config["MaximumEventAgeInSeconds"].as_u64();
        assert!(
            matches!(age, Some(60..=21600)),
            "{}: MaximumEventAgeInSeconds {age:?}",
            f.logical_id
        );
        let on_failure = &config["DestinationConfig"]["OnFailure"];
        let queue = referenced(&on_failure["Destination"])
            .unwrap_or_else(|| panic!("{}: no on-failure destination", f.logical_id));
        assert_eq!(resource_type(&template, queue), "AWS::SQS::Queue");
        let (role_id, role) = role_of(&template, &f);
        assert!(
            allows(&statements(role), "sqs:SendMessage", queue),
            "{role_id} cannot send to the on-failure queue {queue}"
        );
    }
}

#[test]
fn every_function_and_project_logs_to_its_own_group_with_retention() {
    let template = template::load();
    let mut groups = BTreeSet::new();
    for f in template::functions(&template) {
        assert_eq!(f.properties["LoggingConfig"]["LogFormat"], "JSON");
        let group = referenced(&f.properties["LoggingConfig"]["LogGroup"])
            .unwrap_or_else(|| panic!("{}: LoggingConfig.LogGroup missing", f.logical_id));
        assert!(
            groups.insert(group.to_owned()),
            "{group} shared by two functions"
        );
        let resource = &template["Resources"][group];
        assert_eq!(resource["Type"], "AWS::Logs::LogGroup");
        assert!(
            !resource["Properties"]["RetentionInDays"].is_null(),
            "{group} keeps logs forever"
        );
        let (role_id, role) = role_of(&template, &f);
        let statements = statements(role);
        for action in ["logs:CreateLogStream", "logs:PutLogEvents"] {
            assert!(
                allows(&statements, action, group),
                "{role_id}: {action} on {group}"
            );
        }
    }
    for (id, project) in template["Resources"].as_object().expect("Resources") {
        if project["Type"] != "AWS::CodeBuild::Project" {
            continue;
        }
        let group = referenced(&project["Properties"]["LogsConfig"]["CloudWatchLogs"]["GroupName"])
            .unwrap_or_else(|| panic!("{id}: logs to a group of the stack"));
        assert!(
            !template["Resources"][group]["Properties"]["RetentionInDays"].is_null(),
            "{group} keeps logs forever"
        );
    }
}

fn is_read_only(action: &str) -> bool {
    let verb = action.split_once(':').map_or(action, |(_, v)| v);
    ["Get", "List", "Describe", "BatchGet"]
        .iter()
        .any(|p| verb.starts_with(p))
}

#[test]
fn no_role_allows_a_write_action_on_every_resource() {
    let template = template::load();
    let mut roles = 0;
    for (id, role) in template["Resources"].as_object().expect("Resources") {
        if role["Type"] != "AWS::IAM::Role" {
            continue;
        }
        roles += 1;
        for statement in statements(role) {
            let resources = listed(&statement["Resource"]);
            assert!(!resources.is_empty(), "{id}: statement without Resource");
            for action in actions(&statement) {
                assert!(!action.contains('*'), "{id}: wildcard action {action}");
                let on_everything = resources.iter().any(|r| r == "*");
                let allowed = STAR_RESOURCE_ALLOWED.iter().any(|(a, _)| *a == action);
                assert!(
                    !on_everything || is_read_only(&action) || allowed,
                    "{id}: {action} on \"*\""
                );
            }
        }
    }
    assert!(roles >= Function::ALL.len());
}

#[test]
fn each_function_role_allows_exactly_the_calls_its_function_makes() {
    let template = template::load();
    for f in template::functions(&template) {
        let function = function_of(&f);
        let (role_id, role) = role_of(&template, &f);
        let granted: BTreeSet<String> = statements(role)
            .iter()
            .flat_map(actions)
            .filter(|a| {
                !matches!(
                    a.as_str(),
                    "logs:CreateLogStream" | "logs:PutLogEvents" | "sqs:SendMessage"
                )
            })
            .collect();
        let expected: BTreeSet<String> = calls(function).into_iter().map(str::to_owned).collect();
        assert_eq!(granted, expected, "{role_id} ({function})");
    }
}

/// The function's environment under `stack`: resources' names and ARNs
/// (known only once deployed) become placeholders.
fn environment(stack: &Stack<'_>, f: &FunctionResource) -> Vec<(String, String)> {
    let variables = stack
        .resolve(&f.properties["Environment"]["Variables"])
        .unwrap_or(Value::Null);
    variables
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, value)| {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => match referenced(other) {
                    Some(resource) => format!("placeholder-{resource}"),
                    None => panic!("{}: {name} = {other} is not a string", f.logical_id),
                },
            };
            (name.clone(), text)
        })
        .collect()
}

#[test]
fn the_template_sets_every_variable_each_function_reads() {
    let template = template::load();
    for overrides in stack_settings() {
        let stack = Stack::with(&template, overrides);
        for f in template::functions(&template) {
            let function = function_of(&f);
            let mut env = EnvReader::from_pairs(environment(&stack, &f), Mode::Strict);
            let config = FunctionConfig::read(function, &mut env);
            assert_eq!(config.function(), function);
            if let Err(e) = env.finish() {
                panic!("{function} with {overrides:?}: {e}");
            }
        }
    }
}

#[test]
fn the_mirror_project_runs_scripts_mirror_sh() {
    // One source: Fn::ForEach generates its policy (MirrorSourcePolicyMyDemoRepo).
    let template = template::load_with(&[("ReplicaSources", "MyDemoRepo")]);
    let project = &template["Resources"]["MirrorProject"]["Properties"];
    assert_eq!(project["Source"]["Type"], "NO_SOURCE");
    let buildspec = project["Source"]["BuildSpec"]
        .as_str()
        .expect("inline BuildSpec");
    // Nothing is downloaded at build time (no package index, no unpinned tool).
    for word in ["pip", "curl", "wget", "npm", "yum", "dnf", "apt"] {
        let downloads = buildspec_text_outside_script(&project["Source"]["BuildSpec"], word);
        assert!(
            !downloads,
            "the buildspec runs {word} outside scripts/mirror.sh"
        );
    }
    let buildspec: serde_norway::Value =
        serde_norway::from_str(buildspec).expect("the BuildSpec is YAML");
    let build: Vec<&str> = buildspec["phases"]["build"]["commands"]
        .as_sequence()
        .expect("build commands")
        .iter()
        .map(|c| c.as_str().expect("command"))
        .collect();
    let [write, run] = build.as_slice() else {
        panic!("two build commands expected: {build:?}")
    };
    let body = write
        .strip_prefix("cat > /tmp/signalbox-mirror.sh <<'SIGNALBOX_MIRROR_SH'\n")
        .and_then(|b| b.strip_suffix("SIGNALBOX_MIRROR_SH\n"))
        .expect("the script as a quoted here-document");
    assert_eq!(*run, "bash /tmp/signalbox-mirror.sh");
    let script = std::fs::read_to_string(template::repo_root().join("scripts/mirror.sh"))
        .expect("scripts/mirror.sh");
    assert_eq!(
        body.trim_end_matches('\n'),
        script.trim_end_matches('\n'),
        "template.yaml carries another mirror script: run scripts/embed-mirror"
    );
    // The role the build runs with can push only into other regions, and
    // only into repositories tagged as replicas of exactly a listed source.
    let mut statements = statements(&template["Resources"]["MirrorProjectRole"]);
    let generated = &template["Resources"]["MirrorSourcePolicyMyDemoRepo"];
    assert_eq!(generated["Type"], "AWS::IAM::RolePolicy");
    assert_eq!(
        generated["Properties"]["RoleName"],
        json!({"Ref": "MirrorProjectRole"})
    );
    for statement in generated["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .expect("Statement")
    {
        statements.extend(every_variant(statement));
    }
    let marked =
        json!({"aws:ResourceTag/signalbox:replica-of": {"Fn::Sub": "${AWS::Region}/MyDemoRepo"}});
    for write in ["codecommit:GitPush", "codecommit:UpdateDefaultBranch"] {
        let granted: Vec<&Value> = statements
            .iter()
            .filter(|s| actions(s).iter().any(|a| a == write))
            .collect();
        assert!(!granted.is_empty(), "the mirror role needs {write}");
        for statement in granted {
            assert_eq!(
                statement["Condition"]["StringNotEquals"]["aws:RequestedRegion"],
                json!({"Ref": "AWS::Region"}),
                "{write}"
            );
            assert_eq!(statement["Condition"]["StringEquals"], marked, "{write}");
            assert!(statement["Condition"]["StringLike"].is_null(), "{write}");
        }
    }
    // With CreateMissingReplicas, it may create a repository only tagged as a
    // replica in the same call; never tag one afterwards (that would let it
    // mark, then overwrite, any repository).
    let create: Vec<&Value> = statements
        .iter()
        .filter(|s| {
            actions(s)
                .iter()
                .any(|a| a == "codecommit:CreateRepository")
        })
        .collect();
    assert_eq!(
        create.len(),
        1,
        "CreateRepository behind CreateMissingReplicas"
    );
    assert_eq!(
        create[0]["Condition"]["StringEquals"],
        json!({"aws:RequestTag/signalbox:replica-of": {"Fn::Sub": "${AWS::Region}/MyDemoRepo"}})
    );
    assert_eq!(
        create[0]["Condition"]["StringNotEquals"]["aws:RequestedRegion"],
        json!({"Ref": "AWS::Region"})
    );
    assert!(
        !statements
            .iter()
            .any(|s| actions(s).iter().any(|a| a == "codecommit:TagResource")),
        "the mirror role must not tag repositories"
    );
    let variables = &project["Environment"]["EnvironmentVariables"];
    assert!(
        listed(variables)
            .iter()
            .any(|v| v["Name"] == "SIGNALBOX_MIRROR_CREATE_REPLICAS"
                && v["Value"] == json!({"Ref": "CreateMissingReplicas"})),
        "{variables}"
    );
    // The script reads the tags and default branches it checks.
    for read in ["codecommit:ListTagsForResource", "codecommit:GetRepository"] {
        assert!(
            statements
                .iter()
                .any(|s| actions(s).iter().any(|a| a == read)),
            "the mirror role needs {read}"
        );
    }
    // The script's comparison lists each replica's refs (`git ls-remote`),
    // which CodeCommit authorizes as GitPull: without it every build fails.
    let read = statements
        .iter()
        .find(|s| {
            actions(s).iter().any(|a| a == "codecommit:GitPull")
                && s["Condition"]["StringNotEquals"]["aws:RequestedRegion"]
                    == json!({"Ref": "AWS::Region"})
                && s["Condition"]["StringEquals"] == marked
        })
        .expect("GitPull statement for the replicas in other regions");
    assert_eq!(
        read["Resource"],
        json!({"Fn::Sub": "arn:${AWS::Partition}:codecommit:*:${AWS::AccountId}:*"})
    );
}

/// With PR-check projects per repository, build-report must know them all:
/// it ignores a SIGNALBOX_* build of any project it was not told about.
#[test]
fn build_report_knows_the_per_repository_pr_check_projects() {
    let template = template::load();
    let stack = Stack::with(
        &template,
        &[
            ("PrCheckProjectName", "my-pr-check"),
            (
                "PrCheckProjectsByRepository",
                r#"{"MyDemoRepo":"demo-pr-check"}"#,
            ),
        ],
    );
    let f = template::functions(&template)
        .into_iter()
        .find(|f| function_of(f) == Function::BuildReport)
        .expect("the build-report function");
    let mut env = EnvReader::from_pairs(environment(&stack, &f), Mode::Strict);
    let FunctionConfig::BuildReport(config) = FunctionConfig::read(Function::BuildReport, &mut env)
    else {
        panic!("not build-report's configuration")
    };
    env.finish().expect("valid configuration");
    assert_eq!(config.projects, ["my-pr-check", "demo-pr-check"]);
}

/// Variables a function reads that the template leaves unset on purpose.
const SET_BY_LAMBDA_OR_DEFAULTED: &[(&str, &str)] = &[
    ("AWS_REGION", "set by Lambda itself"),
    (
        "GIT_WEBHOOK_CONFIG",
        "a local routes file for replays and tests; deployed, git-webhook reads GIT_WEBHOOK_CONFIG_PARAM",
    ),
];

/// Stacks the environment tests derive the functions' variables from.
fn stack_settings() -> [&'static [(&'static str, &'static str)]; 3] {
    [
        // A stack deployed with the defaults (and a repository to check).
        &[("PrCheckRepositoryName", "MyDemoRepo")],
        // Slack on, an existing topic and project, PR projects per repository.
        &[
            ("SlackEnabled", "true"),
            ("AlertTopicArn", "arn:aws:sns:us-east-1:123456789012:alerts"),
            ("PrCheckProjectName", "my-pr-check"),
            (
                "PrCheckProjectsByRepository",
                r#"{"MyDemoRepo":"demo-pr-check"}"#,
            ),
            ("PrCheckRepositories", "MyDemoRepo,OtherRepo"),
            ("PrApproval", "true"),
            // pr-check's activity notices on: it reads the alert channels.
            ("ActivityNotices", "pr-created,pr-commented"),
        ],
        // Everything off.
        &[("SnsEnabled", "false"), ("SlackEnabled", "false")],
    ]
}

/// Two functions that read the same setting must see the same value: a
/// per-repository project pr-check starts builds in must be one build-report
/// reports on, and both must agree whether approvals are on.
#[test]
fn functions_that_read_the_same_setting_see_the_same_value() {
    let template = template::load();
    for overrides in stack_settings() {
        let stack = Stack::with(&template, overrides);
        // variable -> (function, value) for every function that reads it.
        let mut seen: BTreeMap<String, Vec<(Function, Option<String>)>> = BTreeMap::new();
        for f in template::functions(&template) {
            let function = function_of(&f);
            let environment = environment(&stack, &f);
            let env = {
                let mut env = EnvReader::from_pairs(environment.clone(), Mode::Strict);
                FunctionConfig::read(function, &mut env);
                env
            };
            for name in env.asked() {
                let value = environment
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.clone());
                seen.entry(name).or_default().push((function, value));
            }
        }
        for (name, readers) in seen {
            let values: BTreeSet<&Option<String>> = readers.iter().map(|(_, v)| v).collect();
            assert!(
                values.len() == 1,
                "with {overrides:?}, {name} differs between functions: {readers:?}"
            );
        }
    }
}

/// Optional variables too: one the template forgets is a setting the user
/// made that a function silently ignores.
#[test]
fn the_template_sets_every_optional_variable_a_function_reads() {
    let template = template::load();
    for overrides in stack_settings() {
        let stack = Stack::with(&template, overrides);
        for f in template::functions(&template) {
            let function = function_of(&f);
            let environment = environment(&stack, &f);
            let mut env = EnvReader::from_pairs(environment.clone(), Mode::Strict);
            FunctionConfig::read(function, &mut env);
            // A variable the template may leave out under one setting
            // (AWS::NoValue) is declared for the function under another.
            let declared: BTreeSet<String> = f.properties["Environment"]["Variables"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, _)| name.clone())
                .collect();
            for name in env.asked() {
                if SET_BY_LAMBDA_OR_DEFAULTED.iter().any(|(n, _)| *n == name) {
                    continue;
                }
                assert!(
                    declared.contains(&name),
                    "{function} reads {name}, which template.yaml never sets for it"
                );
            }
        }
    }
}

/// The approval is the one grant a forged or rewritten check could abuse.
#[test]
fn only_build_report_may_approve_and_only_when_approvals_are_on() {
    let template = template::load();
    for f in template::functions(&template) {
        let (role_id, role) = role_of(&template, &f);
        let approves = statements(role).iter().any(|s| {
            actions(s)
                .iter()
                .any(|a| a == "codecommit:UpdatePullRequestApprovalState")
        });
        assert_eq!(
            approves,
            function_of(&f) == Function::BuildReport,
            "{role_id} and codecommit:UpdatePullRequestApprovalState"
        );
    }
    let statement = &template["Resources"]["BuildReportRole"]["Properties"]["Policies"][0]
        ["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            single_key(s).is_some_and(|(k, _)| k == "Fn::If") && s["Fn::If"][1]["Sid"] == "Approvals"
        })
        .cloned()
        .expect("the approval statement is conditional");
    assert_eq!(statement["Fn::If"][0], "ApprovalsOn");
    assert_eq!(statement["Fn::If"][2], json!({"Ref": "AWS::NoValue"}));
}

#[test]
fn every_function_timeout_is_the_one_the_code_budgets_for() {
    use signalbox::invocation::FUNCTION_TIMEOUT;
    let template = template::load();
    assert_eq!(
        template["Globals"]["Function"]["Timeout"].as_u64(),
        Some(FUNCTION_TIMEOUT.as_secs()),
        "Globals.Function.Timeout must equal signalbox::invocation::FUNCTION_TIMEOUT"
    );
    for f in template::functions(&template) {
        // A function that runs longer than the code assumes could outlive
        // its idempotency claim and have its action taken over mid-flight.
        let timeout = f.properties["Timeout"].as_u64();
        assert_eq!(
            timeout,
            Some(FUNCTION_TIMEOUT.as_secs()),
            "{}: Timeout {timeout:?} is not FUNCTION_TIMEOUT",
            f.logical_id
        );
    }
    assert!(
        signalbox::idempotency::CLAIM_LEASE > FUNCTION_TIMEOUT,
        "a claim outlives the invocation that holds it"
    );
}

#[test]
fn deploy_gates_retries_are_the_ones_it_counts_its_attempts_against() {
    // deploy-gate answers a hook on Lambda's last retry rather than leave it
    // unanswered: it must know how many retries there are.
    let template = template::load();
    assert_eq!(
        template["Globals"]["Function"]["EventInvokeConfig"]["MaximumRetryAttempts"].as_u64(),
        Some(signalbox::invocation::ASYNC_RETRIES),
        "Globals.Function.EventInvokeConfig.MaximumRetryAttempts must equal signalbox::invocation::ASYNC_RETRIES"
    );
    let gate = template::functions(&template)
        .into_iter()
        .find(|f| function_of(f) == Function::DeployGate)
        .expect("the deploy-gate function");
    assert_eq!(
        gate.properties["EventInvokeConfig"]["MaximumRetryAttempts"].as_u64(),
        Some(signalbox::invocation::ASYNC_RETRIES),
        "{}: MaximumRetryAttempts is not ASYNC_RETRIES",
        gate.logical_id
    );
}

#[test]
fn every_function_reports_permanent_failures_to_the_failed_invocations_queue() {
    let template = template::load();
    let stack = Stack::with_defaults(&template);
    for f in template::functions(&template) {
        let env = environment(&stack, &f);
        let url = env
            .iter()
            .find(|(name, _)| name == "FAILURE_QUEUE_URL")
            .map(|(_, value)| value.as_str());
        // The queue's URL (Ref of an SQS queue), the queue its role may send to.
        assert_eq!(
            url,
            Some("placeholder-FailedInvocationsQueue"),
            "{}: FAILURE_QUEUE_URL",
            f.logical_id
        );
        let (role_id, role) = role_of(&template, &f);
        assert!(
            allows(
                &statements(role),
                "sqs:SendMessage",
                "FailedInvocationsQueue"
            ),
            "{role_id} cannot send to FailedInvocationsQueue"
        );
    }
}

#[test]
fn both_failure_queues_have_an_alarm_on_new_messages_that_notifies_the_operations_topic() {
    let template = template::load();
    let alarms: Vec<(&String, &Value)> = template["Resources"]
        .as_object()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm")
        .collect();
    for queue in ["UndeliveredEventsQueue", "FailedInvocationsQueue"] {
        let watching: Vec<_> = alarms
            .iter()
            .filter(|(_, a)| {
                a["Properties"]["Dimensions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|d| {
                        d["Name"] == "QueueName"
                            && d["Value"] == json!({ "Fn::GetAtt": [queue, "QueueName"] })
                    })
            })
            .collect();
        assert_eq!(watching.len(), 1, "{queue}: one alarm");
        let (id, alarm) = watching[0];
        let p = &alarm["Properties"];
        assert_eq!(p["Namespace"], "AWS/SQS", "{id}");
        assert_eq!(p["MetricName"], "NumberOfMessagesSent", "{id}");
        assert_eq!(p["ComparisonOperator"], "GreaterThanThreshold", "{id}");
        assert_eq!(
            p["Threshold"].as_f64(),
            Some(0.0),
            "{id}: one message alarms"
        );
        // The topic, whether the stack creates it or is given one.
        for (overrides, topic) in [
            (&[][..], json!({ "Ref": "OperationsTopic" })),
            (
                &[(
                    "OperationsTopicArn",
                    "arn:aws:sns:us-east-1:123456789012:ops",
                )][..],
                json!("arn:aws:sns:us-east-1:123456789012:ops"),
            ),
        ] {
            let stack = Stack::with(&template, overrides);
            assert_eq!(
                stack.resolve(&p["AlarmActions"]),
                Some(json!([topic])),
                "{id} with {overrides:?}"
            );
        }
    }
}

/// Whether `statement` lets CloudWatch alarms of this account publish to
/// `topic` (the resolved topic reference).
fn lets_alarms_publish(stack: &Stack<'_>, statement: &Value, topic: &Value) -> bool {
    let principals = stack
        .resolve(&statement["Principal"]["Service"])
        .map(|p| listed(&p))
        .unwrap_or_default();
    let resources = stack
        .resolve(&statement["Resource"])
        .map(|r| listed(&r))
        .unwrap_or_default();
    statement["Effect"] == "Allow"
        && principals.contains(&json!("cloudwatch.amazonaws.com"))
        && actions(statement)
            .iter()
            .any(|a| a.eq_ignore_ascii_case("sns:Publish") || a == "sns:*")
        && resources.contains(topic)
        && statement["Condition"]["ArnLike"]["aws:SourceArn"]
            == json!({ "Fn::Sub": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*" })
        && statement["Condition"]["StringEquals"]["aws:SourceAccount"]
            == json!({ "Ref": "AWS::AccountId" })
}

#[test]
fn every_topic_an_alarm_notifies_lets_cloudwatch_publish() {
    let template = template::load();
    let resources = template["Resources"].as_object().expect("Resources");
    let stack = Stack::with_defaults(&template);
    let deployed = |r: &Value| r["Condition"].as_str().is_none_or(|c| stack.condition(c));
    let mut checked = 0;
    for (id, alarm) in resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm" && deployed(r))
    {
        let actions = stack
            .resolve(&alarm["Properties"]["AlarmActions"])
            .unwrap_or_default();
        for topic in listed(&actions) {
            // A topic policy replaces the topic's whole policy: if the stack
            // sets one on the topic, it must let the alarms publish.
            for (policy_id, policy) in resources.iter().filter(|(_, r)| {
                r["Type"] == "AWS::SNS::TopicPolicy"
                    && deployed(r)
                    && stack
                        .resolve(&r["Properties"]["Topics"])
                        .is_some_and(|t| listed(&t).contains(&topic))
            }) {
                let statements = policy["Properties"]["PolicyDocument"]["Statement"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{policy_id}: Statement is a list"));
                assert!(
                    statements
                        .iter()
                        .any(|s| lets_alarms_publish(&stack, s, &topic)),
                    "{policy_id} does not let {id} (cloudwatch.amazonaws.com) publish to {topic}"
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 2,
        "both queue alarms' topic policies were checked"
    );
}

#[test]
fn done_actions_are_remembered_longer_than_the_failure_queues_keep_an_event() {
    let template = template::load();
    for queue in ["UndeliveredEventsQueue", "FailedInvocationsQueue"] {
        let kept = template["Resources"][queue]["Properties"]["MessageRetentionPeriod"]
            .as_u64()
            .unwrap_or_else(|| panic!("{queue}: MessageRetentionPeriod"));
        assert!(
            kept < signalbox::idempotency::RETENTION.as_secs(),
            "{queue} keeps events {kept} s: a redrive after the ledger forgot would repeat actions"
        );
    }
}

/// Whether `word` appears in the buildspec outside the embedded script.
fn buildspec_text_outside_script(buildspec: &Value, word: &str) -> bool {
    let text = buildspec.as_str().expect("inline BuildSpec");
    let before = text.split("SIGNALBOX_MIRROR_SH").next().unwrap_or_default();
    let after = text
        .rsplit("SIGNALBOX_MIRROR_SH")
        .next()
        .unwrap_or_default();
    [before, after].iter().any(|part| {
        part.split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| w == word || w == format!("{word}3"))
    })
}

/// Actions that start the mirror project, or change what it runs.
const STARTS_A_BUILD: &[&str] = &[
    "codebuild:StartBuild",
    "codebuild:StartBuildBatch",
    "codebuild:RetryBuild",
    "codebuild:RetryBuildBatch",
    "codebuild:UpdateProject",
];

/// Whether an IAM action pattern covers `action` (`*`, `codebuild:*`, `codebuild:Start*`).
fn covers(pattern: &str, action: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => action.starts_with(prefix),
        None => pattern.eq_ignore_ascii_case(action),
    }
}

/// Whether a Resource entry could name the mirror project: the project
/// itself, `*`, or a CodeBuild ARN with a wildcard in the project part.
fn could_be_the_mirror_project(resource: &Value) -> bool {
    if referenced(resource) == Some("MirrorProject") {
        return true;
    }
    let text = match single_key(resource) {
        Some(("Fn::Sub", Value::String(text))) => text.clone(),
        Some(("Fn::Sub", Value::Array(args))) => args[0].as_str().unwrap_or_default().to_owned(),
        Some(_) => return false,
        None => resource.as_str().unwrap_or_default().to_owned(),
    };
    if text == "*" {
        return true;
    }
    let project = text
        .split_once(":project/")
        .map(|(_, p)| p)
        .or_else(|| text.ends_with(":*").then_some("*"));
    project.is_some_and(|p| p.contains('*') || p.contains("${AWS::StackName}-mirror"))
}

/// A condition that only PR-check projects meet (the mirror project has no
/// `signalbox:pr-check` tag).
fn only_pr_check_projects(statement: &Value) -> bool {
    statement["Condition"]["StringEquals"]["aws:ResourceTag/signalbox:pr-check"] == "true"
}

#[test]
fn no_role_but_repo_replicates_may_start_the_mirror_project() {
    let template = template::load();
    let resources = template["Resources"].as_object().expect("Resources");
    let mut offenders = Vec::new();
    for (id, role) in resources {
        if role["Type"] != "AWS::IAM::Role" || id == "RepoReplicateRole" {
            continue;
        }
        for statement in statements(role) {
            if statement["Effect"] != "Allow" || only_pr_check_projects(&statement) {
                continue;
            }
            for action in actions(&statement) {
                let starts = STARTS_A_BUILD.iter().any(|a| covers(&action, a));
                let on_mirror = listed(&statement["Resource"])
                    .iter()
                    .any(could_be_the_mirror_project);
                if starts && on_mirror {
                    offenders.push(format!("{id}: {action} on {}", statement["Resource"]));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
    // The tag the PR-check condition relies on is never on the mirror project.
    let tags = &template["Resources"]["MirrorProject"]["Properties"]["Tags"];
    assert!(
        !tags.to_string().contains("signalbox:pr-check"),
        "the mirror project must not carry signalbox:pr-check"
    );
    // The stack's own PR-check project carries it, so its role's condition holds.
    let tags = &template["Resources"]["PrCheckProject"]["Properties"]["Tags"];
    assert!(
        listed(tags)
            .iter()
            .any(|t| t["Key"] == "signalbox:pr-check" && t["Value"] == "true"),
        "PrCheckProject must carry signalbox:pr-check = true: {tags}"
    );
    // And repo-replicate's role may start the mirror project and nothing else.
    let role = &template["Resources"]["RepoReplicateRole"];
    for statement in statements(role) {
        if actions(&statement)
            .iter()
            .any(|a| STARTS_A_BUILD.iter().any(|s| covers(a, s)))
        {
            assert_eq!(
                listed(&statement["Resource"])
                    .iter()
                    .map(|r| referenced(r).unwrap_or("?"))
                    .collect::<Vec<_>>(),
                ["MirrorProject"],
                "RepoReplicateRole starts only the mirror project"
            );
        }
    }
}

#[test]
fn the_mirror_builds_own_failures_and_a_daily_schedule_reach_repo_replicate() {
    let template = template::load();
    let f = template::functions(&template)
        .into_iter()
        .find(|f| function_of(f) == Function::RepoReplicate)
        .expect("the repo-replicate function");
    let failed = f
        .eventbridge_rules()
        .into_iter()
        .find(|(_, e)| e["Pattern"]["source"] == json!(["aws.codebuild"]))
        .expect("a rule for the mirror project's builds");
    assert_eq!(
        failed.1["Pattern"]["detail"]["project-name"],
        json!([{"Ref": "MirrorProject"}])
    );
    let schedules = f.events_of("Schedule");
    let [(_, schedule)] = schedules.as_slice() else {
        panic!("one Schedule event expected: {schedules:?}")
    };
    assert_eq!(
        schedule["Schedule"],
        json!({"Ref": "ReplicaReconcileSchedule"})
    );
    // No Input: the function receives EventBridge's Scheduled Event, which it routes.
    assert!(schedule["Input"].is_null(), "{schedule}");
    let parameter = &template["Parameters"]["ReplicaReconcileSchedule"];
    assert_eq!(parameter["Default"], "rate(1 day)");
    // The replication lag the mirror build logs becomes a metric.
    let filter = template["Resources"]
        .as_object()
        .unwrap()
        .values()
        .find(|r| {
            r["Type"] == "AWS::Logs::MetricFilter"
                && referenced(&r["Properties"]["LogGroupName"]) == Some("MirrorProjectLogGroup")
        })
        .expect("a metric filter on the mirror project's log group");
    let properties = &filter["Properties"];
    assert_eq!(
        properties["FilterPattern"],
        "[label=\"signalbox-replication-lag\", seconds, source]"
    );
    let transformation = &properties["MetricTransformations"][0];
    assert_eq!(transformation["MetricName"], "ReplicationLagSeconds");
    assert_eq!(transformation["MetricValue"], "$seconds");
    assert_eq!(transformation["Unit"], "Seconds");
}

/// CodeDeploy's managed policy for Lambda deployments (AWSCodeDeployRoleForLambda)
/// may invoke only functions named `CodeDeployHook_*`; deploy-gate may invoke
/// only the versions of the functions the user names, and read only its
/// configuration parameter and the webhook's.
#[test]
fn deploy_gate_is_named_for_codedeploy_and_invokes_only_the_named_functions() {
    let template = template::load();
    let gate = template::functions(&template)
        .into_iter()
        .find(|f| function_of(f) == Function::DeployGate)
        .expect("a deploy-gate function");
    // Its full length for every stack name: tests/template_limits.rs.
    let name = &gate.properties["FunctionName"]["Fn::Join"][1][0];
    assert!(
        name.as_str()
            .is_some_and(|n| n.starts_with("CodeDeployHook_")),
        "{name}"
    );
    assert!(
        gate.eventbridge_rules().is_empty(),
        "CodeDeploy invokes it, not a rule"
    );
    let (role_id, role) = role_of(&template, &gate);
    let statements = statements(role);
    let invoke: Vec<&Value> = statements
        .iter()
        .filter(|s| actions(s).iter().any(|a| a == "lambda:InvokeFunction"))
        .collect();
    assert_eq!(invoke.len(), 1, "{role_id}");
    assert_eq!(
        invoke[0]["Resource"],
        json!({"Fn::Split": [",", {"Fn::Join": ["", [{"Fn::Join": [":*,", {"Ref": "GateFunctionArns"}]}, ":*"]]}]}),
        "{role_id}: the named functions' versions only"
    );
    let parameters: Vec<Value> = statements
        .iter()
        .filter(|s| actions(s).iter().any(|a| a == "ssm:GetParameter"))
        .flat_map(|s| listed(&s["Resource"]))
        .collect();
    assert_eq!(
        parameters,
        [
            // Only with a routing configuration (RoutingParameter).
            json!({"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${RoutingParameter}"}),
            json!({"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${RoutingParameterPath}*"}),
            json!({"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${GateConfigParameterName}"}),
            json!({"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${SlackWebhookParameterName}"}),
        ]
    );
    let stack = Stack::with_defaults(&template);
    let env = environment(&stack, &gate);
    assert!(
        env.iter()
            .any(|(n, v)| n == "GATE_CONFIG_PARAM" && v == "/signalbox/deploy-gate"),
        "{env:?}"
    );
}

/// The KMS grants of `function`'s role, every `Fn::If` decided by `stack`.
fn kms_grants(stack: &Stack<'_>, function: Function) -> Vec<Value> {
    let gate = template::functions(stack.template)
        .into_iter()
        .find(|f| function_of(f) == function)
        .unwrap_or_else(|| panic!("a {function:?} function"));
    let (role_id, role) = role_of(stack.template, &gate);
    statements_for(stack, role_id, role, "kms:")
}

/// The statements of `role`, every `Fn::If` decided by `stack`, that allow an
/// action starting with `prefix` (`"kms:"`).
fn statements_for(stack: &Stack<'_>, role_id: &str, role: &Value, prefix: &str) -> Vec<Value> {
    let resolved = stack.resolve(role).unwrap_or_else(|| panic!("{role_id}"));
    resolved["Properties"]["Policies"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().cloned())
        .flatten()
        .filter(|s| actions(s).iter().any(|a| a.starts_with(prefix)))
        .collect()
}

/// A gate configuration stored as a SecureString under a customer-managed
/// key is readable by both gates: `GateConfigKmsKeyArn` grants each gate's
/// role kms:Decrypt on that key only, and nothing when it is empty.
#[test]
fn each_gate_may_decrypt_its_configuration_under_a_customer_managed_key_and_nothing_without_one() {
    const KEY: &str = "arn:aws:kms:eu-west-1:123456789012:key/1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d";
    let template = template::load();
    assert_eq!(template["Parameters"]["GateConfigKmsKeyArn"]["Default"], "");
    let without_key = Stack::with_defaults(&template);
    let with_key = Stack::with(&template, &[("GateConfigKmsKeyArn", KEY)]);
    for function in [Function::DeployGate, Function::PipelineGate] {
        let without = kms_grants(&without_key, function);
        assert!(
            without
                .iter()
                .all(|s| s["Sid"] != "GateConfigurationKey" && s["Resource"] != ""),
            "{function:?}: a grant without a key: {without:?}"
        );
        let with = kms_grants(&with_key, function);
        let added: Vec<&Value> = with.iter().filter(|s| !without.contains(s)).collect();
        assert_eq!(
            added,
            [&json!({"Sid": "GateConfigurationKey", "Effect": "Allow",
                "Action": "kms:Decrypt", "Resource": KEY})],
            "{function:?}"
        );
        assert_eq!(with.len(), without.len() + 1, "{function:?}: {with:?}");
    }
}

/// git-webhook's archive targets: with no archive bucket its role may write
/// to no bucket; with one, only under the archive prefix, and only the
/// multipart upload's own actions.
#[test]
fn git_webhook_may_write_archives_only_under_the_archive_prefix() {
    let template = template::load();
    let role = &template["Resources"]["GitWebhookRole"];
    let s3_statements = |stack: &Stack<'_>| statements_for(stack, "GitWebhookRole", role, "s3:");
    assert!(
        s3_statements(&Stack::with_defaults(&template)).is_empty(),
        "no archive bucket, no S3 grant"
    );
    let stack = Stack::with(
        &template,
        &[
            ("GitWebhookArchiveBucket", "acme-sources"),
            ("GitWebhookArchivePrefix", "sources/"),
        ],
    );
    let statements = s3_statements(&stack);
    let [statement] = statements.as_slice() else {
        panic!("one S3 statement expected: {statements:?}")
    };
    assert_eq!(
        actions(statement),
        [
            "s3:PutObject",
            "s3:AbortMultipartUpload",
            "s3:ListMultipartUploadParts"
        ]
    );
    assert_eq!(
        statement["Resource"],
        json!({"Fn::Sub": "arn:${AWS::Partition}:s3:::${GitWebhookArchiveBucket}/${GitWebhookArchivePrefix}*"})
    );
}

/// An SSE-KMS archive bucket: with `GitWebhookArchiveKmsKeyArn` set (and an
/// archive bucket), git-webhook may GenerateDataKey and Decrypt with that key
/// only; unset, no KMS grant.
#[test]
fn git_webhook_may_use_the_archive_buckets_kms_key_only_when_given() {
    let template = template::load();
    let role = &template["Resources"]["GitWebhookRole"];
    let kms_statements = |stack: &Stack<'_>| statements_for(stack, "GitWebhookRole", role, "kms:");
    let bucket_only = Stack::with(&template, &[("GitWebhookArchiveBucket", "acme-sources")]);
    assert!(
        kms_statements(&bucket_only).is_empty(),
        "no key, no KMS grant"
    );
    let key = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-0a1b-2c3d-4e5f-0a1b2c3d4e5f";
    let stack = Stack::with(
        &template,
        &[
            ("GitWebhookArchiveBucket", "acme-sources"),
            ("GitWebhookArchiveKmsKeyArn", key),
        ],
    );
    let statements = kms_statements(&stack);
    let [statement] = statements.as_slice() else {
        panic!("one KMS statement expected: {statements:?}")
    };
    assert_eq!(actions(statement), ["kms:GenerateDataKey", "kms:Decrypt"]);
    assert_eq!(statement["Resource"], key);
}

#[test]
fn repo_guard_may_send_only_to_its_own_scan_queue_which_it_receives_one_message_at_a_time() {
    let template = template::load();
    let stack = Stack::with_defaults(&template);
    let guard = template::functions(&template)
        .into_iter()
        .find(|f| function_of(f) == Function::RepoGuard)
        .expect("RepoGuardFunction");
    let (role_id, role) = role_of(&template, &guard);
    let granted = statements(role);
    // SendMessage: the failure queue (every function) and its own scan queue, nothing else.
    let targets: BTreeSet<String> = granted
        .iter()
        .filter(|s| actions(s).iter().any(|a| a == "sqs:SendMessage"))
        .flat_map(|s| listed(&s["Resource"]))
        .map(|r| {
            referenced(&r)
                .unwrap_or("(not a queue of the stack)")
                .to_owned()
        })
        .collect();
    assert_eq!(
        targets,
        BTreeSet::from([
            "FailedInvocationsQueue".to_owned(),
            "GuardScanQueue".to_owned()
        ]),
        "{role_id}"
    );
    for action in [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    ] {
        assert!(
            allows(&granted, action, "GuardScanQueue"),
            "{role_id}: {action}"
        );
    }
    // No other role may send to it: only repo-guard starts its pieces.
    for f in template::functions(&template) {
        if function_of(&f) == Function::RepoGuard {
            continue;
        }
        let (other, role) = role_of(&template, &f);
        assert!(
            !allows(&statements(role), "sqs:SendMessage", "GuardScanQueue"),
            "{other} may send to repo-guard's scan queue"
        );
    }
    // The event source: that queue, one message per invocation.
    let sources = guard.events_of("SQS");
    assert_eq!(sources.len(), 1, "one SQS event on {}", guard.logical_id);
    let (_, source) = sources[0];
    assert_eq!(referenced(&source["Queue"]), Some("GuardScanQueue"));
    assert_eq!(source["BatchSize"], json!(1));
    let env = environment(&stack, &guard);
    assert!(
        env.contains(&(
            "GUARD_SCAN_QUEUE_URL".to_owned(),
            "placeholder-GuardScanQueue".to_owned()
        )),
        "{env:?}"
    );
    // The queue: standard, encrypted, redriven to its own dead-letter queue
    // (GuardScanDeadLetterQueue) after SCAN_QUEUE_MAX_RECEIVES receives,
    // visible again only after six function timeouts.
    let queue = &template["Resources"]["GuardScanQueue"];
    assert_eq!(queue["Type"], "AWS::SQS::Queue");
    let p = &queue["Properties"];
    assert!(p["FifoQueue"].is_null(), "a standard queue");
    assert_eq!(p["SqsManagedSseEnabled"], json!(true));
    assert_eq!(
        referenced(&p["RedrivePolicy"]["deadLetterTargetArn"]),
        Some("GuardScanDeadLetterQueue")
    );
    // At least 5 (the Lambda guide), and what repo-guard takes for the last delivery.
    assert_eq!(
        p["RedrivePolicy"]["maxReceiveCount"].as_u64(),
        Some(u64::from(
            signalbox::flows::repo_guard::SCAN_QUEUE_MAX_RECEIVES
        ))
    );
    assert!(p["RedrivePolicy"]["maxReceiveCount"].as_u64() >= Some(5));
    assert!(
        p["VisibilityTimeout"].as_u64()
            >= Some(6 * signalbox::invocation::FUNCTION_TIMEOUT.as_secs()),
        "VisibilityTimeout {}",
        p["VisibilityTimeout"]
    );
}

/// A piece SQS dead-letters pages someone: the scan queue's dead-letter
/// queue keeps messages longer than the queue (expiry counts from the first
/// enqueue), and its alarm watches the depth (a redrive is not "sent"),
/// notifying the operations topic like the failure queues' alarms.
#[test]
fn the_scan_queues_dead_letters_keep_longer_and_page_the_operations_topic() {
    let template = template::load();
    let resources = &template["Resources"];
    let queue = &resources["GuardScanQueue"]["Properties"];
    let dead = &resources["GuardScanDeadLetterQueue"];
    assert_eq!(dead["Type"], "AWS::SQS::Queue");
    let dead = &dead["Properties"];
    assert_eq!(dead["SqsManagedSseEnabled"], json!(true));
    assert!(
        dead["MessageRetentionPeriod"].as_u64() > queue["MessageRetentionPeriod"].as_u64(),
        "{dead} / {queue}"
    );
    let watching: Vec<(&String, &Value)> = resources
        .as_object()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| {
            r["Type"] == "AWS::CloudWatch::Alarm"
                && r["Properties"]["Dimensions"]
                    == json!([{"Name": "QueueName", "Value": {"Fn::GetAtt": ["GuardScanDeadLetterQueue", "QueueName"]}}])
        })
        .collect();
    assert_eq!(watching.len(), 1, "one alarm on the scan dead-letter queue");
    let (id, alarm) = watching[0];
    let p = &alarm["Properties"];
    assert_eq!(p["Namespace"], "AWS/SQS", "{id}");
    assert_eq!(
        p["MetricName"], "ApproximateNumberOfMessagesVisible",
        "{id}"
    );
    assert_eq!(p["ComparisonOperator"], "GreaterThanThreshold", "{id}");
    assert_eq!(p["Threshold"].as_f64(), Some(0.0), "{id}");
    let stack = Stack::with_defaults(&template);
    assert_eq!(
        stack.resolve(&p["AlarmActions"]),
        Some(json!([{ "Ref": "OperationsTopic" }])),
        "{id}"
    );
}

/// Only repo-guard's role may send to its scan queue: a queue policy denies
/// sqs:SendMessage to every other principal (aws:PrincipalArn).
#[test]
fn only_repo_guards_role_may_send_to_its_scan_queue() {
    let template = template::load();
    let policies: Vec<&Value> = template["Resources"]
        .as_object()
        .expect("Resources")
        .values()
        .filter(|r| {
            r["Type"] == "AWS::SQS::QueuePolicy"
                && listed(&r["Properties"]["Queues"]).contains(&json!({"Ref": "GuardScanQueue"}))
        })
        .collect();
    assert_eq!(policies.len(), 1, "one policy on GuardScanQueue");
    let statements = policies[0]["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .expect("Statement is a list");
    assert!(
        statements.iter().any(|s| {
            s["Effect"] == "Deny"
                && s["Principal"] == "*"
                && actions(s) == ["sqs:SendMessage"]
                && referenced(&s["Resource"]) == Some("GuardScanQueue")
                && s["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
                    == json!({"Fn::GetAtt": ["RepoGuardRole", "Arn"]})
        }),
        "{statements:#?}"
    );
}

/// Routing (docs/routing.md) in least privilege: without a routing parameter
/// no notifier gains a grant; with one, each may read that parameter and the
/// destinations' parameters under `RoutingParameterPath` (the path it is told,
/// so it refuses a configuration naming others), and publish only to the
/// topics `RoutingTopicArns` lists.
#[test]
fn routing_grants_only_its_parameter_the_path_below_and_the_listed_topics() {
    let template = template::load();
    let off = Stack::with_defaults(&template);
    let on = Stack::with(
        &template,
        &[
            ("RoutingParameter", "/teams/routing"),
            ("RoutingParameterPath", "/teams/destinations/"),
            (
                "RoutingTopicArns",
                "arn:aws:sns:us-east-1:123456789012:payments,arn:aws:sns:us-east-1:123456789012:platform",
            ),
            ("ActivityNotices", "pr-created,pr-commented"),
        ],
    );
    let mut notifiers = 0;
    for f in template::functions(&template) {
        let function = function_of(&f);
        let (role_id, role) = role_of(&template, &f);
        let env = environment(&on, &f);
        let reads_routing = {
            let mut reader = EnvReader::from_pairs(env.clone(), Mode::Strict);
            FunctionConfig::read(function, &mut reader);
            reader.asked().contains(&"ROUTING_PARAMETER".to_owned())
        };
        let sids = |stack: &Stack<'_>| -> Vec<Value> {
            let resolved = stack.resolve(role).unwrap_or_else(|| panic!("{role_id}"));
            resolved["Properties"]["Policies"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().cloned())
                .flatten()
                .filter(|s| s["Sid"] == "RoutingParameters" || s["Sid"] == "RoutedTopics")
                .collect()
        };
        if !reads_routing {
            assert!(sids(&on).is_empty(), "{role_id}: {function} does not route");
            continue;
        }
        notifiers += 1;
        assert!(sids(&off).is_empty(), "{role_id}: no routing, no grant");
        assert!(
            env.iter()
                .any(|(n, v)| n == "ROUTING_PARAMETER" && v == "/teams/routing")
                && env
                    .iter()
                    .any(|(n, v)| n == "ROUTING_PARAMETER_PATH" && v == "/teams/destinations/"),
            "{role_id}: {env:?}"
        );
        let granted = sids(&on);
        assert_eq!(granted.len(), 2, "{role_id}: {granted:?}");
        assert_eq!(actions(&granted[0]), ["ssm:GetParameter"]);
        assert_eq!(
            on.resolve(&granted[0]["Resource"]),
            Some(json!([
                {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${RoutingParameter}"},
                {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${RoutingParameterPath}*"}
            ])),
            "{role_id}"
        );
        assert_eq!(actions(&granted[1]), ["sns:Publish"]);
        let topics = on.resolve(&granted[1]["Resource"]).expect("topics");
        let topics: Vec<String> = listed(&topics)
            .iter()
            .map(|t| t.as_str().expect("a topic ARN").to_owned())
            .collect();
        assert_eq!(
            topics,
            [
                "arn:aws:sns:us-east-1:123456789012:payments",
                "arn:aws:sns:us-east-1:123456789012:platform"
            ],
            "{role_id}"
        );
    }
    // pipeline-alert, deploy-notify, repo-replicate, repo-guard, deploy-gate,
    // and pr-check with activity notices on.
    assert_eq!(notifiers, 6);
}
