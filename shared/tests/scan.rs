//! The secret scanner against a corpus of true positives and near misses, and
//! its limits: binaries, huge files, CRLF, UTF-16, diffs, budgets, allow lists.
//!
//! The positives are generated here from a vendor prefix and a pseudo-random
//! body rather than written out: a literal token in the repository would be
//! found by the scanner itself (and by every other scanner a clone meets).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use signalbox::scan::{
    AllowList, Budget, BudgetLimit, Limits, ScanReport, Scanner, SkipReason, rules, scan_added,
    scan_blob,
};

const UPPER32: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const BASE64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64URL: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const HEX: &str = "0123456789abcdef";
const DIGITS: &str = "0123456789";

/// Deterministic pseudo-random text (xorshift), so failures reproduce.
fn rand(seed: u64, alphabet: &str, len: usize) -> String {
    let chars: Vec<char> = alphabet.chars().collect();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chars[(x % chars.len() as u64) as usize]
        })
        .collect()
}

fn private_key(kind: &str, seed: u64) -> String {
    let body: Vec<String> = (0..4).map(|i| rand(seed + i, BASE64, 64)).collect();
    format!(
        "-----BEGIN {kind}-----\n{}\n-----END {kind}-----\n",
        body.join("\n")
    )
}

const JWT_HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"; // {"alg":"HS256","typ":"JWT"}
const JWT_PAYLOAD: &str = "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkEifQ";

/// Per rule: texts that must give a finding of exactly that rule, and near
/// misses that must give nothing.
fn corpus() -> Vec<(&'static str, Vec<String>, Vec<String>)> {
    vec![
        (
            "aws-access-key-id",
            vec![
                format!("aws_access_key_id = AKIA{}", rand(1, UPPER32, 16)),
                format!("\"AccessKeyId\": \"ASIA{}\",", rand(2, UPPER32, 16)),
            ],
            vec![
                "id = AKIA1234567890189018".into(), // 0, 1, 8, 9 are not in AWS's alphabet
                "AKIASHORT".into(),
                format!("xAKIA{}", rand(3, UPPER32, 16)), // inside a longer word
            ],
        ),
        (
            "aws-secret-access-key",
            vec![
                format!("aws_secret_access_key = {}", rand(4, BASE64, 40)),
                format!("\"SecretAccessKey\": \"{}\"", rand(5, BASE64, 40)),
            ],
            vec![
                format!("secret_sha = {}", rand(6, HEX, 40)), // a git hash
                "aws_secret_access_key = ${AWS_SECRET_ACCESS_KEY}".into(),
                // 40 characters of base64, but nothing says aws or secret.
                format!("image_digest = {}", rand(7, BASE64, 40)),
            ],
        ),
        (
            "aws-session-token",
            vec![
                format!(
                    "aws_session_token = IQoJb3JpZ2luX2Vj{}",
                    rand(8, BASE64, 300)
                ),
                format!("AWS_SESSION_TOKEN={}", rand(9, BASE64, 200)),
            ],
            vec![
                "aws_session_token = ${AWS_SESSION_TOKEN}".into(),
                "aws_session_token = None".into(),
                "\"SessionToken\": \"<session token>\"".into(),
                // The prefix alone, too short for a token.
                format!("IQoJb3JpZ2luX2Vj{}", rand(10, BASE64, 20)),
            ],
        ),
        (
            "private-key",
            vec![
                private_key("RSA PRIVATE KEY", 11),
                private_key("EC PRIVATE KEY", 12),
                private_key("OPENSSH PRIVATE KEY", 13),
                private_key("PRIVATE KEY", 14),
                private_key("ENCRYPTED PRIVATE KEY", 15),
                format!(
                    "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\n\n{}\n{}\n-----END PGP PRIVATE KEY BLOCK-----\n",
                    rand(16, BASE64, 64),
                    rand(17, BASE64, 64)
                ),
            ],
            vec![
                private_key("PUBLIC KEY", 18),
                private_key("CERTIFICATE", 19),
                "const HEADER: &str = \"-----BEGIN RSA PRIVATE KEY-----\";".into(),
                "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----".into(),
            ],
        ),
        (
            "github-token",
            ["ghp", "gho", "ghu", "ghs", "ghr"]
                .iter()
                .enumerate()
                .map(|(i, p)| format!("GITHUB_TOKEN={p}_{}", rand(20 + i as u64, ALNUM, 36)))
                .chain([format!(
                    "token: github_pat_{}_{}",
                    rand(26, ALNUM, 22),
                    rand(27, ALNUM, 59)
                )])
                .collect(),
            vec![
                format!("ghp_{}", "x".repeat(36)),
                "ghp_short".into(),
                format!("ghx_{}", rand(28, ALNUM, 36)),
            ],
        ),
        (
            "gitlab-token",
            vec![format!("CI_TOKEN=glpat-{}", rand(30, ALNUM, 20))],
            vec![format!("glpat-{}", "x".repeat(20)), "glpat-short".into()],
        ),
        (
            "slack-token",
            vec![
                format!(
                    "SLACK_BOT_TOKEN=xoxb-{}-{}-{}",
                    rand(31, DIGITS, 11),
                    rand(32, DIGITS, 13),
                    rand(33, ALNUM, 24)
                ),
                format!(
                    "xoxp-{}-{}-{}-{}",
                    rand(34, DIGITS, 11),
                    rand(35, DIGITS, 11),
                    rand(36, DIGITS, 12),
                    rand(37, HEX, 32)
                ),
                format!(
                    "xapp-1-A{}-{}-{}",
                    rand(38, UPPER32, 10),
                    rand(39, DIGITS, 13),
                    rand(40, HEX, 64)
                ),
            ],
            vec![
                "SLACK_BOT_TOKEN=xoxb-your-bot-token".into(),
                format!("xoxb-{}-{}", "0".repeat(11), "x".repeat(24)),
            ],
        ),
        (
            "slack-webhook",
            vec![format!(
                "url: https://hooks.slack.com/services/T{}/B{}/{}",
                rand(41, UPPER32, 8),
                rand(42, UPPER32, 10),
                rand(43, ALNUM, 24)
            )],
            vec![
                // Slack's own documentation example.
                "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
                    .into(),
                "https://hooks.slack.com/services/".into(),
                "https://api.slack.com/messaging/webhooks".into(),
            ],
        ),
        (
            "stripe-key",
            vec![
                format!("STRIPE_KEY=sk_live_{}", rand(44, ALNUM, 24)),
                format!("rk_live_{}", rand(45, ALNUM, 99)),
            ],
            vec![
                // Test-mode keys reach no money: not reported (docs/repo-guard.md).
                format!("STRIPE_KEY=sk_test_{}", rand(46, ALNUM, 24)),
                format!("pk_live_{}", rand(47, ALNUM, 24)), // publishable: public by design
            ],
        ),
        (
            "jwt",
            vec![format!(
                "Authorization: Bearer {JWT_HEADER}.{JWT_PAYLOAD}.{}",
                rand(48, BASE64URL, 43)
            )],
            vec![
                // Three parts, but the header has no "alg".
                format!(
                    "eyJ0eXAiOiJ0ZXh0Iiwia2lkIjoiazEifQ.{JWT_PAYLOAD}.{}",
                    rand(49, BASE64URL, 43)
                ),
                // Starts like a JWT, but the header is not base64 of JSON.
                format!("eyJzzzzzzzzzzz.{JWT_PAYLOAD}.{}", rand(51, BASE64URL, 43)),
            ],
        ),
        (
            "generic-secret",
            vec![
                format!("password = \"{}\"", rand(52, ALNUM, 20)),
                format!("api_key: {}", rand(53, ALNUM, 32)),
                format!("DB_SECRET='{}'", rand(54, ALNUM, 16)),
                format!("auth_token := \"{}\"", rand(55, ALNUM, 24)),
                format!("credentials = \"{}\"", rand(62, ALNUM, 20)),
                format!("creds: {}", rand(63, ALNUM, 20)),
                format!("auth = \"{}\"", rand(64, ALNUM, 20)),
                format!("<password>{}</password>", rand(65, ALNUM, 16)),
            ],
            vec![
                "password = \"changeme\"".into(),
                "author = \"JohnSmith2024\"".into(),
                "<password>changeme</password>".into(),
                "<password>${DB_PASSWORD}</password>".into(),
                "password: ${DB_PASSWORD}".into(),
                "password = \"<password>\"".into(),
                "api_key = \"xxxxxxxxxxxxxxxxxxxx\"".into(),
                "password = os.environ[\"DB_PASSWORD\"]".into(),
                "password = os.getenv(\"DB_PASSWORD\")".into(),
                "token: ${{ secrets.DEPLOY_TOKEN }}".into(),
                "secret = \"Lorem ipsum dolor sit amet, consectetur adipiscing elit\"".into(),
                "token_type = TokenType.BEARER".into(),
                "password = \"hunter22\"".into(),
                "token_url = \"https://auth.example.com/oauth2/token\"".into(),
                "password_field = \"password_input\"".into(),
                format!(
                    "token_icon = \"data:image/png;base64,{}\"",
                    rand(61, BASE64, 60)
                ),
            ],
        ),
        (
            "connection-string",
            vec![
                format!(
                    "DATABASE_URL=postgres://app:{}@db.internal:5432/app",
                    rand(56, ALNUM, 16)
                ),
                format!("mysql://root:{}@10.0.0.5/shop", rand(57, ALNUM, 12)),
                format!(
                    "mongodb+srv://svc:{}@cluster0.mongodb.net/db",
                    rand(58, ALNUM, 20)
                ),
                format!("redis://:{}@cache:6379/0", rand(59, ALNUM, 20)),
                format!("amqp://worker:{}@mq.internal:5672/", rand(60, ALNUM, 14)),
            ],
            vec![
                "postgres://app@db.internal/app".into(),
                "postgres://app:@db.internal/app".into(),
                "postgres://app:${DB_PASSWORD}@db.internal/app".into(),
                "mysql://user:<password>@host/db".into(),
                "amqp://guest:guest@localhost:5672/".into(),
                "postgres://user:password@localhost/dev".into(),
                "https://user:pass@example.com/".into(),
            ],
        ),
    ]
}

