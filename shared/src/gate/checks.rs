//! Running the configured checks: each under its timeout, all before the
//! gate's own deadline. A check that hangs fails; it never holds the gate.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::flows::deploy_gate::{
    AlarmsCheck, Check, CheckKind, CheckOutcome, Deployment, HttpCheck, InvokeCheck, Probe,
    ResponseExpectation, TreatMissing,
};
use crate::invocation::Deadline;

/// How much of a response a failure quotes.
const QUOTE: usize = 200;

/// Runs `checks` one after the other, each bounded by its timeout and by
/// `until`; a check with no time left fails without running.
pub async fn run_checks<P: Probe + Sync>(
    checks: &[&Check],
    deployment: &Deployment,
    probe: &P,
    http: &reqwest::Client,
    until: Deadline,
) -> Vec<CheckOutcome> {
    let mut outcomes = Vec::with_capacity(checks.len());
    for check in checks {
        let kind = check.kind();
        let kind_name = kind.as_ref().map_or("unknown", CheckKind::name);
        let started = Instant::now();
        let result = match kind {
            None => Err("no check kind (invoke, http, alarms)".to_owned()),
            Some(_) if until.passed() => {
                Err("not run: no time left before the function's deadline".to_owned())
            }
            Some(kind) => {
                let timeout = check.timeout();
                let own = Deadline::after(timeout);
                let bound = until.min(own);
                match tokio::time::timeout_at(
                    bound.instant(),
                    run_one(&kind, deployment, probe, http, bound),
                )
                .await
                {
                    Ok(result) => result,
                    Err(_) if bound < own => Err(format!(
                        "did not finish before the function's deadline (stopped after {} ms)",
                        started.elapsed().as_millis()
                    )),
                    Err(_) => Err(format!(
                        "did not finish within its timeout of {}",
                        seconds(timeout)
                    )),
                }
            }
        };
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (passed, detail) = match result {
            Ok(summary) => (true, summary),
            Err(difference) => (false, difference),
        };
        tracing::info!(check = %check.name, kind = kind_name, passed, latency_ms, %detail, "check done");
        outcomes.push(CheckOutcome {
            name: check.name.clone(),
            kind: kind_name,
            passed,
            latency_ms,
            detail,
        });
    }
    outcomes
}

fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

async fn run_one<P: Probe + Sync>(
    kind: &CheckKind,
    deployment: &Deployment,
    probe: &P,
    http: &reqwest::Client,
    until: Deadline,
) -> Result<String, String> {
    match kind {
        CheckKind::Invoke(check) => invoke(check, deployment, probe, until).await,
        CheckKind::Http(check) => probe_http(check, http).await,
        CheckKind::Alarms(check) => alarms(check, probe, until).await,
    }
}

async fn invoke<P: Probe + Sync>(
    check: &InvokeCheck,
    deployment: &Deployment,
    probe: &P,
    until: Deadline,
) -> Result<String, String> {
    let Some(target) = &deployment.lambda else {
        return Err(format!(
            "deployment {} ({}) has no Lambda target version to invoke",
            deployment.deployment_id,
            if deployment.compute_platform.is_empty() {
                "unknown platform"
            } else {
                &deployment.compute_platform
            }
        ));
    };
    let payload = serde_json::to_vec(&check.payload).map_err(|e| e.to_string())?;
    for attempt in 1..=check.repeat {
        // The target version, never the alias: the alias still points at
        // the version in service while the hook runs.
        let invoked = probe
            .invoke(
                &target.function,
                &target.target_version,
                &payload,
                until.remaining(),
            )
            .await
            .map_err(|e| format!("invocation {attempt}: {e}"))?;
        if let Some(error) = &invoked.function_error {
            return Err(format!(
                "invocation {attempt}: FunctionError {error}: {}",
                quote(&String::from_utf8_lossy(&invoked.payload))
            ));
        }
        if let Some(expect) = &check.expect {
            expected(expect, &invoked.payload).map_err(|d| format!("invocation {attempt}: {d}"))?;
        }
    }
    Ok(format!(
        "{} invocation(s) of {} version {} answered as expected",
        check.repeat, target.function, target.target_version
    ))
}

