//! The registry the node's executor dispatches effects through.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use drover_ir::catalog::{self, BUILTIN_EFFECTS};
use drover_ir::Value;

use crate::config::{defaults, Config};
use crate::consul::ConsulIntegration;
use crate::http::HttpIntegration;
use crate::logstash::{LogstashIntegration, Shipper};
use crate::memcache::{EmbeddedCache, MemcacheError, MemcacheIntegration, ServerCache};
use crate::pagerduty::PagerDutyIntegration;
use crate::rabbitmq::{EmbeddedBroker, RabbitError, RabbitmqIntegration, ServerBroker};
use crate::slack::SlackIntegration;
use crate::statsd::{Aggregates, Aggregator, Shaping, StatsdError, StatsdIntegration, UdpSink};
use crate::{DynIntegration, EffectCall, EffectFailure, Health, Integration, ResourceDecl};

/// Why a registry could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// An integration's operations differ from the catalog's for its namespace.
    #[error("integration {namespace} has operations {actual:?}, the catalog has {expected:?}")]
    OperationsMismatch {
        /// The namespace.
        namespace: &'static str,
        /// What the integration declares.
        actual: Vec<&'static str>,
        /// What the catalog lists.
        expected: Vec<&'static str>,
    },
    /// Two integrations for one namespace.
    #[error("namespace {0} is registered twice")]
    Duplicate(&'static str),
    /// The memcache integration could not be set up.
    #[error(transparent)]
    Memcache(#[from] MemcacheError),
    /// The statsd integration could not be set up.
    #[error(transparent)]
    Statsd(#[from] StatsdError),
    /// The rabbitmq integration could not be set up.
    #[error(transparent)]
    Rabbitmq(#[from] RabbitError),
    /// An HTTP-based integration (Slack, PagerDuty, Consul, http) could
    /// not be set up.
    #[error("{namespace}: {reason}")]
    Web {
        /// The namespace.
        namespace: &'static str,
        /// Why.
        reason: String,
    },
}

/// The integrations of a node, by namespace.
#[derive(Default)]
pub struct Integrations {
    by_namespace: BTreeMap<&'static str, Arc<dyn DynIntegration>>,
    embedded: BTreeSet<&'static str>,
    aggregator: Option<Arc<StatsdIntegration<Aggregator>>>,
    log_shipper: Option<Shipper>,
}

impl Integrations {
    /// An empty registry.
    pub fn new() -> Self {
        Integrations::default()
    }

    /// Builds every integration from `config`: real ones for the sections
    /// present, embedded fallbacks for the rest. Must run inside a tokio
    /// runtime (the statsd sender starts a flusher task, the Logstash
    /// shipper its sending task). Does not connect to memcached or RabbitMQ:
    /// that happens on first use, so a node starts while they are down.
    pub async fn from_config(config: &Config) -> Result<Integrations, BuildError> {
        let mut reg = Integrations::new();
        match &config.memcache {
            Some(c) => reg.register(MemcacheIntegration::new(
                ServerCache::new(c)?,
                c.max_value_bytes,
            ))?,
            None => {
                reg.register(MemcacheIntegration::new(
                    EmbeddedCache::default(),
                    defaults::MAX_VALUE_BYTES,
                ))?;
                reg.embedded.insert("memcache");
            }
        }
        match &config.statsd {
            Some(c) => reg.register(StatsdIntegration::new(
                UdpSink::connect(c).await?,
                Shaping::from(c),
            ))?,
            None => {
                let agg = Arc::new(StatsdIntegration::new(
                    Aggregator::default(),
                    Shaping::default(),
                ));
                reg.register_shared(agg.clone())?;
                reg.aggregator = Some(agg);
                reg.embedded.insert("statsd");
            }
        }
        match &config.rabbitmq {
            Some(c) => reg.register(RabbitmqIntegration::new(ServerBroker::new(c)?))?,
            None => {
                reg.register(RabbitmqIntegration::new(EmbeddedBroker::default()))?;
                reg.embedded.insert("rabbitmq");
            }
        }
        let shipper = match &config.logstash {
            Some(c) => Shipper::start(c),
            None => {
                reg.embedded.insert("logstash");
                Shipper::embedded(crate::logstash::config::defaults::BUFFER)
            }
        };
        reg.register(LogstashIntegration::new(shipper.clone()))?;
        reg.log_shipper = Some(shipper);
        reg.register_web(config)?;
        Ok(reg)
    }

    /// Slack, PagerDuty, Consul and `http`: the HTTP-based integrations.
    fn register_web(&mut self, config: &Config) -> Result<(), BuildError> {
        let web = |namespace| move |reason| BuildError::Web { namespace, reason };
        match &config.slack {
            Some(c) => self.register(SlackIntegration::new(c).map_err(web("slack"))?)?,
            None => {
                self.register(SlackIntegration::embedded())?;
                self.embedded.insert("slack");
            }
        }
        match &config.pagerduty {
            Some(c) => self.register(PagerDutyIntegration::new(c).map_err(web("pagerduty"))?)?,
            None => {
                self.register(PagerDutyIntegration::embedded())?;
                self.embedded.insert("pagerduty");
            }
        }
        match &config.consul {
            Some(c) => self.register(ConsulIntegration::new(c).map_err(web("consul"))?)?,
            None => {
                self.register(ConsulIntegration::embedded())?;
                self.embedded.insert("consul");
            }
        }
        match &config.http {
            Some(c) => self.register(HttpIntegration::new(c).map_err(web("http"))?)?,
            None => {
                self.register(HttpIntegration::unconfigured())?;
                self.embedded.insert("http");
            }
        }
        Ok(())
    }

    /// Where the node ships its own structured log lines: the Logstash
    /// shipper `logstash.send` uses (the in-memory sink when embedded).
    pub fn log_shipper(&self) -> Option<&Shipper> {
        self.log_shipper.as_ref()
    }

    /// Adds an integration, checking its operations against the catalog.
    pub fn register(&mut self, integration: impl Integration) -> Result<(), BuildError> {
        self.register_shared(Arc::new(integration))
    }

    /// Adds a shared integration, checking its operations against the catalog.
    pub fn register_shared(
        &mut self,
        integration: Arc<dyn DynIntegration>,
    ) -> Result<(), BuildError> {
        let namespace = integration.namespace();
        let expected: Vec<&'static str> = BUILTIN_EFFECTS
            .iter()
            .filter(|e| e.namespace() == namespace)
            .map(|e| &e.name[namespace.len() + 1..])
            .collect();
        let actual = integration.operation_names().to_vec();
        if actual != expected {
            return Err(BuildError::OperationsMismatch {
                namespace,
                actual,
                expected,
            });
        }
        if self.by_namespace.contains_key(namespace) {
            return Err(BuildError::Duplicate(namespace));
        }
        self.by_namespace.insert(namespace, integration);
        Ok(())
    }

    /// The integration for `namespace`.
    pub fn get(&self, namespace: &str) -> Option<&Arc<dyn DynIntegration>> {
        self.by_namespace.get(namespace)
    }

    /// The namespaces served, sorted.
    pub fn namespaces(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.by_namespace.keys().copied()
    }

    /// Whether `namespace` runs on its embedded fallback.
    pub fn is_embedded(&self, namespace: &str) -> bool {
        self.embedded.contains(namespace)
    }

    /// What the embedded statsd aggregator holds, when statsd is embedded.
    pub fn embedded_metrics(&self) -> Option<Aggregates> {
        self.aggregator.as_ref().map(|a| a.sink().snapshot())
    }

    /// Performs one attempt of `effect` (`memcache.get`), with the catalog's
    /// arguments in order, under its idempotency key `effect_id`.
    pub async fn perform(
        &self,
        effect: &str,
        args: Vec<Value>,
        effect_id: &str,
        attempt: u32,
        deadline: Option<Instant>,
    ) -> Result<Value, EffectFailure> {
        self.perform_settled(effect, args, effect_id, attempt, deadline, false)
            .await
    }

    /// [`Integrations::perform`]; with `settle`, the caller promises to
    /// call [`Integrations::settled`] for this attempt (see
    /// [`Integration::settles`]).
    pub async fn perform_settled(
        &self,
        effect: &str,
        args: Vec<Value>,
        effect_id: &str,
        attempt: u32,
        deadline: Option<Instant>,
        settle: bool,
    ) -> Result<Value, EffectFailure> {
        let (integration, op) = self.resolve(effect, &args)?;
        let timed_out = || {
            EffectFailure::retryable("timeout", format!("{effect}: the effect's deadline passed"))
        };
        // An attempt whose deadline has passed is not started at all.
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(timed_out());
        }
        let call = EffectCall {
            op,
            args,
            effect_id,
            attempt,
            deadline,
            settle,
        };
        match deadline {
            Some(d) => tokio::time::timeout_at(d.into(), integration.perform_dyn(call))
                .await
                .unwrap_or_else(|_| {
                    Err(EffectFailure::retryable(
                        "timeout",
                        format!("{effect}: the effect's deadline passed"),
                    ))
                }),
            None => integration.perform_dyn(call).await,
        }
    }

    /// Whether attempts of `effect` wait to be settled (see
    /// [`Integration::settles`]).
    pub fn settles(&self, effect: &str) -> bool {
        let Some((ns, op)) = effect.split_once('.') else {
            return false;
        };
        self.get(ns).is_some_and(|i| i.settles_op(op))
    }

    /// The result of an attempt of `effect` made with `settle` is durable,
    /// or never will be (see [`Integration::settled`]).
    pub fn settled(&self, effect: &str, effect_id: &str, attempt: u32, durable: bool) {
        if let Some((ns, op)) = effect.split_once('.') {
            if let Some(i) = self.get(ns) {
                i.settled_dyn(op, effect_id, attempt, durable);
            }
        }
    }

    /// The one-line trace summary of a call to `effect`.
    pub fn summarize(
        &self,
        effect: &str,
        call: &EffectCall<'_>,
        result: &Result<Value, EffectFailure>,
    ) -> String {
        match self.get(catalog::namespace(effect)) {
            Some(i) => i.summary(call, result),
            None => format!("{effect} {}", crate::summary::result(result)),
        }
    }

    /// Every integration's health, by namespace.
    pub async fn health(&self) -> Vec<(&'static str, Health)> {
        let mut out = Vec::with_capacity(self.by_namespace.len());
        for (ns, i) in &self.by_namespace {
            out.push((*ns, i.health_dyn().await));
        }
        out
    }

    /// Every integration's resources.
    pub fn resources(&self) -> Vec<ResourceDecl> {
        self.by_namespace
            .values()
            .flat_map(|i| i.resource_decls())
            .collect()
    }

    fn resolve<'e>(
        &self,
        effect: &'e str,
        args: &[Value],
    ) -> Result<(&Arc<dyn DynIntegration>, &'e str), EffectFailure> {
        let Some((namespace, op)) = effect.split_once('.') else {
            return Err(EffectFailure::permanent(
                "unknown_effect",
                format!("{effect:?} is not namespace.operation"),
            ));
        };
        let Some(integration) = self.by_namespace.get(namespace) else {
            return Err(EffectFailure::permanent(
                "unknown_effect",
                format!("no integration serves {namespace} on this node"),
            ));
        };
        let Some(sig) =
            catalog::builtin_effect(effect).filter(|_| integration.operation_names().contains(&op))
        else {
            return Err(EffectFailure::permanent(
                "unknown_effect",
                format!("{namespace} has no operation {op:?}"),
            ));
        };
        crate::args::expect_arity(effect, sig.params, args)?;
        Ok((integration, op))
    }
}