const LOWER_ALNUM: &str = "abcdefghijklmnopqrstuvwxyz0123456789";
const LETTERS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BECH32: &str = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L";
const TOKEN: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

/// The families added after gitleaks' default rules were compared (issue
/// 20), in the formats their providers document: per rule, tokens that must
/// be found, and placeholders and near misses that must not.
fn families() -> Vec<(&'static str, Vec<String>, Vec<String>)> {
    vec![
        (
            "google-api-key",
            vec![format!("GOOGLE_API_KEY=AIza{}", rand(600, TOKEN, 35))],
            vec![
                format!("AIza{}", "X".repeat(35)),
                "key: AIzaSyEXAMPLE-your-key-here-0000000000".into(),
                format!("AIza{}", rand(601, TOKEN, 20)),
            ],
        ),
        (
            "azure-ad-client-secret",
            vec![format!(
                "\"clientSecret\": \"{}8Q~{}\"",
                rand(602, ALNUM, 3),
                rand(603, ALNUM, 34)
            )],
            vec![
                format!("abc8Q~{}", "x".repeat(34)),
                format!("{}8Q~{}", rand(604, ALNUM, 3), rand(605, ALNUM, 10)),
            ],
        ),
        (
            "package-registry-token",
            vec![
                format!(
                    "//registry.npmjs.org/:_authToken=npm_{}",
                    rand(606, ALNUM, 36)
                ),
                format!("password = pypi-AgEIcHlwaS5vcmc{}", rand(607, TOKEN, 120)),
                format!("GEM_HOST_API_KEY: rubygems_{}", rand(608, HEX, 48)),
                format!("nuget push -k oy2{}", rand(609, LOWER_ALNUM, 43)),
            ],
            vec![
                format!("npm_{}", "X".repeat(36)),
                "NPM_TOKEN=npm_your_token_here".into(),
                format!("rubygems_{}", "0".repeat(48)),
            ],
        ),
        (
            "ai-api-key",
            vec![
                format!(
                    "OPENAI_API_KEY=sk-proj-{}T3BlbkFJ{}",
                    rand(610, TOKEN, 74),
                    rand(611, TOKEN, 74)
                ),
                format!(
                    "sk-{}T3BlbkFJ{}",
                    rand(612, ALNUM, 20),
                    rand(613, ALNUM, 20)
                ),
                format!("ANTHROPIC_API_KEY=sk-ant-api03-{}AA", rand(614, TOKEN, 93)),
                format!("HF_TOKEN=hf_{}", rand(615, LETTERS, 34)),
            ],
            vec![
                "OPENAI_API_KEY=sk-...".into(),
                format!("sk-ant-api03-{}AA", "x".repeat(93)),
                format!("hf_{}", "x".repeat(34)),
            ],
        ),
        (
            "messaging-api-key",
            vec![
                format!(
                    "SENDGRID_API_KEY=SG.{}.{}",
                    rand(616, TOKEN, 22),
                    rand(617, TOKEN, 43)
                ),
                format!("TWILIO_API_KEY=SK{}", rand(618, HEX, 32)),
                format!("MAILGUN_KEY=key-{}", rand(619, HEX, 32)),
            ],
            vec![
                format!("SG.{}.{}", "x".repeat(22), "x".repeat(43)),
                format!("SK{}", "0".repeat(32)),
                "key-your-mailgun-key".into(),
            ],
        ),
        (
            "mailchimp-api-key",
            vec![format!("MAILCHIMP_KEY={}-us21", rand(620, HEX, 32))],
            vec![
                format!("{}-us21", "0".repeat(32)),
                format!("{}-eu1", rand(621, HEX, 32)),
            ],
        ),
        (
            "infrastructure-token",
            vec![
                format!("VAULT_TOKEN=hvs.{}", rand(622, TOKEN, 95)),
                format!(
                    "token = \"{}.atlasv1.{}\"",
                    rand(623, ALNUM, 14),
                    rand(624, TOKEN, 67)
                ),
                format!("PULUMI_ACCESS_TOKEN=pul-{}", rand(625, HEX, 40)),
                format!("DOPPLER_TOKEN=dp.pt.{}", rand(626, ALNUM, 43)),
            ],
            vec![
                "VAULT_TOKEN=hvs.example".into(),
                format!("pul-{}", "0".repeat(40)),
                format!("dp.pt.{}", "x".repeat(43)),
            ],
        ),
        (
            "cloud-platform-token",
            vec![
                format!("HEROKU_API_KEY=HRKU-AA{}", rand(627, TOKEN, 58)),
                format!(
                    "heroku_api_key = \"{}-{}-{}-{}-{}\"",
                    rand(628, HEX, 8),
                    rand(629, HEX, 4),
                    rand(630, HEX, 4),
                    rand(631, HEX, 4),
                    rand(632, HEX, 12)
                ),
                format!("DIGITALOCEAN_TOKEN=dop_v1_{}", rand(633, HEX, 64)),
                format!("DATABRICKS_TOKEN=dapi{}", rand(634, HEX, 32)),
                format!("ALIBABA_CLOUD_ACCESS_KEY_ID=LTAI{}", rand(635, ALNUM, 20)),
                format!("CLOUDFLARE_API_TOKEN={}", rand(636, TOKEN, 40)),
            ],
            vec![
                format!("dop_v1_{}", "0".repeat(64)),
                "LTAIxxxxxxxxxxxxxxxxxxxx".into(),
                // A UUID without a Heroku name is an id, not a key.
                "id = \"123e4567-e89b-12d3-a456-426614174000\"".into(),
                "CLOUDFLARE_API_TOKEN=${CF_TOKEN}".into(),
            ],
        ),
        (
            "saas-api-token",
            vec![
                format!("SHOPIFY_TOKEN=shpat_{}", rand(637, HEX, 32)),
                format!(
                    "POSTMAN_API_KEY=PMAK-{}-{}",
                    rand(638, HEX, 24),
                    rand(639, HEX, 34)
                ),
                format!(
                    "GRAFANA_TOKEN=glsa_{}_{}",
                    rand(640, ALNUM, 32),
                    rand(641, HEX, 8)
                ),
                format!("SENTRY_AUTH_TOKEN=sntryu_{}", rand(642, HEX, 64)),
                format!("DATADOG_API_KEY={}", rand(643, HEX, 32)),
                format!("NEW_RELIC_API_KEY=NRAK-{}", rand(644, UPPER32, 27)),
                format!("okta_api_token: 00{}", rand(645, TOKEN, 40)),
                format!("JIRA_API_TOKEN=ATATT3{}", rand(646, TOKEN, 186)),
            ],
            vec![
                format!("shpat_{}", "0".repeat(32)),
                "DATADOG_API_KEY=<your-datadog-api-key>".into(),
                format!("NRAK-{}", "X".repeat(27)),
            ],
        ),
        (
            "age-secret-key",
            vec![format!("AGE-SECRET-KEY-1{}", rand(647, BECH32, 58))],
            vec![
                format!("AGE-SECRET-KEY-1{}", "Q".repeat(58)),
                "AGE-SECRET-KEY-1...".into(),
            ],
        ),
    ]
}

