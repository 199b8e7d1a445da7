//! Tokens in the catalog: their persisted form (hash only), the changes that create, replace
//! and delete them, and the [`TokenSet`] published to every shard.
//!
//! Invariants:
//! - Only the SHA-512 hash of a token is stored, as hex; the text never reaches the catalog.
//! - Token names are unique; there is at most one `_admin` token. Ids are never reused.
//! - Regenerating the admin token gives it a new hash (and id), so the old text stops working
//!   in the same catalog publish that makes the new one work.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::CatalogError;
use crate::auth::{from_hex, Grants, Permission, Resource, TokenEntry, TokenSet, ADMIN_TOKEN_NAME};

/// One grant as the API and the catalog file spell it (`ResourceTokenObject.permissions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionSpec {
    pub resource_type: String,
    #[serde(default)]
    pub resource_identifier: Vec<String>,
    #[serde(default)]
    pub actions: Vec<String>,
}

impl PermissionSpec {
    /// Checks the spelling and returns what it grants.
    pub fn grant(&self) -> Result<Permission, String> {
        let mut read = false;
        let mut write = false;
        if self.actions.is_empty() {
            return Err("a permission needs at least one action: read or write".into());
        }
        for a in &self.actions {
            match a.as_str() {
                "read" => read = true,
                "write" => write = true,
                "*" => {
                    read = true;
                    write = true;
                }
                other => return Err(format!("unknown action '{other}': use read or write")),
            }
        }
        let any = self.resource_identifier.iter().any(|r| r == "*");
        let resource = match self.resource_type.as_str() {
            "db" => {
                if self.resource_identifier.is_empty() {
                    return Err(
                        "a db permission names its databases in resource_identifier, or '*'".into(),
                    );
                }
                if any {
                    Resource::Databases(None)
                } else {
                    for name in &self.resource_identifier {
                        super::validate_database_name(name).map_err(|e| e.to_string())?;
                    }
                    Resource::Databases(Some(self.resource_identifier.clone()))
                }
            }
            "system" => {
                if write {
                    return Err("system information can only be read".into());
                }
                Resource::System
            }
            other => return Err(format!("unknown resource_type '{other}': use db or system")),
        };
        Ok(Permission {
            resource,
            read,
            write,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PToken {
    pub(crate) id: u64,
    pub(crate) name: String,
    /// Hex SHA-512 of the token text.
    pub(crate) hash: String,
    pub(crate) created_at_ns: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expiry_ns: Option<i64>,
    #[serde(default)]
    pub(crate) admin: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) permissions: Vec<PermissionSpec>,
}

/// A token to add: its hash (hex) and what it may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewToken {
    pub name: String,
    pub hash: String,
    pub expiry_ns: Option<i64>,
    /// `None` for an admin token.
    pub permissions: Option<Vec<PermissionSpec>>,
}

/// A change to the tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenChange {
    /// The first `_admin` token; refused once one exists.
    CreateAdmin {
        hash: String,
    },
    /// A new `_admin` hash, revoking the old one; refused while there is none.
    RegenerateAdmin {
        hash: String,
    },
    /// `--admin-token-file`: `_admin` gets this hash, created or replaced.
    InstallAdmin {
        hash: String,
    },
    /// A named admin token or a resource token.
    Create(NewToken),
    Delete {
        id: u64,
    },
}

/// The tokens part of the persisted catalog.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct PTokens {
    #[serde(
        default,
        skip_serializing_if = "imbl::Vector::is_empty",
        with = "super::arc_list"
    )]
    pub(crate) list: imbl::Vector<Arc<PToken>>,
    #[serde(default)]
    pub(crate) next_id: u64,
    /// The published form of `list`, kept up to date by every change (rebuilt by
    /// [`PTokens::reindex`] after loading).
    #[serde(skip)]
    set: TokenSet,
    /// Token ids by name and the hashes in use, kept with `list` (rebuilt by `reindex`), so
    /// a change checks uniqueness without reading every token. `list` is in id order (ids
    /// only grow), so a token is found by binary search.
    #[serde(skip)]
    by_name: imbl::HashMap<String, u64>,
    #[serde(skip)]
    hashes: imbl::HashSet<String>,
}

