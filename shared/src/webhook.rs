//! git-webhook's handler: one Lambda Function URL request (payload format
//! 2.0) in, one HTTP answer out.
//!
//! 1. the body, raw (base64-decoded when `isBase64Encoded`); over the
//!    configured limit: 413;
//! 2. verified against the secrets of the host's routes, in constant time,
//!    before it is parsed; refused: 401, no AWS call, a log line naming the
//!    check (never the secret or the signature);
//! 3. parsed (malformed: 400 naming the field); a ping: 200; an event that
//!    starts nothing: 200 "ignored: <reason>";
//! 4. planned ([`crate::flows::git_webhook`]), each start claimed in the
//!    idempotency ledger side by side with the pipelines' reads (the starts
//!    follow from the route and the events; a redelivery: 200 "already
//!    started <…>"), the
//!    starts carried out by the one executor: 202 with what was started, or
//!    5xx when AWS failed, so the host redelivers (the claim is released).
//!
//! Lambda Function URLs: headers arrive lowercased, and a binary body
//! base64-encoded with `isBase64Encoded: true`; a returned object with
//! `statusCode`, `headers` and `body` is the HTTP response (Lambda developer
//! guide, "Invoking Lambda function URLs": request and response payloads).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::{Value, json};
use tracing::{error, info, warn};

use crate::effects::{Done, Effects};
use crate::flows::git_webhook::{Lookup, plan};
use crate::git::config::RoutesConfig;
use crate::git::payload::{Hook, parse};
use crate::git::verify::{self, Headers, Refusal, Secret};
use crate::git::{Provider, SecretSource};
use crate::idempotency::{Claim, Ledger, LedgerError, Owner};
use crate::invocation::Invocation;
use crate::plan::{Action, Plan};

/// An HTTP answer to a webhook request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// JSON for 202, text otherwise.
    pub body: String,
    /// Why a request was refused, for the log and `signalbox replay`; never
    /// sent to the caller.
    pub refusal: Option<String>,
}

impl Answer {
    fn text(status: u16, body: impl Into<String>) -> Answer {
        Answer {
            status,
            body: body.into(),
            refusal: None,
        }
    }

    fn json(status: u16, body: Value) -> Answer {
        Answer::text(status, body.to_string())
    }

    /// The Function URL response object.
    pub fn to_response(&self) -> Value {
        let content_type = if self.status == 202 {
            "application/json"
        } else {
            "text/plain; charset=utf-8"
        };
        json!({
            "statusCode": self.status,
            "headers": {"content-type": content_type},
            "body": self.body,
        })
    }
}

/// The routes with their secrets read: what every request is verified and
/// routed against.
#[derive(Debug, Clone)]
pub struct Routes {
    pub config: RoutesConfig,
    /// `(route index, secret)` for every secret of every route.
    secrets: Vec<(usize, Secret)>,
}

/// A secret could not be read at cold start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("routes[{route}].secrets: {source_name}: {problem}")]
pub struct SecretError {
    pub route: usize,
    /// Where it was read from ([`SecretSource::describe`]).
    pub source_name: String,
    pub problem: String,
}

impl Routes {
    /// The routes with secrets given inline only (local replay and tests):
    /// an error names the first secret that is not inline.
    pub fn inline(config: RoutesConfig) -> Result<Routes, SecretError> {
        let mut secrets = Vec::new();
        for (i, route) in config.routes.iter().enumerate() {
            for source in &route.secrets {
                match source {
                    SecretSource::Value(v) => secrets.push((i, Secret::new(v.clone()))),
                    other => {
                        return Err(SecretError {
                            route: i,
                            source_name: other.describe(),
                            problem: "only inline values ({ value: … }) are read locally".into(),
                        });
                    }
                }
            }
        }
        Ok(Routes { config, secrets })
    }

    /// Reads every secret once (Secrets Manager `GetSecretValue`, SSM
    /// `GetParameter` with decryption), side by side.
    pub async fn read(
        config: RoutesConfig,
        ssm: &aws_sdk_ssm::Client,
        secretsmanager: &aws_sdk_secretsmanager::Client,
    ) -> Result<Routes, SecretError> {
        let reads = config.routes.iter().enumerate().flat_map(|(i, route)| {
            route.secrets.iter().map(move |source| async move {
                let fail = |problem: String| SecretError {
                    route: i,
                    source_name: source.describe(),
                    problem,
                };
                let value = match source {
                    SecretSource::Value(v) => v.clone(),
                    SecretSource::Parameter(name) => ssm
                        .get_parameter()
                        .name(name)
                        .with_decryption(true)
                        .send()
                        .await
                        .map_err(|e| fail(crate::aws::describe("SSM GetParameter", &e)))?
                        .parameter
                        .and_then(|p| p.value)
                        .ok_or_else(|| fail("the parameter has no value".into()))?,
                    SecretSource::SecretId(id) => secretsmanager
                        .get_secret_value()
                        .secret_id(id)
                        .send()
                        .await
                        .map_err(|e| {
                            fail(crate::aws::describe("Secrets Manager GetSecretValue", &e))
                        })?
                        .secret_string
                        .ok_or_else(|| fail("the secret has no string value".into()))?,
                };
                Ok::<_, SecretError>((i, Secret::new(value.trim_end_matches('\n'))))
            })
        });
        let secrets = futures::future::join_all(reads)
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Routes { config, secrets })
    }
}

