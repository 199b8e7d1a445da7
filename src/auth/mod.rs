//! Authentication and authorization: token strings and their hashes, what each request
//! needs, and whether a token grants it.
//!
//! Invariants:
//! - A token's text exists only in the response that created it (and in the client's hands):
//!   the catalog keeps its SHA-512 hash, logs never see it.
//! - A presented token is hashed and its hash compared in constant time against the stored
//!   hash its first bytes select; an unknown, expired or deleted token is refused the same way.
//! - Reading credentials never panics and never authenticates a malformed header.

pub mod credentials;

use std::sync::Arc;

use base64::Engine;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

/// Every token starts with this.
pub const TOKEN_PREFIX: &str = "apiv3_";
/// Random bytes in a token (base64url after the prefix).
const TOKEN_RANDOM_BYTES: usize = 64;
/// The name of the operator token.
pub const ADMIN_TOKEN_NAME: &str = "_admin";

/// A new token: the prefix and 64 random bytes from the OS, base64url without padding.
pub fn generate_token() -> Result<String, getrandom::Error> {
    let mut raw = [0u8; TOKEN_RANDOM_BYTES];
    getrandom::fill(&mut raw)?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    ))
}

/// The SHA-512 of a token's text: what the catalog stores.
pub fn hash_token(token: &str) -> [u8; 64] {
    Sha512::digest(token.as_bytes()).into()
}

