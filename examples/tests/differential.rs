//! Differential tests: each example runs twice against the same responder,
//! as IR in the interpreter (`drover::testing::run_ir`) and as native Rust
//! (`drover::native::run`), over property-generated inputs and effect
//! answers; the results, the effects performed and the log lines must agree.
//!
//! Responders answer from the arguments alone, never from call order, since
//! parallel branches may be answered in another order in the two modes.
//! Effects are compared as sorted multisets for the same reason.
//!
//! One divergence is known and asserted rather than hidden: natively,
//! `.retry(..)` on an activity call does nothing (the activity is a plain
//! `async fn` and runs once), while in IR the retry policy is on the
//! `perform`, so a failing activity runs once per attempt.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use drover::effects::{http, pagerduty, slack};
use drover::log::Level;
use drover::native::Responder;
use drover::{registry, Error};
use drover_examples::email_scan::{self, Email, ScanReport, Verdict};
use drover_examples::fan_out::{self, Item, Summary};
use drover_examples::order_saga::{self, Order, OrderOutcome};
use drover_ir::Value;
use proptest::prelude::*;
use serde::Serialize;

/// Cases per example; each runs the workflow in both modes.
const CASES: u32 = 96;

/// Lines recorded by a [`Recorder`], shared with the test.
type Lines = Rc<RefCell<Vec<String>>>;

/// Answers effects with `answer` and records every call and log line.
struct Recorder<F> {
    answer: Rc<F>,
    calls: Lines,
    logs: Lines,
}

impl<F: Fn(&str, &[Value]) -> Result<Value, Error>> Responder for Recorder<F> {
    fn respond(&mut self, effect: &str, args: Vec<Value>) -> Result<Value, Error> {
        let call = format!("{effect}({})", Value::List(args.clone()));
        self.calls.borrow_mut().push(call);
        (self.answer)(effect, &args)
    }

    fn log(&mut self, level: Level, message: &str, fields: &Value) {
        self.logs
            .borrow_mut()
            .push(format!("{level:?} {message} {fields}"));
    }
}

/// One mode's run: its result as a value, the effects it performed (sorted)
/// and its log lines (in order: logs come from one fiber in these examples).
#[derive(Debug, PartialEq)]
struct Run {
    result: Value,
    calls: Vec<String>,
    logs: Vec<String>,
}

fn recorder<F>(answer: &Rc<F>) -> (Recorder<F>, Lines, Lines) {
    let calls = Rc::new(RefCell::new(Vec::new()));
    let logs = Rc::new(RefCell::new(Vec::new()));
    let r = Recorder {
        answer: answer.clone(),
        calls: calls.clone(),
        logs: logs.clone(),
    };
    (r, calls, logs)
}

fn finish(result: Value, calls: Lines, logs: Lines) -> Run {
    let mut calls = calls.take();
    calls.sort();
    Run {
        result,
        calls,
        logs: logs.take(),
    }
}

/// Runs `workflow` as IR with `args` and natively as `native`, both against
/// `answer`; gives (IR run, native run).
fn both<T, F>(
    workflow: &str,
    args: Vec<Value>,
    native: impl Future<Output = T>,
    answer: F,
) -> (Run, Run)
where
    T: Serialize,
    F: Fn(&str, &[Value]) -> Result<Value, Error> + 'static,
{
    let answer = Rc::new(answer);
    let def = registry::workflow(workflow).unwrap_or_else(|| panic!("{workflow} is registered"));
    let (r, calls, logs) = recorder(&answer);
    let ir = drover::testing::run_ir(def, args, r)
        .unwrap_or_else(|e| panic!("the IR run of {workflow} gave no result: {e}"));
    let ir = finish(ir, calls, logs);
    let (r, calls, logs) = recorder(&answer);
    let native = drover::native::run(r, native);
    let native = finish(to_value(&native), calls, logs);
    (ir, native)
}

fn to_value<T: Serialize>(v: &T) -> Value {
    drover_ir::to_value(v).expect("representable")
}

fn str_arg(args: &[Value], i: usize) -> &str {
    match args.get(i) {
        Some(Value::Str(s)) => s,
        other => panic!("argument {i} is not a string: {other:?}"),
    }
}

/// An HTTP response with a JSON body, as the `http.request` effect gives it.
fn http_response(status: u16, body: serde_json::Value) -> Value {
    to_value(&http::Response {
        status,
        headers: Vec::new(),
        body,
    })
}

// ---------------------------------------------------------------------------
// email_scan

/// What memcache holds for the attachment.
#[derive(Clone, Debug)]
enum Cache {
    Hit(Verdict),
    Miss,
    /// Every attempt fails.
    Down,
}

