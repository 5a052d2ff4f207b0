//! The house rules, checked on the source itself: every module imports only
//! from floors below it, and no file grows past what one reading holds.
//!
//! `cargo test --lib floors -- --nocapture` prints each room's imports.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

/// The rooms of `src/`, from the ground up. A room may import only from
/// rooms listed before it: the order is the floors' (leaves → db → stores →
/// services → state → api → start-up → CLI), and within the services
/// floor, the order in which they are built on each other.
const ROOMS: &[(&str, &str)] = &[
    ("leaves", "telemetry"),
    ("leaves", "secret"),
    ("leaves", "error"),
    ("leaves", "clock"),
    ("leaves", "config"),
    ("db", "db"),
    ("stores", "store"),
    ("services", "passwords"),
    ("services", "jwt"),
    ("services", "health"),
    ("services", "throttle"),
    ("services", "api_tokens"),
    ("services", "clients"),
    ("services", "registry"),
    ("services", "users"),
    ("services", "container"),
    ("services", "auth"),
    ("services", "oauth"),
    ("state", "state"),
    ("api", "api"),
    ("start-up", "startup"),
    ("cli", "cli"),
];

/// Files allowed to say where everything is: they declare the rooms and
/// start the program.
const ROOT_FILES: &[&str] = &["lib.rs", "main.rs", "floors.rs"];

const MAX_LINES: usize = 400;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The room a file belongs to: its first path component under `src/`.
fn room_of(file: &Path) -> String {
    let relative = file.strip_prefix(src()).expect("under src");
    let first = relative.components().next().expect("a component");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_owned()
}

/// The source without comments and string literals, so that only code is
/// read.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            '"' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    if !escaped && c == '"' {
                        break;
                    }
                    escaped = !escaped && c == '\\';
                }
                out.push_str("\"\"");
            }
            c => out.push(c),
        }
    }
    out
}

fn ident_at(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The rooms named right after each `crate::` of the code: `crate::a::…`
/// and each item of `crate::{a, b::c}`.
fn imported_rooms(code: &str) -> BTreeSet<String> {
    let mut rooms = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let mut depth = 1;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => item_start = true,
                    c if item_start && depth == 1 && !c.is_whitespace() => {
                        rooms.insert(ident_at(&group[i..]).to_owned());
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            rooms.insert(ident_at(after).to_owned());
        }
        rest = after;
    }
    rooms.retain(|r| !r.is_empty() && r != "self");
    rooms
}

fn rank(room: &str) -> Option<usize> {
    ROOMS.iter().position(|(_, r)| *r == room)
}

#[test]
fn every_import_points_down() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut imports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut wrong = Vec::new();
    for file in &files {
        let name = file.strip_prefix(src()).unwrap().display().to_string();
        if ROOT_FILES.contains(&name.as_str()) {
            continue;
        }
        let room = room_of(file);
        let Some(own) = rank(&room) else {
            wrong.push(format!(
                "{name}: room `{room}` is on no floor (add it to ROOMS)"
            ));
            continue;
        };
        let code = code_only(&fs::read_to_string(file).unwrap());
        for target in imported_rooms(&code) {
            if target == room {
                continue;
            }
            match rank(&target) {
                Some(r) if r < own => {
                    imports.entry(room.clone()).or_default().insert(target);
                }
                Some(_) => wrong.push(format!("{name}: `{room}` imports `{target}`, above it")),
                // Items re-exported at the root (`crate::Config`) name no room.
                None if target.starts_with(char::is_uppercase) => {}
                None => wrong.push(format!("{name}: imports `crate::{target}`, on no floor")),
            }
        }
    }
    for (floor, room) in ROOMS {
        let below: Vec<_> = imports.get(*room).into_iter().flatten().cloned().collect();
        println!("{floor:>9} {room:<11} imports {}", below.join(", "));
    }
    assert!(
        wrong.is_empty(),
        "imports that do not point down:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_file_in_src_is_longer_than_one_reading() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let long: Vec<_> = files
        .iter()
        .filter_map(|f| {
            let lines = fs::read_to_string(f).unwrap().lines().count();
            (lines > MAX_LINES).then(|| format!("{}: {lines} lines", f.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "over {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_reader_of_imports_finds_each_item_of_a_group() {
    let code = "use crate::{a::B, c, d::{e, f}};\nlet x = crate::g::h();";
    let found: Vec<_> = imported_rooms(code).into_iter().collect();
    assert_eq!(found, ["a", "c", "d", "g"]);
    assert!(imported_rooms(&code_only("// crate::z\nlet s = \"crate::y\";")).is_empty());
}