/// What each corpus entry got wrong.
fn corpus_problems(corpus: &[(&'static str, Vec<String>, Vec<String>)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, positives, near_misses) in corpus {
        for (i, text) in positives.iter().enumerate() {
            let report = scan_blob("corpus.txt", text.as_bytes());
            let found = rules_of(&report);
            if found != BTreeSet::from([*id]) {
                problems.push(format!("{id}: positive {i} gave {found:?}"));
            }
        }
        for (i, text) in near_misses.iter().enumerate() {
            let report = scan_blob("corpus.txt", text.as_bytes());
            if !report.findings.is_empty() || !report.examples.is_empty() {
                problems.push(format!(
                    "{id}: near miss {i} ({text:?}) gave {:?}",
                    rules_of(&report)
                ));
            }
        }
    }
    problems
}

#[test]
fn each_added_family_is_found_and_each_placeholder_is_not() {
    let problems = corpus_problems(&families());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn rules_of(report: &ScanReport) -> BTreeSet<&'static str> {
    report.findings.iter().map(|f| f.rule).collect()
}

#[test]
fn every_rule_finds_its_positives_and_ignores_its_near_misses() {
    let mut corpus = corpus();
    corpus.extend(families());
    let covered: BTreeSet<&str> = corpus.iter().map(|(id, _, _)| *id).collect();
    let all: BTreeSet<&str> = rules().map(|r| r.id).collect();
    assert_eq!(covered, all, "every rule has a corpus entry and vice versa");
    let problems = corpus_problems(&corpus);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn aws_documented_example_keys_are_examples_not_findings() {
    let text = "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n";
    let report = scan_blob("docs/credentials.md", text.as_bytes());
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    let examples: Vec<_> = report.examples.iter().map(|f| (f.rule, f.line)).collect();
    assert_eq!(
        examples,
        [("aws-access-key-id", 2), ("aws-secret-access-key", 3)]
    );
}

#[test]
fn uuids_hashes_base64_images_and_lorem_do_not_fire() {
    let png = rand(70, BASE64, 4000);
    let text = format!(
        "id = \"123e4567-e89b-12d3-a456-426614174000\"\n\
         commit = {}\n\
         sha256 = {}\n\
         <img src=\"data:image/png;base64,{png}\">\n\
         Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\n\
         integrity=\"sha512-{}\"\n",
        rand(71, HEX, 40),
        rand(72, HEX, 64),
        rand(73, BASE64, 86),
    );
    let report = scan_blob("page.html", text.as_bytes());
    assert!(report.findings.is_empty(), "{:?}", report.findings);
}

#[test]
fn a_line_with_the_allow_marker_is_not_reported() {
    let key = format!("AKIA{}", rand(80, UPPER32, 16));
    let text = format!("a = \"{key}\"  # signalbox:allow (test fixture)\nb = \"{key}\"\n");
    let report = scan_blob("fixtures.py", text.as_bytes());
    let lines: Vec<u32> = report.findings.iter().map(|f| f.line).collect();
    assert_eq!(lines, [2]);
}

#[test]
fn allow_file_globs_skip_paths_and_say_so() {
    let allow = AllowList::parse(
        "# fixtures with fake keys\n\
         tests/fixtures/**\n\
         *.pem\n\
         /docs/example.env\n\
         \n",
    )
    .unwrap();
    for allowed in [
        "tests/fixtures/a.txt",
        "tests/fixtures/deep/b.txt",
        "certs/dev.pem",
        "dev.pem",
        "docs/example.env",
    ] {
        assert!(allow.allows(allowed), "{allowed} should be allowed");
    }
    for scanned in [
        "src/tests/fixtures.rs",
        "docs/sub/example.env",
        "pem.txt",
        "tests/a.txt",
    ] {
        assert!(!allow.allows(scanned), "{scanned} should be scanned");
    }
    let key = format!("AKIA{}", rand(81, UPPER32, 16));
    let mut scanner =
        Scanner::new(Limits::default(), Budget::unlimited()).with_allow_list(allow.clone());
    scanner.scan_blob("tests/fixtures/keys.txt", key.as_bytes());
    scanner.scan_blob("src/main.rs", key.as_bytes());
    let report = scanner.finish();
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].path, "src/main.rs");
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].path, "tests/fixtures/keys.txt");
    assert_eq!(report.skipped[0].reason, SkipReason::AllowListed);
}