/// The parts of a Function URL request git-webhook reads.
struct Request {
    headers: Headers,
    body: Vec<u8>,
}

fn request(value: &Value) -> Result<Request, String> {
    let headers: Headers = value
        .get("headers")
        .and_then(Value::as_object)
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.to_ascii_lowercase(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let body = value
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let body = if value.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| format!("body: isBase64Encoded, but not valid base64: {e}"))?
    } else {
        body.as_bytes().to_vec()
    };
    Ok(Request { headers, body })
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn refused(refusal: &Refusal) -> Answer {
    // The log says which check failed; the caller learns only that it did.
    warn!(check = %refusal, "refused: not verified");
    Answer {
        refusal: Some(refusal.to_string()),
        ..Answer::text(401, "unauthorized: the request could not be verified")
    }
}

/// How long planning and starting may take from the invocation's start
/// (after a cold start's init, which it does not count): the
/// hosts wait about 10 seconds, and the ledger's records come after.
pub const ANSWER_BUDGET: std::time::Duration = std::time::Duration::from_secs(8);

/// How long a delivery found claimed by another attempt is watched for that
/// attempt to finish, before answering 503.
pub const IN_PROGRESS_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// How far past the answer's budget giving back claims may go: the answer
/// still goes out within about 9 seconds of the invocation's start, inside
/// the hosts' 10.
const GIVE_BACK_MARGIN: std::time::Duration = std::time::Duration::from_secs(1);

