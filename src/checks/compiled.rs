//! Built-ins' compiled parameters, kept by the parameters themselves. A check definition
//! arrives again every interval with the same parameters; deserialising and compiling them
//! (for HTTP: the URL parsed, the request's headers built) cost an HTTP check about 4,000
//! instructions of its 119,000 (README, "Benchmarks"). A request whose parameters (after
//! token substitution) are equal to ones compiled before gets the kept form, whatever its
//! check's name; any change is compiled afresh. What is compiled depends on the parameters
//! alone.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rustc_hash::FxHashMap;
use serde_json::Value;

use super::failure::CheckFailure;
use super::plugin;
use crate::proto::Object;

/// Most parameter sets kept per built-in. When a new one would pass it, or pass [`BUDGET`],
/// kept ones are let go (whichever the map yields first) until it fits: a client cycling
/// through more distinct checks of one kind than this keeps a share of them, and compiles
/// the others as it would without a cache.
pub const LIMIT: usize = 1024;

/// Most memory kept per built-in, as estimated by [`weight`] and [`Weigh`]: the parameters
/// and what they compiled to. One entry may take at most a sixteenth of it; parameters
/// estimated larger (hostile sizes) are compiled for their run and neither kept nor looked
/// up.
pub const BUDGET: usize = 4 << 20;

/// What a compiled form keeps in memory, roughly, in bytes; `None` when it must not be kept
/// (its memory is not bounded: a regex's lazy DFA grows its cache with use, up to
/// megabytes, and is dropped with it after the run when not kept).
pub trait Weigh {
    /// Bytes, or `None` for "do not keep".
    fn weight(&self) -> Option<usize>;
}

/// What a JSON value takes in memory, roughly (its strings, plus each node's overhead).
pub fn weight(value: &Value) -> usize {
    match value {
        Value::String(s) => 24 + s.len(),
        Value::Array(items) => 24 + items.iter().map(weight).sum::<usize>(),
        Value::Object(map) => 64 + map.iter().map(|(k, v)| 48 + k.len() + weight(v)).sum::<usize>(),
        Value::Null | Value::Bool(_) | Value::Number(_) => 16,
    }
}

struct Entries<T> {
    /// The compiled form and its weight, by the parameters.
    map: FxHashMap<Value, (Arc<T>, usize)>,
    weight: usize,
}

/// Compiled parameters of one built-in, by the parameters they were compiled from.
pub struct Compiled<T> {
    entries: Mutex<Entries<T>>,
    compiles: AtomicUsize,
}

impl<T> Default for Compiled<T> {
    fn default() -> Self {
        Self { entries: Mutex::new(Entries { map: FxHashMap::default(), weight: 0 }), compiles: AtomicUsize::new(0) }
    }
}

impl<T> std::fmt::Debug for Compiled<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries = self.lock();
        f.debug_struct("Compiled").field("kept", &entries.map.len()).field("weight", &entries.weight).finish()
    }
}

impl<T> Compiled<T> {
    fn lock(&self) -> MutexGuard<'_, Entries<T>> {
        // Nothing here can be left half-done by a panic: a poisoned map is still whole.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Parameter sets kept.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The estimated bytes kept.
    pub fn weight(&self) -> usize {
        self.lock().weight
    }

    /// How many times parameters were compiled (kept or not, failed or not).
    pub fn compiles(&self) -> usize {
        self.compiles.load(Ordering::Relaxed)
    }
}

