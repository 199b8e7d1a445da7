//! The HTTP API of one shard: accepting connections, serving HTTP/1.1 with hyper, routing.
//!
//! Every shard runs this on its own listener (SO_REUSEPORT spreads connections). A request's
//! path finds its entry in the route table ([`routes`]), which decides authorization, the
//! allowed methods and the metrics label; [`dispatch`] hands it to its endpoint's module.

pub mod auth;
pub mod body;
pub mod caches;
pub mod configure;
pub mod errors;
pub mod io;
pub mod multipart;
pub mod params;
pub mod query;
pub mod response;
pub mod routes;
pub mod tokens;
pub mod v1_query;
pub mod write;

use std::convert::Infallible;
use std::rc::Rc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use auth::Caller;
pub use response::HttpResponse;
pub use routes::Route;
pub use write::WriteApi;

use crate::catalog::CacheKind;
use crate::query::Language;
use crate::server::shard::ShardCtx;

/// Accepts connections until the shard is told to stop.
pub async fn accept_loop(ctx: Rc<ShardCtx>, listener: glommio::net::TcpListener) {
    loop {
        let stop = ctx.stop_event.listen();
        if ctx.stopping.get() {
            break;
        }
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            stop.await;
            None
        })
        .await;
        match accepted {
            None => break,
            Some(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                let ctx = ctx.clone();
                ctx.connections.set(ctx.connections.get() + 1);
                glommio::spawn_local(async move {
                    serve_connection(&ctx, stream).await;
                    ctx.connections.set(ctx.connections.get() - 1);
                })
                .detach();
            }
            Some(Err(e)) => {
                // Out of file descriptors or a reset before accept: back off briefly, go on.
                tracing::warn!(shard = ctx.id, error = %e, "accept failed");
                glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

async fn serve_connection(ctx: &Rc<ShardCtx>, stream: glommio::net::TcpStream) {
    let svc_ctx = ctx.clone();
    let service = hyper::service::service_fn(move |req| {
        let ctx = svc_ctx.clone();
        async move { Ok::<_, Infallible>(route(&ctx, req).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // hyper's header timeout needs a Send timer, which glommio's is not.
    builder.header_read_timeout(None).keep_alive(true);
    let conn = builder.serve_connection(io::HyperStream(stream), service);
    let mut conn = std::pin::pin!(conn);
    let stop = ctx.stop_event.listen();
    if !ctx.stopping.get() {
        let finished = futures_lite::future::or(async { Some(conn.as_mut().await) }, async {
            stop.await;
            None
        })
        .await;
        if let Some(r) = finished {
            log_conn_error(r);
            return;
        }
    }
    // Stopping: finish the request in flight, then close instead of keeping alive.
    conn.as_mut().graceful_shutdown();
    log_conn_error(conn.await);
}

fn log_conn_error(r: Result<(), hyper::Error>) {
    if let Err(e) = r {
        if !e.is_incomplete_message() {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    }
}

/// Answers a request and counts it (by endpoint, status and time taken) for `/metrics`.
async fn route(ctx: &Rc<ShardCtx>, req: Request<Incoming>) -> HttpResponse {
    let started = std::time::Instant::now();
    let route = Route::find(req.uri().path());
    let response = answer(ctx, route, req).await;
    ctx.metrics
        .record_request(route, response.status().as_u16(), started.elapsed());
    response
}

async fn answer(ctx: &Rc<ShardCtx>, route: Option<Route>, req: Request<Incoming>) -> HttpResponse {
    let caller = match auth::gate(ctx, route, &req) {
        Ok(c) => c,
        Err(refused) => return *refused,
    };
    let Some(route) = route else {
        let path = req.uri().path();
        return response::v3_error(StatusCode::NOT_FOUND, format!("no endpoint at {path}"));
    };
    if !route.allows(req.method()) {
        return method_refused(route);
    }
    dispatch(ctx, route, req, caller).await
}

/// 405 with the methods the route's table entry allows.
pub(crate) fn method_refused(route: Route) -> HttpResponse {
    response::method_not_allowed(route.spec().allow)
}

/// The handler of each route (the table in [`routes`] says everything else about it).
async fn dispatch(
    ctx: &Rc<ShardCtx>,
    route: Route,
    req: Request<Incoming>,
    caller: Caller,
) -> HttpResponse {
    match route {
        Route::WriteLp => write::handle(ctx, WriteApi::V3, req, &caller).await,
        Route::WriteV2 => write::handle(ctx, WriteApi::V2, req, &caller).await,
        Route::WriteV1 => write::handle(ctx, WriteApi::V1, req, &caller).await,
        Route::QuerySql => query::handle(ctx, req, &caller, Language::Sql).await,
        Route::QueryInfluxQl => query::handle(ctx, req, &caller, Language::InfluxQl).await,
        Route::QueryV1 => v1_query::handle(ctx, req, &caller).await,
        Route::Database => configure::database(ctx, req).await,
        Route::Table => configure::table(ctx, req).await,
        Route::AdminToken
        | Route::AdminTokenRegenerate
        | Route::NamedAdminToken
        | Route::Tokens => tokens::handle(ctx, route, req).await,
        Route::LastCache => caches::handle(ctx, CacheKind::Last, req).await,
        Route::DistinctCache => caches::handle(ctx, CacheKind::Distinct, req).await,
        Route::Health => response::text(StatusCode::OK, "OK"),
        Route::Ping => ping(&req),
        Route::Metrics => metrics(ctx).await,
        Route::DebugBuffer => debug_buffer(ctx, &req).await,
        Route::DebugClock => advance_clock(&req),
    }
}

/// `POST /api/v3/debug/clock?advance_secs=N`: moves the server's clock forward (only with
/// `SHARDLINE_TEST_CLOCK=1`, for tests of expiry without sleeping).
fn advance_clock(req: &Request<Incoming>) -> HttpResponse {
    let q = params::query_map(req);
    match q.get("advance_secs").and_then(|v| v.parse::<u32>().ok()) {
        Some(secs) => {
            crate::advance_clock(i64::from(secs) * 1_000_000_000);
            response::json(
                StatusCode::OK,
                &serde_json::json!({"now_ns": crate::now_ns()}),
            )
        }
        None => response::v3_error(
            StatusCode::BAD_REQUEST,
            "give 'advance_secs', a whole number of seconds",
        ),
    }
}

/// `GET /metrics`: every shard's counters and gauges, with the catalog's and the process's.
async fn metrics(ctx: &ShardCtx) -> HttpResponse {
    let samples = ctx.metrics_all().await;
    let text = crate::metrics::Gathered::new(
        &samples,
        &ctx.catalog.snapshot(),
        ctx.catalog.tokens().entries().len(),
        crate::metrics::ProcessSample::read(),
    )
    .with_catalog_queue(ctx.catalog.queue_depth())
    .encode();
    response::owned(StatusCode::OK, crate::metrics::CONTENT_TYPE, text)
}

/// `GET/HEAD /ping`: 204 with the version headers, as InfluxDB 1.x and 2.x answer and their
/// clients require (influxdb-python's `ping()` refuses anything else); InfluxDB 3 Core's 200
/// with `{"version","revision","process_id"}` when the request asks for JSON (`Accept:
/// application/json`) or, as 1.x, with `?verbose=true`.
fn ping(req: &Request<Incoming>) -> HttpResponse {
    let wants_json = req
        .headers()
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"))
        || params::query_map(req)
            .get("verbose")
            .is_some_and(|v| v == "true");
    let mut r = if wants_json {
        let body = serde_json::json!({
            "version": crate::VERSION,
            "revision": crate::REVISION,
            "process_id": std::process::id().to_string(),
        });
        response::json(StatusCode::OK, &body)
    } else {
        response::empty(StatusCode::NO_CONTENT)
    };
    let h = r.headers_mut();
    h.insert(
        "X-Influxdb-Version",
        hyper::header::HeaderValue::from_static(concat!(
            "3.0.0-shardline.",
            env!("CARGO_PKG_VERSION")
        )),
    );
    h.insert(
        "X-Influxdb-Build",
        hyper::header::HeaderValue::from_static("Shardline"),
    );
    r
}

/// Every row the shards buffer for `?db=`, as a JSON array (for tests and debugging; the
/// SQL endpoint replaces it as the way to read data).
async fn debug_buffer(ctx: &ShardCtx, req: &Request<Incoming>) -> HttpResponse {
    let q = params::query_map(req);
    let Some(db) = q.get("db") else {
        return response::v3_error(
            StatusCode::BAD_REQUEST,
            "missing required query parameter 'db'",
        );
    };
    if ctx.catalog.snapshot().database(db).is_none() {
        return response::v3_error(StatusCode::NOT_FOUND, format!("database '{db}' not found"));
    }
    let rows = ctx.dump_all(db).await;
    response::json(StatusCode::OK, &serde_json::Value::Array(rows))
}