/// One scripted world for `scan_email`.
#[derive(Clone, Debug)]
struct ScanWorld {
    cache: Cache,
    /// The scanner's verdict, or the HTTP status it fails with.
    scanner: Result<Verdict, u16>,
    /// Effects (by name, or `statsd.count:<metric>`) that fail.
    failing: Vec<String>,
}

fn verdict() -> impl Strategy<Value = Verdict> {
    prop_oneof![
        Just(Verdict {
            infected: false,
            threat: None
        }),
        "[A-Za-z.-]{1,12}".prop_map(|t| Verdict {
            infected: true,
            threat: Some(t)
        }),
        // Infected without a name: the workflow says "unknown".
        Just(Verdict {
            infected: true,
            threat: None
        }),
    ]
}

fn scan_world() -> impl Strategy<Value = ScanWorld> {
    let cache = prop_oneof![
        verdict().prop_map(Cache::Hit),
        Just(Cache::Miss),
        Just(Cache::Down),
    ];
    let scanner = prop_oneof![
        4 => verdict().prop_map(Ok),
        1 => prop_oneof![Just(500u16), Just(503)].prop_map(Err),
    ];
    let failing = proptest::sample::subsequence(
        vec![
            "memcache.set",
            "slack.post",
            "pagerduty.trigger",
            "statsd.count:email.received",
            "statsd.count:email.cache_miss",
            "statsd.count:email.infected",
            "statsd.count:email.cache_error",
        ],
        0..2,
    )
    .prop_map(|names| names.into_iter().map(str::to_owned).collect());
    (cache, scanner, failing).prop_map(|(cache, scanner, failing)| ScanWorld {
        cache,
        scanner,
        failing,
    })
}

fn email() -> impl Strategy<Value = Email> {
    (
        "<[a-z0-9]{1,8}@mx>",
        "[a-z]{1,6}@[a-z]{1,6}\\.com",
        "[0-9a-f]{8,64}",
    )
        .prop_map(|(message_id, sender, attachment_sha256)| Email {
            message_id,
            sender,
            attachment_sha256,
        })
}

/// The scanner URL these tests configure; every test sets the same value,
/// so setting it from parallel tests is harmless.
const SCANNER_URL: &str = "https://scanner.test/v1/scan";