#[test]
fn allow_file_errors_name_the_line() {
    let error = AllowList::parse("ok/**\n!negated\n").unwrap_err();
    assert_eq!(error.line, 2);
    assert!(
        error.to_string().contains(".signalbox-allow line 2"),
        "{error}"
    );
}

#[test]
fn binary_file_is_skipped_and_said() {
    let mut bytes = format!("AKIA{}", rand(82, UPPER32, 16)).into_bytes();
    bytes.extend_from_slice(&[0, 1, 2, 0xff]);
    let report = scan_blob("logo.png", &bytes);
    assert!(report.findings.is_empty());
    assert_eq!(report.skipped[0].reason, SkipReason::Binary);
    assert_eq!(report.files_scanned, 0);
}

#[test]
fn a_latin1_file_with_a_password_is_found() {
    // "# Schlüssel für Produktion" in Latin-1: 0xfc is not UTF-8.
    let mut bytes = b"# Schl\xfcssel f\xfcr Produktion\n".to_vec();
    bytes.extend_from_slice(format!("db.password={}\n", rand(83, ALNUM, 16)).as_bytes());
    let report = scan_blob("conf/app.properties", &bytes);
    assert_eq!(
        rules_of(&report),
        BTreeSet::from(["generic-secret"]),
        "{report:?}"
    );
    assert_eq!(report.findings[0].line, 2);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
}

#[test]
fn mostly_control_bytes_are_binary_without_a_nul() {
    let mut bytes: Vec<u8> = (1u8..8).cycle().take(600).collect();
    bytes.extend_from_slice(format!("\npassword={}\n", rand(84, ALNUM, 16)).as_bytes());
    let report = scan_blob("blob.bin", &bytes);
    assert!(report.findings.is_empty());
    assert_eq!(report.skipped[0].reason, SkipReason::Binary);
}

