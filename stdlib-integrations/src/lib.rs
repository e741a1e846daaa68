//! Drover's integrations: how a node performs the built-in effects.
//!
//! Workflows never open connections. Every integration is a namespace of
//! effect primitives from [`drover_ir::catalog`] (`memcache.get`,
//! `statsd.count`, ...) that the node performs through one handler trait,
//! [`Integration`]. [`Integrations`] is the registry the node's executor
//! dispatches to by effect name; [`Integrations::from_config`] builds each
//! integration against a real server when its config section is present and
//! an embedded fallback when it is not, so local runs need no servers.
//!
//! Architecture invariants:
//! - A failure a workflow can handle is an [`EffectFailure`] value (it becomes
//!   `Err({kind, message})` in the run); bad config, bad arguments and bad
//!   server replies never panic.
//! - Secrets are held in [`Secret`], whose `Debug`, `Display` and `Serialize`
//!   redact; summaries for `drover trace` never include them.
//! - Every queue, value and wait has a limit (pool size, packet size, value
//!   size, per-operation timeout).

mod args;
pub mod config;
pub mod consul;
pub mod http;
mod integration;
pub mod logstash;
pub mod memcache;
pub mod pagerduty;
pub mod rabbitmq;
mod registry;
mod secret;
pub mod slack;
pub mod statsd;
mod summary;
pub mod web;

pub use config::{
    Config, ConfigError, ConsulConfig, HttpConfig, LogstashConfig, MemcacheConfig, PagerDutyConfig,
    RabbitmqConfig, SlackConfig, StatsdConfig,
};
pub use integration::{
    DynIntegration, EffectCall, EffectFailure, Health, HealthStatus, Integration, ResourceDecl,
    ResourceLimit,
};
pub use registry::{BuildError, Integrations};
pub use secret::Secret;
