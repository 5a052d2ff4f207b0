//! The scope grammar of the Docker token authentication spec:
//!
//! ```text
//! scope          := resourcescope [ ' ' resourcescope ]*
//! resourcescope  := resourcetype ":" resourcename ":" action [ ',' action ]*
//! resourcetype   := /[a-z0-9]+/ [ '(' /[a-z0-9]+/ ')' ]
//! resourcename   := [ hostname '/' ] component [ '/' component ]*
//! hostname       := hostcomponent [ '.' hostcomponent ]* [ ':' port-number ]
//! component      := alpha-numeric [ separator alpha-numeric ]*
//! separator      := /[_.]|__|[-]*/
//! action         := /[a-z]*/ | '*'
//! ```
//!
//! A name may hold `:` (a registry host with a port) and `/`, so the type
//! ends at the first `:` and the actions start after the last one.

use std::fmt;

/// Longest resource name the distribution registry accepts.
const MAX_NAME_LEN: usize = 255;

/// Most scopes one request may ask for.
pub const MAX_SCOPES: usize = 64;

/// One resource and the actions asked on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `repository`, `registry`, …
    pub resource_type: String,
    /// The part in parentheses: `plugin` in `repository(plugin)`.
    pub class: Option<String>,
    /// `samalba/my-app`, `localhost:5000/app`, `catalog`.
    pub name: String,
    /// In the order asked, without repeats.
    pub actions: Vec<String>,
}

/// Why a scope was refused: the sentence names the scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScopeError(String);

impl Scope {
    /// Parses one `type[(class)]:name:action[,action]*`.
    pub fn parse(text: &str) -> Result<Scope, ScopeError> {
        let bad = |why: &str| ScopeError(format!("Malformed scope `{}`: {why}.", shorten(text)));
        let (Some(first), Some(last)) = (text.find(':'), text.rfind(':')) else {
            return Err(bad("expected type:name:actions"));
        };
        if first == last {
            return Err(bad("expected type:name:actions"));
        }
        let (kind, name, actions) = (&text[..first], &text[first + 1..last], &text[last + 1..]);
        let (resource_type, class) = parse_type(kind).ok_or_else(|| bad("bad resource type"))?;
        if !is_resource_name(name) {
            return Err(bad("bad resource name"));
        }
        let mut parsed: Vec<String> = Vec::new();
        for action in actions.split(',').filter(|a| !a.is_empty()) {
            if !(action == "*" || action.bytes().all(|b| b.is_ascii_lowercase())) {
                return Err(bad("bad action"));
            }
            if !parsed.iter().any(|a| a == action) {
                parsed.push(action.to_owned());
            }
        }
        if parsed.is_empty() {
            return Err(bad("no action"));
        }
        Ok(Scope {
            resource_type: resource_type.to_owned(),
            class: class.map(str::to_owned),
            name: name.to_owned(),
            actions: parsed,
        })
    }

    /// Whether two scopes are about the same resource.
    fn same_resource(&self, other: &Scope) -> bool {
        self.resource_type == other.resource_type
            && self.class == other.class
            && self.name == other.name
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.resource_type)?;
        if let Some(class) = &self.class {
            write!(f, "({class})")?;
        }
        write!(f, ":{}:{}", self.name, self.actions.join(","))
    }
}

/// Parses the scopes of a request: each item may hold several scopes
/// separated by spaces (the OAuth2 form) and may be empty (ignored). Scopes
/// about the same resource are merged.
pub fn parse_scopes<'a>(
    items: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Scope>, ScopeError> {
    let mut scopes: Vec<Scope> = Vec::new();
    let mut count = 0;
    for text in items.into_iter().flat_map(str::split_whitespace) {
        count += 1;
        if count > MAX_SCOPES {
            return Err(ScopeError(format!(
                "Too many scopes: at most {MAX_SCOPES} per request."
            )));
        }
        let scope = Scope::parse(text)?;
        match scopes.iter_mut().find(|s| s.same_resource(&scope)) {
            Some(known) => {
                for action in scope.actions {
                    if !known.actions.contains(&action) {
                        known.actions.push(action);
                    }
                }
            }
            None => scopes.push(scope),
        }
    }
    Ok(scopes)
}

/// `[a-z0-9]+`, optionally followed by `([a-z0-9]+)`.
fn parse_type(text: &str) -> Option<(&str, Option<&str>)> {
    let word = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    match text.split_once('(') {
        None => word(text).then_some((text, None)),
        Some((kind, rest)) => {
            let class = rest.strip_suffix(')')?;
            (word(kind) && word(class)).then_some((kind, Some(class)))
        }
    }
}

/// `[hostname '/'] component ['/' component]*`, at most 255 characters.
fn is_resource_name(name: &str) -> bool {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return false;
    }
    let mut parts = name.split('/');
    let first = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    let first_ok = is_component(first) || (!rest.is_empty() && is_hostname(first));
    first_ok && rest.iter().all(|p| is_component(p))
}