/// An unencrypted OpenSSH ed25519 key: its first body line is the same for
/// every such key (the format's header, key type and cipher "none").
fn ed25519_key(seed: u64) -> String {
    let rest: Vec<String> = (0..4).map(|i| rand(seed + i, BASE64, 70)).collect();
    format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n\
         b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n{}\n\
         -----END OPENSSH PRIVATE KEY-----\n",
        rest.join("\n")
    )
}

#[test]
fn two_openssh_ed25519_keys_have_two_fingerprints() {
    let a = scan_blob("id_ed25519", ed25519_key(300).as_bytes());
    let b = scan_blob("id_ed25519", ed25519_key(400).as_bytes());
    assert_eq!(rules_of(&a), BTreeSet::from(["private-key"]));
    assert_eq!(rules_of(&b), BTreeSet::from(["private-key"]));
    assert_ne!(
        a.findings[0].fingerprint, b.findings[0].fingerprint,
        "two keys with the same first line are two findings"
    );
    // The same key is the same finding, whatever its line endings.
    let crlf = scan_blob(
        "id_ed25519",
        ed25519_key(300).replace('\n', "\r\n").as_bytes(),
    );
    assert_eq!(a.findings[0].fingerprint, crlf.findings[0].fingerprint);
}

#[test]
fn the_gcp_service_account_json_is_found() {
    // The shape of a service-account key file (Google Cloud IAM docs,
    // "Create and delete service account keys"): the PEM inside a JSON
    // string, its newlines escaped as `\n`.
    let body: Vec<String> = (0..4).map(|i| rand(500 + i, BASE64, 64)).collect();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\\n{}\\n-----END PRIVATE KEY-----\\n",
        body.join("\\n")
    );
    let json = format!(
        "{{\n  \"type\": \"service_account\",\n  \"project_id\": \"demo\",\n  \
         \"private_key_id\": \"{}\",\n  \"private_key\": \"{pem}\",\n  \
         \"client_email\": \"demo@demo.iam.gserviceaccount.com\"\n}}\n",
        rand(510, HEX, 40)
    );
    let report = scan_blob("sa.json", json.as_bytes());
    let found: Vec<_> = report.findings.iter().map(|f| (f.rule, f.line)).collect();
    assert_eq!(found, [("private-key", 5)], "{json}");
    // The same key as a PEM file is the same finding.
    let file = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        body.join("\n")
    );
    let pem_report = scan_blob("key.pem", file.as_bytes());
    assert_eq!(
        pem_report.findings[0].fingerprint,
        report.findings[0].fingerprint
    );
}

#[test]
fn huge_file_is_skipped_and_said() {
    let limits = Limits {
        max_file_bytes: 1024,
    };
    let mut text = "x\n".repeat(600);
    text.push_str(&format!("AKIA{}\n", rand(84, UPPER32, 16)));
    let mut scanner = Scanner::new(limits, Budget::unlimited());
    scanner.scan_blob("big.sql", text.as_bytes());
    let report = scanner.finish();
    assert!(report.findings.is_empty());
    assert_eq!(
        report.skipped[0].reason,
        SkipReason::TooLarge {
            bytes: text.len() as u64,
            limit: 1024
        }
    );
    assert_eq!(
        serde_json::to_value(&report.skipped[0]).unwrap(),
        serde_json::json!({
            "path": "big.sql",
            "reason": {"kind": "too-large", "bytes": text.len(), "limit": 1024}
        })
    );
    assert_eq!(
        report.skipped[0].to_string(),
        format!(
            "big.sql: not scanned: {} bytes, over the limit of 1024",
            text.len()
        )
    );
}

#[test]
fn crlf_file_reports_the_right_line_and_column() {
    let key = format!("ghp_{}", rand(85, ALNUM, 36));
    let text = format!("first\r\nsecond\r\n  token: {key}\r\n");
    let report = scan_blob("ci.yml", text.as_bytes());
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    let f = &report.findings[0];
    assert_eq!((f.rule, f.line, f.column), ("github-token", 3, 10));
}

fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
    let mut bytes = if big_endian {
        vec![0xfe, 0xff]
    } else {
        vec![0xff, 0xfe]
    };
    for unit in text.encode_utf16() {
        bytes.extend_from_slice(&if big_endian {
            unit.to_be_bytes()
        } else {
            unit.to_le_bytes()
        });
    }
    bytes
}

#[test]
fn utf16_files_with_a_bom_are_scanned() {
    let text = format!("é\r\nkey = AKIA{}\r\n", rand(86, UPPER32, 16));
    for big_endian in [false, true] {
        let report = scan_blob("settings.ini", &utf16(&text, big_endian));
        assert!(report.skipped.is_empty(), "{:?}", report.skipped);
        let found: Vec<_> = report
            .findings
            .iter()
            .map(|f| (f.rule, f.line, f.column))
            .collect();
        assert_eq!(
            found,
            [("aws-access-key-id", 2, 7)],
            "big endian: {big_endian}"
        );
    }
}

#[test]
fn diff_mode_reports_only_added_lines() {
    let old_key = format!("AKIA{}", rand(87, UPPER32, 16));
    let new_key = format!("AKIA{}", rand(88, UPPER32, 16));
    let old = format!("a\nold = {old_key}\nb\n");
    let new = format!("a\nold = {old_key}\nb\nnew = {new_key}\n");
    let report = scan_added("conf.env", Some(old.as_bytes()), new.as_bytes());
    let lines: Vec<u32> = report.findings.iter().map(|f| f.line).collect();
    assert_eq!(lines, [4]);
    // A new file: every line is added.
    let report = scan_added("conf.env", None, new.as_bytes());
    assert_eq!(report.findings.len(), 2);
}

#[test]
fn converting_crlf_to_lf_adds_no_lines() {
    let key = format!("AKIA{}", rand(89, UPPER32, 16));
    let old = format!("a\r\nkey = {key}\r\n");
    let new = format!("a\nkey = {key}\n");
    let report = scan_added("conf.env", Some(old.as_bytes()), new.as_bytes());
    assert!(report.findings.is_empty(), "{:?}", report.findings);
}

