use std::process::ExitCode;

fn main() -> ExitCode {
    limit_malloc_arenas();
    tokend::cli::main()
}

/// glibc gives threads that allocate at once arenas of their own, up to
/// eight per core, and keeps what each arena once held. tokend has more
/// threads than cores (tokio's workers, sqlx's one per SQLite connection,
/// the hashing threads), so most arenas would sit half empty; two are as
/// fast here and hold less memory.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    // SAFETY: mallopt only sets an allocator parameter, before any thread
    // starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