/// Lower-case hex of a hash.
pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Reads a hash back from hex.
pub fn from_hex(text: &str) -> Option<[u8; 64]> {
    if text.len() != 128 {
        return None;
    }
    let mut out = [0u8; 64];
    for (i, chunk) in text.as_bytes().chunks(2).enumerate() {
        let pair = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

/// What a resource token may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// Databases by name; `None` is every database (`*`).
    Databases(Option<Vec<String>>),
    /// Server information: health, ping, metrics.
    System,
}

/// One grant of a resource token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub resource: Resource,
    pub read: bool,
    pub write: bool,
}

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grants {
    /// Everything (the `_admin` token and named admin tokens).
    Admin,
    Resources(Vec<Permission>),
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need<'a> {
    /// Write to a database.
    Write(&'a str),
    /// Read (query) a database.
    Read(&'a str),
    /// Health, ping, metrics.
    System,
    /// Managing databases, tables, caches and tokens.
    Admin,
    /// Any valid token (the request names no database; the handler refuses it).
    Authenticated,
}

impl Grants {
    pub fn allows(&self, need: Need<'_>) -> bool {
        let Grants::Resources(perms) = self else {
            return true;
        };
        let db_grant = |db: &str, want_write: bool| {
            perms.iter().any(|p| {
                let named = match &p.resource {
                    Resource::Databases(None) => true,
                    Resource::Databases(Some(names)) => names.iter().any(|n| n == db),
                    Resource::System => false,
                };
                named && if want_write { p.write } else { p.read }
            })
        };
        match need {
            Need::Write(db) => db_grant(db, true),
            Need::Read(db) => db_grant(db, false),
            Need::System => perms
                .iter()
                .any(|p| p.resource == Resource::System && p.read),
            Need::Admin => false,
            Need::Authenticated => true,
        }
    }
}

/// Whether `SHOW DATABASES` lists database `db` to the caller with `token` (`None`:
/// authorization is off): as 1.x lists a user's, the databases it may read or write.
pub fn shows_database(token: Option<&TokenEntry>, db: &str) -> bool {
    token.is_none_or(|t| t.grants.allows(Need::Read(db)) || t.grants.allows(Need::Write(db)))
}

/// One stored token, as authorization sees it.
#[derive(Debug, Clone)]
pub struct TokenEntry {
    pub id: u64,
    pub name: String,
    pub hash: [u8; 64],
    pub created_at_ns: i64,
    pub expiry_ns: Option<i64>,
    pub grants: Grants,
}

/// Every live token, published by the catalog; looked up on every request without a lock.
/// Cloning it is cheap (the map is persistent), so the catalog keeps one up to date and
/// publishes a copy with each change instead of building it again.
#[derive(Debug, Default, Clone)]
pub struct TokenSet {
    /// Keyed by the first 8 bytes of the hash; the full hash is compared in constant time.
    by_prefix: imbl::HashMap<u64, Vec<Arc<TokenEntry>>>,
    pub has_admin: bool,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the token is not valid (unknown, deleted or regenerated)")]
    Unknown,
    #[error("the token has expired")]
    Expired,
}

impl TokenSet {
    pub fn new(entries: impl IntoIterator<Item = TokenEntry>) -> Self {
        Self::from_shared(entries.into_iter().map(Arc::new))
    }

    /// A set of entries already shared.
    pub fn from_shared(entries: impl IntoIterator<Item = Arc<TokenEntry>>) -> Self {
        let mut set = TokenSet::default();
        for e in entries {
            set.insert(e);
        }
        set
    }

    /// Adds an entry (its hash is not in the set).
    pub fn insert(&mut self, e: Arc<TokenEntry>) {
        self.has_admin |= e.name == ADMIN_TOKEN_NAME;
        self.by_prefix
            .entry(prefix_key(&e.hash))
            .or_default()
            .push(e);
    }

    /// Removes the entry with this id and hash, if there is one.
    pub fn remove(&mut self, id: u64, hash: &[u8; 64]) {
        let key = prefix_key(hash);
        let Some(bucket) = self.by_prefix.get_mut(&key) else {
            return;
        };
        let Some(pos) = bucket.iter().position(|e| e.id == id) else {
            return;
        };
        let e = bucket.remove(pos);
        if bucket.is_empty() {
            self.by_prefix.remove(&key);
        }
        if e.name == ADMIN_TOKEN_NAME {
            self.has_admin = false;
        }
    }

    /// Every entry, in no order.
    pub fn entries(&self) -> Vec<Arc<TokenEntry>> {
        self.by_prefix.values().flatten().cloned().collect()
    }

    /// The entry of a presented token at `now_ns`.
    pub fn find(&self, token: &str, now_ns: i64) -> Result<Arc<TokenEntry>, Refused> {
        let hash = hash_token(token);
        let candidates = self.by_prefix.get(&prefix_key(&hash));
        let entry = candidates
            .into_iter()
            .flatten()
            .find(|e| bool::from(e.hash.ct_eq(&hash)))
            .ok_or(Refused::Unknown)?;
        if entry.expiry_ns.is_some_and(|at| at <= now_ns) {
            return Err(Refused::Expired);
        }
        Ok(entry.clone())
    }
}

fn prefix_key(hash: &[u8; 64]) -> u64 {
    u64::from_le_bytes(hash[..8].try_into().expect("8 bytes"))
}

/// Server-wide auth settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthPolicy {
    /// `--without-auth`: every request is allowed, token routes answer 405.
    pub disabled: bool,
    /// `--disable-authz`: these endpoints need no token.
    pub open_health: bool,
    pub open_ping: bool,
    pub open_metrics: bool,
}

impl AuthPolicy {
    /// Reads `--disable-authz health,ping,metrics`.
    pub fn with_open_endpoints(mut self, names: &[String]) -> Result<Self, String> {
        for n in names.iter().flat_map(|n| n.split(',')).map(str::trim) {
            match n {
                "health" => self.open_health = true,
                "ping" => self.open_ping = true,
                "metrics" => self.open_metrics = true,
                "" => {}
                other => {
                    return Err(format!(
                        "--disable-authz takes health, ping and metrics, not '{other}'"
                    ))
                }
            }
        }
        Ok(self)
    }

    /// Whether `--disable-authz` opened the endpoint of that name.
    pub fn opens(&self, name: &str) -> bool {
        match name {
            "health" => self.open_health,
            "ping" => self.open_ping,
            "metrics" => self.open_metrics,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, token: &str, grants: Grants, expiry_ns: Option<i64>) -> TokenEntry {
        TokenEntry {
            id,
            name: format!("t{id}"),
            hash: hash_token(token),
            created_at_ns: 0,
            expiry_ns,
            grants,
        }
    }

    #[test]
    fn tokens_are_prefixed_long_and_distinct() {
        let a = generate_token().unwrap();
        let b = generate_token().unwrap();
        assert!(a.starts_with(TOKEN_PREFIX));
        // 64 random bytes are 86 base64url characters.
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 86);
        assert!(a[TOKEN_PREFIX.len()..]
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(a, b);
    }

    #[test]
    fn hex_round_trips() {
        let h = hash_token("apiv3_x");
        assert_eq!(from_hex(&to_hex(&h)), Some(h));
        assert_eq!(from_hex("zz"), None);
    }

    #[test]
    fn lookup_refuses_unknown_and_expired_tokens() {
        let set = TokenSet::new([
            entry(1, "apiv3_live", Grants::Admin, None),
            entry(2, "apiv3_old", Grants::Admin, Some(100)),
        ]);
        assert_eq!(set.find("apiv3_live", 1_000).unwrap().id, 1);
        assert_eq!(set.find("apiv3_old", 99).unwrap().id, 2);
        assert_eq!(set.find("apiv3_old", 100).unwrap_err(), Refused::Expired);
        assert_eq!(set.find("apiv3_other", 0).unwrap_err(), Refused::Unknown);
        assert_eq!(set.find("", 0).unwrap_err(), Refused::Unknown);
    }

    #[test]
    fn permission_matrix() {
        let db = |names: Option<&[&str]>, read, write| Permission {
            resource: Resource::Databases(names.map(|n| n.iter().map(|s| s.to_string()).collect())),
            read,
            write,
        };
        let read_a = Grants::Resources(vec![db(Some(&["a"]), true, false)]);
        let write_a = Grants::Resources(vec![db(Some(&["a"]), false, true)]);
        let all = Grants::Resources(vec![db(None, true, true)]);
        let system = Grants::Resources(vec![Permission {
            resource: Resource::System,
            read: true,
            write: false,
        }]);
        let cases: [(&Grants, Need<'_>, bool); 17] = [
            (&Grants::Admin, Need::Admin, true),
            (&Grants::Admin, Need::Write("b"), true),
            (&read_a, Need::Read("a"), true),
            (&read_a, Need::Write("a"), false),
            (&read_a, Need::Read("b"), false),
            (&read_a, Need::Admin, false),
            (&read_a, Need::System, false),
            (&write_a, Need::Write("a"), true),
            (&write_a, Need::Read("a"), false),
            (&write_a, Need::Write("b"), false),
            (&all, Need::Write("zz"), true),
            (&all, Need::Read("zz"), true),
            (&all, Need::Admin, false),
            (&system, Need::System, true),
            (&system, Need::Read("a"), false),
            (&system, Need::Authenticated, true),
            (&write_a, Need::Authenticated, true),
        ];
        for (g, need, want) in cases {
            assert_eq!(g.allows(need), want, "{g:?} {need:?}");
        }
    }

    #[test]
    fn disable_authz_names() {
        let p = AuthPolicy::default()
            .with_open_endpoints(&["health,ping".into()])
            .unwrap();
        assert!(p.open_health && p.open_ping && !p.open_metrics);
        assert!(AuthPolicy::default()
            .with_open_endpoints(&["write".into()])
            .is_err());
    }
}
