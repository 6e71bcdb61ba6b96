//! A tenant's schema status, derived from its measured hash and its template's
//! lineage of version hashes. Pure: callers measure, this module decides.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::hash::{DriftHash, HashComparison};

/// The five statuses a tenant's schema can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemaStatus {
    /// No template applied or no baseline to compare with.
    Unknown,
    /// The hash equals the tenant's template version.
    Synced,
    /// The hash equals no version of the template.
    Customized,
    /// The hash equals an older version of the template.
    Outdated,
    /// The last provisioning, update or check failed.
    Failed,
}

impl SchemaStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaStatus::Unknown => "unknown",
            SchemaStatus::Synced => "synced",
            SchemaStatus::Customized => "customized",
            SchemaStatus::Outdated => "outdated",
            SchemaStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for SchemaStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One version of a template and the hash measured for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateVersionHash {
    pub version: String,
    pub hash: DriftHash,
}

/// Classifies a measured tenant hash against the lineage of its template.
/// `lineage` is ordered oldest first; `tenant_version` is the version the
/// tenant is supposed to be on.
pub fn classify(
    measured: &DriftHash,
    tenant_version: &str,
    lineage: &[TemplateVersionHash],
) -> SchemaStatus {
    let Some(own_index) = lineage.iter().position(|v| v.version == tenant_version) else {
        return SchemaStatus::Unknown;
    };
    let comparable: Vec<_> = lineage
        .iter()
        .enumerate()
        .filter(|(_, v)| measured.compare(&v.hash) != HashComparison::DifferentFormat)
        .collect();
    if comparable.is_empty() {
        // Measured with another canonicaliser version: re-measure, never alert.
        return SchemaStatus::Unknown;
    }
    if lineage[own_index].hash == *measured {
        return SchemaStatus::Synced;
    }
    if comparable
        .iter()
        .any(|(i, v)| *i < own_index && v.hash == *measured)
    {
        return SchemaStatus::Outdated;
    }
    SchemaStatus::Customized
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::hash_schema;
    use crate::schema::{Engine, SchemaSnapshot, Table};

    fn h(tables: &[&str]) -> DriftHash {
        let mut s = SchemaSnapshot::new(Engine::Sqlite);
        s.tables = tables.iter().map(|t| Table::new(*t)).collect();
        hash_schema(&s).root
    }

    fn lineage() -> Vec<TemplateVersionHash> {
        vec![
            TemplateVersionHash {
                version: "1.0.0".into(),
                hash: h(&["a"]),
            },
            TemplateVersionHash {
                version: "1.1.0".into(),
                hash: h(&["a", "b"]),
            },
        ]
    }

    #[test]
    fn statuses_follow_the_lineage() {
        let l = lineage();
        assert_eq!(classify(&h(&["a", "b"]), "1.1.0", &l), SchemaStatus::Synced);
        assert_eq!(classify(&h(&["a"]), "1.1.0", &l), SchemaStatus::Outdated);
        assert_eq!(classify(&h(&["a"]), "1.0.0", &l), SchemaStatus::Synced);
        assert_eq!(
            classify(&h(&["a", "b", "x"]), "1.1.0", &l),
            SchemaStatus::Customized
        );
        // A tenant on 1.0.0 that looks like 1.1.0 is ahead of its record, not outdated.
        assert_eq!(
            classify(&h(&["a", "b"]), "1.0.0", &l),
            SchemaStatus::Customized
        );
        assert_eq!(classify(&h(&["a"]), "9.9.9", &l), SchemaStatus::Unknown);
    }
}
