//! Built-ins' compiled parameters, kept by the parameters themselves. A check definition
//! arrives again every interval with the same parameters; deserialising and compiling them
//! (the URL parsed, the request's headers built, regexes compiled) cost an HTTP check about
//! 4,000 instructions of its 119,000 (README, "Benchmarks"). A request whose parameters
//! (after token substitution) are equal to ones compiled before gets the kept form,
//! whatever its check's name; any change is compiled afresh. What is compiled depends on
//! the parameters alone.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rustc_hash::FxHashMap;
use serde_json::Value;

use super::failure::CheckFailure;
use super::plugin;
use crate::proto::Object;

/// Most parameter sets kept per built-in. Past it the cache starts over: a client running
/// more distinct checks of one kind than this compiles some of them on every run, as it
/// would without a cache, and what is kept stays bounded (a few hundred bytes to a few
/// kilobytes each).
pub const LIMIT: usize = 1024;

/// Compiled parameters of one built-in, by the parameters they were compiled from.
pub struct Compiled<T> {
    entries: Mutex<FxHashMap<Value, Arc<T>>>,
}

impl<T> Default for Compiled<T> {
    fn default() -> Self {
        Self { entries: Mutex::default() }
    }
}

impl<T> std::fmt::Debug for Compiled<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled").field("kept", &self.len()).finish()
    }
}

impl<T> Compiled<T> {
    fn lock(&self) -> MutexGuard<'_, FxHashMap<Value, Arc<T>>> {
        // Nothing here can be left half-done by a panic: a poisoned map is still whole.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Parameter sets kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The compiled form of `check.<key>` (which must be an object): the one kept for equal
    /// parameters (objects are equal whatever their keys' order), else
    /// `compile(parameters)`, kept when it succeeds. A failure is not kept: it is compiled,
    /// and reported, again on the next run.
    pub fn get(
        &self,
        check: &Object,
        key: &str,
        compile: impl FnOnce(&Value) -> Result<T, CheckFailure>,
    ) -> Result<Arc<T>, CheckFailure> {
        let params = plugin::parameters_object(check, key)?;
        if let Some(compiled) = self.lock().get(params) {
            return Ok(compiled.clone());
        }
        let compiled = Arc::new(compile(params)?);
        let mut entries = self.lock();
        if entries.len() >= LIMIT {
            entries.clear();
        }
        entries.insert(params.clone(), compiled.clone());
        Ok(compiled)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use serde_json::json;

    use super::*;

    fn check(v: Value) -> Object {
        match v {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn equal_parameters_compile_once_and_a_change_compiles_again() {
        let cache = Compiled::<String>::default();
        let compiles = Cell::new(0);
        let compile = |p: &Value| {
            compiles.set(compiles.get() + 1);
            Ok(p["url"].as_str().unwrap_or_default().to_string())
        };
        let a = check(json!({"name": "a", "http": {"url": "http://x/", "timeout": 5}}));
        let first = cache.get(&a, "http", compile).unwrap();
        // The same parameters in another order, in another request, are equal.
        let again = check(json!({"name": "a", "http": {"timeout": 5, "url": "http://x/"}, "issued": 2}));
        let second = cache.get(&again, "http", compile).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(compiles.get(), 1);
        // Changed parameters (a substituted token, an edited definition) compile again, and
        // so does a number written otherwise (5.0 is not 5 in JSON's model).
        let changed = check(json!({"name": "a", "http": {"url": "http://y/", "timeout": 5}}));
        assert_eq!(*cache.get(&changed, "http", compile).unwrap(), "http://y/");
        let float = check(json!({"name": "a", "http": {"url": "http://y/", "timeout": 5.0}}));
        cache.get(&float, "http", compile).unwrap();
        assert_eq!(compiles.get(), 3);
        // Another check with the same parameters gets the same compiled form; a nested
        // object counts whole.
        let b = check(json!({"name": "b", "http": {"url": "http://y/", "timeout": 5}}));
        cache.get(&b, "http", compile).unwrap();
        assert_eq!((compiles.get(), cache.len()), (3, 3));
        let tls = |v: bool| check(json!({"name": "b", "http": {"url": "http://y/", "tls": {"insecure": v}}}));
        cache.get(&tls(true), "http", compile).unwrap();
        cache.get(&tls(false), "http", compile).unwrap();
        cache.get(&tls(true), "http", compile).unwrap();
        assert_eq!((compiles.get(), cache.len()), (5, 5));
    }

    #[test]
    fn failures_are_not_kept() {
        let cache = Compiled::<String>::default();
        let compiles = Cell::new(0);
        let fail = |_: &Value| {
            compiles.set(compiles.get() + 1);
            Err(CheckFailure::parameters("bad"))
        };
        let a = check(json!({"name": "a", "http": {"url": 1}}));
        assert!(cache.get(&a, "http", fail).is_err());
        assert!(cache.get(&a, "http", fail).is_err());
        assert_eq!((compiles.get(), cache.len()), (2, 0));
        assert!(cache.is_empty());
        // Not an object, or missing: the same errors as before any compiling.
        let wrong = check(json!({"name": "a", "http": "http://x/"}));
        assert!(cache.get(&wrong, "http", fail).unwrap_err().message.contains("must be an object"));
        let missing = check(json!({"name": "a"}));
        assert!(cache.get(&missing, "http", fail).unwrap_err().message.contains("missing `http` object"));
        assert_eq!(compiles.get(), 2);
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = Compiled::<usize>::default();
        for i in 0..LIMIT + 10 {
            let c = check(json!({"name": format!("c{i}"), "http": {"i": i}}));
            assert_eq!(*cache.get(&c, "http", |p| Ok(p["i"].as_u64().unwrap() as usize)).unwrap(), i);
            assert!(cache.len() <= LIMIT);
        }
        assert_eq!(cache.len(), 10);
    }
}
