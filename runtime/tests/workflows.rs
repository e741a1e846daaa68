//! The macros end to end: registration, native runs and IR runs of the same
//! workflows against the same scripted responder.

use std::cell::RefCell;
use std::rc::Rc;

use drover::effects::{memcache, slack, statsd};
use drover::native::Responder;
use drover::prelude::*;
use drover::registry;
use drover_ir::Value;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Email {
    pub message_id: String,
    pub attachment_sha256: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Verdict {
    Clean,
    Infected { name: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub message_id: String,
    pub verdict: Verdict,
    pub severity: String,
}

#[activity(
    resources(scanner_license = 1),
    retry(attempts = 5, initial = "100ms", max = "10s"),
    timeout = "30s"
)]
pub async fn scan(sha256: String) -> Result<Verdict, Error> {
    // The activity's own effects go to the same responder.
    statsd::count("scanner.calls", 1, &[]).await?;
    if sha256.starts_with("bad") {
        Ok(Verdict::Infected {
            name: format!("EICAR-{sha256}"),
        })
    } else {
        Ok(Verdict::Clean)
    }
}

#[pure]
pub fn severity(v: &Verdict) -> String {
    match v {
        Verdict::Clean => "none".to_owned(),
        Verdict::Infected { .. } => "critical".to_owned(),
    }
}

#[workflow]
pub async fn scan_email(email: Email) -> Result<Report, Error> {
    statsd::count("email.scanned", 1, &[]).await?;
    let key = format!("verdict:{}", email.attachment_sha256);
    let cached: Option<Verdict> = memcache::get(&key)
        .retry(3, Duration::from_millis(50), Duration::from_secs(1))
        .timeout(Duration::from_millis(500))
        .await?;
    let verdict = match cached {
        Some(v) => v,
        None => {
            let v = scan(email.attachment_sha256.clone()).await?;
            memcache::set(&key, &v, 86_400).await?;
            v
        }
    };
    if let Verdict::Infected { name } = &verdict {
        slack::post("#security", &format!("infected: {}", name), None).await?;
    }
    let severity = severity(&verdict);
    Ok(Report {
        message_id: email.message_id,
        verdict,
        severity,
    })
}

#[workflow]
pub async fn scan_batch(first: Email, second: Email) -> Result<Vec<Report>, Error> {
    let a = scan_email::run(first).await?;
    sleep(Duration::from_secs(5)).await;
    let b = scan_email::run(second).await?;
    Ok(vec![a, b])
}

/// A scripted responder that records what it was asked, shared between the
/// test and the run (the run owns its responder).
#[derive(Clone, Default)]
struct Script {
    calls: Rc<RefCell<Vec<String>>>,
    /// `memcache.get` fails this many times before answering.
    flaky_gets: Rc<RefCell<u32>>,
}

impl Responder for Script {
    fn respond(&mut self, effect: &str, args: Vec<Value>) -> Result<Value, Error> {
        self.calls.borrow_mut().push(effect.to_owned());
        match effect {
            "memcache.get" => {
                let mut flaky = self.flaky_gets.borrow_mut();
                if *flaky > 0 {
                    *flaky -= 1;
                    return Err(Error::new("unavailable", "memcached is restarting"));
                }
                // Only one key is cached: a clean verdict.
                match args.first() {
                    Some(Value::Str(k)) if k == "verdict:cached" => {
                        Ok(drover_ir::to_value(&Verdict::Clean).unwrap())
                    }
                    _ => Ok(Value::Null),
                }
            }
            "memcache.set" | "statsd.count" => Ok(Value::Null),
            "slack.post" => Ok(drover_ir::to_value(&slack::Posted {
                channel: "C1".into(),
                ts: "1.2".into(),
            })
            .unwrap()),
            other => Err(Error::new("unexpected", other)),
        }
    }
}

fn email(id: &str, sha: &str) -> Email {
    Email {
        message_id: id.into(),
        attachment_sha256: sha.into(),
    }
}

fn to_value<T: Serialize>(v: &T) -> Value {
    drover_ir::to_value(v).unwrap()
}

#[test]
fn the_macros_register_workflows_activities_and_pure_fns() {
    let wf = registry::workflow("scan_email").expect("scan_email is registered");
    assert_eq!(wf.name, scan_email::NAME);
    assert_eq!(wf.hash, scan_email::HASH);
    assert_eq!(wf.hash.len(), 64);
    assert_eq!(wf.ir, scan_email::IR);
    assert_eq!(wf.params, &[("email", "Email")]);
    assert_eq!(wf.ret, "Result<Report, Error>");
    let module = wf.module().expect("the embedded IR decodes");
    assert_eq!(module.hash().to_string(), wf.hash);
    assert!(module.workflow("scan_email").is_some());

    let act = registry::activity("scan").expect("scan is registered");
    assert_eq!(act.params, &[("sha256", "String")]);
    assert_eq!(act.resources, &[("scanner_license", 1)]);
    let retry = act.retry.expect("a retry policy");
    assert_eq!(
        (
            retry.max_attempts,
            retry.initial_backoff_ms,
            retry.max_backoff_ms
        ),
        (5, 100, 10_000)
    );
    assert_eq!(act.timeout_ms, Some(30_000));

    assert!(registry::pure("severity").is_some());
    assert!(registry::workflow("scan_batch").is_some());
    assert!(registry::workflow("nope").is_none());
    assert!(registry::duplicates().is_empty());
}

