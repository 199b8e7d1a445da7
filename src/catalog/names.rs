//! The rules for names and settings that every catalog change checks before anything moves:
//! database, table and column names, and retention periods as the API spells them.
//!
//! Invariants: pure functions of their input; a name accepted here is accepted again when the
//! catalog log is replayed, so replay never refuses what was once acknowledged.

use shardline_shards::schema::{ColumnType, TIME_COLUMN};

use super::CatalogError;

/// Reads a retention period as the API takes it: a duration with units (`30d`, `24h`,
/// `1h30m`), or `none` for keeping data forever.
pub fn parse_retention(text: &str) -> Result<Option<i64>, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "retention period '{t}' needs a unit, e.g. 30d, 24h or 90m (or 'none')"
        ));
    }
    let d =
        shardline_units::parse_duration(t).map_err(|e| format!("invalid retention period: {e}"))?;
    if d.is_zero() {
        return Err(
            "a retention period must be longer than zero; use 'none' to keep data forever".into(),
        );
    }
    i64::try_from(d.as_nanos())
        .map(Some)
        .map_err(|_| format!("retention period '{t}' is too long"))
}

/// A retention period as [`parse_retention`] reads it.
pub fn format_retention(ns: i64) -> String {
    shardline_units::format_duration(std::time::Duration::from_nanos(ns.max(0) as u64))
}

/// Checks a table name given to the management API (writes name tables through line
/// protocol, whose escaping allows any measurement).
pub fn validate_table_name(name: &str) -> Result<(), CatalogError> {
    let bad = |reason| CatalogError::InvalidTableName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("a table name cannot be empty"));
    }
    if name.chars().any(char::is_control) {
        return Err(bad("a table name cannot contain control characters"));
    }
    Ok(())
}

/// Checks a database name: 1 to 64 characters, a letter or digit first, then letters, digits,
/// `_` or `-`.
pub fn validate_database_name(name: &str) -> Result<(), CatalogError> {
    let bad = |reason| CatalogError::InvalidDatabaseName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("a database name cannot be empty"));
    }
    if name.len() > 64 {
        return Err(bad("a database name has at most 64 characters"));
    }
    let mut chars = name.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_alphanumeric()) {
        return Err(bad("a database name must start with a letter or a digit"));
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/')) {
        return Err(bad(
            "a database name may contain only letters, digits, '_', '-' and '/'",
        ));
    }
    Ok(())
}

/// Whether a 1.x retention policy name means the database itself: none, `autogen` (the one
/// policy every database has) or `default`.
pub fn is_own_policy(rp: Option<&str>) -> bool {
    matches!(rp, None | Some("" | "autogen" | "default"))
}

/// The database a 1.x database and retention policy name: the database itself for its own
/// policy ([`is_own_policy`]), else `db/rp`, as InfluxDB 3 Core maps them (`/` is allowed in
/// database names for this).
pub fn v1_database(db: &str, rp: Option<&str>) -> String {
    match rp {
        Some(rp) if !is_own_policy(Some(rp)) => format!("{db}/{rp}"),
        _ => db.to_string(),
    }
}

/// The columns of a table created through the API: named, distinct, not `time`.
pub(super) fn check_new_columns(
    table: &str,
    columns: &[(String, ColumnType)],
) -> Result<(), CatalogError> {
    for (i, (name, ty)) in columns.iter().enumerate() {
        let bad = |reason| CatalogError::InvalidColumn {
            table: table.to_string(),
            name: name.clone(),
            reason,
        };
        if name.is_empty() {
            return Err(bad("a column name cannot be empty"));
        }
        if name == TIME_COLUMN {
            return Err(bad(
                "every table has a 'time' column; it cannot be declared",
            ));
        }
        if *ty == ColumnType::Time {
            return Err(bad("only the 'time' column holds timestamps"));
        }
        if columns[..i].iter().any(|(n, _)| n == name) {
            return Err(bad(
                "the name is given twice (a tag and a field cannot share it)",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_periods() {
        let h = 3_600_000_000_000;
        assert_eq!(parse_retention("none"), Ok(None));
        assert_eq!(parse_retention("1h"), Ok(Some(h)));
        assert_eq!(parse_retention("7d"), Ok(Some(7 * 24 * h)));
        assert_eq!(parse_retention("1h30m"), Ok(Some(h + h / 2)));
        for bad in ["", "30", "0d", "1x", "-1h", "99999999w"] {
            assert!(parse_retention(bad).is_err(), "{bad}");
        }
        assert_eq!(format_retention(7 * 24 * h), "1w");
        assert_eq!(format_retention(36 * h), "1d12h");
    }

    #[test]
    fn database_names() {
        for ok in ["a", "db_1", "9-x", "a/b", &"a".repeat(64)] {
            assert!(validate_database_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "_a", "-a", "/a", "a b", "a.b", "é", &"a".repeat(65)] {
            assert!(validate_database_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn v1_policies_name_databases() {
        assert_eq!(v1_database("d", None), "d");
        assert_eq!(v1_database("d", Some("")), "d");
        assert_eq!(v1_database("d", Some("autogen")), "d");
        assert_eq!(v1_database("d", Some("default")), "d");
        assert_eq!(v1_database("d", Some("week")), "d/week");
    }
}
