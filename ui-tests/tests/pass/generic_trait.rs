//! Type parameters on the trait: each `Store<V>` is its own interface.

use std::collections::HashMap;
use std::sync::Mutex;

use farcall::RemoteError;

#[farcall::remote]
pub trait Store<V> {
    async fn put(&self, key: String, value: V) -> Result<Option<V>, RemoteError>;
    async fn get(&self, key: String) -> Result<Option<V>, RemoteError>;
}

struct MemStore<V>(Mutex<HashMap<String, V>>);

#[farcall::remote]
impl<V> Store<V> for MemStore<V>
where
    V: Clone + serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    async fn put(&self, key: String, value: V) -> Result<Option<V>, RemoteError> {
        Ok(self.0.lock().unwrap().insert(key, value))
    }
    async fn get(&self, key: String) -> Result<Option<V>, RemoteError> {
        Ok(self.0.lock().unwrap().get(&key).cloned())
    }
}

#[allow(dead_code)]
async fn use_it(node: farcall::Node) -> Result<Option<u64>, RemoteError> {
    let local: farcall::Remote<dyn Store<u64>> = node.export(MemStore::<u64>(Mutex::default()));
    let remote: farcall::Remote<dyn Store<String>> =
        node.connect_service("mem://store", "strings").await?;
    let _: StoreClient<Vec<u8>>;
    remote.put("k".to_owned(), "v".to_owned()).await?;
    local.get("k".to_owned()).await
}

fn main() {}
