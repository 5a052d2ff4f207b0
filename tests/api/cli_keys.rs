//! `tokend keys generate|list` and key settings at start-up, through the real
//! binary, in a temporary working directory with no TOKEND_* variables.

use std::{
    os::unix::fs::PermissionsExt,
    process::{Command, Output},
};

use tokend::jwt::{Algorithm, PrivateKey};

use common::Sandbox;

use crate::keys::run_python;

/// The tokend binary in the sandbox, with a clean environment, logging
/// only warnings.
fn tokend(sandbox: &Sandbox) -> Command {
    let mut cmd = sandbox.command(&[]);
    cmd.env("TOKEND_LOG", "warn");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run tokend")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `tokend keys generate --alg ALG --out NAME [extra…]`, which must succeed;
/// returns the printed kid.
fn generate(sandbox: &Sandbox, alg: &str, out: &str, extra: &[&str]) -> String {
    let out = run(tokend(sandbox)
        .args(["keys", "generate", "--alg", alg, "--out", out])
        .args(extra));
    assert!(out.status.success(), "generate failed: {}", stderr(&out));
    stdout(&out).trim().to_owned()
}

#[test]
fn keys_generate_writes_a_private_pkcs8_key_of_each_algorithm() {
    let sandbox = Sandbox::without_database();
    for (name, alg) in [
        ("ES256", Algorithm::ES256),
        ("es384", Algorithm::ES384),
        ("RS256", Algorithm::RS256),
        ("EdDSA", Algorithm::EdDSA),
    ] {
        let file = format!("{name}.pem");
        let kid = generate(&sandbox, name, &file, &[]);
        let path = sandbox.path().join(&file);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
        let pem = std::fs::read_to_string(&path).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{name}");
        let key = PrivateKey::from_pem(&pem).unwrap();
        assert_eq!(key.alg(), alg);
        assert_eq!(kid, key.kid().unwrap(), "the printed kid is the key's");
    }
}

#[test]
fn keys_generate_defaults_to_es256() {
    let sandbox = Sandbox::without_database();
    let out = run(tokend(&sandbox).args(["keys", "generate", "--out", "k.pem"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let pem = std::fs::read_to_string(sandbox.path().join("k.pem")).unwrap();
    assert_eq!(PrivateKey::from_pem(&pem).unwrap().alg(), Algorithm::ES256);
}

#[test]
fn keys_generate_never_replaces_an_existing_file() {
    let sandbox = Sandbox::without_database();
    std::fs::write(sandbox.path().join("k.pem"), "precious").unwrap();
    let out = run(tokend(&sandbox).args(["keys", "generate", "--out", "k.pem"]));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--out: k.pem exists"),
        "{}",
        stderr(&out)
    );
    let kept = std::fs::read_to_string(sandbox.path().join("k.pem")).unwrap();
    assert_eq!(kept, "precious");
}

#[test]
fn keys_generate_refuses_an_unsupported_algorithm() {
    let sandbox = Sandbox::without_database();
    let out = run(tokend(&sandbox).args(["keys", "generate", "--alg", "HS256", "--out", "k.pem"]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("ES256"), "lists the choices");
    assert!(!sandbox.path().join("k.pem").exists());
}

#[test]
fn keys_generate_with_cert_writes_a_self_signed_certificate_for_the_key() {
    let sandbox = Sandbox::without_database();
    for alg in ["ES256", "ES384", "RS256", "EdDSA"] {
        let (key, cert) = (format!("{alg}.pem"), format!("{alg}.crt"));
        let kid = generate(&sandbox, alg, &key, &["--cert", &cert, "--days", "90"]);
        let text = std::fs::read_to_string(sandbox.path().join(&cert)).unwrap();
        assert!(text.starts_with("-----BEGIN CERTIFICATE-----"), "{alg}");
        // tokend itself accepts it as the key's certificate...
        let pem = std::fs::read_to_string(sandbox.path().join(&key)).unwrap();
        let private = PrivateKey::from_pem(&pem).unwrap();
        tokend::jwt::cert::read_chain(&text, &private.spki_der().unwrap()).expect("its own cert");
        // ...and so does a second X.509 implementation.
        let input = serde_json::json!({"cert": text, "key": pem}).to_string();
        let Some(out) = run_python(CHECK_CERT, &input) else {
            return;
        };
        assert!(out.status.success(), "{alg}: {}", stderr(&out));
        assert_eq!(
            stdout(&out).trim(),
            format!("CN={kid},O=tokend token signer True 90"),
            "{alg}: the kid is in the subject"
        );
    }
}

/// Checks with Python's `cryptography` that the certificate is self-signed,
/// a CA, for the private key, and how many days it is valid from now.
const CHECK_CERT: &str = r#"
import json, sys, datetime
from cryptography import x509
from cryptography.hazmat.primitives import serialization
data = json.load(sys.stdin)
cert = x509.load_pem_x509_certificate(data["cert"].encode())
key = serialization.load_pem_private_key(data["key"].encode(), password=None)
cert.verify_directly_issued_by(cert)
raw = serialization.PublicFormat.SubjectPublicKeyInfo
der = serialization.Encoding.DER
assert cert.public_key().public_bytes(der, raw) == key.public_key().public_bytes(der, raw)
ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
days = (cert.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)).days + 1
print(cert.subject.rfc4514_string(), ca, days)
"#;

#[test]
fn keys_list_prints_kid_algorithm_and_which_key_signs() {
    let sandbox = Sandbox::without_database();
    let kid_a = generate(&sandbox, "ES256", "a.pem", &[]);
    let kid_b = generate(&sandbox, "RS256", "b.pem", &[]);
    std::fs::write(
        sandbox.path().join("tokend.toml"),
        format!(
            "signing_kid = \"{kid_b}\"\n\n[[keys]]\npath = \"a.pem\"\n\n[[keys]]\npath = \"b.pem\"\n\n[[keys]]\nsecret = \"a-secret-for-tests-of-at-least-32-bytes\"\nkid = \"shared\"\n"
        ),
    )
    .unwrap();
    let out = run(tokend(&sandbox).args(["keys", "list"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "{kid_a}\tES256\tverify-only\n{kid_b}\tRS256\tsigning\nshared\tHS256\tverify-only\n"
        )
    );
}

#[test]
fn keys_list_reads_the_ring_from_tokend_keys() {
    let sandbox = Sandbox::without_database();
    let kid_a = generate(&sandbox, "EdDSA", "a.pem", &[]);
    let kid_b = generate(&sandbox, "ES384", "b.pem", &[]);
    let out = run(tokend(&sandbox)
        .args(["keys", "list"])
        .env("TOKEND_KEYS", "a.pem, b.pem"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("{kid_a}\tEdDSA\tsigning\n{kid_b}\tES384\tverify-only\n")
    );
}

#[test]
fn keys_list_writes_nothing_when_no_key_exists_yet() {
    let sandbox = Sandbox::without_database();
    let out = run(tokend(&sandbox).args(["keys", "list"]));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("does not exist yet"),
        "{}",
        stderr(&out)
    );
    assert!(!sandbox.path().join("tokend-data/signing-key.pem").exists());
}

#[test]
fn key_paths_in_the_config_file_are_relative_to_the_file() {
    let sandbox = Sandbox::without_database();
    std::fs::create_dir(sandbox.path().join("conf")).unwrap();
    let kid = generate(&sandbox, "ES256", "conf/a.pem", &["--cert", "conf/a.crt"]);
    std::fs::write(
        sandbox.path().join("conf/tokend.toml"),
        "[[keys]]\npath = \"a.pem\"\ncert = \"a.crt\"\n",
    )
    .unwrap();
    let out = run(tokend(&sandbox)
        .args(["keys", "list"])
        .env("TOKEND_CONFIG", "conf/tokend.toml"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{kid}\tES256\tsigning\n"));
}

/// `tokend serve` that must fail before it serves: its one stderr line.
fn serve_error(sandbox: &Sandbox, env: &[(&str, &str)]) -> String {
    let out = run(tokend(sandbox)
        .arg("serve")
        .env("TOKEND_BIND", "127.0.0.1:0")
        // Never reached: the keys are loaded before the database.
        .env("TOKEND_DATABASE_URL", "postgres://127.0.0.1:1/none")
        .envs(env.iter().copied()));
    assert!(!out.status.success(), "tokend started");
    let text = stderr(&out);
    let lines: Vec<_> = text.lines().filter(|l| l.starts_with("tokend: ")).collect();
    assert_eq!(lines.len(), 1, "one line: {text}");
    lines[0].to_owned()
}

#[test]
fn serve_refuses_a_short_secret_with_one_clear_line() {
    let sandbox = Sandbox::without_database();
    let line = serve_error(
        &sandbox,
        &[
            ("TOKEND_ALGORITHM", "HS256"),
            ("TOKEND_SECRET", "short-secret"),
        ],
    );
    assert_eq!(
        line,
        "tokend: bad setting: secret: must be at least 32 bytes"
    );
}

#[test]
fn serve_refuses_a_bad_key_file_naming_the_entry() {
    let sandbox = Sandbox::without_database();
    generate(&sandbox, "ES256", "good.pem", &[]);
    std::fs::write(
        sandbox.path().join("bad.pem"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let line = serve_error(&sandbox, &[("TOKEND_KEYS", "good.pem,bad.pem")]);
    assert!(line.starts_with("tokend: keys[1]: bad.pem: "), "{line}");
}

#[test]
fn serve_refuses_an_unknown_algorithm() {
    let sandbox = Sandbox::without_database();
    let line = serve_error(&sandbox, &[("TOKEND_ALGORITHM", "none")]);
    assert!(
        line.starts_with(
            "tokend: bad setting: algorithm: `none` is not one of ES256, ES384, RS256, EdDSA"
        ),
        "{line}"
    );
}
