//! The git-status Lambda function: see DESIGN.md's event → action contract.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    signalbox::lambda::main(signalbox::route::Function::GitStatus).await
}
