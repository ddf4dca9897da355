//! A real `adze lite` on free ports in a temporary data directory, for one test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use adze_sdk::{
    Client, Config, Context, Empty, RunStatus, Task, TaskError, TlsStrategy, Worker, Workflow,
};

pub struct Lite {
    child: Child,
    token: String,
    grpc: String,
    http: String,
    log: Arc<Mutex<Vec<String>>>,
    data: TempDir,
    flags: Vec<String>,
}

impl Lite {
    /// Starts the engine and waits until it prints how to connect.
    pub fn start() -> Lite {
        Lite::start_with(&[])
    }

    /// Starts the engine with extra `adze lite` flags.
    pub fn start_with(flags: &[&str]) -> Lite {
        let data = TempDir::new();
        let addresses = ["127.0.0.1:0", "127.0.0.1:0"];
        let (child, found, log) = spawn(data.path(), addresses, flags);
        Lite {
            child,
            token: found.token,
            grpc: found.grpc,
            http: found.http,
            log,
            data,
            flags: flags.iter().map(|flag| flag.to_string()).collect(),
        }
    }

    /// Kills the engine (SIGKILL, a crash) and starts it again on the same data and
    /// ports, so connected clients and workers must reconnect.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let http = self.http.trim_start_matches("http://").to_string();
        let flags: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        let addresses = [self.grpc.as_str(), http.as_str()];
        let (child, _, log) = spawn(self.data.path(), addresses, &flags);
        self.child = child;
        self.log = log;
    }

    /// A client in its own namespace, so workflows of different tests never meet.
    pub async fn client(&self, namespace: &str) -> Client {
        let config = Config::builder()
            .token(&self.token)
            .host_port(&self.grpc)
            .server_url(&self.http)
            .tls(TlsStrategy::None)
            .namespace(namespace)
            .build()
            .expect("a valid config");
        Client::connect(config)
            .await
            .expect("connecting to adze lite")
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// `GET path` on the engine's REST API with the token; the response body.
    pub fn http_get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let authority = self.http.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(authority).expect("connecting to REST");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {}\r\n\
             Connection: close\r\n\r\n",
            self.token
        )
        .expect("sending a REST request");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("reading a REST answer");
        response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
            .unwrap_or_default()
    }

    /// The REST address, `127.0.0.1:port`.
    pub fn http_addr(&self) -> &str {
        self.http.trim_start_matches("http://")
    }

    /// The plaintext gRPC address, `127.0.0.1:port`.
    pub fn grpc(&self) -> &str {
        &self.grpc
    }

    /// The engine's stderr so far, for failure messages.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Lite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a worker serving `workflow` (100 default slots).
pub async fn serve<I>(client: &Client, workflow: &Workflow<I>) -> Worker
where
    I: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    serve_all(client, &[workflow]).await
}

/// Starts a worker serving all of `workflows`.
pub async fn serve_all<I>(client: &Client, workflows: &[&Workflow<I>]) -> Worker
where
    I: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    let mut builder = client.worker("test-worker");
    for workflow in workflows {
        builder = builder.workflow(workflow);
    }
    builder.start().await.expect("starting the worker")
}

/// Checks that a worker shutting down is paused on the engine while it drains: a run
/// triggered then is not taken, and the running one completes.
pub async fn check_drain_pauses(lite: &Lite, client: &Client) {
    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
    let mut workflow = Workflow::<Empty>::new("slow");
    let slow = workflow.add(Task::new("slow", move |_: Empty, ctx: Context| {
        let started_tx = started_tx.clone();
        async move {
            let _ = started_tx.send(ctx.workflow_run_id().to_string());
            tokio::time::sleep(Duration::from_millis(1500)).await;
            Ok::<_, TaskError>("finished while draining".to_string())
        }
    }));
    let worker = serve(client, &workflow).await;
    let worker_path = format!("/api/v1/workers/{}", worker.id());
    let first = client.trigger(&workflow, &Empty {}).await.unwrap();
    assert_eq!(started.recv().await.as_deref(), Some(first.id()));
    let draining = tokio::spawn(worker.shutdown());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lite.http_get(&worker_path).contains("\"PAUSED\"") {
        assert!(
            Instant::now() < deadline,
            "the draining worker was never paused:\n{}",
            lite.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let later = client.trigger(&workflow, &Empty {}).await.unwrap();
    draining.await.unwrap();

    let output = client.wait(&first).await.unwrap();
    assert_eq!(output.get(&slow).unwrap(), "finished while draining");
    let details = client.run_details(&later).await.unwrap();
    assert_eq!(
        details.status,
        RunStatus::Queued,
        "a draining worker took work: {details:?}"
    );
    assert!(
        started.try_recv().is_err(),
        "the draining worker started another task"
    );
}

/// What the engine prints on start: how to connect.
struct Settings {
    token: String,
    grpc: String,
    http: String,
}

fn spawn(
    data: &Path,
    [grpc, http]: [&str; 2],
    flags: &[&str],
) -> (Child, Settings, Arc<Mutex<Vec<String>>>) {
    let mut child = Command::new(adze_binary())
        .args(["lite", "--data-dir"])
        .arg(data)
        .args(["--grpc-addr", grpc, "--http-addr", http])
        .args(flags)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning adze lite");
    let stderr = child.stderr.take().expect("piped stderr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (found_tx, found_rx) = std::sync::mpsc::channel();
    let lines = log.clone();
    // Keeps reading after start-up: a full pipe would block the engine's logging.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let export = line.trim().strip_prefix("export ");
            if let Some((name, value)) = export.and_then(|export| export.split_once('=')) {
                let _ = found_tx.send((name.to_string(), value.to_string()));
            }
            lines.lock().unwrap().push(line);
        }
    });
    let (mut token, mut grpc, mut http) = (None, None, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    while token.is_none() || grpc.is_none() || http.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok((name, value)) = found_rx.recv_timeout(left) else {
            panic!(
                "adze lite did not print its connection settings within 60 s:\n{}",
                log.lock().unwrap().join("\n")
            );
        };
        match name.as_str() {
            "HATCHET_CLIENT_TOKEN" => token = Some(value),
            "HATCHET_CLIENT_HOST_PORT" => grpc = Some(value),
            "HATCHET_CLIENT_SERVER_URL" => http = Some(value),
            _ => {}
        }
    }
    let settings = Settings {
        token: token.unwrap(),
        grpc: grpc.unwrap(),
        http: http.unwrap(),
    };
    (child, settings, log)
}

/// `target/debug/adze`, built once per test binary (a no-op when it is up to date), so a
/// plain `cargo test --workspace` from a clean clone works.
fn adze_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "adze"])
            .current_dir(&root)
            .status()
            .expect("running cargo build -p adze");
        assert!(status.success(), "cargo build -p adze failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        target.join("debug").join("adze")
    })
}

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("adze-sdk-it-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).expect("creating a temporary directory");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