#[test]
fn budget_exhaustion_is_reported_never_silent() {
    let key = format!("AKIA{}", rand(90, UPPER32, 16));
    let by_files = Budget {
        max_files: 2,
        ..Budget::unlimited()
    };
    let mut scanner = Scanner::new(Limits::default(), by_files);
    for name in ["a", "b", "c", "d"] {
        scanner.scan_blob(name, key.as_bytes());
    }
    let report = scanner.finish();
    assert_eq!(report.files_scanned, 2);
    let skipped: Vec<_> = report
        .skipped
        .iter()
        .map(|s| (s.path.as_str(), &s.reason))
        .collect();
    let files = SkipReason::OverBudget {
        limit: BudgetLimit::Files,
    };
    assert_eq!(skipped, [("c", &files), ("d", &files)]);

    let by_bytes = Budget {
        max_bytes: 30,
        ..Budget::unlimited()
    };
    let mut scanner = Scanner::new(Limits::default(), by_bytes);
    scanner.scan_blob("a", key.as_bytes()); // 20 bytes
    scanner.scan_blob("b", key.as_bytes()); // would make 40
    let report = scanner.finish();
    assert_eq!(
        report.skipped[0].reason,
        SkipReason::OverBudget {
            limit: BudgetLimit::Bytes
        }
    );

    let past = Budget {
        deadline: Instant::now() - Duration::from_millis(1),
        ..Budget::unlimited()
    };
    let mut scanner = Scanner::new(Limits::default(), past);
    scanner.scan_added("late.txt", None, key.as_bytes());
    let report = scanner.finish();
    assert_eq!(report.files_scanned, 0);
    assert_eq!(
        report.skipped[0].reason,
        SkipReason::OverBudget {
            limit: BudgetLimit::Time
        }
    );
    assert!(
        report.skipped[0]
            .to_string()
            .contains("budget spent (time)")
    );
}

#[test]
fn the_secret_appears_in_no_debug_display_or_json_output() {
    let key = format!("ASIA{}", rand(91, UPPER32, 16));
    let secret = rand(92, BASE64, 40);
    let token = format!("ghp_{}", rand(93, ALNUM, 36));
    let password = rand(94, ALNUM, 12);
    let text = format!(
        "aws_access_key_id={key}\naws_secret_access_key={secret}\nGH={token}\nDATABASE_URL=postgres://u:{password}@db/x\n"
    );
    let mut scanner = Scanner::new(Limits::default(), Budget::unlimited());
    scanner.set_commit(Some("0123abcd".into()));
    scanner.scan_blob("leak.env", text.as_bytes());
    let report = scanner.finish();
    assert_eq!(report.findings.len(), 4, "{:?}", report.findings);
    let mut outputs = vec![
        format!("{report:?}"),
        format!("{report:#?}"),
        serde_json::to_string(&report).unwrap(),
    ];
    for f in &report.findings {
        outputs.push(f.to_string());
        outputs.push(signalbox::scan::local::finding_line(f));
        outputs.push(signalbox::scan::local::finding_json(f));
    }
    for planted in [&key, &secret, &token, &password] {
        // Not the whole secret, and nothing past its first 4 characters.
        let tail = &planted[4..];
        for out in &outputs {
            assert!(!out.contains(tail), "{out} reveals a planted secret");
        }
    }
    let f = &report.findings[0];
    assert_eq!(f.redacted, format!("{}…", &key[..4]));
    assert_eq!(
        f.to_string(),
        format!("leak.env:1: aws-access-key-id: {}…", &key[..4])
    );
    // A 12-character password shows 3 characters.
    assert_eq!(report.findings[3].redacted.chars().count(), 4);
}

#[test]
fn the_fingerprint_is_stable_and_keyed_by_rule() {
    let key = format!("AKIA{}", rand(95, UPPER32, 16));
    let a = scan_blob("a", key.as_bytes());
    let b = scan_blob("b", format!("x = {key}").as_bytes());
    assert_eq!(a.findings[0].fingerprint, b.findings[0].fingerprint);
    assert_eq!(a.findings[0].fingerprint.len(), 16);
    let other = scan_blob("a", format!("AKIA{}", rand(96, UPPER32, 16)).as_bytes());
    assert_ne!(a.findings[0].fingerprint, other.findings[0].fingerprint);
}

#[test]
fn a_specific_rule_wins_over_the_generic_assignment() {
    let text = format!("token = \"ghp_{}\"", rand(97, ALNUM, 36));
    let report = scan_blob("x", text.as_bytes());
    assert_eq!(rules_of(&report), BTreeSet::from(["github-token"]));
    assert_eq!(report.findings.len(), 1);
    let text = format!(
        "auth_token: {JWT_HEADER}.{JWT_PAYLOAD}.{}",
        rand(105, BASE64URL, 43)
    );
    let report = scan_blob("x", text.as_bytes());
    assert_eq!(rules_of(&report), BTreeSet::from(["jwt"]));
    assert_eq!(report.findings.len(), 1);
    // Many overlapping matches in one file: each is decided once.
    let many: String = (0..2000)
        .map(|i| format!("token = \"ghp_{}\"\n", rand(200 + i, ALNUM, 36)))
        .collect();
    let report = scan_blob("many", many.as_bytes());
    assert_eq!(report.findings.len(), 2000);
    assert_eq!(rules_of(&report), BTreeSet::from(["github-token"]));
}

#[test]
fn a_private_key_is_found_when_its_lines_are_added() {
    let key = private_key("OPENSSH PRIVATE KEY", 98);
    let old = "# deploy\n";
    let new = format!("# deploy\n{key}");
    let report = scan_added("deploy/id_ed25519", Some(old.as_bytes()), new.as_bytes());
    let found: Vec<_> = report.findings.iter().map(|f| (f.rule, f.line)).collect();
    assert_eq!(found, [("private-key", 3)]);
}

