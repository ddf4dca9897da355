//! A throwaway PostgreSQL cluster for machines without a server: made with the installed
//! `initdb` and `pg_ctl` in the temp directory, on a free port, and left running so later
//! test processes reuse it (its port is kept in a file beside it).

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

/// The URL of the throwaway cluster's maintenance database, started if need be.
pub(crate) async fn start() -> Result<String, String> {
    let dir = std::env::temp_dir().join("adze-testdb-cluster");
    std::fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    let _lock = Lock::take(&dir).await?;
    if let Some(url) = running(&dir).await {
        return Ok(url);
    }
    let binaries = binaries()?;
    let as_root = std::fs::metadata("/proc/self").is_ok_and(|me| me.uid() == 0);
    if as_root {
        run(Command::new("chown").arg(SERVER_USER).arg(&dir), false).await?;
    }
    let data = dir.join("data");
    if !data.join("PG_VERSION").exists() {
        let _ = std::fs::remove_dir_all(&data);
        let mut initdb = command(&binaries.join("initdb"), as_root);
        initdb
            .arg("--pgdata")
            .arg(&data)
            .args(["--username=postgres", "--auth=trust", "--encoding=UTF8"])
            .arg("--no-sync");
        run(&mut initdb, true).await?;
    }
    let port = free_port()?;
    let mut pg_ctl = command(&binaries.join("pg_ctl"), as_root);
    pg_ctl
        .arg("--pgdata")
        .arg(&data)
        .arg("--log")
        .arg(dir.join("server.log"))
        .args(["--wait", "--timeout=60", "-o"])
        .arg(format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1",
            dir.display()
        ))
        .arg("start");
    run(&mut pg_ctl, true).await?;
    std::fs::write(dir.join("port"), port.to_string())
        .map_err(|error| format!("writing the cluster's port: {error}"))?;
    let url = url(port);
    server::connect(&url).await?;
    Ok(url)
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

fn command(program: &Path, as_root: bool) -> Command {
    if as_root {
        let mut command = Command::new("runuser");
        command.args(["-u", SERVER_USER, "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
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
