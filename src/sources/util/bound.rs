//! What listening sources bind, held once per process per key (an address, a socket
//! path): while any instance of a source holds it, another instance (the same source
//! rebuilt by a reload) gets the same bound socket instead of binding again, so the
//! address or the socket file never goes away during a reload. An entry lives as long
//! as some instance holds its `Arc`.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, LazyLock, Mutex, Weak};

/// A process-wide pool of bound sockets by key.
pub struct Bound<K, V> {
    held: LazyLock<Mutex<HashMap<K, Weak<V>>>>,
}

impl<K: Eq + Hash, V> Bound<K, V> {
    /// An empty pool, for a `static`.
    pub const fn new() -> Self {
        Self {
            held: LazyLock::new(Default::default),
        }
    }

    /// The value held for `key` (`true`: an instance already had it), or a new one
    /// from `bind`, held from now on. `None` shares nothing (port 0: a fresh port each
    /// time).
    pub fn get_or_bind<E>(
        &self,
        key: Option<K>,
        bind: impl FnOnce() -> Result<V, E>,
    ) -> Result<(Arc<V>, bool), E> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.retain(|_, w| w.strong_count() > 0);
        if let Some(v) = key
            .as_ref()
            .and_then(|k| held.get(k))
            .and_then(Weak::upgrade)
        {
            return Ok((v, true));
        }
        let v = Arc::new(bind()?);
        if let Some(k) = key {
            held.insert(k, Arc::downgrade(&v));
        }
        Ok((v, false))
    }
}

impl<K: Eq + Hash, V> Default for Bound<K, V> {
    fn default() -> Self {
        Self::new()
    }
}