fn scan_answer(world: ScanWorld) -> impl Fn(&str, &[Value]) -> Result<Value, Error> {
    std::env::set_var(email_scan::SCANNER_URL_VAR, SCANNER_URL);
    move |effect, args| {
        let keyed = match effect {
            "statsd.count" => format!("statsd.count:{}", str_arg(args, 0)),
            other => other.to_owned(),
        };
        if world.failing.contains(&keyed) {
            return Err(Error::new("unavailable", format!("{keyed} is down")));
        }
        match effect {
            "statsd.count" | "memcache.set" | "rabbitmq.publish" => Ok(Value::Null),
            "memcache.get" => match &world.cache {
                Cache::Hit(v) => Ok(to_value(v)),
                Cache::Miss => Ok(Value::Null),
                Cache::Down => Err(Error::new("connection_refused", "memcached is down")),
            },
            "http.request" if str_arg(args, 1) == SCANNER_URL => Ok(match &world.scanner {
                Ok(v) => http_response(200, serde_json::to_value(v).unwrap()),
                Err(status) => http_response(*status, serde_json::json!({"error": "busy"})),
            }),
            "slack.post" => Ok(to_value(&slack::Posted {
                channel: "C1".into(),
                ts: "1.0".into(),
            })),
            "pagerduty.trigger" => Ok(to_value(&pagerduty::Ack {
                dedup_key: "k".into(),
                status: "success".into(),
            })),
            other => Err(Error::new("unexpected", format!("{other}({args:?})"))),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn scan_email_agrees(input in email(), world in scan_world()) {
        let (ir, native) = both(
            "scan_email",
            vec![to_value(&input)],
            email_scan::scan_email(input.clone()),
            scan_answer(world.clone()),
        );
        prop_assert_eq!(&ir, &native);
        // The result means what the world says: check one property of it so
        // that two runs agreeing on nonsense still fail.
        if world.failing.is_empty() {
            if let Cache::Hit(v) = &world.cache {
                let report = ScanReport {
                    message_id: input.message_id.clone(),
                    verdict: v.clone(),
                    cached: true,
                    alerted: v.infected,
                };
                prop_assert_eq!(&native.result, &Value::ok(to_value(&report)));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// order_saga

/// A step of the saga whose service fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Reserve,
    Charge,
    Ship,
    Release,
    Refund,
}

#[derive(Clone, Debug)]
struct SagaWorld {
    /// Steps whose service answers an error, with its status and message.
    failing: Vec<(Step, u16, String)>,
}

fn order() -> impl Strategy<Value = Order> {
    (
        "o-[0-9]{1,6}",
        "c-[a-z]{1,6}",
        "[A-Z]{2,5}-[0-9]{1,3}",
        1u32..20,
        1i64..1_000_000,
        "[0-9]{1,3} [A-Z][a-z]{2,8} St",
    )
        .prop_map(
            |(order_id, customer, sku, quantity, amount_cents, address)| Order {
                order_id,
                customer,
                sku,
                quantity,
                amount_cents,
                address,
            },
        )
}

fn saga_world() -> impl Strategy<Value = SagaWorld> {
    let step = prop_oneof![
        Just(Step::Reserve),
        Just(Step::Charge),
        Just(Step::Ship),
        Just(Step::Release),
        Just(Step::Refund),
    ];
    let failure = (
        step,
        prop_oneof![Just(402u16), Just(409), Just(422), Just(503)],
        "[a-z ]{0,20}",
    );
    proptest::collection::vec(failure, 0..3).prop_map(|failing| SagaWorld { failing })
}

fn saga_answer(world: SagaWorld) -> impl Fn(&str, &[Value]) -> Result<Value, Error> {
    move |effect, args| {
        if effect != "http.request" {
            return Err(Error::new("unexpected", effect));
        }
        let url = str_arg(args, 1);
        let inv = order_saga::INVENTORY_URL;
        let pay = order_saga::PAYMENTS_URL;
        let (step, ok) = if url == format!("{inv}/reservations") {
            (Step::Reserve, serde_json::json!({"reservation": "res-1"}))
        } else if url.starts_with(inv) && url.ends_with("/release") {
            (Step::Release, serde_json::json!({}))
        } else if url == format!("{pay}/charges") {
            (Step::Charge, serde_json::json!({"charge": "ch-1"}))
        } else if url.starts_with(pay) && url.ends_with("/refunds") {
            (Step::Refund, serde_json::json!({}))
        } else if url == format!("{}/shipments", order_saga::SHIPPING_URL) {
            (Step::Ship, serde_json::json!({"tracking": "TRK-1"}))
        } else {
            return Err(Error::new("unexpected", url));
        };
        // The first failure listed for a step wins.
        Ok(match world.failing.iter().find(|(s, ..)| *s == step) {
            // An empty message exercises the service-less fallback text.
            Some((_, status, m)) if m.is_empty() => http_response(*status, serde_json::json!({})),
            Some((_, status, m)) => http_response(*status, serde_json::json!({"error": m})),
            None => http_response(200, ok),
        })
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn place_order_agrees(input in order(), world in saga_world()) {
        let (mut ir, native) = both(
            "place_order",
            vec![to_value(&input)],
            order_saga::place_order(input.clone()),
            saga_answer(world.clone()),
        );
        // The known divergence: the IR retries the failing charge 3 times,
        // natively it runs once.
        let charges = format!("{}/charges\"", order_saga::PAYMENTS_URL);
        let is_charge = |c: &String| c.contains(&charges);
        let (ir_charges, native_charges) = (
            ir.calls.iter().filter(|c| is_charge(c)).count(),
            native.calls.iter().filter(|c| is_charge(c)).count(),
        );
        let fails = |step: Step| world.failing.iter().any(|(s, ..)| *s == step);
        if !fails(Step::Reserve) && fails(Step::Charge) {
            prop_assert_eq!((ir_charges, native_charges), (3, 1));
            let mut seen = 0;
            ir.calls.retain(|c| !is_charge(c) || { seen += 1; seen == 1 });
        } else {
            prop_assert_eq!(ir_charges, native_charges);
        }
        prop_assert_eq!(&ir, &native);

        let first_failure = [Step::Reserve, Step::Charge, Step::Ship]
            .into_iter()
            .find(|s| fails(*s));
        let undo_fails = fails(Step::Release) || fails(Step::Refund);
        match first_failure {
            None => {
                let placed = OrderOutcome::Placed {
                    reservation: "res-1".into(),
                    charge: "ch-1".into(),
                    tracking: "TRK-1".into(),
                };
                prop_assert_eq!(&native.result, &Value::ok(to_value(&placed)));
            }
            Some(Step::Reserve) => {
                // Nothing to undo, so a failing compensation cannot matter.
                let Value::Variant(v) = &native.result else { panic!("{:?}", native.result) };
                prop_assert_eq!(v.tag.as_str(), "Ok");
            }
            Some(_) if undo_fails => {}
            Some(step) => {
                let undone: Vec<String> = match step {
                    Step::Charge => vec!["release_stock".into()],
                    _ => vec!["refund".into(), "release_stock".into()],
                };
                let Ok(Ok(OrderOutcome::RolledBack { undone: got, .. })) =
                    drover_ir::from_value::<Result<OrderOutcome, Error>>(native.result.clone())
                else {
                    panic!("{:?}", native.result)
                };
                prop_assert_eq!(got, undone);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// fan_out

/// What the worker does with one item.
#[derive(Clone, Debug)]
enum Work {
    Accept(i64),
    Reject(i64),
    Fail(u16),
}

fn work() -> impl Strategy<Value = Work> {
    prop_oneof![
        4 => (-20i64..130).prop_map(Work::Accept),
        1 => (0i64..100).prop_map(Work::Reject),
        1 => prop_oneof![Just(500u16), Just(503)].prop_map(Work::Fail),
    ]
}

/// Items with their fates; ids are unique so the worker's answer can be
/// keyed by id.
fn items() -> impl Strategy<Value = Vec<(Item, Work)>> {
    proptest::collection::vec(("[a-z]{1,4}", 0i64..50, work()), 0..10).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (id, quantity, w))| {
                (
                    Item {
                        id: format!("{id}{i}"),
                        quantity,
                    },
                    w,
                )
            })
            .collect()
    })
}

fn fan_out_answer(plan: Vec<(Item, Work)>) -> impl Fn(&str, &[Value]) -> Result<Value, Error> {
    move |effect, args| match effect {
        "statsd.gauge" | "statsd.count" => Ok(Value::Null),
        "http.request" if str_arg(args, 1) == fan_out::WORKER_URL => {
            let body = args.get(3).cloned().unwrap_or(Value::Null);
            let item: Item = drover_ir::from_value(body).map_err(Error::decode)?;
            let (_, work) = plan
                .iter()
                .find(|(i, _)| i.id == item.id)
                .ok_or_else(|| Error::new("unexpected", item.id.clone()))?;
            Ok(match work {
                Work::Accept(q) => {
                    http_response(200, serde_json::json!({"accepted": true, "quality": q}))
                }
                Work::Reject(q) => {
                    http_response(200, serde_json::json!({"accepted": false, "quality": q}))
                }
                Work::Fail(status) => http_response(*status, serde_json::json!({})),
            })
        }
        other => Err(Error::new("unexpected", other)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn fan_out_agrees(plan in items()) {
        let input: Vec<Item> = plan.iter().map(|(i, _)| i.clone()).collect();
        let (ir, native) = both(
            "fan_out",
            vec![to_value(&input)],
            fan_out::fan_out(input.clone()),
            fan_out_answer(plan.clone()),
        );
        prop_assert_eq!(&ir, &native);

        // The sums the workflow should have made, computed here directly.
        let mut want = Summary { accepted: 0, rejected: 0, failed: 0, total_score: 0, best: None };
        let mut best = -1;
        for (item, work) in &plan {
            match work {
                Work::Accept(q) => {
                    let s = q.clamp(&0, &100) * item.quantity;
                    want.accepted += 1;
                    want.total_score += s;
                    if s > best {
                        best = s;
                        want.best = Some(item.id.clone());
                    }
                }
                Work::Reject(_) => want.rejected += 1,
                Work::Fail(_) => want.failed += 1,
            }
        }
        prop_assert_eq!(&native.result, &Value::ok(to_value(&want)));
    }
}

/// A compensation that fails after another succeeded: the error names both
/// failures and what was undone, formatted alike in both modes (`{:?}` of a
/// list of strings included).
#[test]
fn a_failed_compensation_fails_the_order_alike() {
    let input = Order {
        order_id: "o-9".into(),
        customer: "c-1".into(),
        sku: "BOOK-1".into(),
        quantity: 1,
        amount_cents: 1200,
        address: "1 Main St".into(),
    };
    let world = SagaWorld {
        failing: vec![
            (Step::Ship, 503, "no trucks".into()),
            (Step::Release, 409, "already released".into()),
        ],
    };
    let (ir, native) = both(
        "place_order",
        vec![to_value(&input)],
        order_saga::place_order(input.clone()),
        saga_answer(world),
    );
    assert_eq!(ir, native);
    let want: Result<OrderOutcome, Error> = Err(Error::new(
        "compensation_failed",
        "order o-9: ship failed (no trucks), then release_stock failed (already released); undone so far: [\"refund\"]",
    ));
    assert_eq!(native.result, to_value(&want));
}
