//! The route table: every endpoint the server answers, once. From an entry follow the paths
//! it answers at, the methods it allows (others get 405 with `Allow`), what a caller needs to
//! reach it, the shape its errors take, and its `path` label in `/metrics`. The handler for
//! each [`Route`] is chosen by one exhaustive match in [`super::dispatch`], so a new endpoint
//! is one entry here plus its handler module.
//!
//! Invariants: no path appears in two entries; [`Route::ALL`] lists every route in the order
//! of [`ROUTES`] (a test checks both); labels are fixed strings, never request text.

use hyper::Method;

use super::errors::ErrorShape;

/// One endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Route {
    WriteLp,
    WriteV2,
    WriteV1,
    QuerySql,
    QueryInfluxQl,
    /// `/query`: InfluxDB 1.x's query API.
    QueryV1,
    Database,
    Table,
    /// `POST .../token/admin`: the first admin token, open without one.
    AdminToken,
    AdminTokenRegenerate,
    NamedAdminToken,
    /// Resource tokens: create, list, delete.
    Tokens,
    LastCache,
    DistinctCache,
    Health,
    Ping,
    Metrics,
    DebugBuffer,
    /// Only with `SHARDLINE_TEST_CLOCK=1`; otherwise the path is unknown.
    DebugClock,
}

/// What a caller needs to reach an endpoint (with authentication on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing: creating the first admin token (its handler refuses a second).
    Open,
    /// A token that may read system information, unless `--disable-authz` names the
    /// endpoint (`health`, `ping` or `metrics`).
    System(&'static str),
    /// Any valid token; the handler checks the database it reads or writes once it has read
    /// its parameters (they may be in the body).
    Database,
    /// An admin token.
    Admin,
}

/// One entry of the table.
#[derive(Debug)]
pub struct Spec {
    pub route: Route,
    /// The first is the canonical path.
    pub paths: &'static [&'static str],
    pub methods: &'static [Method],
    /// `Allow` for a 405: `methods`, comma-separated.
    pub allow: &'static str,
    pub access: Access,
    /// The token may also come as `?p=` (the v1 API's way).
    pub token_in_query: bool,
    pub errors: ErrorShape,
    /// The `path` label of the HTTP metrics.
    pub label: &'static str,
}

const GET: Method = Method::GET;
const HEAD: Method = Method::HEAD;
const POST: Method = Method::POST;
const PUT: Method = Method::PUT;
const DELETE: Method = Method::DELETE;

