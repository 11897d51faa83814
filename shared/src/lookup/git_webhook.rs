//! git-webhook's read: a pipeline's declared variables and connection
//! source actions (CodePipeline `GetPipeline`).

use super::LookupError;
use crate::aws::Aws;
use crate::flows::git_webhook::{CONNECTION_PROVIDER, ConnectionAction, Lookup, PipelineFacts};

impl Lookup for Aws {
    async fn pipeline(&self, name: &str) -> Result<PipelineFacts, LookupError> {
        let output = self
            .codepipeline
            .get_pipeline()
            .name(name)
            .send()
            .await
            .map_err(|e| LookupError::sdk("CodePipeline GetPipeline", &e))?;
        let Some(pipeline) = output.pipeline() else {
            return Ok(PipelineFacts::default());
        };
        Ok(PipelineFacts {
            variables: pipeline
                .variables()
                .iter()
                .map(|v| v.name().to_owned())
                .collect(),
            connection_actions: pipeline
                .stages()
                .iter()
                .flat_map(|s| s.actions())
                .filter(|a| {
                    a.action_type_id().is_some_and(|t| {
                        t.category().as_str() == "Source" && t.provider() == CONNECTION_PROVIDER
                    })
                })
                .map(|a| ConnectionAction {
                    name: a.name().to_owned(),
                    repository: a
                        .configuration()
                        .and_then(|c| c.get("FullRepositoryId"))
                        .cloned(),
                })
                .collect(),
        })
    }
}
