//! Throwaway PostgreSQL clusters, made with the installed `initdb` and `pg_ctl` in the
//! temp directory on a free port. The shared one serves machines without a server and is
//! left running so later test processes reuse it (its port is kept in a file beside it);
//! a test that restarts its database gets a [`Cluster`] of its own.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use tokio::process::Command;

use crate::server;

/// Root may not run PostgreSQL: as root the binaries run as this user instead.
const SERVER_USER: &str = "postgres";
/// How long a lock left by a process that died is honoured.
const STALE_LOCK: Duration = Duration::from_secs(120);

/// The URL of the shared throwaway cluster's maintenance database, started if need be.
pub(crate) async fn start() -> Result<String, String> {
    let dir = std::env::temp_dir().join("adze-testdb-cluster");
    std::fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    let _lock = Lock::take(&dir).await?;
    if let Some(url) = running(&dir).await {
        return Ok(url);
    }
    let cluster = Cluster::init(dir).await?;
    cluster.start().await?;
    std::fs::write(cluster.dir.join("port"), cluster.port.to_string())
        .map_err(|error| format!("writing the cluster's port: {error}"))?;
    Ok(cluster.url())
}

/// A cluster of one test's own, which it may stop and start again (a database restart)
/// without disturbing other tests. Stopped and removed when dropped.
pub struct Cluster {
    dir: PathBuf,
    port: u16,
    binaries: PathBuf,
    as_root: bool,
    owned: bool,
}

impl Cluster {
    /// Makes and starts a new cluster in a directory of its own.
    pub(crate) async fn create() -> Result<Self, String> {
        let dir =
            std::env::temp_dir().join(format!("adze-testdb-own-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
        let mut cluster = Self::init(dir).await?;
        cluster.owned = true;
        cluster.start().await?;
        Ok(cluster)
    }

    /// Prepares a data directory in `dir` (unless it has one) and picks a free port.
    async fn init(dir: PathBuf) -> Result<Self, String> {
        let as_root = std::fs::metadata("/proc/self").is_ok_and(|me| me.uid() == 0);
        if as_root {
            run(Command::new("chown").arg(SERVER_USER).arg(&dir), false).await?;
        }
        let cluster = Self {
            port: free_port()?,
            binaries: binaries()?,
            as_root,
            owned: false,
            dir,
        };
        let data = cluster.data();
        if !data.join("PG_VERSION").exists() {
            let _ = std::fs::remove_dir_all(&data);
            let mut initdb = cluster.command("initdb");
            initdb
                .arg("--pgdata")
                .arg(&data)
                .args(["--username=postgres", "--auth=trust", "--encoding=UTF8"])
                .arg("--no-sync");
            run(&mut initdb, true).await?;
        }
        Ok(cluster)
    }

    /// The URL of the cluster's maintenance database.
    pub fn url(&self) -> String {
        url(self.port)
    }

    /// Starts the server and waits until it accepts connections.
    pub async fn start(&self) -> Result<(), String> {
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl
            .arg("--pgdata")
            .arg(self.data())
            .arg("--log")
            .arg(self.dir.join("server.log"))
            .args(["--wait", "--timeout=60", "-o"])
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1",
                self.port,
                self.dir.display()
            ))
            .arg("start");
        run(&mut pg_ctl, true).await?;
        server::connect(&self.url()).await.map(drop)
    }

    /// Stops the server the way an operator's restart does: sessions are ended, not
    /// waited for.
    pub async fn stop(&self) -> Result<(), String> {
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl
            .arg("--pgdata")
            .arg(self.data())
            .args(["--mode=fast", "--wait", "stop"]);
        run(&mut pg_ctl, true).await
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn command(&self, program: &str) -> Command {
        let program = self.binaries.join(program);
        if self.as_root {
            let mut command = Command::new("runuser");
            command.args(["-u", SERVER_USER, "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        let mut pg_ctl = self.command("pg_ctl").into_std();
        let _ = pg_ctl
            .arg("--pgdata")
            .arg(self.data())
            .args(["--mode=immediate", "--wait", "stop"])
            .stdin(Stdio::null())
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The URL of a cluster an earlier process started, if it still answers.
async fn running(dir: &Path) -> Option<String> {
    let port: u16 = std::fs::read_to_string(dir.join("port"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let url = url(port);
    server::connect(&url).await.ok().map(|_| url)
}

fn url(port: u16) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/postgres")
}

/// The `bin` directory of the newest PostgreSQL installed the Debian way.
fn binaries() -> Result<PathBuf, String> {
    let versions = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|error| format!("no PostgreSQL installed in /usr/lib/postgresql: {error}"))?;
    versions
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no initdb under /usr/lib/postgresql/*/bin".to_owned())
}

/// Runs a command to its end; the server it may start logs to its own file, so the
/// pipes close when the command exits.
async fn run(command: &mut Command, show_output: bool) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|error| format!("{command:?}: {error}"))?;
    if output.status.success() {
        return Ok(());
    }
    let detail = if show_output {
        String::from_utf8_lossy(&output.stderr).into_owned()
    } else {
        String::new()
    };
    Err(format!("{command:?} failed ({}): {detail}", output.status))
}

/// A port nothing listens on now; the OS is unlikely to hand it out again at once.
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|error| format!("finding a free port: {error}"))
}

/// One process at a time makes or checks the cluster: a directory as a lock, since
/// making one is atomic.
struct Lock(PathBuf);

impl Lock {
    async fn take(dir: &Path) -> Result<Self, String> {
        let path = dir.join("lock");
        loop {
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(Self(path)),
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                    let age = std::fs::metadata(&path)
                        .and_then(|lock| lock.modified())
                        .ok()
                        .and_then(|made| SystemTime::now().duration_since(made).ok());
                    if age.is_some_and(|age| age > STALE_LOCK) {
                        let _ = std::fs::remove_dir(&path);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => return Err(format!("{}: {error}", path.display())),
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}
