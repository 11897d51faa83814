//! Both HTTPS clients, the SDK clients' ([`Https`]) and reqwest's
//! ([`signalbox::aws::http_builder`]), complete a real TLS handshake with
//! *ring*, the one crypto provider the functions link: a Python `ssl` server
//! on loopback, with a certificate made for this run (tls_server.py) that
//! the clients trust through `SSL_CERT_FILE`, as rustls-native-certs reads
//! it. Its own test binary, so no other test has loaded the roots before
//! the variable is set.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use signalbox::aws::{Https, sdk_config_with};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the TLS server (the test command's .venv has `cryptography`,
/// pinned in scripts/requirements.txt); fails, never skips, without it.
fn tls_server(cert: &std::path::Path) -> (Server, u16) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".venv/bin/python");
    let mut child = Command::new(&python)
        .arg(root.join("shared/tests/tls_server.py"))
        .arg(cert)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} (./scripts/test makes .venv): {e}",
                python.display()
            )
        });
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("the server's stdout"))
        .read_line(&mut line)
        .expect("the server's port");
    let port = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("the TLS server did not start: {line:?}"));
    (Server(child), port)
}

#[tokio::test]
async fn the_sdk_and_reqwest_clients_complete_a_tls_handshake_on_ring() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let (_server, port) = tls_server(&cert);
    // SAFETY: set before any client of this process reads the roots; this
    // binary's only test.
    unsafe { std::env::set_var("SSL_CERT_FILE", &cert) };
    let url = format!("https://127.0.0.1:{port}");

    // An SDK call through the shared connector: SSM's GetParameter.
    let sdk = sdk_config_with(Some(&url), Https::new()).await;
    let ssm = aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::config::Builder::from(&sdk)
            .region(aws_sdk_ssm::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_ssm::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .build(),
    );
    let answer = ssm
        .get_parameter()
        .name("/tls")
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "SDK call over TLS: {:?}",
                aws_smithy_types::error::display::DisplayErrorContext(&e)
            )
        });
    assert_eq!(answer.parameter().and_then(|p| p.value()), Some("over tls"));

    // reqwest, as Slack, the git hosts and the gates' probes use it.
    let client = signalbox::aws::http_builder()
        .build()
        .expect("a reqwest client with ring installed");
    let response = client
        .get(format!("{url}/"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("reqwest over TLS: {e:?}"));
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("over tls"));
}
