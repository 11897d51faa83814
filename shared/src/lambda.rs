//! The Lambda entry point every function binary calls.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

use crate::aws::Aws;
use crate::config::{EnvReader, Mode};
use crate::effects::slack::UrlRule;
use crate::effects::{AwsEffects, Effects, Routes, SlackWebhook};
use crate::flows::deploy_gate::Settings;
use crate::flows::{FunctionConfig, Lookups};
use crate::idempotency::Ledger;
use crate::invocation::Invocation;
use crate::route::Function;
use crate::{Outcome, handle};

/// Runs `function` on the Lambda Runtime API. Configuration is read and
/// validated and the SDK clients built, once per cold start; the Slack
/// webhook URL is read from SSM once per cold start too, beside the first
/// invocation's lookups (a post waits for it); then every event is handled
/// with them.
///
/// A configuration failure is logged as one JSON line naming every problem,
/// and the process exits non-zero: Lambda reports `Runtime.ExitError` and
/// the log line says why. A webhook parameter that cannot be read is logged
/// (naming the parameter, never the URL) and fails each Slack post for
/// Lambda's retry until it can be read. deploy-gate starts anyway: with a
/// broken configuration it reports every hook `Failed` with the problem, and
/// without its Slack webhook (read before it serves) it notifies on SNS only.
pub async fn main(function: Function) -> Result<(), lambda_runtime::Error> {
    crate::logging::init();
    let (config, aws, effects) = match start(function).await {
        Ok(parts) => parts,
        Err(error) => {
            tracing::error!(%function, %error, "cannot start");
            return Err(error);
        }
    };
    // git-status posts through the git hosts, with the tokens its routes name.
    #[cfg(feature = "git-status")]
    if let FunctionConfig::GitStatus(status_config) = &config {
        let effects =
            crate::effects::commit_status::StatusEffects::start(status_config, effects).await;
        return serve(config, aws, effects).await;
    }
    serve(config, aws, effects).await
}

