//! `arflow serve`: the HTTP server (health, one-click unsubscribe), with the
//! dunning worker running beside it in the same process. Ctrl-C or SIGTERM
//! stop accepting requests, finish the ones in flight and let the worker
//! finish the message it is sending.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result};
use arflow_domain::clock::Clock;
use arflow_dunning::worker::{WorkerOptions, run_worker};
use arflow_store::Store;
use arflow_web::AppState;

use crate::args::ServeArgs;
use crate::commands::worker::StderrLog;
use crate::context::Context;
use crate::delivery;

pub fn run(ctx: Context, args: &ServeArgs) -> Result<()> {
    let renderer = delivery::renderer(&ctx)?;
    let courier = delivery::courier(&ctx)?;
    let org = ctx.org.clone();
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
                &[org],
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
        let listener = tokio::net::TcpListener::bind((args.bind.as_str(), args.port))
            .await
            .with_context(|| format!("could not listen on {}:{}", args.bind, args.port))?;
        let addr = listener.local_addr()?;
        eprintln!("arflow serve: listening on http://{addr} (Ctrl-C to stop)");
        let stop = Arc::clone(&stop);
        let shutdown = async move {
            shutdown_signal().await;
            stop.store(true, Ordering::SeqCst);
        };
        // Clones: the last reference to the store must be dropped outside
        // the runtime (the PostgreSQL client blocks when it closes).
        let state = AppState {
            store: Arc::clone(&store),
            clock: Arc::clone(&clock),
        };
        arflow_web::serve(listener, state, shutdown)
            .await
            .context("the HTTP server failed")
    });
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
