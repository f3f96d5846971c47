//! `gnocchi-delay-proxy LISTEN TARGET RTT_MS`: a TCP proxy that adds half of
//! `RTT_MS` to each direction, so that a backend on this machine answers as if
//! it were `RTT_MS` away. `scripts/bench-scaleout.sh --rtt MS` puts one in
//! front of each backend.
//!
//! Why a proxy and not `tc netem`: netem needs the kernel's `sch_netem`,
//! which some kernels (this project's CI and test VMs) do not have. The proxy
//! delays every chunk it reads by the same amount, in order, so each request
//! and each answer arrives half an RTT later; it does not limit bandwidth or
//! drop packets. Tokio's timer has a 1 ms resolution, so each direction's
//! delay is rounded up to the next millisecond tick (a 5 ms RTT is 5–7 ms).
//!
//! One thread, so that the proxy takes as little as possible of the CPU the
//! benchmark measures.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: gnocchi-delay-proxy LISTEN_ADDR TARGET_ADDR RTT_MS");
        std::process::exit(2);
    }
    let rtt: f64 = args[3].parse().unwrap_or_else(|_| {
        eprintln!("RTT_MS must be a number of milliseconds");
        std::process::exit(2)
    });
    let one_way = Duration::from_secs_f64(rtt.max(0.0) / 2000.0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(serve(&args[1], args[2].clone(), one_way)) {
        eprintln!("gnocchi-delay-proxy: {e}");
        std::process::exit(1);
    }
}

async fn serve(listen: &str, target: String, one_way: Duration) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    loop {
        let (client, _) = listener.accept().await?;
        let target = target.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(&target).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pump(cr, sw, one_way));
            tokio::spawn(pump(sr, cw, one_way));
        });
    }
}

/// Copy `from` to `to`, each chunk `delay` after it was read.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx
                    .send((Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}
