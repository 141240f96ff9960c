//! `arflow serve`: the web application (pages, REST API, one-click
//! unsubscribe, health, metrics) with the dunning worker running beside it
//! in the same process. Ctrl-C or SIGTERM stop accepting requests, finish
//! the ones in flight and let the worker finish the message it is sending.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result};
use arflow_demo::DemoParams;
use arflow_domain::analytics::cei::CeiVariant;
use arflow_domain::analytics::summary::SummaryConfig;
use arflow_domain::clock::Clock;
use arflow_dunning::worker::{WorkerOptions, run_worker};
use arflow_store::{NewUser, Role, Store};
use arflow_web::{AppState, WebConfig, secrets};

use crate::args::ServeArgs;
use crate::commands::report::{aging_config, dso_config};
use crate::commands::worker::StderrLog;
use crate::context::Context;
use crate::delivery;

/// The login `--demo` creates. Well known on purpose: it exists only in a
/// demo database, and the server listens on this machine only by default.
pub const DEMO_EMAIL: &str = "demo@example.com";
pub const DEMO_PASSWORD: &str = "arflow-demo";

pub fn run(ctx: Context, args: &ServeArgs) -> Result<()> {
    init_logging();
    let bind = args
        .bind
        .clone()
        .or_else(|| ctx.config.web.bind.clone())
        .unwrap_or_else(|| "127.0.0.1".to_string());
    let port = args.port.or(ctx.config.web.port).unwrap_or(8080);
    if args.demo {
        load_demo(&ctx)?;
    }
    let users = ctx.store.users(ctx.org.id)?;
    let web_config = web_config(&ctx)?;
    let renderer = delivery::renderer(&ctx)?;
    let courier = delivery::courier(&ctx)?;
    // The worker plans for every organization (tenant) in the database.
    let mut orgs = Vec::new();
    for id in ctx.store.organization_ids()? {
        if let Some(o) = ctx.store.organization(id)? {
            orgs.push(o);
        }
    }
    let store: Arc<dyn Store> = Arc::from(ctx.store);
    let clock: Arc<dyn Clock> = Arc::from(ctx.clock);
    let stop = Arc::new(AtomicBool::new(false));

    let worker = if args.no_worker {
        None
    } else {
        let (store, clock, stop) = (Arc::clone(&store), Arc::clone(&clock), Arc::clone(&stop));
        eprintln!("arflow serve: worker delivering {}", courier.describe());
        Some(std::thread::spawn(move || {
            run_worker(
                store.as_ref(),
                &orgs,
                renderer.as_ref(),
                courier.as_ref(),
                clock.as_ref(),
                &WorkerOptions::default(),
                &stop,
                &mut StderrLog,
            );
        }))
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the HTTP runtime")?;
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind((bind.as_str(), port))
            .await
            .with_context(|| format!("could not listen on {bind}:{port}"))?;
        let addr = listener.local_addr()?;
        eprintln!("arflow serve: listening on http://{addr} (Ctrl-C to stop)");
        if users.is_empty() {
            eprintln!(
                "arflow serve: no users yet; create one with `arflow user add EMAIL --role admin`"
            );
        } else if args.demo && users.iter().any(|u| u.email == DEMO_EMAIL && !u.disabled) {
            eprintln!("arflow serve: demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}");
        }
        let stop = Arc::clone(&stop);
        let shutdown = async move {
            shutdown_signal().await;
            stop.store(true, Ordering::SeqCst);
        };
        // Clones: the last reference to the store must be dropped outside
        // the runtime (the PostgreSQL client blocks when it closes).
        let state = AppState::new(Arc::clone(&store), Arc::clone(&clock), web_config);
        arflow_web::serve(listener, state, shutdown)
            .await
            .context("the HTTP server failed")
    });
    drop(runtime);
    // However the server ended, the worker stops too.
    stop.store(true, Ordering::SeqCst);
    if let Some(w) = worker
        && w.join().is_err()
    {
        anyhow::bail!("the dunning worker stopped with a panic");
    }
    served?;
    eprintln!("arflow serve: stopped");
    Ok(())
}