#[test]
fn registered_wrappers_convert_values_and_check_arity() {
    let sev = registry::pure("severity").unwrap();
    let v = (sev.call)(&[to_value(&Verdict::Clean)]).unwrap();
    assert_eq!(v, Value::Str("none".into()));
    let err = (sev.call)(&[]).unwrap_err();
    assert!(err.contains("takes 1 argument(s) but was given 0"), "{err}");
    let err = (sev.call)(&[Value::Int(3)]).unwrap_err();
    assert!(err.contains("argument `v` of `severity`"), "{err}");

    let scan_def = registry::activity("scan").unwrap();
    let out = drover::native::run(
        Script::default(),
        (scan_def.call)(vec![Value::Str("bad1".into())]),
    );
    assert_eq!(
        out.unwrap(),
        to_value(&Verdict::Infected {
            name: "EICAR-bad1".into()
        })
    );
}

#[test]
fn native_and_ir_runs_agree() {
    for (sha, flaky) in [("cached", 0), ("fresh", 0), ("bad7", 2)] {
        let input = email("m1", sha);
        let native_script = Script::default();
        *native_script.flaky_gets.borrow_mut() = flaky;
        let native = drover::native::run(native_script.clone(), scan_email(input.clone()));

        let ir_script = Script::default();
        *ir_script.flaky_gets.borrow_mut() = flaky;
        let ir = drover::testing::run_ir(
            registry::workflow("scan_email").unwrap(),
            vec![to_value(&input)],
            ir_script.clone(),
        )
        .unwrap_or_else(|e| panic!("{sha}: {e}"));

        assert_eq!(ir, to_value(&native), "{sha}");
        assert_eq!(
            *ir_script.calls.borrow(),
            *native_script.calls.borrow(),
            "{sha}"
        );
    }
}

#[test]
fn a_native_run_gives_the_expected_report() {
    let script = Script::default();
    let report = drover::native::run(script.clone(), scan_email(email("m2", "bad9"))).unwrap();
    assert_eq!(report.severity, "critical");
    assert_eq!(
        *script.calls.borrow(),
        [
            "statsd.count",
            "memcache.get",
            "statsd.count",
            "memcache.set",
            "slack.post"
        ]
    );
}

#[test]
fn retries_exhausted_fail_alike() {
    let native_script = Script::default();
    *native_script.flaky_gets.borrow_mut() = 3;
    let native = drover::native::run(native_script, scan_email(email("m3", "x")));
    assert_eq!(native.as_ref().unwrap_err().kind, "unavailable");

    let ir_script = Script::default();
    *ir_script.flaky_gets.borrow_mut() = 3;
    let ir = drover::testing::run_ir(
        registry::workflow("scan_email").unwrap(),
        vec![to_value(&email("m3", "x"))],
        ir_script,
    )
    .unwrap();
    assert_eq!(ir, to_value(&native));
}

#[test]
fn child_workflows_and_timers_run_in_both_modes() {
    let (a, b) = (email("m4", "fresh"), email("m5", "bad2"));
    let native = drover::native::run(Script::default(), scan_batch(a.clone(), b.clone()));
    assert_eq!(native.as_ref().unwrap().len(), 2);
    let ir = drover::testing::run_ir(
        registry::workflow("scan_batch").unwrap(),
        vec![to_value(&a), to_value(&b)],
        Script::default(),
    )
    .unwrap();
    assert_eq!(ir, to_value(&native));
}

#[test]
fn start_sends_name_hash_and_encoded_arguments() {
    /// (workflow, hash, args) of each start.
    type Starts = Rc<RefCell<Vec<(String, String, Vec<Value>)>>>;
    struct Recorder(Starts);
    impl drover::client::StartWorkflow for Recorder {
        fn start_raw(
            &self,
            workflow: &str,
            hash: &str,
            args: Vec<Value>,
        ) -> impl std::future::Future<Output = Result<drover::client::RunId, Error>> + Send
        {
            self.0
                .borrow_mut()
                .push((workflow.to_owned(), hash.to_owned(), args));
            std::future::ready(Ok(drover::client::RunId("run-1".into())))
        }
    }
    let seen = Rc::new(RefCell::new(Vec::new()));
    let client = Recorder(seen.clone());
    let input = email("m6", "fresh");
    let id = futures_lite_block_on(scan_email::start(&client, input.clone())).unwrap();
    assert_eq!(id.to_string(), "run-1");
    assert_eq!(
        *seen.borrow(),
        [(
            "scan_email".to_owned(),
            scan_email::HASH.to_owned(),
            vec![to_value(&input)]
        )]
    );
}

/// `start` needs no responder; any executor will do.
fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    drover::native::run(|e: &str, _: Vec<Value>| Err(Error::new("unexpected", e)), f)
}

#[test]
fn effects_outside_a_native_run_fail_without_panicking() {
    let out = futures_lite_block_on(async { 1 });
    assert_eq!(out, 1);
    let err = drover::__private::futures::executor::block_on(async {
        memcache::get::<String>("k").await
    })
    .unwrap_err();
    assert_eq!(err.kind, Error::NO_RESPONDER);
}
