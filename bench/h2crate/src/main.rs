//! h2 (hyperium) on async-io sockets through tokio-util's compat, no tokio runtime:
//! N cleartext prior-knowledge connections to targets read from a file, C at once, each
//! one request (END_STREAM) read to its response head, then dropped.
use async_io::Async;
use std::cell::Cell;
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use tokio_util::compat::FuturesAsyncReadCompatExt;

async fn probe(ex: &async_executor::LocalExecutor<'_>, addr: SocketAddr) -> Result<u16, String> {
    let tcp = Async::<TcpStream>::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let (client, conn) = h2::client::handshake(tcp.compat())
        .await
        .map_err(|e| e.to_string())?;
    let driver = ex.spawn(async move {
        let _ = conn.await;
    });
    let mut client = client.ready().await.map_err(|e| e.to_string())?;
    let req = http::Request::builder()
        .uri(format!("http://{addr}/"))
        .header("user-agent", "h2exp")
        .body(())
        .unwrap();
    let (resp, _) = client.send_request(req, true).map_err(|e| e.to_string())?;
    let resp = resp.await.map_err(|e| e.to_string())?;
    drop(driver);
    Ok(resp.status().as_u16())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let targets: Vec<SocketAddr> = std::fs::read_to_string(&args[1])
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    let conc: usize = args[2].parse().unwrap();
    let ex: &'static async_executor::LocalExecutor<'static> =
        Box::leak(Box::new(async_executor::LocalExecutor::new()));
    let ok = Rc::new(Cell::new(0usize));
    let sem = std::sync::Arc::new(async_lock::Semaphore::new(conc));
    async_io::block_on(ex.run(async {
        let mut tasks = Vec::new();
        for &t in &targets {
            let permit = sem.acquire_arc().await;
            let ok = ok.clone();
            let exr = ex;
            tasks.push(ex.spawn(async move {
                if let Ok(200) = probe(exr, t).await {
                    ok.set(ok.get() + 1);
                }
                drop(permit);
            }));
        }
        for t in tasks {
            t.await;
        }
    }));
    eprintln!("{} of {} ok", ok.get(), targets.len());
}
