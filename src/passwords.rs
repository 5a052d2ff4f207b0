//! Password hashing (argon2id) on a pool of dedicated threads, one per core.
//!
//! Each thread owns its argon2 working memory (12 MiB with tokend's
//! parameters) and reuses it for every hash, so memory stays at
//! threads × m_cost however many logins are in flight, no page is faulted in
//! twice, and logins queue for a hashing thread instead of piling up on
//! tokio's blocking pool (where every concurrent hash would take its own
//! 12 MiB, kept afterwards by the allocator). Request handling never runs a
//! hash on an async worker, and the hashing threads run at a lower priority
//! than the rest of the process.

use std::{
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex, mpsc},
    time::Instant,
};

use anyhow::Context;
use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, Version,
    password_hash::{self, Output, ParamsString, Salt, SaltString, rand_core::OsRng},
};

use crate::{error::Result, secret::Secret, telemetry};

/// The argon2 working memory of one thread, reused from hash to hash.
#[derive(Default)]
pub(crate) struct Memory(Vec<Block>);

type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// The hashing threads; cheap to clone. The threads stop when the last
/// clone is dropped.
#[derive(Clone)]
pub struct Passwords {
    jobs: Arc<mpsc::Sender<Job>>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords").finish_non_exhaustive()
    }
}

/// One hashing thread per core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

impl Passwords {
    /// Starts `threads` hashing threads (at least one).
    pub fn start(threads: usize) -> anyhow::Result<Self> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..threads.max(1) {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("tokend-argon2-{i}"))
                .spawn(move || {
                    lower_priority();
                    let mut memory = Memory::default();
                    loop {
                        let job = match receiver.lock() {
                            Ok(jobs) => jobs.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        // A panicking hash fails its own request (its answer
                        // channel is dropped), not the thread.
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut memory)));
                    }
                })
                .context("start a password hashing thread")?;
        }
        Ok(Passwords {
            jobs: Arc::new(sender),
        })
    }

    /// Runs `work` (the `operation`, for the metrics) on a hashing thread.
    async fn run<R: Send + 'static>(
        &self,
        operation: &'static str,
        work: impl FnOnce(&mut Memory) -> R + Send + 'static,
    ) -> Result<R> {
        let (answer, result) = tokio::sync::oneshot::channel();
        let queued = Instant::now();
        telemetry::metrics::hash_queued();
        self.jobs
            .send(Box::new(move |memory| {
                let started = Instant::now();
                telemetry::metrics::hash_started(started - queued);
                let output = work(memory);
                telemetry::metrics::hash_finished(operation, started.elapsed());
                let _ = answer.send(output);
            }))
            .map_err(|_| {
                telemetry::metrics::hash_started(queued.elapsed());
                anyhow::anyhow!("the password hashing threads have stopped")
            })?;
        Ok(result.await.context("password hashing failed")?)
    }

    /// A new argon2id hash (PHC string) of the password.
    pub async fn hash(&self, password: Secret) -> Result<String> {
        Ok(self
            .run("hash", move |memory| hash_with(memory, &password))
            .await??)
    }

    /// Whether the password matches the hash (compared in constant time).
    pub async fn verify(&self, hash: String, password: Secret) -> Result<bool> {
        self.run("verify", move |memory| {
            verify_with(memory, &hash, &password)
        })
        .await
    }
}

/// A random password of 24 URL-safe characters (144 bits).
pub fn random_password() -> Secret {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 18];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Hashing yields the CPU to request handling: a burst of logins makes
/// logins slower, not every other call.
#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: plain system call on integers. On Linux the nice value is per
    // thread, and `who = 0` names the calling thread only.
    let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, HASHING_NICENESS) };
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// The nice value of the hashing threads (request handling runs at 0).
#[cfg(target_os = "linux")]
const HASHING_NICENESS: libc::c_int = 10;

/// tokend's argon2id parameters: 12 MiB, three passes, one lane. OWASP's
/// Password Storage Cheat Sheet lists them among its equal-strength
/// configurations of argon2id, beside argon2's defaults (19 MiB, two
/// passes), for about the same CPU and 7 MiB less memory per hashing
/// thread.
pub fn params() -> Params {
    Params::new(M_COST_KIB, T_COST, P_COST, None).expect("tokend's argon2 parameters are valid")
}

const M_COST_KIB: u32 = 12 * 1024;
const T_COST: u32 = 3;
const P_COST: u32 = 1;

/// Whether `hash` is an argon2 hash made with other parameters than
/// [`params`] (an earlier tokend's, say): it is made again, with these, at
/// its user's next sign-in. A hash that cannot be read is not: it matches
/// nothing.
pub fn outdated(hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let Ok(used) = Params::try_from(&parsed) else {
        return false;
    };
    let current = params();
    parsed.algorithm != Algorithm::Argon2id.ident()
        || parsed
            .version
            .is_some_and(|v| v != u32::from(Version::V0x13))
        || (used.m_cost(), used.t_cost(), used.p_cost())
            != (current.m_cost(), current.t_cost(), current.p_cost())
}