/// Every endpoint.
pub static ROUTES: [Spec; 19] = [
    Spec {
        route: Route::WriteLp,
        paths: &["/api/v3/write_lp"],
        methods: &[POST],
        allow: "POST",
        access: Access::Database,
        token_in_query: false,
        errors: ErrorShape::V3,
        label: "/api/v3/write_lp",
    },
    Spec {
        route: Route::WriteV2,
        paths: &["/api/v2/write"],
        methods: &[POST],
        allow: "POST",
        access: Access::Database,
        token_in_query: false,
        errors: ErrorShape::Compat,
        label: "/api/v2/write",
    },
    Spec {
        route: Route::WriteV1,
        paths: &["/write"],
        methods: &[POST],
        allow: "POST",
        access: Access::Database,
        token_in_query: true,
        errors: ErrorShape::Compat,
        label: "/write",
    },
    Spec {
        route: Route::QuerySql,
        paths: &["/api/v3/query_sql"],
        methods: &[GET, POST],
        allow: "GET, POST",
        access: Access::Database,
        token_in_query: false,
        errors: ErrorShape::V3,
        label: "/api/v3/query_sql",
    },
    Spec {
        route: Route::QueryInfluxQl,
        paths: &["/api/v3/query_influxql"],
        methods: &[GET, POST],
        allow: "GET, POST",
        access: Access::Database,
        token_in_query: false,
        errors: ErrorShape::V3,
        label: "/api/v3/query_influxql",
    },
    Spec {
        route: Route::QueryV1,
        paths: &["/query"],
        methods: &[GET, POST],
        allow: "GET, POST",
        access: Access::Database,
        token_in_query: true,
        errors: ErrorShape::V3,
        label: "/query",
    },
    Spec {
        route: Route::Database,
        paths: &["/api/v3/configure/database"],
        methods: &[GET, POST, PUT, DELETE],
        allow: "GET, POST, PUT, DELETE",
        access: Access::Admin,
        token_in_query: false,
        errors: ErrorShape::V3,
        label: "/api/v3/configure/database",
    },
    Spec {
        route: Route::Table,
        paths: &["/api/v3/configure/table"],
        methods: &[POST, PUT, DELETE],
        allow: "POST, PUT, DELETE",
        access: Access::Admin,
        token_in_query: false,
        errors: ErrorShape::V3,
        label: "/api/v3/configure/table",
    },
    Spec {
        route: Route::AdminToken,
        paths: &["/api/v3/configure/token/admin"],
        methods: &[POST],
        allow: "POST",
        access: Access::Open,
        token_in_query: false,
        errors: ErrorShape::V3,
        label: "/api/v3/configure/token/admin",
    },
    Spec {
        route: Route::AdminTokenRegenerate,
        paths: &["/api/v3/configure/token/admin/regenerate"],
        methods: &[POST],
        allow: "POST",
        access: Access::Admin,
        token_in_query: false,
        errors: ErrorShape::V3,
        label: "/api/v3/configure/token/admin/regenerate",
    },
    Spec {
        route: Route::NamedAdminToken,
        paths: &["/api/v3/configure/token/named_admin"],
        methods: &[POST],
        allow: "POST",
        access: Access::Admin,
        token_in_query: false,
        errors: ErrorShape::V3,
        label: "/api/v3/configure/token/named_admin",
    },
    Spec {
        route: Route::Tokens,
        paths: &[
            "/api/v3/configure/token",
            "/api/v3/enterprise/configure/token",
        ],
        methods: &[GET, POST, DELETE],
        allow: "GET, POST, DELETE",
        access: Access::Admin,
        token_in_query: false,
        errors: ErrorShape::V3,
        label: "/api/v3/configure/token",
    },
    Spec {
        route: Route::LastCache,
        paths: &["/api/v3/configure/last_cache"],
        methods: &[POST, DELETE],
        allow: "POST, DELETE",
        access: Access::Admin,
        token_in_query: false,
        errors: ErrorShape::V3,
        label: "/api/v3/configure/last_cache",
    },
    Spec {
        route: Route::DistinctCache,
        paths: &["/api/v3/configure/distinct_cache"],
        methods: &[POST, DELETE],
        allow: "POST, DELETE",
        access: Access::Admin,
        token_in_query: false,
        errors: ErrorShape::V3,
        label: "/api/v3/configure/distinct_cache",
    },
    Spec {
        route: Route::Health,
        paths: &["/health", "/api/v1/health"],
        methods: &[GET, HEAD],
        allow: "GET, HEAD",
        access: Access::System("health"),
        token_in_query: false,
        errors: ErrorShape::V3,
        label: "/health",
    },
    Spec {
        route: Route::Ping,
        paths: &["/ping"],
        methods: &[GET, HEAD],
        allow: "GET, HEAD",
        access: Access::System("ping"),
        token_in_query: false,
        errors: ErrorShape::V3,
        label: "/ping",
    },
    Spec {
        route: Route::Metrics,
        paths: &["/metrics"],
        methods: &[GET],
        allow: "GET",
        access: Access::System("metrics"),
        token_in_query: false,
        errors: ErrorShape::V3,
        label: "/metrics",
    },
    Spec {
        route: Route::DebugBuffer,
        paths: &["/api/v3/debug/buffer"],
        methods: &[GET],
        allow: "GET",
        access: Access::Admin,
        token_in_query: false,
        errors: ErrorShape::V3,
        label: "/api/v3/debug/buffer",
    },
    Spec {
        route: Route::DebugClock,
        paths: &["/api/v3/debug/clock"],
        methods: &[POST],
        allow: "POST",
        access: Access::Admin,
        token_in_query: false,
        errors: ErrorShape::V3,
        label: "/api/v3/debug/clock",
    },
];

/// The `path` label of requests to no endpoint.
pub const OTHER_LABEL: &str = "other";

impl Route {
    /// Every route, in table order.
    pub const ALL: [Route; 19] = [
        Route::WriteLp,
        Route::WriteV2,
        Route::WriteV1,
        Route::QuerySql,
        Route::QueryInfluxQl,
        Route::QueryV1,
        Route::Database,
        Route::Table,
        Route::AdminToken,
        Route::AdminTokenRegenerate,
        Route::NamedAdminToken,
        Route::Tokens,
        Route::LastCache,
        Route::DistinctCache,
        Route::Health,
        Route::Ping,
        Route::Metrics,
        Route::DebugBuffer,
        Route::DebugClock,
    ];

    /// The route at `path`, if one is served there.
    pub fn find(path: &str) -> Option<Route> {
        let spec = ROUTES.iter().find(|s| s.paths.contains(&path))?;
        (spec.route != Route::DebugClock || crate::test_clock_enabled()).then_some(spec.route)
    }

    pub fn spec(self) -> &'static Spec {
        &ROUTES[self.index()]
    }

    /// Its position in [`Route::ALL`] (and [`ROUTES`]).
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn label(self) -> &'static str {
        self.spec().label
    }

    pub fn allows(self, method: &Method) -> bool {
        self.spec().methods.contains(method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_route_once_in_order() {
        for (i, r) in Route::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert_eq!(ROUTES[i].route, *r, "ROUTES[{i}]");
            let s = r.spec();
            assert_eq!(
                s.allow,
                s.methods
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            assert_eq!(
                s.label, s.paths[0],
                "{r:?}: the label is the canonical path"
            );
        }
        let mut paths: Vec<_> = ROUTES.iter().flat_map(|s| s.paths.iter()).collect();
        let n = paths.len();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), n, "a path is in two entries");
    }

    #[test]
    fn paths_find_their_routes() {
        assert_eq!(Route::find("/api/v1/health"), Some(Route::Health));
        assert_eq!(
            Route::find("/api/v3/enterprise/configure/token"),
            Some(Route::Tokens)
        );
        assert_eq!(
            Route::find("/api/v3/configure/token/admin"),
            Some(Route::AdminToken)
        );
        assert_eq!(Route::find("/wp-admin/x"), None);
        assert_eq!(Route::find("/api/v3/debugger"), None);
        assert_eq!(Route::find("/api/v3/write_lp/"), None);
    }
}
