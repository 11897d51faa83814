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
        CheckKind::Http(check) => probe_http(check, http, artifact_url_rule()).await,
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

/// Set to `1` (tests only) to let a URL from an input artifact (`url_from`)
/// name a loopback or private address, as the tests' local servers do.
pub const TEST_ONLY_ALLOW_PRIVATE_ARTIFACT_URLS: &str =
    "SIGNALBOX_GATE_ALLOW_PRIVATE_ARTIFACT_URLS";

/// Which addresses a URL taken from an input artifact may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactUrlRule {
    /// Public addresses only (the default).
    PublicOnly,
    /// Loopback and private addresses too: tests only
    /// ([`TEST_ONLY_ALLOW_PRIVATE_ARTIFACT_URLS`]).
    TestOnlyAllowPrivate,
}

/// The rule from the environment, read once per cold start.
fn artifact_url_rule() -> ArtifactUrlRule {
    static RULE: std::sync::OnceLock<ArtifactUrlRule> = std::sync::OnceLock::new();
    *RULE.get_or_init(
        || match std::env::var(TEST_ONLY_ALLOW_PRIVATE_ARTIFACT_URLS).as_deref() {
            Ok("1") => ArtifactUrlRule::TestOnlyAllowPrivate,
            _ => ArtifactUrlRule::PublicOnly,
        },
    )
}

/// Why a URL from an input artifact may not be probed at `ip`, or None.
/// Loopback, link-local (169.254.0.0/16, fe80::/10: the instance metadata
/// services), private (10/8, 172.16/12, 192.168/16, fc00::/7), unspecified,
/// broadcast and multicast addresses are refused; an IPv4-mapped IPv6
/// address is judged as its IPv4 address.
pub fn refused_address(ip: std::net::IpAddr) -> Option<&'static str> {
    use std::net::IpAddr;
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => Some("a loopback address"),
        IpAddr::V4(v4) if v4.is_link_local() => Some("a link-local address"),
        IpAddr::V4(v4) if v4.is_private() => Some("a private address"),
        IpAddr::V4(v4) if v4.is_unspecified() || v4.octets()[0] == 0 => {
            Some("an unspecified address")
        }
        IpAddr::V4(v4) if v4.is_multicast() || v4.is_broadcast() => {
            Some("a multicast or broadcast address")
        }
        IpAddr::V6(v6) if v6.is_loopback() => Some("a loopback address"),
        IpAddr::V6(v6) if v6.is_unspecified() => Some("an unspecified address"),
        IpAddr::V6(v6) if v6.is_multicast() => Some("a multicast address"),
        IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => Some("a link-local address"),
        IpAddr::V6(v6) if v6.segments()[0] & 0xfe00 == 0xfc00 => Some("a private address"),
        _ => None,
    }
}

/// The client that probes `url`, taken from an input artifact: its host
/// resolved here, every address checked ([`refused_address`]), and the
/// client pinned to the checked addresses (reqwest's
/// `ClientBuilder::resolve_to_addrs`, <https://docs.rs/reqwest/0.13/reqwest/struct.ClientBuilder.html#method.resolve_to_addrs>),
/// so a second DNS answer cannot swap them; no redirect is followed
/// (`redirect::Policy::none()`, <https://docs.rs/reqwest/0.13/reqwest/redirect/struct.Policy.html#method.none>)
/// and no proxy is used.
async fn artifact_url_client(url: &str, rule: ArtifactUrlRule) -> Result<reqwest::Client, String> {
    let parsed = reqwest::Url::parse(url).map_err(|_| "not a URL".to_owned())?;
    let host = parsed.host_str().unwrap_or_default().to_owned();
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| "no port for its scheme".to_owned())?;
    if host.is_empty() {
        return Err("no host".to_owned());
    }
    let literal: Option<std::net::IpAddr> = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok();
    let lookup = literal.is_none();
    let addrs: Vec<std::net::SocketAddr> = match literal {
        Some(ip) => vec![std::net::SocketAddr::new(ip, port)],
        None => {
            let name = host.clone();
            tokio::task::spawn_blocking(move || {
                std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), port))
                    .map(Iterator::collect::<Vec<_>>)
            })
            .await
            .map_err(|_| format!("{host} could not be resolved"))?
            .map_err(|_| format!("{host} could not be resolved"))?
        }
    };
    if addrs.is_empty() {
        return Err(format!("{host} resolves to no address"));
    }
    if rule == ArtifactUrlRule::PublicOnly
        && let Some((ip, why)) = addrs
            .iter()
            .find_map(|a| refused_address(a.ip()).map(|why| (a.ip(), why)))
    {
        return Err(format!(
            "refused: {host} is {ip}, {why}; a URL from an input artifact is only probed at a public address"
        ));
    }
    let mut builder = crate::aws::http_builder()
        .connect_timeout(Duration::from_secs(2))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    if lookup {
        builder = builder.resolve_to_addrs(&host, &addrs);
    }
    builder
        .build()
        .map_err(|_| "no HTTP client for it".to_owned())
}

/// `url` without user info, query and fragment, for messages and logs.
pub fn redacted(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        }
        Err(_) => "(not a URL)".to_owned(),
    }
}