impl<T: Weigh> Compiled<T> {
    /// The compiled form of `check.<key>` (which must be an object): the one kept for equal
    /// parameters (objects are equal whatever their keys' order), else
    /// `compile(parameters)`, kept when it succeeds and fits. A failure is not kept: it is
    /// compiled, and reported, again on the next run.
    pub fn get(
        &self,
        check: &Object,
        key: &str,
        compile: impl FnOnce(&Value) -> Result<T, CheckFailure>,
    ) -> Result<Arc<T>, CheckFailure> {
        let params = plugin::parameters_object(check, key)?;
        let compile = |params| {
            self.compiles.fetch_add(1, Ordering::Relaxed);
            compile(params).map(Arc::new)
        };
        // Parameters too large to keep are not hashed (under the lock) either.
        let params_weight = weight(params);
        if params_weight > BUDGET / 16 {
            return compile(params);
        }
        if let Some((compiled, _)) = self.lock().map.get(params) {
            return Ok(compiled.clone());
        }
        let compiled = compile(params)?;
        let Some(weight) = compiled.weight().map(|w| w.saturating_add(params_weight)) else {
            return Ok(compiled);
        };
        if weight > BUDGET / 16 {
            return Ok(compiled);
        }
        let key = params.clone();
        let mut entries = self.lock();
        while entries.map.len() >= LIMIT || entries.weight + weight > BUDGET {
            let Some((_, (_, freed))) = entries.map.extract_if(|_, _| true).next() else { break };
            entries.weight -= freed;
        }
        match entries.map.insert(key, (compiled.clone(), weight)) {
            // Compiled meanwhile by another thread: the same weight is replaced.
            Some((_, replaced)) => entries.weight = entries.weight - replaced + weight,
            None => entries.weight += weight,
        }
        Ok(compiled)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    impl Weigh for String {
        fn weight(&self) -> Option<usize> {
            // "unbounded" marks a form that must not be kept.
            (self != "unbounded").then_some(24 + self.len())
        }
    }

    impl Weigh for usize {
        fn weight(&self) -> Option<usize> {
            Some(*self)
        }
    }

    fn check(v: Value) -> Object {
        match v {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn equal_parameters_compile_once_and_a_change_compiles_again() {
        let cache = Compiled::<String>::default();
        let compile = |p: &Value| Ok(p["url"].as_str().unwrap_or_default().to_string());
        let a = check(json!({"name": "a", "http": {"url": "http://x/", "timeout": 5}}));
        let first = cache.get(&a, "http", compile).unwrap();
        // The same parameters in another order, in another request, are equal.
        let again = check(json!({"name": "a", "http": {"timeout": 5, "url": "http://x/"}, "issued": 2}));
        let second = cache.get(&again, "http", compile).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(cache.compiles(), 1);
        // Changed parameters (a substituted token, an edited definition) compile again, and
        // so does a number written otherwise (5.0 is not 5 in JSON's model).
        let changed = check(json!({"name": "a", "http": {"url": "http://y/", "timeout": 5}}));
        assert_eq!(*cache.get(&changed, "http", compile).unwrap(), "http://y/");
        let float = check(json!({"name": "a", "http": {"url": "http://y/", "timeout": 5.0}}));
        cache.get(&float, "http", compile).unwrap();
        assert_eq!(cache.compiles(), 3);
        // Another check with the same parameters gets the same compiled form; a nested
        // object counts whole.
        let b = check(json!({"name": "b", "http": {"url": "http://y/", "timeout": 5}}));
        cache.get(&b, "http", compile).unwrap();
        assert_eq!((cache.compiles(), cache.len()), (3, 3));
        let tls = |v: bool| check(json!({"name": "b", "http": {"url": "http://y/", "tls": {"insecure": v}}}));
        cache.get(&tls(true), "http", compile).unwrap();
        cache.get(&tls(false), "http", compile).unwrap();
        cache.get(&tls(true), "http", compile).unwrap();
        assert_eq!((cache.compiles(), cache.len()), (5, 5));
    }

    #[test]
    fn failures_are_not_kept() {
        let cache = Compiled::<String>::default();
        let fail = |_: &Value| Err(CheckFailure::parameters("bad"));
        let a = check(json!({"name": "a", "http": {"url": 1}}));
        assert!(cache.get(&a, "http", fail).is_err());
        assert!(cache.get(&a, "http", fail).is_err());
        assert_eq!((cache.compiles(), cache.len()), (2, 0));
        assert!(cache.is_empty());
        // Not an object, or missing: the same errors as before any compiling.
        let wrong = check(json!({"name": "a", "http": "http://x/"}));
        assert!(cache.get(&wrong, "http", fail).unwrap_err().message.contains("must be an object"));
        let missing = check(json!({"name": "a"}));
        assert!(cache.get(&missing, "http", fail).unwrap_err().message.contains("missing `http` object"));
        assert_eq!(cache.compiles(), 2);
    }

    #[test]
    fn the_cache_is_bounded_in_entries_and_in_memory() {
        let cache = Compiled::<usize>::default();
        let params = |i: usize| check(json!({"name": format!("c{i}"), "http": {"i": i}}));
        for i in 0..LIMIT + 10 {
            assert_eq!(*cache.get(&params(i), "http", |p| Ok(p["i"].as_u64().unwrap() as usize)).unwrap(), i);
            assert!(cache.len() <= LIMIT);
        }
        // Full: each new set lets one kept set go, the others stay kept.
        assert_eq!(cache.len(), LIMIT);
        let compiles = cache.compiles();
        let kept = (0..LIMIT + 10)
            .filter(|&i| {
                let before = cache.compiles();
                cache.get(&params(i), "http", |_| Ok(i)).unwrap();
                cache.compiles() == before
            })
            .count();
        assert!(kept >= LIMIT / 2, "{kept} of {} found kept", LIMIT + 10);
        assert_eq!(cache.len(), LIMIT);
        assert!(cache.compiles() > compiles);
        // By weight: entries of BUDGET / 20 (and their parameters') fit 19 at a time.
        let cache = Compiled::<usize>::default();
        for i in 0..45 {
            let c = check(json!({"http": {"i": i}}));
            cache.get(&c, "http", |_| Ok(BUDGET / 20)).unwrap();
            assert!(cache.weight() <= BUDGET);
        }
        let per_budget = BUDGET / (BUDGET / 20 + weight(&json!({"i": 0})));
        assert_eq!((per_budget, cache.len()), (19, 19));
        // Larger than BUDGET / 16 (a huge parameter, say): compiled for its run, not kept.
        let huge = check(json!({"http": {"body": "x".repeat(BUDGET / 16)}}));
        let compiles = cache.compiles();
        for _ in 0..2 {
            cache.get(&huge, "http", |_| Ok(0)).unwrap();
        }
        assert_eq!((cache.compiles() - compiles, cache.len()), (2, 19));
        // A form that says it must not be kept is not.
        let strings = Compiled::<String>::default();
        let regex = check(json!({"http": {"url": "http://x/", "body_match": "a+"}}));
        strings.get(&regex, "http", |_| Ok("unbounded".to_string())).unwrap();
        assert!(strings.is_empty());
        assert_eq!(strings.compiles(), 1);
    }
}