async fn start(
    function: Function,
) -> Result<(FunctionConfig, Aws, AwsEffects), lambda_runtime::Error> {
    if !function.is_built_in() {
        return Err(crate::flows::PlanError::NotBuiltIn(function).into());
    }
    let mut env = EnvReader::from_process(Mode::Strict);
    let mut config = FunctionConfig::read(function, &mut env);
    // Where permanent failures are reported (the template's FailedInvocationsQueue).
    let failure_queue = env.optional("FAILURE_QUEUE_URL");
    if failure_queue.is_none() {
        env.missing("FAILURE_QUEUE_URL");
    }
    if let Err(problem) = env.finish() {
        // deploy-gate starts anyway: every hook is then reported Failed with
        // the problem, since a hook left unanswered holds its deployment for
        // an hour.
        let FunctionConfig::DeployGate(settings) = &mut config else {
            return Err(problem.into());
        };
        tracing::error!(%function, error = %problem, "cannot start as configured: every hook will be reported Failed");
        *settings = Settings::Broken(problem.to_string());
    }
    // Only for local runs against moto; unset on Lambda.
    let endpoint = std::env::var("SIGNALBOX_ENDPOINT_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let https = crate::aws::Https::new();
    let sdk = crate::aws::sdk_config_with(endpoint.as_deref(), https.clone()).await;
    let aws = Aws::new(&sdk);
    read_routing(&mut config, &aws).await?;
    // Init waits for nothing it opens: the warm-ups (the lookups', the
    // channels' and, once the URL names its host, Slack's) and the webhook
    // URL's read go on in the background and never delay `/next`.
    crate::aws::warm(&https, &sdk, function, config.channels());
    // Read before serving where the first lookups outlast the read anyway
    // (`aws::url_read_in_init`), and where init is not on an invocation's path:
    // provisioned concurrency and SnapStart initialise ahead and freeze the
    // environment after its first `/next`, which would stall a read still
    // in flight (AWS_LAMBDA_INITIALIZATION_TYPE: on-demand,
    // provisioned-concurrency, snap-start, lambda-managed-instances;
    // https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html).
    let ahead = std::env::var("AWS_LAMBDA_INITIALIZATION_TYPE")
        .is_ok_and(|kind| !kind.is_empty() && kind != "on-demand");
    let mut effects = if matches!(config, FunctionConfig::DeployGate(_)) {
        // deploy-gate reads the URL before it serves: when it cannot, it
        // serves without Slack (below) rather than failing its hooks' notices.
        match executor(&config, aws.clone()).await {
            Ok(effects) => effects,
            // deploy-gate loses only Slack (SSM failing for a moment, a wrong
            // parameter name, a URL refused): every hook is still checked and
            // reported, with the redelivery guard, and its notice goes to SNS.
            // Logged once per cold start, naming the parameter, never the URL.
            Err(problem) => {
                let FunctionConfig::DeployGate(Settings::Ready(gate)) = &mut config else {
                    return Err(problem.into());
                };
                tracing::error!(%function, error = %problem, "cannot read the Slack webhook: until the next cold start the gate's notices go without Slack (checks, status reports and SNS are unaffected)");
                gate.channels.slack_parameter = None;
                executor(&config, aws.clone()).await?
            }
        }
    } else if ahead || crate::aws::url_read_in_init(function) {
        executor(&config, aws.clone()).await?
    } else {
        // The others read it while their lookups run: a post waits for the
        // read if it is not answered yet, and fails (for Lambda's retry) if
        // it failed.
        executor_reading(&config, aws.clone())
    };
    if let Some(slack) = effects.slack.clone() {
        // Not for a function that rarely alerts: on the bench,
        // repo-replicate's Slack warm-up made a cold start 23 ms slower, for
        // a connection its mirror runs never use.
        let warm = crate::aws::alerts_on_most_events(function);
        tokio::spawn(async move {
            match slack.ready().await {
                Ok(()) if warm => slack.warm().await,
                Ok(()) => {}
                // Names the parameter, never the URL. A warning: the post
                // that needs the URL reads it again and fails, if it must,
                // with the error that counts.
                Err(problem) => {
                    tracing::warn!(%function, error = %problem, "cannot read the Slack webhook yet: the first post reads it again");
                }
            }
        });
    }
    effects.failure_queue = failure_queue;
    Ok((config, aws, effects))
}

/// Reads the routing configuration (`ROUTING_PARAMETER`) once per cold
/// start, before serving: every plan depends on it. It must parse, name
/// destination parameters only under `ROUTING_PARAMETER_PATH` and topics
/// only of the function's region (and, deployed by the template, among
/// `ROUTING_TOPIC_ARNS` and the alert topic), or it is refused naming the
/// parameter and the field.
///
/// Refused, pipeline-alert and deploy-notify fail the start: their events
/// are retried and, at the end, kept in the failure queue until the
/// configuration is fixed. repo-replicate and repo-guard, whose work is
/// mirroring and scanning, start with their own channels when the
/// configuration is refused for good (and fail the start, for Lambda's
/// retry, when SSM failed for now); deploy-gate, which must answer its
/// hooks, always starts. A start without routing logs an error and counts
/// `RoutingRefused` once.
pub async fn read_routing(
    config: &mut FunctionConfig,
    aws: &Aws,
) -> Result<(), lambda_runtime::Error> {
    let function = config.function();
    let Some(channels) = config.channels_mut() else {
        return Ok(());
    };
    let Some(parameter) = channels.routing_parameter.clone() else {
        return Ok(());
    };
    let region = aws
        .sns
        .config()
        .region()
        .map(|r| r.to_string())
        .unwrap_or_default();
    let refused = |e: crate::routing::RoutingError| RoutingRefused {
        message: format!("routing parameter {parameter} (ROUTING_PARAMETER): {e}"),
        transient: false,
    };
    let read = match routing_from_ssm(&aws.ssm, &parameter).await {
        Ok(routing) => channels
            .routing_path
            .as_deref()
            .map_or(Ok(()), |path| routing.check_parameters_under(path))
            .and_then(|()| routing.check_topics(&region, channels.routing_topics.as_deref()))
            .map(|()| routing)
            .map_err(refused),
        Err(problem) => Err(problem),
    };
    let problem = match read {
        Ok(routing) => {
            channels.routing = routing;
            return Ok(());
        }
        Err(problem) => problem,
    };
    let serves_anyway = match function {
        Function::DeployGate => true,
        // pr-check's work is the check build: its activity notices' routing
        // refused for good must not stop it.
        Function::RepoReplicate | Function::RepoGuard | Function::PrCheck => !problem.transient,
        _ => false,
    };
    if !serves_anyway {
        return Err(problem.message.into());
    }
    tracing::error!(%function, error = %problem.message, "cannot use the routing configuration: this function's notices go to its own channels until the next cold start");
    crate::metrics::emit(
        function,
        &std::collections::BTreeMap::from([("RoutingRefused", 1)]),
    );
    Ok(())
}

/// Why the routing configuration was not taken.
struct RoutingRefused {
    message: String,
    /// SSM failing for now (a retry may read it).
    transient: bool,
}

/// The routing configuration in parameter `name` (a String or SecureString).
async fn routing_from_ssm(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
) -> Result<crate::routing::Routing, RoutingRefused> {
    let refused = |message: String, transient: bool| RoutingRefused {
        message: format!("routing parameter {name} (ROUTING_PARAMETER): {message}"),
        transient,
    };
    let output = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| {
            refused(
                crate::aws::describe("SSM GetParameter", &e),
                crate::aws::is_transient(&e),
            )
        })?;
    let text = output
        .parameter()
        .and_then(|p| p.value())
        .ok_or_else(|| refused("has no value".to_owned(), false))?;
    crate::routing::Routing::parse(text).map_err(|e| refused(e.to_string(), false))
}

