//! A working folder to run the CLI in: the binary started there with none of
//! the caller's environment, and its own database.

use std::{
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, Command, Stdio},
};

use crate::{TestDatabase, tokend_binary};

/// A folder to run the binary in, with its own database: SQLite under
/// `tokend-data/` (the default), or a new PostgreSQL database when the suite
/// runs on PostgreSQL.
pub struct Sandbox {
    database: TestDatabase,
}

impl Sandbox {
    pub async fn new() -> Sandbox {
        Sandbox {
            database: TestDatabase::fresh().await,
        }
    }

    /// A folder and no database of its own: for commands that never reach
    /// one (`keys`, settings refused before the database).
    pub fn without_database() -> Sandbox {
        Sandbox {
            database: TestDatabase::without_database(),
        }
    }

    /// The working folder.
    pub fn path(&self) -> &Path {
        self.database.data_dir.path()
    }

    pub fn uses_postgres(&self) -> bool {
        self.database.pg().is_some()
    }

    /// The binary with `args`, in the folder, with an empty environment but
    /// for a free port to listen on and, on PostgreSQL, the database.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(tokend_binary());
        cmd.args(args)
            .current_dir(self.path())
            .env_clear()
            .env("TOKEND_BIND", "127.0.0.1:0");
        if let Some(url) = self.database.postgres_url() {
            cmd.env("TOKEND_DATABASE_URL", url);
        }
        cmd
    }

    /// Runs a command to the end, feeding `stdin`; returns (code, stdout, stderr).
    pub fn run(&self, args: &[&str], env: &[(&str, &str)], stdin: &str) -> (i32, String, String) {
        let mut cmd = self.command(args);
        cmd.envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run tokend");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("tokend output");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Starts the server; returns it, its base URL and the stderr lines read
    /// until it listened.
    pub fn serve(&self, env: &[(&str, &str)]) -> (Serving, String, Vec<String>) {
        let mut cmd = self.command(&[]);
        cmd.envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start tokend");
        let mut lines = Vec::new();
        let mut reader = BufReader::new(child.stderr.take().expect("stderr"));
        let port = loop {
            let mut line = String::new();
            assert!(
                reader.read_line(&mut line).expect("read stderr") > 0,
                "server exited: {lines:?}"
            );
            lines.push(line.trim_end().to_owned());
            if let Some(rest) = line.split("tokend listening port=").nth(1) {
                break rest.trim().parse::<u16>().expect("a port");
            }
        };
        std::thread::spawn(move || for _ in reader.lines() {});
        (Serving(child), format!("http://127.0.0.1:{port}"), lines)
    }
}

/// A `tokend serve` started in a sandbox, killed when dropped.
pub struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
