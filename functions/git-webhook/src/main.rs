//! The git-webhook Lambda function: git hosts' webhooks in, pipelines and
//! builds started (docs/git-webhook.md).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    signalbox::webhook::main().await
}