/// Lower-case alphanumeric runs joined by `.`, `_`, `__` or any number of `-`.
fn is_component(text: &str) -> bool {
    let bytes = text.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &text[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `hostcomponent ['.' hostcomponent]* [':' port]`.
fn is_hostname(text: &str) -> bool {
    let host = match text.rsplit_once(':') {
        Some((host, port)) => {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return false;
            }
            host
        }
        None => text,
    };
    host.split('.').all(|part| {
        let bytes = part.as_bytes();
        !bytes.is_empty()
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric()
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
    })
}

/// At most 100 characters of a client's text, for an error sentence.
fn shorten(text: &str) -> String {
    text.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(text: &str) -> Scope {
        Scope::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn repository_scope_has_type_name_and_actions() {
        let s = scope("repository:samalba/my-app:pull,push");
        assert_eq!(s.resource_type, "repository");
        assert_eq!(s.class, None);
        assert_eq!(s.name, "samalba/my-app");
        assert_eq!(s.actions, ["pull", "push"]);
    }

    #[test]
    fn class_in_parentheses_is_kept_apart() {
        let s = scope("repository(plugin):sam/plug:pull");
        assert_eq!(s.resource_type, "repository");
        assert_eq!(s.class.as_deref(), Some("plugin"));
        assert_eq!(s.to_string(), "repository(plugin):sam/plug:pull");
    }

    #[test]
    fn catalog_scope_takes_the_star_action() {
        let s = scope("registry:catalog:*");
        assert_eq!(
            (s.resource_type.as_str(), s.name.as_str()),
            ("registry", "catalog")
        );
        assert_eq!(s.actions, ["*"]);
    }

    #[test]
    fn a_host_with_a_port_may_prefix_the_name() {
        let s = scope("repository:localhost:5000/team/app:pull");
        assert_eq!(s.name, "localhost:5000/team/app");
        assert_eq!(s.actions, ["pull"]);
        assert_eq!(
            scope("repository:Registry.Example.com/app:push").name,
            "Registry.Example.com/app"
        );
    }

    #[test]
    fn components_take_the_specs_separators() {
        for name in [
            "a", "a.b", "a_b", "a__b", "a-b", "a---b", "a1/b2/c3", "x.y-z__w",
        ] {
            assert!(is_resource_name(name), "{name} should be valid");
        }
        for name in [
            "A", "a..b", "a___b", "-a", "a-", "a//b", "/a", "a/", "a b", "a_.b",
        ] {
            assert!(!is_resource_name(name), "{name} should be invalid");
        }
    }

    #[test]
    fn a_host_needs_a_path_after_it() {
        assert!(Scope::parse("repository:localhost:5000:pull").is_err());
        assert!(Scope::parse("repository:host:port/app:pull").is_err());
    }

    #[test]
    fn malformed_scopes_are_refused() {
        for text in [
            "",
            "repository",
            "repository:app",
            ":app:pull",
            "repository::pull",
            "repository:app:",
            "repository:app:,",
            "Repository:app:pull",
            "repository(:app:pull",
            "repository(plugin:app:pull",
            "repository(Plugin):app:pull",
            "repository:app:PULL",
            "repository:app:pull;rm",
            "repository:app/UPPER:pull",
            "repository:app/../etc:pull",
        ] {
            assert!(Scope::parse(text).is_err(), "{text:?} should be malformed");
        }
    }

    #[test]
    fn overlong_names_are_refused() {
        let name = "a".repeat(256);
        assert!(Scope::parse(&format!("repository:{name}:pull")).is_err());
        let name = "a".repeat(255);
        assert!(Scope::parse(&format!("repository:{name}:pull")).is_ok());
    }

    #[test]
    fn several_scopes_come_from_repeats_and_spaces() {
        let scopes = parse_scopes([
            "repository:a/b:pull",
            "repository:c/d:push registry:catalog:*",
        ])
        .unwrap();
        let texts: Vec<_> = scopes.iter().map(ToString::to_string).collect();
        assert_eq!(
            texts,
            [
                "repository:a/b:pull",
                "repository:c/d:push",
                "registry:catalog:*"
            ]
        );
    }

    #[test]
    fn empty_scopes_are_ignored() {
        assert_eq!(parse_scopes(["", "  "]).unwrap(), []);
    }

    #[test]
    fn scopes_on_the_same_resource_are_merged() {
        let scopes = parse_scopes(["repository:a/b:pull", "repository:a/b:push,pull"]).unwrap();
        assert_eq!(scopes.len(), 1);
        assert_eq!(scopes[0].actions, ["pull", "push"]);
        let scopes = parse_scopes(["repository:a/b:pull", "repository(plugin):a/b:pull"]).unwrap();
        assert_eq!(scopes.len(), 2);
    }

    #[test]
    fn one_malformed_scope_fails_the_whole_list() {
        assert!(parse_scopes(["repository:a/b:pull", "nonsense"]).is_err());
    }

    #[test]
    fn too_many_scopes_are_refused() {
        let many = vec!["repository:a:pull"; MAX_SCOPES + 1];
        assert!(parse_scopes(many).is_err());
    }
}