impl PTokens {
    /// Applies a change at `now_ns`; says whether anything changed. On an error nothing
    /// changed.
    pub(crate) fn apply(
        &mut self,
        change: &TokenChange,
        now_ns: i64,
    ) -> Result<bool, CatalogError> {
        let admin_pos = self
            .by_name
            .get(ADMIN_TOKEN_NAME)
            .and_then(|id| self.position(*id));
        match change {
            TokenChange::CreateAdmin { hash } => {
                if admin_pos.is_some() {
                    return Err(CatalogError::AdminTokenExists);
                }
                self.push(ADMIN_TOKEN_NAME, hash, None, true, Vec::new(), now_ns)?;
            }
            TokenChange::RegenerateAdmin { hash } => {
                let pos = admin_pos.ok_or(CatalogError::NoAdminToken)?;
                self.check_hash(hash)?;
                self.remove_at(pos);
                self.push(ADMIN_TOKEN_NAME, hash, None, true, Vec::new(), now_ns)?;
            }
            TokenChange::InstallAdmin { hash } => {
                if let Some(pos) = admin_pos {
                    if self.list[pos].hash == *hash {
                        return Ok(false);
                    }
                    self.check_hash(hash)?;
                    self.remove_at(pos);
                }
                self.push(ADMIN_TOKEN_NAME, hash, None, true, Vec::new(), now_ns)?;
            }
            TokenChange::Create(t) => {
                if t.name.is_empty() || t.name.chars().any(char::is_control) || t.name.len() > 256 {
                    return Err(CatalogError::InvalidToken(
                        "a token name is 1 to 256 printable characters".into(),
                    ));
                }
                if self.by_name.contains_key(&t.name) {
                    return Err(CatalogError::TokenExists(t.name.clone()));
                }
                let (admin, perms) = match &t.permissions {
                    None => (true, Vec::new()),
                    Some(p) => {
                        if p.is_empty() {
                            return Err(CatalogError::InvalidToken(
                                "a resource token needs at least one permission".into(),
                            ));
                        }
                        for spec in p {
                            spec.grant().map_err(CatalogError::InvalidToken)?;
                        }
                        (false, p.clone())
                    }
                };
                self.push(&t.name, &t.hash, t.expiry_ns, admin, perms, now_ns)?;
            }
            TokenChange::Delete { id } => {
                let pos = self.position(*id).ok_or(CatalogError::TokenNotFound(*id))?;
                if self.list[pos].name == ADMIN_TOKEN_NAME {
                    return Err(CatalogError::InvalidToken(
                        "the _admin token cannot be deleted; regenerate it instead".into(),
                    ));
                }
                self.remove_at(pos);
            }
        }
        Ok(true)
    }

    /// Refuses a hash that is not 128 hex digits or that another token already has.
    fn check_hash(&self, hash: &str) -> Result<(), CatalogError> {
        if from_hex(hash).is_none() {
            return Err(CatalogError::InvalidToken(
                "a token hash is 128 hex digits".into(),
            ));
        }
        if self.hashes.contains(hash) {
            // Only a reused --admin-token-file text could collide; refuse rather than alias.
            return Err(CatalogError::InvalidToken(
                "this token is already in use by another token name".into(),
            ));
        }
        Ok(())
    }

    fn position(&self, id: u64) -> Option<usize> {
        self.list.binary_search_by_key(&id, |t| t.id).ok()
    }

    fn remove_at(&mut self, pos: usize) {
        let t = self.list.remove(pos);
        self.by_name.remove(&t.name);
        self.hashes.remove(&t.hash);
        if let Some(hash) = from_hex(&t.hash) {
            self.set.remove(t.id, &hash);
        }
    }

    fn push(
        &mut self,
        name: &str,
        hash: &str,
        expiry_ns: Option<i64>,
        admin: bool,
        permissions: Vec<PermissionSpec>,
        now_ns: i64,
    ) -> Result<(), CatalogError> {
        self.check_hash(hash)?;
        let token = PToken {
            id: self.next_id,
            name: name.to_string(),
            hash: hash.to_string(),
            created_at_ns: now_ns,
            expiry_ns,
            admin,
            permissions,
        };
        let published = entry(&token).map_err(|r| CatalogError::InvalidToken(r.to_string()))?;
        self.set.insert(Arc::new(published));
        self.by_name.insert(token.name.clone(), token.id);
        self.hashes.insert(token.hash.clone());
        self.list.push_back(Arc::new(token));
        self.next_id += 1;
        Ok(())
    }

