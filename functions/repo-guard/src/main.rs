//! The repo-guard Lambda function: see DESIGN.md's event → action contract.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    signalbox::lambda::main(signalbox::route::Function::RepoGuard).await
}