async fn probe_http(
    check: &HttpCheck,
    http: &reqwest::Client,
    rule: ArtifactUrlRule,
) -> Result<String, String> {
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
    // A URL from an input artifact is chosen by whoever wrote the build
    // output, not by the gate's configuration: it gets its own client, and
    // no failure quotes what it answered (docs/pipeline-gate.md).
    let from_artifact = check.url_from.is_some();
    let own_client;
    let http = if from_artifact {
        own_client = artifact_url_client(&check.url, rule)
            .await
            .map_err(|why| format!("{} (url_from): {why}", redacted(&check.url)))?;
        &own_client
    } else {
        http
    };
    let body_quote = |body: &str| {
        if from_artifact {
            format!(
                "({} bytes, not quoted: the URL came from an input artifact)",
                body.len()
            )
        } else {
            quote(body)
        }
    };
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
            Err(e) => Some(format!("request failed: {}", e.without_url())),
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                let took = started.elapsed();
                slowest = slowest.max(took);
                if status != check.expect_status {
                    Some(format!(
                        "status {status}, expected {}: {}",
                        check.expect_status,
                        body_quote(&body)
                    ))
                } else if let Some(part) = check
                    .body_contains
                    .as_ref()
                    .filter(|p| !body.contains(p.as_str()))
                {
                    Some(format!(
                        "body does not contain {part:?}: {}",
                        body_quote(&body)
                    ))
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
        redacted(&check.url),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::http_client;
    use wiremock::matchers::any;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    /// An `http` check whose URL pipeline-gate took from an input artifact.
    fn from_artifact(url: &str) -> HttpCheck {
        let mut check: HttpCheck = serde_json::from_value(serde_json::json!({
            "url_from": {"artifact": "BuildOutput", "file": "out.json", "pointer": "/url"}
        }))
        .unwrap();
        check.url = url.to_owned();
        check
    }

    #[tokio::test]
    async fn a_url_from_an_artifact_at_loopback_is_refused_naming_why() {
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(200))
            .mount(&server)
            .await;
        let check = from_artifact(&format!(
            "{}/2018-06-01/runtime/invocation/next",
            server.uri()
        ));
        let failed = probe_http(&check, &http_client(), ArtifactUrlRule::PublicOnly)
            .await
            .unwrap_err();
        assert!(failed.contains("127.0.0.1, a loopback address"), "{failed}");
        assert!(
            failed.contains("only probed at a public address"),
            "{failed}"
        );
        assert!(server.received_requests().await.unwrap().is_empty());
        // The same URL configured by the gate's owner (no url_from) is probed.
        let mut configured = check.clone();
        configured.url_from = None;
        assert!(
            probe_http(&configured, &http_client(), ArtifactUrlRule::PublicOnly)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_url_from_an_artifact_naming_localhost_is_refused_after_resolution() {
        let failed = probe_http(
            &from_artifact("http://localhost:9001/"),
            &http_client(),
            ArtifactUrlRule::PublicOnly,
        )
        .await
        .unwrap_err();
        assert!(failed.contains("a loopback address"), "{failed}");
    }

    #[test]
    fn link_local_private_and_mapped_addresses_are_refused_public_ones_not() {
        for ip in [
            "169.254.169.254",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(refused_address(ip.parse().unwrap()).is_some(), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "172.32.0.1"] {
            assert!(refused_address(ip.parse().unwrap()).is_none(), "{ip}");
        }
    }

    #[tokio::test]
    async fn a_redirect_from_a_url_from_an_artifact_is_not_followed() {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::path("/start"))
            .respond_with(
                ResponseTemplate::new(302)
                    .insert_header("location", format!("{}/inside", server.uri())),
            )
            .mount(&server)
            .await;
        Mock::given(wiremock::matchers::path("/inside"))
            .respond_with(ResponseTemplate::new(200).set_body_string("internal secret"))
            .mount(&server)
            .await;
        let check = from_artifact(&format!("{}/start", server.uri()));
        let failed = probe_http(
            &check,
            &http_client(),
            ArtifactUrlRule::TestOnlyAllowPrivate,
        )
        .await
        .unwrap_err();
        assert!(failed.contains("status 302"), "{failed}");
        assert!(!failed.contains("internal secret"), "{failed}");
        let paths: Vec<String> = server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .map(|r| r.url.path().to_owned())
            .collect();
        assert_eq!(paths, ["/start"]);
    }

    #[tokio::test]
    async fn a_failing_url_with_a_token_in_its_query_is_not_in_the_message() {
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(
                ResponseTemplate::new(500).set_body_string("the body from the build's URL"),
            )
            .mount(&server)
            .await;
        let check = from_artifact(&format!(
            "http://user:pw@{}/health?token=SECRET#frag",
            server.address()
        ));
        let failed = probe_http(
            &check,
            &http_client(),
            ArtifactUrlRule::TestOnlyAllowPrivate,
        )
        .await
        .unwrap_err();
        assert!(failed.contains("status 500"), "{failed}");
        for secret in ["SECRET", "pw", "frag", "the body from"] {
            assert!(!failed.contains(secret), "{secret} in {failed}");
        }
        // A connection refused: reqwest's error names the URL; it is left out.
        let gone = from_artifact("http://127.0.0.1:1/health?token=SECRET");
        let failed = probe_http(&gone, &http_client(), ArtifactUrlRule::TestOnlyAllowPrivate)
            .await
            .unwrap_err();
        assert!(!failed.contains("SECRET"), "{failed}");
    }
}
