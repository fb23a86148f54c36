//! Throwaway database servers for the `[[database]]` tests, started from Debian's packages
//! (scripts/test installs them) in a temporary folder on a free loopback port, and stopped
//! when dropped: PostgreSQL (initdb + pg_ctl, run as the `postgres` user when the tests run
//! as root, since initdb refuses root) and MariaDB (mariadb-install-db + mariadbd). A server
//! that cannot start fails the test: nothing is skipped.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe extern "C" {
        fn geteuid() -> u32;
    }
    unsafe { geteuid() == 0 }
}

fn wait_for_port(port: u16, what: &str, log: &Path) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{what} did not listen on 127.0.0.1:{port} within 60 s; its log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// A folder another user (postgres) can use: tempdir makes 0700 folders.
fn shared_dir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

fn pg_bin(tool: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server is installed (scripts/test installs Debian's postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    versions.sort();
    let bin = versions
        .last()
        .expect("a PostgreSQL version under /usr/lib/postgresql")
        .join("bin")
        .join(tool);
    assert!(bin.exists(), "{} is missing", bin.display());
    bin
}

fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

pub struct Postgres {
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Postgres {
    pub fn start() -> Postgres {
        let dir = shared_dir("keyroll-pg-");
        let data = dir.path().join("data");
        let out = as_server_user(&pg_bin("initdb"))
            .args(["-D"])
            .arg(&data)
            .args(["-U", "keyroll", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let log = dir.path().join("log");
        let out = as_server_user(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .arg("-o")
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                dir.path().display()
            ))
            .args(["-w", "start"])
            .output()
            .expect("pg_ctl runs");
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        wait_for_port(port, "PostgreSQL", &log);
        Postgres { dir, port }
    }

    pub fn url(&self) -> String {
        format!("postgres://keyroll@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs SQL (a file's text) with psql, stopping at the first error.
    pub fn psql(&self, sql: &str) -> std::process::Output {
        let file = self.dir.path().join("input.sql");
        std::fs::write(&file, sql).unwrap();
        Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "keyroll",
                "-d",
                "postgres",
            ])
            .arg("-f")
            .arg(&file)
            .output()
            .expect("psql runs")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_server_user(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

pub struct Mariadb {
    dir: tempfile::TempDir,
    child: Child,
    pub port: u16,
}

impl Mariadb {
    pub fn start() -> Mariadb {
        let dir = shared_dir("keyroll-mariadb-");
        let data = dir.path().join("data");
        let user = if is_root() {
            "root".to_string()
        } else {
            std::env::var("USER").unwrap_or_else(|_| "nobody".into())
        };
        let out = Command::new("mariadb-install-db")
            .arg(format!("--user={user}"))
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .output()
            .expect("mariadb-install-db runs (scripts/test installs Debian's mariadb-server)");
        assert!(
            out.status.success(),
            "mariadb-install-db: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let log = dir.path().join("log");
        let child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--user={user}"))
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.path().join("sock").display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .arg(format!("--log-error={}", log.display()))
            .arg(format!("--port={port}"))
            .args(["--bind-address=127.0.0.1", "--skip-grant-tables"])
            .args([
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_general_ci",
            ])
            .args(["--innodb-flush-log-at-trx-commit=0", "--skip-log-bin"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd starts");
        wait_for_port(port, "MariaDB", &log);
        let db = Mariadb { dir, child, port };
        let out = db.client("CREATE DATABASE keyroll;", None);
        assert!(
            out.status.success(),
            "creating the database: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        db
    }

    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/keyroll", self.port)
    }

    fn client(&self, sql: &str, database: Option<&str>) -> std::process::Output {
        let mut command = Command::new("mariadb");
        command
            .args(["--no-defaults", "--default-character-set=utf8mb4"])
            .args(["-h", "127.0.0.1", "-u", "root"])
            .arg(format!("--port={}", self.port));
        if let Some(db) = database {
            command.arg(db);
        }
        pipe(command, sql, "the mariadb client runs")
    }

    /// Runs SQL (a file's text) with the mariadb client, which stops at the first error.
    pub fn run(&self, sql: &str) -> std::process::Output {
        self.client(sql, Some("keyroll"))
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs SQL with the sqlite3 shell as `sqlite3 app.db < migration.sql` does: without
/// `-bail`, it goes on after an error (a migration must roll itself back).
pub fn sqlite(file: &Path, sql: &str) -> std::process::Output {
    let mut command = Command::new("sqlite3");
    command.arg(file);
    pipe(
        command,
        sql,
        "sqlite3 runs (scripts/test installs Debian's sqlite3)",
    )
}

/// Runs a database client with `sql` on its standard input, as a migration pipeline feeds it.
fn pipe(mut command: Command, sql: &str, expect: &str) -> std::process::Output {
    use std::io::Write as _;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(expect);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}