/// Structured request logs on stderr: `ARFLOW_LOG` filters (default
/// `info`), `ARFLOW_LOG_FORMAT=json` writes one JSON object per line.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("ARFLOW_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests running the command twice) is harmless.
    let _ = if std::env::var("ARFLOW_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The demo ledger and the demo login, into an empty database only.
fn load_demo(ctx: &Context) -> Result<()> {
    let org = ctx.org.id;
    if ctx.store.ledger_facts(org)?.invoices.is_empty() {
        let mut params = DemoParams::new(ctx.today()?);
        params.base_currency = ctx.org.base_currency;
        eprintln!(
            "arflow serve: the database is empty; loading the demo ledger ({} customers, {} invoices)",
            params.customers, params.invoices
        );
        ctx.store.apply(
            org,
            &arflow_dunning::demo::changes(&params),
            "demo",
            ctx.clock.now(),
        )?;
    }
    if ctx.store.user_by_email(DEMO_EMAIL)?.is_none() && ctx.store.users(org)?.is_empty() {
        let hash = secrets::hash_password(DEMO_PASSWORD)?;
        ctx.store.create_user(
            org,
            &NewUser {
                email: DEMO_EMAIL.to_string(),
                name: "Demo Admin".to_string(),
                role: Role::Admin,
                password_hash: hash,
            },
            "demo",
            ctx.clock.now(),
        )?;
    }
    Ok(())
}

/// The server's settings from `arflow.toml`.
fn web_config(ctx: &Context) -> Result<WebConfig> {
    let web = &ctx.config.web;
    let defaults = WebConfig::default();
    Ok(WebConfig {
        summary: SummaryConfig {
            aging: aging_config(ctx)?,
            dso: dso_config(ctx),
            cei_variant: CeiVariant::PeriodSales,
        },
        secure_cookies: web.secure_cookies.unwrap_or(false),
        session_idle: web
            .session_idle_hours
            .map(|h| jiff::SignedDuration::from_hours(i64::from(h.max(1))))
            .unwrap_or(defaults.session_idle),
        max_body_bytes: web
            .max_upload_mb
            .map(|mb| mb as usize * 1024 * 1024)
            .unwrap_or(defaults.max_body_bytes),
        delivery: delivery_lines(ctx),
    })
}

/// How email and SMS are configured, secrets replaced by "set"/"not set".
fn delivery_lines(ctx: &Context) -> Vec<(String, String)> {
    let set = |v: &Option<String>| if v.is_some() { "set" } else { "not set" }.to_string();
    let mut lines = Vec::new();
    match &ctx.config.email {
        None => lines.push((
            "Email".to_string(),
            format!(
                "no [email] section: messages are written to {}",
                ctx.data_dir.join("mail").display()
            ),
        )),
        Some(e) => {
            lines.push(("Email from".to_string(), e.from.address.clone()));
            match &e.smtp {
                None => lines.push((
                    "SMTP".to_string(),
                    format!(
                        "not configured: messages are written to {}",
                        ctx.data_dir.join("mail").display()
                    ),
                )),
                Some(s) => {
                    lines.push(("SMTP host".to_string(), s.host.clone()));
                    lines.push((
                        "SMTP port".to_string(),
                        s.port
                            .map_or("default for the security mode".to_string(), |p| {
                                p.to_string()
                            }),
                    ));
                    lines.push((
                        "SMTP security".to_string(),
                        format!("{:?}", s.security).to_lowercase(),
                    ));
                    lines.push((
                        "SMTP username".to_string(),
                        s.username.clone().unwrap_or_else(|| "none".to_string()),
                    ));
                    lines.push(("SMTP password".to_string(), set(&s.password)));
                }
            }
            lines.push((
                "DKIM signing".to_string(),
                if e.dkim.is_some() { "on" } else { "off" }.to_string(),
            ));
            lines.push((
                "Unsubscribe link base".to_string(),
                e.unsubscribe_base_url
                    .clone()
                    .unwrap_or_else(|| "not set".to_string()),
            ));
        }
    }
    match ctx.config.sms.as_ref().and_then(|s| s.twilio.as_ref()) {
        None => lines.push(("SMS".to_string(), "not configured".to_string())),
        Some(t) => {
            lines.push(("SMS provider".to_string(), "Twilio-compatible".to_string()));
            lines.push(("Twilio account".to_string(), t.account_sid.clone()));
            lines.push(("Twilio auth token".to_string(), "set".to_string()));
            lines.push((
                "SMS sender".to_string(),
                t.from
                    .clone()
                    .or_else(|| t.messaging_service_sid.clone())
                    .unwrap_or_default(),
            ));
        }
    }
    lines
}

/// Ctrl-C, or SIGTERM (what service managers send).
async fn shutdown_signal() {
    let ctrl_c = async {
        // If the handler cannot be installed, wait for SIGTERM alone.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