/// The AWS/Slack executor for `config`: reads the webhook URL (if Slack is on;
/// `https://` only unless the test-only override is set) and opens the
/// idempotency table (if any channel is on). It has no failure queue: the
/// caller sets one.
pub async fn executor(
    config: &FunctionConfig,
    aws: Aws,
) -> Result<AwsEffects, crate::effects::slack::WebhookError> {
    let effects = executor_reading(config, aws);
    if let Some(slack) = &effects.slack {
        slack.ready().await?;
    }
    Ok(effects)
}

/// [`executor`] without waiting for the webhook URL: it is read by the
/// first of [`SlackWebhook::ready`]'s callers (init's background task, or
/// the first post).
pub fn executor_reading(config: &FunctionConfig, aws: Aws) -> AwsEffects {
    let channels = config.channels();
    let slack = channels
        .and_then(|c| c.slack_parameter.as_deref())
        .map(|parameter| SlackWebhook::reading(&aws.ssm, parameter, UrlRule::from_env()));
    let ledger = channels
        .and_then(|c| c.idempotency_table.as_deref())
        .map(|table| {
            let mut ledger = Ledger::new(aws.dynamodb.clone(), table);
            // repo-guard's continuation waits for alerts another invocation
            // is still sending (Effects::still_sending).
            ledger.settles_sent = config.function() == Function::RepoGuard;
            // Their failures come in storms; their roles may UpdateItem.
            ledger.paces_slack = matches!(
                config.function(),
                Function::PipelineAlert | Function::DeployNotify
            );
            ledger
        });
    let routes = channels
        .map(|c| Routes::reading(&c.routing, &aws.ssm, UrlRule::from_env()))
        .unwrap_or_default();
    AwsEffects {
        aws,
        slack,
        ledger,
        failure_queue: None,
        routes,
    }
}

/// Serves events with the given configuration, lookup and executor.
pub async fn serve<L: Lookups, E: Effects + Sync>(
    config: FunctionConfig,
    lookup: L,
    effects: E,
) -> Result<(), lambda_runtime::Error> {
    let (config, lookup, effects) = (&config, &lookup, &effects);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let invocation = Invocation::from_lambda(&event.context);
        let outcome = handle(&event.payload, config, lookup, effects, &invocation).await?;
        Ok::<Value, lambda_runtime::Error>(summary(&outcome))
    }))
    .await
}

/// The invocation's response: what was done, for the Lambda console and tests.
pub fn summary(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Ignored(reason) => json!({ "ignored": reason }),
        Outcome::Reported(report) => json!({
            "reported": report.reason,
            "event_id": report.event_id,
            "failed_actions": report.failed_actions.iter().map(|a| a.action).collect::<Vec<_>>(),
        }),
        Outcome::Handled { plan, done } => json!({
            "function": plan.function,
            "event_id": plan.event_id,
            "actions": plan.actions.iter().map(|a| a.kind()).collect::<Vec<_>>(),
            "done": done.iter().map(|d| format!("{d:?}")).collect::<Vec<_>>(),
        }),
    }
}
