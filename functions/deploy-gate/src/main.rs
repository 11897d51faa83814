//! The deploy-gate Lambda function: a CodeDeploy lifecycle-hook validator
//! (docs/deploy-gate.md).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    signalbox::lambda::main(signalbox::route::Function::DeployGate).await
}
