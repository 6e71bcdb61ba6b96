//! Tenantry's core model: the canonical schema model, its normalisation
//! rules, the versioned SHA-256 drift hash and the tenant status it implies.
//!
//! Architecture invariant: this crate does no I/O and knows no database
//! driver; it is fed snapshots and returns values.

pub mod ddl;
pub mod diff;
pub mod hash;
pub mod naming;
pub mod normalize;
pub mod own_schema;
pub mod quote;
pub mod schema;
pub mod status;
pub mod sync;
pub mod sync_mysql;

pub use hash::{
    hash_schema, CanonicalFormat, DriftHash, HashComparison, ObjectHash, ObjectKind,
    ParseHashError, SchemaHash,
};
pub use schema::*;
pub use status::{classify, SchemaStatus, TemplateVersionHash};