/// (rule, line, column) of each finding.
fn places(report: &ScanReport) -> Vec<(&'static str, u32, u32)> {
    report
        .findings
        .iter()
        .map(|f| (f.rule, f.line, f.column))
        .collect()
}

/// Line and column (in characters, from 1) where `value` begins in `text`.
fn place_of(text: &str, value: &str) -> (u32, u32) {
    let at = text.find(value).expect("value in text");
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = text[..at].matches('\n').count() + 1;
    let column = text[line_start..at].chars().count() + 1;
    (line as u32, column as u32)
}

/// The generic rule's regex runs only where one of its names starts (or at
/// the `<` before one): every spelling of a name, with its keyword at the
/// start of the match, inside it (`api_key`, `AccessKey`) or one character
/// in (`<password>`), is still found, in a new file, in a change, with LF or
/// CRLF line endings.
#[test]
fn a_generic_secret_is_found_wherever_its_keyword_sits_in_the_match() {
    let values: Vec<String> = (0..11).map(|i| rand(300 + i, ALNUM, 20)).collect();
    let lines = [
        format!("password = \"{}\"", values[0]),
        format!("  API_KEY: {}", values[1]),
        format!("AccessKey => '{}'", values[2]),
        format!("private-key={}", values[3]),
        format!("config.authToken: {}", values[4]),
        format!("<password>{}</password>", values[5]),
        format!("  <Credentials>{}</Credentials>", values[6]),
        format!("DB_PASSWD:={}", values[7]),
        format!("creds: \"{}\"", values[8]),
        format!("x.auth-key = {}", values[9]),
        format!("apikey\t=\t{}", values[10]),
    ];
    let text = lines.join("\n");
    let expected: Vec<(&str, u32, u32)> = values
        .iter()
        .map(|v| {
            let (line, column) = place_of(&text, v);
            ("generic-secret", line, column)
        })
        .collect();
    assert_eq!(places(&scan_blob("app.cfg", text.as_bytes())), expected);
    let crlf = lines.join("\r\n") + "\r\n";
    assert_eq!(places(&scan_blob("app.cfg", crlf.as_bytes())), expected);
    let report = scan_added(
        "app.cfg",
        Some(b"password = \"unchanged\"\n"),
        text.as_bytes(),
    );
    assert_eq!(places(&report), expected);
}

#[test]
fn a_secret_on_the_first_or_last_line_of_a_file_is_found() {
    let (a, b) = (rand(320, ALNUM, 20), rand(321, ALNUM, 20));
    let first = format!("password={a}");
    let last = format!("token: {b}");
    for text in [
        format!("{first}\nmiddle\n{last}"),
        format!("{first}\nmiddle\n{last}\n"),
        format!("{first}\nmiddle\n{last}\n\n"),
        format!("{first}\r\nmiddle\r\n{last}\r\n"),
    ] {
        let expected = [("generic-secret", 1, 10), ("generic-secret", 3, 8)];
        assert_eq!(
            places(&scan_blob("f", text.as_bytes())),
            expected,
            "{text:?}"
        );
        assert_eq!(
            places(&scan_added("f", None, text.as_bytes())),
            expected,
            "{text:?}"
        );
    }
}

/// Two assignments on one line are two findings; a name inside a value
/// already found (`password=token…`) starts no second one.
#[test]
fn two_assignments_on_a_line_are_two_findings_and_a_name_inside_a_value_is_none() {
    let (a, b) = (rand(330, ALNUM, 20), rand(331, ALNUM, 20));
    let text = format!("password={a} secret_token={b}\npassword=token{b}x");
    assert_eq!(
        places(&scan_blob("f", text.as_bytes())),
        [
            ("generic-secret", 1, 10),
            ("generic-secret", 1, 44),
            ("generic-secret", 2, 10),
        ]
    );
}

/// `(?i)` folds U+017F (long s) to `s` and U+212A (Kelvin sign) to `k`, as
/// the scanner always did; the keyword automaton folds ASCII only, so such a
/// text is searched whole.
#[test]
fn a_name_spelled_with_a_unicode_case_fold_is_found_as_before() {
    let (a, b) = (rand(340, ALNUM, 20), rand(341, ALNUM, 20));
    let text = format!("token_name\npa\u{17F}sword = {a}\napi_\u{212A}ey: {b}\n");
    let (line_a, column_a) = place_of(&text, &a);
    let (line_b, column_b) = place_of(&text, &b);
    assert_eq!(
        places(&scan_blob("f", text.as_bytes())),
        [
            ("generic-secret", line_a, column_a),
            ("generic-secret", line_b, column_b),
        ]
    );
}