/// Hashes on this thread with `memory`: what the pool threads run.
pub(crate) fn hash_with(memory: &mut Memory, password: &Secret) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let params = params();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let hash = compute(
        memory,
        &argon2,
        &params,
        password,
        salt.as_salt(),
        output_len,
    )
    .and_then(|output| {
        Ok(PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params)?,
            salt: Some(salt.as_salt()),
            hash: Some(output),
        }
        .to_string())
    })
    .map_err(|e| anyhow::anyhow!("hash password: {e}"))?;
    Ok(hash)
}

/// Verifies on this thread with `memory`: what the pool threads run. A hash
/// that cannot be parsed matches nothing.
pub(crate) fn verify_with(memory: &mut Memory, hash: &str, password: &Secret) -> bool {
    let mut check = || -> password_hash::Result<bool> {
        let parsed = PasswordHash::new(hash)?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Ok(false);
        };
        let algorithm = Algorithm::try_from(parsed.algorithm)?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v)?,
            None => Version::V0x13,
        };
        let params = Params::try_from(&parsed)?;
        let argon2 = Argon2::new(algorithm, version, params.clone());
        let computed = compute(memory, &argon2, &params, password, salt, expected.len())?;
        Ok(computed == expected)
    };
    let matches = check().unwrap_or(false);
    // A hash with more memory than tokend's own (an older one, until its
    // user signs in again) does not keep its thread's memory that large.
    if memory.0.len() > params().block_count() {
        *memory = Memory::default();
    }
    matches
}

/// argon2's own `hash_password`, in the given memory.
fn compute(
    memory: &mut Memory,
    argon2: &Argon2<'_>,
    params: &Params,
    password: &Secret,
    salt: Salt<'_>,
    output_len: usize,
) -> password_hash::Result<Output> {
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt = salt.decode_b64(&mut salt_bytes)?;
    let blocks = params.block_count();
    if memory.0.len() < blocks {
        memory.0.resize(blocks, Block::default());
    }
    Output::init_with(output_len, |out| {
        Ok(argon2.hash_password_into_with_memory(
            password.expose().as_bytes(),
            salt,
            out,
            &mut memory.0[..blocks],
        )?)
    })
}

#[cfg(test)]
mod tests {
    use argon2::{PasswordHasher, PasswordVerifier};

    use super::*;

    fn secret(s: &str) -> Secret {
        Secret::new(s)
    }

    #[test]
    fn hashes_are_made_with_tokends_parameters_and_others_are_outdated() {
        let hash = hash_with(&mut Memory::default(), &secret("pw")).unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=12288,t=3,p=1$"),
            "{hash}"
        );
        assert!(!outdated(&hash));
        let salt = SaltString::generate(&mut OsRng);
        let defaults = Argon2::default().hash_password(b"pw", &salt).unwrap();
        assert!(outdated(&defaults.to_string()));
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, params());
        let argon2i = argon2i.hash_password(b"pw", &salt).unwrap();
        assert!(outdated(&argon2i.to_string()));
        assert!(
            !outdated("not a hash"),
            "what cannot be read is not rehashed"
        );
    }

    #[test]
    fn a_larger_hash_verifies_without_keeping_its_memory() {
        let mut memory = Memory::default();
        let salt = SaltString::generate(&mut OsRng);
        let larger = Argon2::default().hash_password(b"pw", &salt).unwrap();
        assert!(verify_with(&mut memory, &larger.to_string(), &secret("pw")));
        assert!(memory.0.is_empty(), "19 MiB kept after a larger hash");
        let own = hash_with(&mut memory, &secret("pw")).unwrap();
        assert!(verify_with(&mut memory, &own, &secret("pw")));
        assert_eq!(
            memory.0.len(),
            params().block_count(),
            "tokend's own is kept"
        );
    }

    #[test]
    fn hashes_made_here_verify_with_the_argon2_crate() {
        let hash = hash_with(&mut Memory::default(), &secret("correct horse")).unwrap();
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong", &parsed)
                .is_err()
        );
    }

    #[test]
    fn hashes_made_by_the_argon2_crate_verify_here() {
        let salt = SaltString::generate(&mut OsRng);
        let hash = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        let mut memory = Memory::default();
        assert!(verify_with(&mut memory, &hash, &secret("correct horse")));
        assert!(!verify_with(&mut memory, &hash, &secret("wrong")));
    }

    #[test]
    fn reused_memory_gives_the_same_answers() {
        let mut memory = Memory::default();
        let first = hash_with(&mut memory, &secret("one")).unwrap();
        let second = hash_with(&mut memory, &secret("two")).unwrap();
        assert!(verify_with(&mut memory, &first, &secret("one")));
        assert!(verify_with(&mut memory, &second, &secret("two")));
        assert!(!verify_with(&mut memory, &first, &secret("two")));
    }

    #[test]
    fn an_unparsable_hash_matches_nothing() {
        assert!(!verify_with(
            &mut Memory::default(),
            "not a hash",
            &secret("x")
        ));
    }
}