/// Whether the response's field holds an expected value.
pub fn expected(expect: &ResponseExpectation, payload: &[u8]) -> Result<(), String> {
    let response: Value = serde_json::from_slice(payload).map_err(|_| {
        format!(
            "response is not JSON: {}",
            quote(&String::from_utf8_lossy(payload))
        )
    })?;
    let found = expect
        .field
        .split('.')
        .try_fold(&response, |value, part| value.get(part))
        .ok_or_else(|| format!("response has no field {}", expect.field))?;
    if let Some(values) = &expect.equals
        && !values.contains(found)
    {
        return Err(format!(
            "{} is {}, expected {}",
            expect.field,
            quote(&found.to_string()),
            values
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(" or ")
        ));
    }
    if let Some(part) = &expect.contains {
        let text = match found {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if !text.contains(part.as_str()) {
            return Err(format!(
                "{} is {}, expected it to contain {part:?}",
                expect.field,
                quote(&text)
            ));
        }
    }
    Ok(())
}

async fn probe_http(check: &HttpCheck, http: &reqwest::Client) -> Result<String, String> {
    if let Some(from) = check.url_from.as_ref().filter(|_| check.url.is_empty()) {
        // Only a CodePipeline job has input artifacts (pipeline-gate fills
        // `url` in before the check runs): never a pass for a URL not probed.
        return Err(format!(
            "its URL comes from file {} of input artifact {} (url_from), which only pipeline-gate reads: not probed",
            from.file, from.artifact
        ));
    }
    if check.settle_seconds > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(check.settle_seconds)).await;
    }
    let method = reqwest::Method::from_bytes(check.method.as_bytes()).map_err(|e| e.to_string())?;
    let mut passed = 0u32;
    let mut first_difference: Option<String> = None;
    let mut slowest = Duration::ZERO;
    for attempt in 1..=check.repeat {
        let started = Instant::now();
        let mut request = http.request(method.clone(), &check.url);
        if let Some(max) = check.max_latency_ms {
            // A probe slower than allowed has failed: no need to wait longer.
            request = request.timeout(Duration::from_millis(max.max(1).saturating_mul(2)));
        }
        let difference = match request.send().await {
            Err(e) if e.is_timeout() => Some(format!(
                "no answer within {} ms",
                started.elapsed().as_millis()
            )),
            Err(e) if e.is_connect() => Some("could not connect".to_owned()),
            Err(e) => Some(format!("request failed: {e}")),
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                let took = started.elapsed();
                slowest = slowest.max(took);
                if status != check.expect_status {
                    Some(format!(
                        "status {status}, expected {}: {}",
                        check.expect_status,
                        quote(&body)
                    ))
                } else if let Some(part) = check
                    .body_contains
                    .as_ref()
                    .filter(|p| !body.contains(p.as_str()))
                {
                    Some(format!("body does not contain {part:?}: {}", quote(&body)))
                } else {
                    check
                        .max_latency_ms
                        .filter(|max| took.as_millis() > u128::from(*max))
                        .map(|max| {
                            format!("answered in {} ms, more than {max} ms", took.as_millis())
                        })
                }
            }
        };
        match difference {
            None => passed += 1,
            Some(d) => {
                if first_difference.is_none() {
                    first_difference = Some(format!("probe {attempt} of {}: {d}", check.repeat));
                }
            }
        }
    }
    let ratio = f64::from(passed) / f64::from(check.repeat);
    let summary = format!(
        "{passed} of {} probes of {} {} passed (slowest {} ms)",
        check.repeat,
        check.method,
        check.url,
        slowest.as_millis()
    );
    if ratio + f64::EPSILON >= check.success_ratio {
        Ok(summary)
    } else {
        Err(format!(
            "{summary}, {} required; first: {}",
            check.success_ratio,
            first_difference.unwrap_or_default()
        ))
    }
}

async fn alarms<P: Probe + Sync>(
    check: &AlarmsCheck,
    probe: &P,
    until: Deadline,
) -> Result<String, String> {
    let started = Instant::now();
    let watch = Duration::from_secs_f64(check.watch_seconds);
    let poll = Duration::from_secs_f64(check.poll_seconds);
    loop {
        let states = probe
            .alarm_states(&check.names)
            .await
            .map_err(|e| e.to_string())?;
        for name in &check.names {
            match states.get(name).map(String::as_str) {
                None => return Err(format!("alarm {name} does not exist")),
                Some("ALARM") => {
                    return Err(format!(
                        "alarm {name} is in ALARM ({} s into the watch)",
                        started.elapsed().as_secs()
                    ));
                }
                Some("INSUFFICIENT_DATA") if check.treat_missing == TreatMissing::Fail => {
                    return Err(format!(
                        "alarm {name} is in INSUFFICIENT_DATA ({} s into the watch): nothing says the new version is healthy (\"treat_missing\": \"pass\" lets it pass)",
                        started.elapsed().as_secs()
                    ));
                }
                Some(_) => {}
            }
        }
        let elapsed = started.elapsed();
        if elapsed >= watch {
            return Ok(format!(
                "{} alarm(s) not in ALARM for {}",
                check.names.len(),
                seconds(watch)
            ));
        }
        // The last look is at the window's end, or as late as the deadline allows.
        let next = poll.min(watch - elapsed);
        if until.remaining() <= next {
            return Err(format!(
                "the watch of {} does not fit before the function's deadline",
                seconds(watch)
            ));
        }
        tokio::time::sleep(next).await;
    }
}

fn quote(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > QUOTE {
        format!("{}…", one_line.chars().take(QUOTE).collect::<String>())
    } else {
        one_line
    }
}