/// Claims `key` under `owner`; while another invocation holds it, tries
/// again every half second for up to `wait`: its attempt may finish (done:
/// AlreadyDone) or fail and release the claim (then ours). Still held:
/// InProgress.
async fn claim_waiting(
    ledger: &Ledger,
    key: &str,
    owner: &Owner,
    wait: std::time::Duration,
) -> Result<Claim, LedgerError> {
    let until = tokio::time::Instant::now() + wait;
    loop {
        match ledger.claim_by(key, owner).await {
            Err(LedgerError::InProgress(k)) if tokio::time::Instant::now() >= until => {
                return Err(LedgerError::InProgress(k));
            }
            Err(LedgerError::InProgress(_)) => {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            other => return other,
        }
    }
}

/// Answers one Function URL request; see the module's documentation.
/// `ledger` is None only in a dry run (replay): then nothing is claimed.
pub async fn answer<L: Lookup + Sync, E: Effects + Sync>(
    value: &Value,
    routes: &Routes,
    lookup: &L,
    effects: &E,
    ledger: Option<&Ledger>,
    invocation: &Invocation,
) -> Answer {
    answer_at(
        value,
        routes,
        lookup,
        effects,
        ledger,
        invocation,
        unix_now(),
    )
    .await
}

/// [`answer`] at the Unix time `now` (tests of the timestamp tolerance).
pub async fn answer_at<L: Lookup + Sync, E: Effects + Sync>(
    value: &Value,
    routes: &Routes,
    lookup: &L,
    effects: &E,
    ledger: Option<&Ledger>,
    invocation: &Invocation,
    now: i64,
) -> Answer {
    // The hosts give up on an answer after about 10 seconds (GitHub:
    // "Respond within 10 seconds", https://docs.github.com/en/webhooks/using-webhooks/best-practices-for-using-webhooks;
    // GitLab.com: https://docs.gitlab.com/ee/user/gitlab_com/index.html#other-limits;
    // Bitbucket Cloud: https://support.atlassian.com/bitbucket-cloud/docs/troubleshoot-webhooks/;
    // Gitea and Forgejo: `[webhook] DELIVER_TIMEOUT`, 5 s by default, see
    // docs/git-webhook.md),
    // so the plan and the starts
    // get ANSWER_BUDGET from the invocation's start (a cold start's init,
    // routes, secrets and warm-ups of up to a second, comes before it and is
    // not counted), not the function's 27-second work deadline.
    let work = invocation.deadline.for_work().within(ANSWER_BUDGET);
    let request = match request(value) {
        Ok(r) => r,
        Err(problem) => {
            info!(%problem, "bad request");
            return Answer::text(400, format!("bad request: {problem}"));
        }
    };
    let limit = routes.config.max_body_bytes;
    if request.body.len() > limit {
        info!(bytes = request.body.len(), limit, "body over the limit");
        return Answer::text(
            413,
            format!(
                "payload too large: {} bytes, the limit is {limit}",
                request.body.len()
            ),
        );
    }
    let provider = match verify::detect(&request.headers) {
        Ok(p) => p,
        Err(refusal) => return refused(&refusal),
    };
    // A GitLab request without a signature carries only the secret token:
    // the routes that require signing do not take it.
    let unsigned =
        provider == Provider::Gitlab && !request.headers.contains_key("webhook-signature");
    let labelled = routes
        .secrets
        .iter()
        .filter(|(i, _)| {
            let route = &routes.config.routes[*i];
            route.provider == provider && !(unsigned && route.require_signing)
        })
        .map(|(i, s)| (i, s));
    let verified: Vec<usize> =
        match verify::verify(provider, &request.headers, &request.body, labelled, now) {
            Ok(v) => v.into_iter().copied().collect(),
            Err(refusal) => return refused(&refusal),
        };
    let event = verify::event_name(provider, &request.headers).unwrap_or_default();
    let hook = match parse(provider, event, &request.body) {
        Ok(h) => h,
        Err(problem) => {
            info!(%provider, event, %problem, "verified, but malformed");
            return Answer::text(400, format!("bad request: {problem}"));
        }
    };
    let events = match hook {
        Hook::Ping(what) => {
            info!(%provider, what, "ping");
            return Answer::text(200, format!("pong: {what} verified"));
        }
        Hook::Ignored(reason) => {
            info!(%provider, %reason, "ignored");
            return Answer::text(200, format!("ignored: {reason}"));
        }
        Hook::Changes(events) if events.is_empty() => {
            info!(%provider, "ignored: no change");
            return Answer::text(200, "ignored: the webhook reports no change");
        }
        Hook::Changes(events) => events,
    };
    let project = events[0].project.clone();
    // No route for the project: the request verified with a secret of
    // another route of this host (an organisation or group webhook sends
    // every project's events), so it is ours but not for us: 200, or GitLab
    // disables the hook after four failures in a row ("Auto-disabled
    // webhooks", https://docs.gitlab.com/ee/user/project/integrations/webhooks.html#failing-webhooks).
    // A route exists but none of its secrets verified: 401. A request no
    // configured secret verifies was already refused above (401), whatever
    // its project: an unknown sender learns nothing about the routes.
    let route_index = match routes.config.route_index(provider, &project) {
        None => {
            info!(%provider, %project, "verified, but no route for the project: ignored");
            return Answer::text(200, format!("ignored: no route for {project}"));
        }
        Some(i) if verified.contains(&i) => i,
        Some(_) => {
            let other = verified
                .iter()
                .map(|i| format!("routes[{i}] {}", routes.config.routes[*i].project))
                .collect::<Vec<_>>()
                .join(", ");
            return refused(&Refusal::OtherRoute {
                provider,
                project,
                other,
            });
        }
    };
    let route = &routes.config.routes[route_index];
    let delivery = match verify::delivery_id(provider, &request.headers) {
        Ok(d) => d,
        Err(header) => {
            info!(%provider, header, "no delivery id");
            return Answer::text(400, format!("bad request: header {header} is missing"));
        }
    };
    // Each start is claimed under its own key (`plan.key(action)`), so a
    // redelivery after a partial failure starts only what did not start.
    // Gitea's and Forgejo's replay button resends the original payload
    // (go-gitea/gitea#4589, #17324: "Replay", since 1.16) under a new
    // X-Gitea-Delivery UUID (not documented as kept), so their starts are
    // keyed by the body's SHA-256 instead: the same push, sent again, finds
    // its starts done.
    let event_id = match &events[0] {
        // Bitbucket sends pullrequest:updated for a title or description
        // edit too, with no field telling it from new commits ("Event
        // payloads": Pull request updated), under a new X-Request-UUID: its
        // starts are keyed by the pull request and its source commit, so an
        // edit finds them done and only a new commit starts again.
        e if provider == Provider::Bitbucket && e.kind == crate::git::EventKind::MergeRequest => {
            format!(
                "bitbucket:{}#pr{}@{}",
                e.project,
                e.merge_request.unwrap_or_default(),
                e.commit
            )
        }
        _ => claim_event_id(provider, &delivery, &request.body),
    };
    // The starts, and so their keys, follow from the route and the events
    // alone (GetPipeline only fills in a start's variables and source
    // revisions): they are claimed side by side with the pipelines' reads,
    // which saves the claim's round trip before the first start. A claim
    // still comes before its start; when the reads fail or the delivery
    // turns out to start nothing, the claims taken are given back.
    // Boxed, here and below: side by side, the plans' and the claims'
    // futures would otherwise all live in this one future (and, in a debug
    // build, on a test thread's stack).
    let ahead = match Box::pin(plan(
        &delivery,
        route,
        &events,
        &crate::flows::port::Offline,
    ))
    .await
    {
        Ok(Ok(mut ahead)) if ledger.is_some() => {
            ahead.event_id = event_id.clone();
            Some(ahead)
        }
        _ => None,
    };
    // Made before any write, one per start: a claim stored but cut short by
    // the budget (its answer lost) is still given back under its owner.
    let ahead_owners = owners_for(ahead.as_ref());
    let claiming = async {
        match (ledger, &ahead) {
            (Some(ledger), Some(ahead)) => {
                Some(claim_in_time(ledger, ahead, &ahead_owners, &delivery, work).await)
            }
            _ => None,
        }
    };
    let planning = tokio::time::timeout_at(
        work.instant(),
        Box::pin(plan(&delivery, route, &events, lookup)),
    );
    let (planned, claimed) = tokio::join!(planning, claiming);
    let planned = planned.unwrap_or_else(|_| {
        Err(crate::lookup::LookupError::Failed {
            message: "looking up the pipelines ran out of time".into(),
            transient: true,
        })
    });
    // Giving back what was claimed ahead ends within GIVE_BACK_MARGIN of the
    // answer's budget: what is left expires on its own.
    let give_back_by = work.instant() + GIVE_BACK_MARGIN;
    let mut plan = match planned {
        Ok(Ok(plan)) => plan,
        Ok(Err(reason)) => {
            give_back(
                ledger,
                ahead.as_ref(),
                &ahead_owners,
                give_back_by,
                &delivery,
                None,
            )
            .await;
            info!(%provider, %delivery, %reason, "ignored");
            return Answer::text(200, format!("ignored: {reason}"));
        }
        Err(problem) => {
            // A redelivery whose every start is done needs no read to say so.
            if let Some(Ok(claims)) = &claimed
                && let Some(answer) = already_started(claims)
            {
                info!(%provider, %delivery, %problem, "redelivery: already started (the pipelines' read failed, and was not needed)");
                return answer;
            }
            give_back(
                ledger,
                ahead.as_ref(),
                &ahead_owners,
                give_back_by,
                &delivery,
                None,
            )
            .await;
            let transient = !matches!(
                problem,
                crate::lookup::LookupError::Failed {
                    transient: false,
                    ..
                }
            );
            error!(%provider, %delivery, %problem, transient, "AWS failed: nothing started");
            return aws_failed(transient);
        }
    };
    plan.event_id = event_id;
    let keys = |plan: &Plan| plan.actions.iter().map(|a| plan.key(a)).collect::<Vec<_>>();
    let claims = match (ledger, claimed) {
        (None, _) => Claims::default(),
        (Some(_), Some(claimed)) if ahead.as_ref().map(keys) == Some(keys(&plan)) => {
            match claimed {
                Ok(claims) => claims,
                Err(failed) => {
                    give_back(
                        ledger,
                        ahead.as_ref(),
                        &ahead_owners,
                        give_back_by,
                        &delivery,
                        failed.refused,
                    )
                    .await;
                    return failed.answer;
                }
            }
        }
        // Not claimed ahead, or other starts than planned ahead (never so
        // today: `flows::git_webhook`'s tests compare the two plans' keys):
        // the claims follow the plan, one after another.
        (Some(ledger), _) => {
            give_back(
                Some(ledger),
                ahead.as_ref(),
                &ahead_owners,
                give_back_by,
                &delivery,
                None,
            )
            .await;
            let owners = owners_for(Some(&plan));
            match claim_in_time(ledger, &plan, &owners, &delivery, work).await {
                Ok(claims) => claims,
                Err(failed) => {
                    give_back(
                        Some(ledger),
                        Some(&plan),
                        &owners,
                        give_back_by,
                        &delivery,
                        failed.refused,
                    )
                    .await;
                    return failed.answer;
                }
            }
        }
    };
    if let Some(answer) = already_started(&claims) {
        info!(%provider, %delivery, body = %answer.body, "redelivery");
        return answer;
    }
    let Claims { owners, earlier } = claims;
    info!(%provider, %delivery, actions = plan.actions.len(), notes = ?plan.notes, "planned");
    // Only the starts not done before are carried out.
    let todo = Plan {
        actions: plan
            .actions
            .iter()
            .enumerate()
            .filter(|(i, _)| earlier.get(*i).is_none_or(Option::is_none))
            .map(|(_, a)| a.clone())
            .collect(),
        ..plan.clone()
    };
    // An archive's CompleteMultipartUpload may run past the answer budget,
    // up to the function's own work deadline less what must still follow it
    // before Lambda stops the process: ListParts, the abort and the ledger
    // write, each bounded by CLEANUP_MARGIN (effects::archive).
    let fresh = crate::effects::archive::with_complete_deadline(
        invocation
            .deadline
            .for_work()
            .earlier_by(3 * crate::invocation::CLEANUP_MARGIN),
        crate::carry_out(&todo, effects, work),
    )
    .await;
    let counted: Vec<_> = todo
        .actions
        .iter()
        .zip(&fresh)
        .map(|(a, (_, r))| (a, r.as_ref().ok()))
        .collect();
    // The EMF line of the deployed function (a dry run has no ledger and
    // prints its plan instead).
    if ledger.is_some() {
        crate::metrics::emit(
            crate::route::Function::GitWebhook,
            &crate::metrics::counters(&counted),
        );
    }
    let mut fresh = fresh.into_iter();
    let results: Vec<Result<Started, Failed>> = (0..plan.actions.len())
        .map(|i| match earlier.get(i).cloned().flatten() {
            Some(started) => Ok(Started::Done(format!("already started {started}"))),
            None => match fresh.next() {
                Some((_, Ok(Done::Executed(what)))) => Ok(Started::Done(what)),
                Some((_, Ok(Done::Planned))) => Ok(Started::Done("planned (dry run)".to_owned())),
                Some((_, Ok(Done::AlreadyDone))) => Ok(Started::Done("already done".to_owned())),
                Some((_, Ok(Done::Refused(why)))) => Ok(Started::Refused(why)),
                Some((_, Err(e))) => Err(Failed {
                    transient: e.transient,
                    host: crate::effects::archive::is_host_failure(&e),
                    message: e.to_string(),
                }),
                None => Err(Failed {
                    transient: true,
                    host: false,
                    message: "not carried out".to_owned(),
                }),
            },
        })
        .collect();
    // Record each start that went out; release the claims of those that
    // failed or were refused (a redelivery, say after a bound was raised,
    // tries them again).
    // Whether the answer will be a 5xx is known before the records are
    // written: a 5xx invites a redelivery, so the records of the starts
    // that went out get time to land then ([`record_deadline`]).
    let failures: Vec<&Failed> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    if let Some(ledger) = ledger {
        let answer_5xx = !failures.is_empty();
        record_outcomes(
            ledger, &plan, &owners, &results, &delivery, work, answer_5xx,
        )
        .await;
    }
    if !failures.is_empty() {
        let transient = failures.iter().any(|f| f.transient);
        let messages: Vec<&str> = failures.iter().map(|f| f.message.as_str()).collect();
        // Only the host failed: its own answer. AWS failed too: AWS's.
        if failures.iter().all(|f| f.host) {
            error!(%provider, %delivery, failures = ?messages, transient, "the git host failed: an archive was not stored");
            return host_failed(transient);
        }
        error!(%provider, %delivery, failures = ?messages, transient, "AWS failed: a start did not go out");
        return aws_failed(transient);
    }
    let refusals: Vec<&str> = results
        .iter()
        .filter_map(|r| match r {
            Ok(Started::Refused(why)) => Some(why.as_str()),
            _ => None,
        })
        .collect();
    if refusals.len() == results.len() {
        // Nothing went out, and a redelivery would not change that: 200, so
        // the host does not count a failure, with the reason.
        let reasons = refusals.join("; ");
        warn!(%provider, %delivery, %reasons, "refused");
        return Answer::text(200, format!("refused: {reasons}"));
    }
    let started: Vec<Value> = plan
        .actions
        .iter()
        .zip(&results)
        .map(|(action, result)| {
            let target = match action {
                Action::StartPipeline(a) => a.pipeline.clone(),
                Action::StartBuild(a) => a.project.clone(),
                Action::PutArchive(a) => format!("s3://{}/{}", a.bucket, a.key),
                _ => String::new(),
            };
            match result {
                Ok(Started::Refused(why)) => {
                    json!({"action": action.kind(), "target": target, "refused": why})
                }
                Ok(Started::Done(done)) => {
                    json!({"action": action.kind(), "target": target, "result": done})
                }
                Err(_) => json!({"action": action.kind(), "target": target}),
            }
        })
        .collect();
    let summary = started
        .iter()
        .map(|s| {
            s["result"]
                .as_str()
                .or(s["refused"].as_str())
                .unwrap_or_default()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join(", ");
    info!(%provider, %delivery, %summary, "started");
    Answer::json(
        202,
        json!({
            "delivery": delivery,
            "provider": provider,
            "project": route.project,
            "started": started,
            "notes": plan.notes,
        }),
    )
}

/// A planned start that failed: whether a redelivery may help, and whether
/// the git host (an archive's) failed rather than AWS.
struct Failed {
    transient: bool,
    host: bool,
    message: String,
}

/// What became of one planned start.
enum Started {
    /// Started (or already started before): what it came to.
    Done(String),
    /// Refused by a bound of its own (an archive's size or time): why.
    Refused(String),
}

/// The answer when AWS failed. The body is a fixed text: AWS's own message
/// (which may name the account id, a role ARN, a resource) goes to the log
/// only, never to the caller.
/// - transient (throttled, 5xx, a timeout): 503, the host redelivers or
///   one redelivers by hand later, and it may go through;
/// - permanent (AccessDenied, PipelineNotFound, a validation error): 502, a
///   configuration problem a redelivery will not fix until the
///   configuration is; it still shows as a failed delivery in the host's
///   log, which is where one looks.
fn aws_failed(transient: bool) -> Answer {
    if transient {
        Answer::text(
            503,
            "AWS failed for now (throttled or unavailable): redeliver later; details in the function's logs",
        )
    } else {
        Answer::text(
            502,
            "AWS refused a start (a configuration problem: permissions, a missing pipeline or project, an invalid value): see the function's logs, fix it, then redeliver",
        )
    }
}

/// The answer when the idempotency table refused a start's claim for good
/// (AccessDenied on the table, a table that does not exist): 502, like
/// [`aws_failed`]'s permanent case, a configuration problem that a
/// redelivery will not fix until the configuration is; nothing was started.
/// A fixed text: AWS's message (the table's ARN, the role) is in the log.
fn ledger_refused() -> Answer {
    Answer::text(
        502,
        "AWS refused the idempotency table's claim (a configuration problem: the table's name, or the function's permissions on it); nothing was started: see the function's logs, fix it, then redeliver",
    )
}

/// The answer when the git host failed to serve an archive (the only thing
/// git-webhook asks of it while answering). The body is a fixed text; the
/// host's answer goes to the log.
/// - transient (the host's 5xx or 429, unreachable, the body cut): 503, a
///   redelivery may get it;
/// - permanent (401, 403, 404: the archive token, its scope or `api_url`):
///   502, a configuration problem, fixed on our side, then redelivered; it
///   shows as a failed delivery in the host's log.
fn host_failed(transient: bool) -> Answer {
    if transient {
        Answer::text(
            503,
            "the git host failed to serve the commit's archive for now: redeliver later; details in the function's logs",
        )
    } else {
        Answer::text(
            502,
            "the git host refused the commit's archive (a configuration problem: the archive token, its scope, or api_url): see the function's logs, fix it, then redeliver",
        )
    }
}

/// The claims of a plan's starts, in the plan's order: ours (to record or
/// give back), or what an earlier delivery started.
#[derive(Default)]
struct Claims {
    owners: Vec<Option<Owner>>,
    earlier: Vec<Option<String>>,
}

/// Why a plan's starts were not all claimed: the answer to give, and the
/// start (its index in the plan) whose claim the table refused for good, if
/// that was it: a refused write is not stored, so there is nothing of it
/// to give back.
struct NotClaimed {
    answer: Answer,
    refused: Option<usize>,
}

impl From<Answer> for NotClaimed {
    fn from(answer: Answer) -> NotClaimed {
        NotClaimed {
            answer,
            refused: None,
        }
    }
}

/// 200 "already started …" when every start was done by an earlier delivery.
fn already_started(claims: &Claims) -> Option<Answer> {
    if claims.earlier.is_empty() || !claims.earlier.iter().all(Option::is_some) {
        return None;
    }
    let started = claims
        .earlier
        .iter()
        .flatten()
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    Some(Answer::text(200, format!("already started {started}")))
}

/// One owner per start of `plan`, for its claims.
fn owners_for(plan: Option<&Plan>) -> Vec<Owner> {
    plan.map_or_else(Vec::new, |plan| {
        plan.actions.iter().map(|_| Owner::random()).collect()
    })
}

/// [`claim_starts`] within the answer's budget, as the reads are: a ledger
/// that does not answer in time is AWS failing for now (503); what may have
/// been stored is given back by the caller, under `owners`.
async fn claim_in_time(
    ledger: &Ledger,
    plan: &Plan,
    owners: &[Owner],
    delivery: &str,
    work: crate::invocation::Deadline,
) -> Result<Claims, NotClaimed> {
    // Boxed: side by side with the plan, both futures would otherwise live
    // in the caller's (and, in a debug build, on a test thread's stack).
    tokio::time::timeout_at(
        work.instant(),
        Box::pin(claim_starts(ledger, plan, owners, delivery, work)),
    )
    .await
    .unwrap_or_else(|_| {
        error!(%delivery, event_id = %plan.event_id, "the starts could not be claimed in time");
        Err(aws_failed(true).into())
    })
}

/// Claims every start of `plan`, one after another, each under its owner
/// of `owners` (each waiting up to [`IN_PROGRESS_WAIT`] for another attempt
/// holding it). Err: the answer to give; the caller gives back what was
/// claimed, under `owners` ([`give_back`]).
async fn claim_starts(
    ledger: &Ledger,
    plan: &Plan,
    owners: &[Owner],
    delivery: &str,
    work: crate::invocation::Deadline,
) -> Result<Claims, NotClaimed> {
    let mut claims = Claims::default();
    for (index, (action, owner)) in plan.actions.iter().zip(owners).enumerate() {
        let key = plan.key(action);
        match claim_waiting(ledger, &key, owner, IN_PROGRESS_WAIT.min(work.remaining())).await {
            Ok(Claim::Claimed(owner)) => {
                claims.owners.push(Some(owner));
                claims.earlier.push(None);
            }
            Ok(Claim::AlreadyDone) => {
                let started = ledger
                    .result(&key)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "(not recorded)".to_owned());
                claims.owners.push(None);
                claims.earlier.push(Some(started));
            }
            Err(problem) => {
                let mut refused = None;
                let answer = match problem {
                    LedgerError::InProgress(_) => {
                        // Still claimed after the wait: the other attempt
                        // may have crashed (its claim expires after the
                        // lease). 503 so the host redelivers later, never a
                        // 2xx that would lose the delivery.
                        warn!(%delivery, event_id = %plan.event_id, %key, "another invocation holds a start's claim: answered 503 so the host redelivers");
                        Answer::text(
                            503,
                            "another attempt is starting this delivery: redeliver later",
                        )
                    }
                    LedgerError::Refused(problem) => {
                        error!(%delivery, event_id = %plan.event_id, %problem, transient = false, "AWS refused a start's claim");
                        refused = Some(index);
                        ledger_refused()
                    }
                    problem => {
                        error!(%delivery, event_id = %plan.event_id, %problem, transient = true, "AWS failed: a start could not be claimed");
                        aws_failed(true)
                    }
                };
                return Err(NotClaimed { answer, refused });
            }
        }
    }
    Ok(claims)
}

/// Gives back every claim of `plan`'s starts that `owners` may hold (taken,
/// or stored with its answer lost), when the delivery turns out not to start
/// them: the reads failed, nothing to start, a claim failed or ran out of
/// time. A key not held by its owner is left alone. Ends by `until` (or
/// [`crate::invocation::CLEANUP_MARGIN`] from now, if sooner): what is left
/// expires on its own. The start at `refused` (its claim refused for good,
/// so never stored) is skipped. The log lines carry the host's `delivery`
/// id (for Gitea and Forgejo the event id is the body's hash).
async fn give_back(
    ledger: Option<&Ledger>,
    plan: Option<&Plan>,
    owners: &[Owner],
    until: tokio::time::Instant,
    delivery: &str,
    refused: Option<usize>,
) {
    let (Some(ledger), Some(plan)) = (ledger, plan) else {
        return;
    };
    let releases = plan
        .actions
        .iter()
        .zip(owners)
        .enumerate()
        .filter(|(index, _)| Some(*index) != refused)
        .map(|(_, (action, owner))| async move {
            let key = plan.key(action);
            match ledger.release(&key, owner).await {
                Ok(()) | Err(LedgerError::NotOwner(_)) => {}
                Err(problem) => {
                    warn!(%delivery, %key, %problem, "could not give a start's claim back: it expires on its own");
                }
            }
        });
    let until = until.min(tokio::time::Instant::now() + crate::invocation::CLEANUP_MARGIN);
    if tokio::time::timeout_at(until, futures::future::join_all(releases))
        .await
        .is_err()
    {
        warn!(%delivery, event_id = %plan.event_id, "the claims could not all be given back in time: they expire on their own");
    }
}

/// How long after the answer's budget the record of a start that went out
/// may take, when that record matters most: the answer is a 5xx (which asks
/// the host, or a person, to redeliver) or the starts already ran past the
/// budget (an archive's completion). A record cut short leaves the claim
/// held; after the lease a redelivery starts again, and an archive start has
/// no token to dedupe it.
const DONE_RECORD_MARGIN: std::time::Duration = std::time::Duration::from_millis(1500);

/// By when one record of [`record_outcomes`] must be written, from `now`,
/// the end of the answer's budget `budget_end`, whether the start went out
/// (`done`: its result is recorded; else its claim is released) and whether
/// the answer will be a 5xx.
/// - A release, or any record of an answer that is 202, by
///   [`GIVE_BACK_MARGIN`] past the budget, so with DynamoDB slow the answer
///   still goes out within about 9 seconds of the invocation's start, inside
///   the hosts' 10. A release past that point (the starts ran on) gets
///   [`crate::invocation::CLEANUP_MARGIN`]: the answer is late anyway.
/// - A start that went out, with a 5xx answer or once the budget has
///   passed, gets at least [`DONE_RECORD_MARGIN`] from now (so the answer
///   may come up to 9.5 s after the invocation's start). It never gets less
///   than a second: before the budget's end, [`GIVE_BACK_MARGIN`] past it
///   is at least that far off. The writes go side by side, so all but one
///   open a new DynamoDB connection first: a few ms would not do.
fn record_deadline(
    now: tokio::time::Instant,
    budget_end: tokio::time::Instant,
    done: bool,
    answer_5xx: bool,
) -> tokio::time::Instant {
    let by_budget = budget_end + GIVE_BACK_MARGIN;
    let release_by = if now < by_budget {
        by_budget
    } else {
        now + crate::invocation::CLEANUP_MARGIN
    };
    if !done {
        return release_by;
    }
    if answer_5xx || now > budget_end {
        by_budget.max(now + DONE_RECORD_MARGIN)
    } else {
        by_budget
    }
}

/// Writes what each start of `plan` came to (done: its result; failed or
/// refused: its claim released), side by side, each by its
/// [`record_deadline`]. The starts end by the budget (a start not answered
/// by then is abandoned), except an archive's completion, which may run on
/// (its own deadline keeps [`crate::invocation::CLEANUP_MARGIN`] back for
/// the records).
///
/// A record not written in time is logged, and its claim stays held: a
/// redelivery waits [`IN_PROGRESS_WAIT`] for it (the write may still land)
/// and is answered 503 until the claim's lease
/// ([`crate::idempotency::CLAIM_LEASE`]) runs out. After that, the start
/// goes out again with the same token, derived from the delivery:
/// CodeBuild's `idempotencyToken` dedupes it for 5 minutes ("valid for 5
/// minutes", https://docs.aws.amazon.com/codebuild/latest/APIReference/API_StartBuild.html);
/// CodePipeline's `clientRequestToken` is documented with no window ("The
/// system-generated unique ID used to identify a unique execution request",
/// https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_StartPipelineExecution.html);
/// an archive has none.
async fn record_outcomes(
    ledger: &Ledger,
    plan: &Plan,
    owners: &[Option<Owner>],
    results: &[Result<Started, Failed>],
    delivery: &str,
    work: crate::invocation::Deadline,
    answer_5xx: bool,
) {
    let now = tokio::time::Instant::now();
    let writes = plan
        .actions
        .iter()
        .zip(owners)
        .zip(results)
        .filter_map(|((action, owner), result)| owner.as_ref().map(|o| (action, o, result)))
        .map(|(action, owner, result)| async move {
            let key = plan.key(action);
            let done = matches!(result, Ok(Started::Done(_)));
            let until = record_deadline(now, work.instant(), done, answer_5xx);
            let write = async {
                match result {
                    Ok(Started::Done(what)) => ledger.complete_with(&key, owner, Some(what)).await,
                    Ok(Started::Refused(_)) | Err(_) => ledger.release(&key, owner).await,
                }
            };
            match tokio::time::timeout_at(until, write).await {
                Ok(Ok(())) => {}
                Ok(Err(problem)) => {
                    error!(%delivery, %key, %problem, "the ledger could not record this start's outcome: a redelivery may start it again (its start token still dedupes within its window)");
                }
                Err(_) => {
                    error!(%delivery, %key, "the ledger did not record this start's outcome in time: a redelivery may start it again (its start token still dedupes within its window)");
                }
            }
        });
    futures::future::join_all(writes).await;
}

/// The event id a delivery's starts are claimed under: `<provider>:<delivery
/// id>`; for Gitea and Forgejo, whose redeliveries by hand carry a new
/// delivery id, `<provider>:body-sha256:<hex>` of the raw body.
pub fn claim_event_id(provider: Provider, delivery: &str, body: &[u8]) -> String {
    match provider {
        Provider::Gitea | Provider::Forgejo => {
            use sha2::Digest;
            format!(
                "{provider}:body-sha256:{}",
                hex::encode(sha2::Sha256::digest(body))
            )
        }
        _ => format!("{provider}:{delivery}"),
    }
}

/// Reads the routes text: the local file (`GIT_WEBHOOK_CONFIG`), else the
/// SSM parameter (`GIT_WEBHOOK_CONFIG_PARAM`, decrypted if a SecureString).
pub async fn routes_text(
    config: &crate::flows::git_webhook::Config,
    ssm: &aws_sdk_ssm::Client,
) -> Result<String, String> {
    if let Some(file) = &config.config_file {
        return std::fs::read_to_string(file)
            .map_err(|e| format!("GIT_WEBHOOK_CONFIG: cannot read {file}: {e}"));
    }
    let Some(parameter) = &config.config_parameter else {
        return Err("GIT_WEBHOOK_CONFIG_PARAM: required but unset".into());
    };
    ssm.get_parameter()
        .name(parameter)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| {
            format!(
                "GIT_WEBHOOK_CONFIG_PARAM: {}",
                crate::aws::describe("SSM GetParameter", &e)
            )
        })?
        .parameter
        .and_then(|p| p.value)
        .ok_or_else(|| format!("GIT_WEBHOOK_CONFIG_PARAM: {parameter} has no value"))
}

/// Runs git-webhook on the Lambda Runtime API: reads its variables, the
/// routes and every secret once per cold start, then answers each request.
/// A start-up problem is logged as one line naming it and the process exits
/// non-zero (Lambda reports `Runtime.ExitError`).
pub async fn main() -> Result<(), lambda_runtime::Error> {
    use crate::config::{EnvReader, Mode};
    use lambda_runtime::{LambdaEvent, service_fn};
    crate::logging::init();
    let mut env = EnvReader::from_process(Mode::Strict);
    let config = crate::flows::git_webhook::Config::read(&mut env);
    if let Err(problem) = env.finish() {
        error!(function = "git-webhook", error = %problem, "cannot start");
        return Err(problem.into());
    }
    let endpoint = std::env::var("SIGNALBOX_ENDPOINT_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let https = crate::aws::Https::new();
    let sdk = crate::aws::sdk_config_with(endpoint.as_deref(), https.clone()).await;
    let aws = crate::aws::Aws::new(&sdk);
    let secretsmanager = aws_sdk_secretsmanager::Client::new(&sdk);
    let started = async {
        let text = routes_text(&config, &aws.ssm).await?;
        let parsed = RoutesConfig::parse(&text).map_err(|e| e.to_string())?;
        Routes::read(parsed, &aws.ssm, &secretsmanager)
            .await
            .map_err(|e| e.to_string())
    };
    crate::aws::warm(&https, &sdk, crate::route::Function::GitWebhook, None);
    let routes = match started.await {
        Ok(r) => r,
        Err(problem) => {
            error!(function = "git-webhook", error = %problem, "cannot start");
            return Err(problem.into());
        }
    };
    let ledger = Ledger::new(aws.dynamodb.clone(), &config.idempotency_table);
    // The archive targets' tokens, once per cold start like the secrets.
    let archives = crate::effects::archive::ArchiveHosts::read(&aws, &routes.config).await;
    let effects = crate::effects::archive::WebhookEffects {
        aws: crate::effects::AwsEffects {
            aws: aws.clone(),
            slack: None,
            ledger: None,
            failure_queue: None,
            routes: Default::default(),
        },
        archives,
    };
    let (routes, aws, effects, ledger) = (&routes, &aws, &effects, &ledger);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let invocation = Invocation::from_lambda(&event.context);
        let answer = answer(
            &event.payload,
            routes,
            aws,
            effects,
            Some(ledger),
            &invocation,
        )
        .await;
        Ok::<Value, lambda_runtime::Error>(answer.to_response())
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::time::Instant;

    #[test]
    fn a_start_that_went_out_just_before_the_cliff_is_recorded_with_a_margin_when_the_answer_is_a_5xx()
     {
        let budget_end = Instant::now();
        // An archive's completion ended 0.9 s past the budget; another
        // start failed, so the answer asks for a redelivery.
        let now = budget_end + Duration::from_millis(900);
        let until = record_deadline(now, budget_end, true, true);
        assert!(
            until >= now + DONE_RECORD_MARGIN,
            "the record got {:?}",
            until - now
        );
    }

    #[test]
    fn a_start_that_went_out_past_the_budget_is_recorded_with_a_margin_even_when_the_answer_is_202()
    {
        let budget_end = Instant::now();
        let now = budget_end + Duration::from_millis(990);
        let until = record_deadline(now, budget_end, true, false);
        assert!(
            until >= now + DONE_RECORD_MARGIN,
            "the record got {:?}",
            until - now
        );
    }

    #[test]
    fn releases_and_the_records_of_a_202_in_good_time_keep_the_budgets_deadline() {
        let budget_end = Instant::now() + ANSWER_BUDGET;
        let by_budget = budget_end + GIVE_BACK_MARGIN;
        let early = budget_end - Duration::from_secs(7);
        assert_eq!(record_deadline(early, budget_end, true, false), by_budget);
        assert_eq!(record_deadline(early, budget_end, false, false), by_budget);
        assert_eq!(record_deadline(early, budget_end, false, true), by_budget);
        // A release just before the cliff is not stretched: a lost release
        // costs only 503s until the lease ends.
        let late = budget_end + Duration::from_millis(900);
        assert_eq!(record_deadline(late, budget_end, false, true), by_budget);
        // A 5xx whose starts ended early: the budget's deadline is later
        // than the margin, and the hosts' 10 s are kept.
        assert_eq!(record_deadline(early, budget_end, true, true), by_budget);
    }
}