/// Throughput over a generated diff of code-like lines (the bench
/// table gets its figure from a release build: `SCAN_MB=50 cargo test
/// --release -p signalbox --test scan -- --ignored --nocapture`).
#[test]
#[ignore = "a measurement, not a check"]
fn scan_throughput() {
    let megabytes: usize = std::env::var("SCAN_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut text = String::new();
    let mut i = 0u64;
    while text.len() < megabytes * 1024 * 1024 {
        i += 1;
        text.push_str(&format!(
            "    let value_{i} = compute(\"{}\", {i}, &config.password_field); // {} — größe\n",
            rand(i, ALNUM, 24),
            rand(i + 1, "abcdefghij klmnop", 40)
        ));
        if i.is_multiple_of(5000) {
            text.push_str(&format!(
                "aws_access_key_id = AKIA{}\n",
                rand(i, UPPER32, 16)
            ));
        }
    }
    let start = Instant::now();
    let limits = Limits {
        max_file_bytes: u64::MAX,
    };
    let mut scanner = Scanner::new(limits, Budget::unlimited());
    scanner.scan_added("big.rs", None, text.as_bytes());
    let report = scanner.finish();
    let seconds = start.elapsed().as_secs_f64();
    let mb = text.len() as f64 / (1024.0 * 1024.0);
    println!(
        "new file: scanned {mb:.1} MB in {seconds:.2} s: {:.1} MB/s, {} findings",
        mb / seconds,
        report.findings.len()
    );
    // A change: the old version lacks every 100th line.
    let old: String = text
        .split_inclusive('\n')
        .enumerate()
        .filter(|(i, _)| !i.is_multiple_of(100))
        .map(|(_, l)| l)
        .collect();
    let start = Instant::now();
    let mut scanner = Scanner::new(limits, Budget::unlimited());
    scanner.scan_added("big.rs", Some(old.as_bytes()), text.as_bytes());
    let report = scanner.finish();
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "diff of two versions: {mb:.1} MB in {seconds:.2} s: {:.1} MB/s, {} findings",
        mb / seconds,
        report.findings.len()
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    // Pieces of every rule's syntax, glued at random with random bytes, odd
    // UTF-16 lengths and lone surrogates: the scanner reports or skips, never panics.
    let pieces: Vec<Vec<u8>> = [
        "AKIA",
        "aws_secret=",
        "-----BEGIN RSA PRIVATE KEY-----\n",
        "ghp_",
        "glpat-",
        "xoxb-1",
        "hooks.slack.com/services/T",
        "sk_live_",
        "eyJ",
        ".",
        "password=\"",
        "postgres://u:",
        "@",
        "\r\n",
        "\n",
        "é",
        "signalbox:allow",
        "'",
        "\"",
        "=",
        "token=",
        " ",
    ]
    .iter()
    .map(|p| p.as_bytes().to_vec())
    .chain([
        vec![0xff, 0xfe],
        vec![0xfe, 0xff],
        vec![0xd8, 0x00],
        vec![0xc3],
        vec![0],
    ])
    .collect();
    // Most inputs are text (so the rules run); one in four may hold bytes
    // that make it binary or not UTF-8.
    let text_pieces = pieces.len() - 5;
    for seed in 0..1500u64 {
        let pool = if seed.is_multiple_of(4) {
            &pieces[..]
        } else {
            &pieces[..text_pieces]
        };
        let mut bytes = Vec::new();
        let choices = rand(seed, "0123456789abcdefghijklmnopqrstuvwxyz", 40);
        for (i, c) in choices.chars().enumerate() {
            let n = c as usize;
            if n.is_multiple_of(3) {
                let alphabet = format!("{BASE64}{}", "é日\u{1F511}".repeat(10));
                bytes.extend_from_slice(rand(seed * 41 + i as u64, &alphabet, n % 50).as_bytes());
            } else {
                bytes.extend_from_slice(&pool[n % pool.len()]);
            }
        }
        let half = bytes.len() / 2;
        let _ = scan_blob("fuzz", &bytes);
        let _ = scan_added("fuzz", Some(&bytes[..half]), &bytes);
        let _ = scan_added("fuzz", Some(&bytes), &bytes[half..]);
    }
}

#[test]
fn a_private_key_replaced_in_place_is_found() {
    // Same header and first body line, the rest of the key changed: the diff
    // adds only lines that match no rule on their own.
    let header = "-----BEGIN RSA PRIVATE KEY-----";
    let first = rand(99, BASE64, 64);
    let old = format!(
        "{header}\n{first}\n{}\n{}\n-----END RSA PRIVATE KEY-----\n",
        rand(100, BASE64, 64),
        rand(101, BASE64, 64)
    );
    let new = format!(
        "{header}\n{first}\n{}\n{}\n-----END RSA PRIVATE KEY-----\n",
        rand(102, BASE64, 64),
        rand(103, BASE64, 64)
    );
    let report = scan_added("deploy/id_rsa", Some(old.as_bytes()), new.as_bytes());
    let found: Vec<_> = report.findings.iter().map(|f| (f.rule, f.line)).collect();
    assert_eq!(found, [("private-key", 2)]);
}

#[test]
fn added_lines_far_apart_do_not_join_into_a_key() {
    // A key header added at line 5 and an unrelated base64 line at line 50.
    let body = rand(104, BASE64, 64);
    let mut scanner = Scanner::new(Limits::default(), Budget::unlimited());
    scanner.scan_added_lines(
        "notes.md",
        [(5, "-----BEGIN RSA PRIVATE KEY-----"), (50, body.as_str())],
        100,
    );
    let report = scanner.finish();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
}

#[test]
fn a_match_ending_in_a_multibyte_character_does_not_panic() {
    let report = scan_blob("x.env", "password=Kq7mZp2Xvé\n".as_bytes());
    assert_eq!(rules_of(&report), BTreeSet::from(["generic-secret"]));
}

#[test]
fn fingerprints_are_keyed_per_deployment_and_no_unkeyed_hash() {
    use signalbox::scan::FingerprintKey;
    // A human-chosen password: an unkeyed hash of it falls to a dictionary.
    let text = "db_password = Summer2024!\n";
    let scan = |key: &[u8]| {
        let mut scanner = Scanner::new(Limits::default(), Budget::unlimited())
            .with_fingerprint_key(FingerprintKey::new(key.to_vec()));
        scanner.scan_blob("app.env", text.as_bytes());
        scanner.finish()
    };
    let a = scan(b"deployment A's key");
    let b = scan(b"deployment B's key");
    assert_eq!(rules_of(&a), BTreeSet::from(["generic-secret"]));
    assert_eq!(
        a.findings[0].fingerprint,
        scan(b"deployment A's key").findings[0].fingerprint
    );
    assert_ne!(a.findings[0].fingerprint, b.findings[0].fingerprint);
    // What a dictionary attack would compute without the key.
    use sha2::Digest;
    let unkeyed = hex::encode(sha2::Sha256::digest(b"generic-secret\0Summer2024!"));
    assert_ne!(a.findings[0].fingerprint, unkeyed[..16]);
    assert!(
        !format!("{:?}", FingerprintKey::new(b"deployment A's key".to_vec()))
            .contains("deployment")
    );
}
