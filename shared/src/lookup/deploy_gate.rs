//! deploy-gate's reads: the deployment and its AppSpec (CodeDeploy), the
//! hook being run (the target's lifecycle event in progress), and the
//! configuration parameter (SSM).

use aws_sdk_codedeploy::types::{LifecycleEvent, RevisionLocation};
use serde_json::Value;

use super::LookupError;
use crate::aws::Aws;
use crate::flows::deploy_gate::{Deployment, HookInvocation, LambdaTarget, Lookup};

/// The lifecycle events of Lambda and ECS deployments that run no hook: in
/// progress beside a hook, they are not it. Lambda: `Start`, `AllowTraffic`,
/// `End`; ECS: `Start`, `Install`, `AllowTestTraffic`, `AllowTraffic`, `End`
/// (the AppSpec 'hooks' reference's diagram labels the test-traffic event
/// "TestTraffic"; the event itself, as a deployment target lists it, is
/// `AllowTestTraffic`: "What happens during an Amazon ECS deployment",
/// <https://docs.aws.amazon.com/codedeploy/latest/userguide/deployment-steps-ecs.html>,
/// and <https://docs.aws.amazon.com/codedeploy/latest/userguide/reference-appspec-file-structure-hooks.html>;
/// the diagram's label is kept too: no hook has either name).
pub const NOT_HOOKS: [&str; 6] = [
    "Start",
    "Install",
    "AllowTestTraffic",
    "TestTraffic",
    "AllowTraffic",
    "End",
];

impl Lookup for Aws {
    async fn deployment(&self, invocation: &HookInvocation) -> Result<Deployment, LookupError> {
        let id = &invocation.deployment_id;
        let output = self
            .codedeploy
            .get_deployment()
            .deployment_id(id)
            .send()
            .await
            .map_err(|e| LookupError::sdk("CodeDeploy GetDeployment", &e))?;
        let info = output
            .deployment_info()
            .ok_or_else(|| LookupError::Failed {
                message: format!("CodeDeploy GetDeployment: no deploymentInfo for {id}"),
                transient: false,
            })?;
        let lambda = info
            .revision()
            .and_then(appspec)
            .and_then(|spec| lambda_target(&spec));
        // The hook is not in the payload: it is the lifecycle event in
        // progress on the deployment's target. A failed read is an error like
        // any other (transient: Lambda retries; permanent: Failed); None
        // when nothing is in progress, and the gate then fails closed.
        let hook = self.hook_in_progress(id).await?;
        Ok(Deployment {
            deployment_id: id.clone(),
            application: info.application_name().unwrap_or_default().to_owned(),
            deployment_group: info.deployment_group_name().unwrap_or_default().to_owned(),
            compute_platform: info
                .compute_platform()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
            lambda,
            hook,
        })
    }

    async fn gate_config(&self, parameter: &str) -> Result<String, LookupError> {
        super::parameter_text(&self.ssm, parameter).await
    }
}

impl Aws {
    /// The hook whose lifecycle event is in progress on the deployment's
    /// target (`ListDeploymentTargets` + `BatchGetDeploymentTargets`).
    async fn hook_in_progress(&self, deployment_id: &str) -> Result<Option<String>, LookupError> {
        let ids = self
            .codedeploy
            .list_deployment_targets()
            .deployment_id(deployment_id)
            .send()
            .await
            .map_err(|e| LookupError::sdk("CodeDeploy ListDeploymentTargets", &e))?
            .target_ids
            .unwrap_or_default();
        if ids.is_empty() {
            return Ok(None);
        }
        let output = self
            .codedeploy
            .batch_get_deployment_targets()
            .deployment_id(deployment_id)
            .set_target_ids(Some(ids.into_iter().take(25).collect()))
            .send()
            .await
            .map_err(|e| LookupError::sdk("CodeDeploy BatchGetDeploymentTargets", &e))?;
        Ok(output.deployment_targets().iter().find_map(|t| {
            let events: &[LifecycleEvent] = if let Some(l) = t.lambda_target() {
                l.lifecycle_events()
            } else if let Some(e) = t.ecs_target() {
                e.lifecycle_events()
            } else {
                return None;
            };
            // Whatever its name: one the gate does not know is reported as
            // such (crate::flows::deploy_gate::checks_for), never skipped.
            events
                .iter()
                .find(|e| {
                    e.status().is_some_and(|s| s.as_str() == "InProgress")
                        && e.lifecycle_event_name()
                            .is_some_and(|n| !NOT_HOOKS.contains(&n))
                })
                .and_then(|e| e.lifecycle_event_name())
                .map(str::to_owned)
        }))
    }
}

/// The AppSpec of a deployment given inline (how SAM and the console start
/// Lambda deployments), as JSON; YAML is accepted too.
fn appspec(revision: &RevisionLocation) -> Option<Value> {
    #[allow(deprecated)]
    let text = revision
        .app_spec_content()
        .and_then(|c| c.content())
        .or_else(|| revision.string().and_then(|s| s.content()))?;
    parse_appspec(text)
}

/// Parses AppSpec text (JSON or YAML).
pub fn parse_appspec(text: &str) -> Option<Value> {
    serde_json::from_str(text)
        .ok()
        .or_else(|| serde_norway::from_str::<Value>(text).ok())
}

/// The Lambda function, alias and versions of an AppSpec:
/// `Resources[0].<name>.Properties.{Name, Alias, CurrentVersion, TargetVersion}`.
pub fn lambda_target(spec: &Value) -> Option<LambdaTarget> {
    let resources = spec.get("Resources")?.as_array()?;
    resources.iter().find_map(|resource| {
        let (_, body) = resource.as_object()?.iter().next()?;
        if body.get("Type")?.as_str()? != "AWS::Lambda::Function" {
            return None;
        }
        let properties = body.get("Properties")?;
        let text = |name: &str| match properties.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        Some(LambdaTarget {
            function: text("Name")?,
            alias: text("Alias").unwrap_or_default(),
            current_version: text("CurrentVersion").unwrap_or_default(),
            target_version: text("TargetVersion")?,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_yaml_appspec_gives_the_target_version() {
        let spec = parse_appspec(
            "version: 0.0\nResources:\n  - myFunction:\n      Type: AWS::Lambda::Function\n      Properties:\n        Name: my-function\n        Alias: live\n        CurrentVersion: 1\n        TargetVersion: 2\n",
        )
        .unwrap();
        let target = lambda_target(&spec).unwrap();
        assert_eq!(target.function, "my-function");
        assert_eq!(target.alias, "live");
        assert_eq!(target.current_version, "1");
        assert_eq!(target.target_version, "2");
    }
}
