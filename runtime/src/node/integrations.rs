//! The node's [`EffectHandler`] over [`drover_integrations::Integrations`]:
//! every namespace the registry serves (real servers where configured,
//! their embedded fallbacks where not) goes there; `sys.*` and anything the
//! registry does not serve falls back to [`EmbeddedEffects`].

use std::path::Path;
use std::sync::Arc;

use drover_integrations::{Config, ConfigError, EffectFailure, Integrations};
use drover_interpreter::EffectError;
use drover_ir::catalog;
use drover_ir::Value;
use futures::future::BoxFuture;

use super::executor::{EffectCall, EffectHandler, EmbeddedEffects};

/// Built-in effects through the integrations registry, with the in-process
/// fallbacks for the rest.
pub struct IntegrationEffects {
    integrations: Arc<Integrations>,
    fallback: EmbeddedEffects,
    config: Config,
}

/// Why the node's integrations could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The config file or an environment variable is wrong.
    #[error("{}", .0.render())]
    Config(#[from] ConfigError),
    /// An integration could not be built from a valid config.
    #[error("integrations: {0}")]
    Build(#[from] drover_integrations::BuildError),
}

impl IntegrationEffects {
    /// A handler over `integrations`.
    pub fn new(integrations: Integrations) -> Self {
        Self::with_config(integrations, Config::default())
    }

    /// A handler over `integrations`, built from `config`.
    pub fn with_config(integrations: Integrations, config: Config) -> Self {
        IntegrationEffects {
            integrations: Arc::new(integrations),
            fallback: EmbeddedEffects::new(),
            config,
        }
    }

    /// Reads the config file at `path` (if any) and the `DROVER_*`
    /// environment over it, and builds every integration: real ones for the
    /// sections present, embedded fallbacks for the rest. Must run inside a
    /// tokio runtime.
    pub async fn from_config_file(path: Option<&Path>) -> Result<Self, SetupError> {
        let config = Config::load(path)?;
        let integrations = Integrations::from_config(&config).await?;
        Ok(Self::with_config(integrations, config))
    }

    /// The registry, for health checks and resources.
    pub fn integrations(&self) -> &Arc<Integrations> {
        &self.integrations
    }

    /// The `[rabbitmq]` config, when RabbitMQ is real (for queue triggers).
    pub fn rabbitmq_config(&self) -> Option<&drover_integrations::RabbitmqConfig> {
        self.config.rabbitmq.as_ref()
    }

    /// Which namespaces run on embedded fallbacks.
    pub fn embedded_namespaces(&self) -> Vec<&'static str> {
        self.integrations
            .namespaces()
            .filter(|ns| self.integrations.is_embedded(ns))
            .collect()
    }

    /// A pool worker for each integration backed by a real service, for
    /// the `pools` subtree of the node's supervision tree
    /// ([`super::NodeServices::pool`]). Each start of a worker, the first
    /// and every restart, rebuilds its integration's pool
    /// ([`drover_integrations::Integration::reset`]); its check asks the
    /// integration's health every 5 s, and three `Down` answers in a row
    /// fail the worker, so the supervisor restarts it and the pool is
    /// rebuilt.
    pub fn pool_workers(self: &Arc<Self>) -> Vec<super::PoolHealth> {
        let embedded = self.embedded_namespaces();
        self.integrations
            .namespaces()
            .filter(|ns| !embedded.contains(ns))
            .map(|ns| self.pool_worker(ns))
            .collect()
    }

    fn pool_worker(self: &Arc<Self>, namespace: &'static str) -> super::PoolHealth {
        let (rebuild, check) = (self.clone(), self.clone());
        super::PoolHealth::new(
            namespace,
            move || {
                let effects = rebuild.clone();
                Box::pin(async move {
                    if let Some(integration) = effects.integrations.get(namespace) {
                        integration.reset_dyn().await;
                    }
                    Ok(())
                })
            },
            move || {
                let effects = check.clone();
                Box::pin(async move {
                    let Some(integration) = effects.integrations.get(namespace) else {
                        return Ok(());
                    };
                    let health = integration.health_dyn().await;
                    match health.status {
                        drover_integrations::HealthStatus::Down => Err(health.detail),
                        _ => Ok(()),
                    }
                })
            },
        )
    }

    /// Whether `effect` is performed by the registry rather than the fallback.
    fn served(&self, effect: &str) -> bool {
        let ns = catalog::namespace(effect);
        ns != "sys" && self.integrations.get(ns).is_some()
    }
}

fn to_effect_error(f: EffectFailure) -> EffectError {
    EffectError {
        kind: f.kind,
        message: f.message,
        retryable: f.retryable,
    }
}

impl EffectHandler for IntegrationEffects {
    fn perform(&self, call: EffectCall) -> BoxFuture<'static, Result<Value, EffectError>> {
        if !self.served(&call.effect) {
            return self.fallback.perform(call);
        }
        let integrations = self.integrations.clone();
        let settle = self.integrations.settles(&call.effect);
        Box::pin(async move {
            integrations
                .perform_settled(
                    &call.effect,
                    call.args,
                    &call.key,
                    call.attempt,
                    None,
                    settle,
                )
                .await
                .map_err(to_effect_error)
        })
    }

    fn settles(&self, effect: &str) -> bool {
        self.served(effect) && self.integrations.settles(effect)
    }

    fn settled(&self, effect: &str, key: &str, attempt: u32, durable: bool) {
        if self.served(effect) {
            self.integrations.settled(effect, key, attempt, durable);
        }
    }

    fn summarize(
        &self,
        effect: &str,
        args: &[Value],
        key: &str,
        result: Option<Result<&Value, &EffectError>>,
    ) -> Option<String> {
        if !self.served(effect) {
            return None;
        }
        let (_, op) = effect.split_once('.')?;
        let call = drover_integrations::EffectCall::new(op, args.to_vec(), key);
        let result = match result {
            Some(Ok(v)) => Ok(v.clone()),
            Some(Err(e)) => Err(EffectFailure {
                kind: e.kind.clone(),
                message: e.message.clone(),
                retryable: e.retryable,
            }),
            // Still waiting: summarise the request alone.
            None => Err(EffectFailure::retryable("pending", "no result yet")),
        };
        Some(self.integrations.summarize(effect, &call, &result))
    }
}
