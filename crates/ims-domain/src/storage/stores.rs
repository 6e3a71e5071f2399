//! The image stores: the named places image data may live (Glance's "multiple
//! backends"). Every image records the stores holding a copy of its blob, under the same
//! key in each; new data lands in the default store, and imports and `copy-image` copy a
//! blob into more stores. With one store configured ims is a single-store Glance.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::BlobStore;
use crate::error::{Error, Result};

/// One configured store.
#[derive(Clone)]
pub struct ImageStore {
    /// Its id, as clients name it (`stores`, `X-Image-Meta-Store`).
    pub id: String,
    /// Its backend type, as Glance names it (`file`, `s3`).
    pub kind: String,
    /// What the operator wrote about it.
    pub description: Option<String>,
    /// Order of preference: heavier stores are listed and read first.
    pub weight: i64,
    /// Backend settings an administrator may see (`/v2/info/stores/detail`).
    pub properties: BTreeMap<String, serde_json::Value>,
    /// Where its blobs are.
    pub blobs: Arc<dyn BlobStore>,
}

impl std::fmt::Debug for ImageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageStore")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("weight", &self.weight)
            .finish_non_exhaustive()
    }
}

/// The configured stores, in configuration order, and which one is the default.
#[derive(Clone, Debug)]
pub struct Stores {
    all: Vec<ImageStore>,
    default: usize,
    /// The store volumes may be overlays on (a local directory qemu reads in place).
    overlays: Option<usize>,
}

impl Stores {
    /// One store: a single-store service.
    pub fn single(store: ImageStore) -> Self {
        Stores {
            all: vec![store],
            default: 0,
            overlays: None,
        }
    }

    /// Several stores; `default` must name one of them and ids must be unique.
    pub fn new(all: Vec<ImageStore>, default: &str) -> Result<Self> {
        let ids: BTreeSet<&str> = all.iter().map(|s| s.id.as_str()).collect();
        if ids.len() != all.len() {
            return Err(Error::internal("two image stores have the same id"));
        }
        let default = all
            .iter()
            .position(|s| s.id == default)
            .ok_or_else(|| Error::internal(format!("no image store {default}")))?;
        Ok(Stores {
            all,
            default,
            overlays: None,
        })
    }

    /// Marks `id` as the store whose blobs volumes may be overlays on.
    pub fn with_overlays_in(mut self, id: &str) -> Self {
        self.overlays = self.all.iter().position(|s| s.id == id);
        self
    }

    /// Whether clients see several stores (Glance's multi-store API is on).
    pub fn is_multi(&self) -> bool {
        self.all.len() > 1
    }

    /// Every store, in configuration order.
    pub fn all(&self) -> &[ImageStore] {
        &self.all
    }

    /// Where new data lands.
    pub fn default_store(&self) -> &ImageStore {
        &self.all[self.default]
    }

    /// The store `id`, if configured.
    pub fn get(&self, id: &str) -> Option<&ImageStore> {
        self.all.iter().find(|s| s.id == id)
    }

    /// The store `id`, or the error Glance gives for an unknown one.
    pub fn known(&self, id: &str) -> Result<&ImageStore> {
        self.get(id).ok_or_else(|| unknown_store(id))
    }

    /// The id of the store volumes may be overlays on, if there is one.
    pub fn overlay_store(&self) -> Option<&str> {
        self.overlays.map(|i| self.all[i].id.as_str())
    }

    /// `ids` in the order clients see and reads try them: heaviest first, then by id.
    /// Ids of stores no longer configured come last.
    pub fn ordered<'a>(&self, ids: impl IntoIterator<Item = &'a String>) -> Vec<&'a str> {
        let mut ids: Vec<&str> = ids.into_iter().map(String::as_str).collect();
        let weight = |id: &str| self.get(id).map_or(i64::MIN, |s| s.weight);
        ids.sort_by(|a, b| weight(b).cmp(&weight(a)).then(a.cmp(b)));
        ids
    }

    /// Glance's `stores` field of an image whose data `held` lists: the ids heaviest
    /// first, comma-joined; `None` with one store or while no store holds the data.
    pub fn field(&self, held: &BTreeSet<String>) -> Option<String> {
        (self.is_multi() && !held.is_empty()).then(|| self.ordered(held).join(","))
    }

    /// The stores holding data recorded as in `held`, heaviest first: data not yet
    /// placed in any store (staged, or landed by an import still copying it) is in the
    /// default store. Stores no longer configured are left out.
    pub fn holding(&self, held: &BTreeSet<String>) -> Vec<&ImageStore> {
        if held.is_empty() {
            return vec![self.default_store()];
        }
        let mut stores: Vec<&ImageStore> =
            self.all.iter().filter(|s| held.contains(&s.id)).collect();
        stores.sort_by(|a, b| b.weight.cmp(&a.weight).then(a.id.cmp(&b.id)));
        stores
    }
}

/// Glance's message for a store id that names no store.
pub fn unknown_store(id: &str) -> Error {
    Error::invalid(format!("Store for identifier {id} not found"))
}
