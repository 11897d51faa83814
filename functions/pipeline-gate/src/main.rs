//! The pipeline-gate Lambda function: CodePipeline's Invoke action runs the gate's checks (docs/pipeline-gate.md).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    signalbox::lambda::main(signalbox::route::Function::PipelineGate).await
}