    /// Rebuilds the published set after loading. Entries that fail to read (a hand-edited
    /// file) are left out and logged rather than stopping the server.
    pub(crate) fn reindex(&mut self) {
        // Files written before ids were kept in order still load in order.
        let mut sorted: Vec<_> = self.list.iter().cloned().collect();
        sorted.sort_by_key(|t| t.id);
        self.list = sorted.into_iter().collect();
        self.by_name = self.list.iter().map(|t| (t.name.clone(), t.id)).collect();
        self.hashes = self.list.iter().map(|t| t.hash.clone()).collect();
        self.set = TokenSet::from_shared(self.list.iter().filter_map(|t| match entry(t) {
            Ok(e) => Some(Arc::new(e)),
            Err(reason) => {
                tracing::error!(token = %t.name, %reason, "ignoring an unreadable token in the catalog");
                None
            }
        }));
    }

    /// The published form (a cheap copy of the one kept up to date).
    pub(crate) fn token_set(&self) -> TokenSet {
        self.set.clone()
    }
}

fn entry(t: &PToken) -> Result<TokenEntry, String> {
    let hash = from_hex(&t.hash).ok_or("its hash is not 128 hex digits")?;
    let grants = if t.admin {
        Grants::Admin
    } else {
        Grants::Resources(
            t.permissions
                .iter()
                .map(PermissionSpec::grant)
                .collect::<Result<_, _>>()?,
        )
    };
    Ok(TokenEntry {
        id: t.id,
        name: t.name.clone(),
        hash,
        created_at_ns: t.created_at_ns,
        expiry_ns: t.expiry_ns,
        grants,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{hash_token, to_hex};

    fn h(t: &str) -> String {
        to_hex(&hash_token(t))
    }

    #[test]
    fn admin_once_then_regenerate_revokes_the_old_hash() {
        let mut t = PTokens::default();
        t.apply(&TokenChange::CreateAdmin { hash: h("a1") }, 1)
            .unwrap();
        assert!(matches!(
            t.apply(&TokenChange::CreateAdmin { hash: h("a2") }, 2),
            Err(CatalogError::AdminTokenExists)
        ));
        t.apply(&TokenChange::RegenerateAdmin { hash: h("a2") }, 3)
            .unwrap();
        let set = t.token_set();
        assert!(set.find("a1", 4).is_err());
        assert_eq!(set.find("a2", 4).unwrap().id, 1);
        assert!(set.has_admin);
    }

    #[test]
    fn names_unique_permissions_checked_admin_not_deletable() {
        let mut t = PTokens::default();
        let spec = |ty: &str, ids: &[&str], actions: &[&str]| PermissionSpec {
            resource_type: ty.into(),
            resource_identifier: ids.iter().map(|s| s.to_string()).collect(),
            actions: actions.iter().map(|s| s.to_string()).collect(),
        };
        let new = |name: &str, perms: Option<Vec<PermissionSpec>>| {
            TokenChange::Create(NewToken {
                name: name.into(),
                hash: h(name),
                expiry_ns: None,
                permissions: perms,
            })
        };
        t.apply(&new("r", Some(vec![spec("db", &["a"], &["read"])])), 1)
            .unwrap();
        assert!(matches!(
            t.apply(&new("r", None), 1),
            Err(CatalogError::TokenExists(_))
        ));
        for bad in [
            vec![spec("db", &[], &["read"])],
            vec![spec("db", &["a"], &[])],
            vec![spec("db", &["a"], &["delete"])],
            vec![spec("system", &["*"], &["write"])],
            vec![spec("bucket", &["a"], &["read"])],
            vec![spec("db", &["bad name"], &["read"])],
        ] {
            assert!(matches!(
                t.apply(&new("x", Some(bad)), 1),
                Err(CatalogError::InvalidToken(_))
            ));
        }
        t.apply(&TokenChange::InstallAdmin { hash: h("adm") }, 1)
            .unwrap();
        let admin_id = t
            .list
            .iter()
            .find(|x| x.name == ADMIN_TOKEN_NAME)
            .unwrap()
            .id;
        assert!(t.apply(&TokenChange::Delete { id: admin_id }, 1).is_err());
        assert!(matches!(
            t.apply(&TokenChange::Delete { id: 99 }, 1),
            Err(CatalogError::TokenNotFound(99))
        ));
        t.apply(&TokenChange::Delete { id: 0 }, 1).unwrap();
        assert!(t.token_set().find("r", 2).is_err());
    }
}
