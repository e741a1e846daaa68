//! Parallel branches, signals, logs and `sys` effects: native and IR runs of
//! one workflow give the same result and the same log lines.

use std::cell::RefCell;
use std::rc::Rc;

use drover::effects::memcache;
use drover::log::Level;
use drover::native::Responder;
use drover::prelude::*;
use drover_ir::Value;

#[workflow]
pub async fn fan_out(keys: Vec<String>) -> Result<i64, Error> {
    let started = now().await;
    let (a, b) = join!(memcache::incr("a", 1), memcache::incr("b", 2));
    let got = all(keys.iter().map(|k| memcache::get::<i64>(k))).await;
    let approved: bool = signal::<bool>("approved").await;
    log::info("fanned out", &keys);
    let mut total = started;
    for r in got {
        if let Some(v) = r? {
            total += v;
        }
    }
    if let Some(v) = a? {
        total += v as i64;
    }
    if let Some(v) = b? {
        total += v as i64;
    }
    if approved {
        Ok(total)
    } else {
        Err(Error::new("rejected", "not approved"))
    }
}

#[derive(Clone, Default)]
struct Script {
    effects: Rc<RefCell<Vec<String>>>,
    logs: Rc<RefCell<Vec<String>>>,
    approve: bool,
}

impl Responder for Script {
    fn respond(&mut self, effect: &str, args: Vec<Value>) -> Result<Value, Error> {
        self.effects.borrow_mut().push(effect.to_owned());
        match (effect, args.first()) {
            ("sys.now", _) => Ok(Value::Int(1_000)),
            ("memcache.incr", Some(Value::Str(k))) => {
                Ok(Value::Int(if k == "a" { 10 } else { 20 }))
            }
            ("memcache.get", Some(Value::Str(k))) if k.starts_with('k') => {
                Ok(Value::Int(k.len() as i64))
            }
            ("memcache.get", _) => Ok(Value::Null),
            ("signal.approved", _) => Ok(Value::Bool(self.approve)),
            _ => Err(Error::new("unexpected", effect)),
        }
    }

    fn log(&mut self, level: Level, message: &str, fields: &Value) {
        self.logs
            .borrow_mut()
            .push(format!("{level:?} {message} {fields}"));
    }
}

fn both(approve: bool) -> (Value, Value, Script, Script) {
    let keys = vec!["k1".to_owned(), "missing".to_owned(), "k333".to_owned()];
    let native_script = Script {
        approve,
        ..Script::default()
    };
    let native = drover::native::run(native_script.clone(), fan_out(keys.clone()));
    let ir_script = Script {
        approve,
        ..Script::default()
    };
    let ir = drover::testing::run_ir(
        drover::registry::workflow("fan_out").unwrap(),
        vec![drover_ir::to_value(&keys).unwrap()],
        ir_script.clone(),
    )
    .unwrap();
    (
        drover_ir::to_value(&native).unwrap(),
        ir,
        native_script,
        ir_script,
    )
}

#[test]
fn parallel_branches_agree() {
    let (native, ir, native_script, ir_script) = both(true);
    assert_eq!(native, Value::ok(Value::Int(1_000 + 2 + 4 + 10 + 20)));
    assert_eq!(ir, native);
    assert_eq!(*ir_script.logs.borrow(), *native_script.logs.borrow());
    assert_eq!(native_script.logs.borrow().len(), 1);
    let mut native_effects = native_script.effects.borrow().clone();
    let mut ir_effects = ir_script.effects.borrow().clone();
    // Branches may be answered in another order; the multiset must agree.
    native_effects.sort();
    ir_effects.sort();
    assert_eq!(ir_effects, native_effects);
}

#[test]
fn a_returned_error_is_a_value_in_both_modes() {
    let (native, ir, _, _) = both(false);
    assert_eq!(ir, native);
    assert_eq!(
        native,
        Value::err(drover_ir::to_value(&Error::new("rejected", "not approved")).unwrap())
    );
}
