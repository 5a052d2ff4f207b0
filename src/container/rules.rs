//! Who may do what on which repository: the `[[registry.rules]]` list.
//!
//! Rules are tried in order and the first whose account, type and name
//! pattern match decides; the caller gets the actions it asked for that the
//! rule allows. No matching rule grants nothing. Administrators get every
//! action they ask for, whatever the rules say.

use crate::config::RegistryRule;

use super::scope::Scope;

/// Who is asking for access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Account<'a> {
    Anonymous,
    User { name: &'a str, is_admin: bool },
}

/// The compiled rules.
#[derive(Debug, Clone)]
pub struct Rules {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    account: AccountPattern,
    resource_type: String,
    pattern: Vec<Token>,
    actions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum AccountPattern {
    /// `""`: callers without credentials.
    Anonymous,
    /// `*`: every authenticated user.
    AnyUser,
    Named(String),
}

/// A piece of a name pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `?`: any one character.
    One,
    /// `*`: any run of characters, `/` included.
    Many,
    /// `${account}`: the caller's username, literally.
    Account,
}

const ACCOUNT_VARIABLE: &str = "${account}";

impl Rules {
    /// Checks and compiles the configured rules.
    pub fn compile(rules: &[RegistryRule]) -> Result<Rules, String> {
        let rules = rules
            .iter()
            .enumerate()
            .map(|(i, rule)| Rule::compile(rule).map_err(|e| format!("rule {}: {e}", i + 1)))
            .collect::<Result<_, _>>()?;
        Ok(Rules { rules })
    }

    /// The actions of `scope` that `account` may do, in the order asked.
    pub fn allowed(&self, account: Account<'_>, scope: &Scope) -> Vec<String> {
        if let Account::User { is_admin: true, .. } = account {
            return scope.actions.clone();
        }
        let Some(rule) = self.rules.iter().find(|r| r.matches(account, scope)) else {
            return Vec::new();
        };
        if rule.actions.iter().any(|a| a == "*") {
            return scope.actions.clone();
        }
        scope
            .actions
            .iter()
            .filter(|asked| rule.actions.contains(asked))
            .cloned()
            .collect()
    }
}

impl Rule {
    fn compile(rule: &RegistryRule) -> Result<Rule, String> {
        let account = match rule.account.as_str() {
            "" => AccountPattern::Anonymous,
            "*" => AccountPattern::AnyUser,
            name => AccountPattern::Named(name.to_owned()),
        };
        if rule.resource_type.is_empty()
            || !rule
                .resource_type
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(format!(
                "type `{}` is not a resource type",
                rule.resource_type
            ));
        }
        if rule.repository.is_empty() {
            return Err("repository: the pattern is empty".into());
        }
        for action in &rule.actions {
            if !(action == "*"
                || (!action.is_empty() && action.bytes().all(|b| b.is_ascii_lowercase())))
            {
                return Err(format!("actions: `{action}` is not an action"));
            }
        }
        Ok(Rule {
            account,
            resource_type: rule.resource_type.clone(),
            pattern: parse_pattern(&rule.repository)?,
            actions: rule.actions.clone(),
        })
    }

    fn matches(&self, account: Account<'_>, scope: &Scope) -> bool {
        let username = match (&self.account, account) {
            (AccountPattern::Anonymous, Account::Anonymous) => "",
            (AccountPattern::AnyUser, Account::User { name, .. }) => name,
            (AccountPattern::Named(want), Account::User { name, .. }) if want == name => name,
            _ => return false,
        };
        self.resource_type == scope.resource_type
            && glob_matches(&self.pattern, username, &scope.name)
    }
}

/// `*`, `?`, `${account}` and literal characters; any other `${…}` is an error.
fn parse_pattern(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix(ACCOUNT_VARIABLE) {
            tokens.push(Token::Account);
            rest = after;
            continue;
        }
        if rest.starts_with("${") {
            return Err(format!(
                "repository `{text}`: only {ACCOUNT_VARIABLE} may be substituted"
            ));
        }
        tokens.push(match c {
            '*' => Token::Many,
            '?' => Token::One,
            c => Token::Char(c),
        });
        rest = &rest[c.len_utf8()..];
    }
    Ok(tokens)
}

/// Whether `name` matches the pattern, `${account}` standing for `account`.
fn glob_matches(pattern: &[Token], account: &str, name: &str) -> bool {
    let pattern: Vec<Token> = pattern
        .iter()
        .flat_map(|t| match t {
            Token::Account => account.chars().map(Token::Char).collect::<Vec<_>>(),
            t => vec![*t],
        })
        .collect();
    let name: Vec<char> = name.chars().collect();
    // Classic wildcard matching, backtracking to the last `*` only.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(Token::Many) => {
                star = Some((p, n));
                p += 1;
            }
            Some(Token::One) => {
                p += 1;
                n += 1;
            }
            Some(Token::Char(c)) if *c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((star_p, star_n)) => {
                    p = star_p + 1;
                    n = star_n + 1;
                    star = Some((star_p, star_n + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|t| *t == Token::Many)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RegistryConfig;

    fn rule(account: &str, repository: &str, actions: &[&str]) -> RegistryRule {
        RegistryRule {
            account: account.into(),
            resource_type: "repository".into(),
            repository: repository.into(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn scope(text: &str) -> Scope {
        Scope::parse(text).unwrap()
    }

    fn defaults() -> Rules {
        Rules::compile(&RegistryConfig::default().rules).unwrap()
    }

    const ALICE: Account<'static> = Account::User {
        name: "alice",
        is_admin: false,
    };
    const BOB: Account<'static> = Account::User {
        name: "bob",
        is_admin: false,
    };
    const ADMIN: Account<'static> = Account::User {
        name: "admin",
        is_admin: true,
    };

    #[test]
    fn users_may_pull_push_and_delete_under_their_own_name_by_default() {
        let rules = defaults();
        let asked = scope("repository:alice/hello:pull,push,delete");
        assert_eq!(rules.allowed(ALICE, &asked), ["pull", "push", "delete"]);
        let nested = scope("repository:alice/team/app:push");
        assert_eq!(rules.allowed(ALICE, &nested), ["push"]);
    }

    #[test]
    fn users_get_nothing_elsewhere_by_default() {
        let rules = defaults();
        assert!(
            rules
                .allowed(BOB, &scope("repository:alice/hello:pull"))
                .is_empty()
        );
        assert!(
            rules
                .allowed(ALICE, &scope("repository:alice:pull"))
                .is_empty()
        );
        assert!(
            rules
                .allowed(ALICE, &scope("repository:alicex/app:pull"))
                .is_empty()
        );
        assert!(
            rules
                .allowed(ALICE, &scope("registry:catalog:*"))
                .is_empty()
        );
    }

    #[test]
    fn anonymous_callers_get_nothing_by_default() {
        let rules = defaults();
        assert!(
            rules
                .allowed(Account::Anonymous, &scope("repository:alice/hello:pull"))
                .is_empty()
        );
        // `${account}` is empty for them: `/*` matches no valid name.
        assert!(
            rules
                .allowed(Account::Anonymous, &scope("repository:a/b:pull"))
                .is_empty()
        );
    }

    #[test]
    fn administrators_get_everything_they_ask_for() {
        let rules = Rules::compile(&[]).unwrap();
        let asked = scope("repository:alice/hello:pull,push,delete");
        assert_eq!(rules.allowed(ADMIN, &asked), ["pull", "push", "delete"]);
        assert_eq!(rules.allowed(ADMIN, &scope("registry:catalog:*")), ["*"]);
    }

    #[test]
    fn granted_actions_are_the_intersection_of_asked_and_allowed() {
        let rules = Rules::compile(&[rule("*", "shared/*", &["pull", "delete"])]).unwrap();
        assert_eq!(
            rules.allowed(BOB, &scope("repository:shared/x:push,pull")),
            ["pull"]
        );
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let rules = Rules::compile(&[
            rule("bob", "alice/*", &["pull"]),
            rule("*", "alice/*", &["pull", "push"]),
        ])
        .unwrap();
        assert_eq!(
            rules.allowed(BOB, &scope("repository:alice/x:pull,push")),
            ["pull"]
        );
        assert_eq!(
            rules.allowed(
                Account::User {
                    name: "carol",
                    is_admin: false
                },
                &scope("repository:alice/x:pull,push")
            ),
            ["pull", "push"]
        );
    }

    #[test]
    fn an_empty_account_matches_only_anonymous_callers() {
        let rules = Rules::compile(&[rule("", "public/*", &["pull"])]).unwrap();
        assert_eq!(
            rules.allowed(Account::Anonymous, &scope("repository:public/x:pull")),
            ["pull"]
        );
        assert!(
            rules
                .allowed(ALICE, &scope("repository:public/x:pull"))
                .is_empty()
        );
    }

    #[test]
    fn a_star_account_matches_users_but_not_anonymous_callers() {
        let rules = Rules::compile(&[rule("*", "*", &["pull"])]).unwrap();
        assert_eq!(
            rules.allowed(ALICE, &scope("repository:any/thing:pull")),
            ["pull"]
        );
        assert!(
            rules
                .allowed(Account::Anonymous, &scope("repository:any/thing:pull"))
                .is_empty()
        );
    }

    #[test]
    fn a_star_action_allows_every_asked_action() {
        let rules = Rules::compile(&[rule("alice", "*", &["*"])]).unwrap();
        assert_eq!(
            rules.allowed(ALICE, &scope("repository:x/y:pull,push,delete")),
            ["pull", "push", "delete"]
        );
    }

    #[test]
    fn rules_apply_to_their_resource_type() {
        let mut catalog = rule("*", "catalog", &["*"]);
        catalog.resource_type = "registry".into();
        let rules = Rules::compile(&[catalog, rule("*", "*", &["pull"])]).unwrap();
        assert_eq!(rules.allowed(ALICE, &scope("registry:catalog:*")), ["*"]);
        assert_eq!(
            rules.allowed(ALICE, &scope("repository:catalog:pull")),
            ["pull"]
        );
        // A class does not change the type: plugins are repositories too.
        assert_eq!(
            rules.allowed(ALICE, &scope("repository(plugin):x/y:pull")),
            ["pull"]
        );
    }

    #[test]
    fn globs_take_star_and_question_mark() {
        let p = parse_pattern("team-?/*-app").unwrap();
        assert!(glob_matches(&p, "", "team-a/web-app"));
        assert!(glob_matches(&p, "", "team-b/x/y-app"));
        assert!(!glob_matches(&p, "", "team-ab/web-app"));
        assert!(!glob_matches(&p, "", "team-a/web-apps"));
        assert!(glob_matches(
            &parse_pattern("*").unwrap(),
            "",
            "localhost:5000/a"
        ));
        assert!(glob_matches(&parse_pattern("a**b").unwrap(), "", "ab"));
    }

    #[test]
    fn the_account_variable_is_taken_literally() {
        let p = parse_pattern("${account}/*").unwrap();
        assert!(glob_matches(&p, "a.b", "a.b/x"));
        assert!(!glob_matches(&p, "a?b", "axb/x"));
    }

    #[test]
    fn bad_rules_are_refused_with_their_number() {
        let unknown_variable = Rules::compile(&[rule("*", "${user}/*", &["pull"])]).unwrap_err();
        assert!(
            unknown_variable.starts_with("rule 1:"),
            "{unknown_variable}"
        );
        assert!(Rules::compile(&[rule("*", "a/*", &["Pull"])]).is_err());
        assert!(Rules::compile(&[rule("*", "", &["pull"])]).is_err());
        let mut bad_type = rule("*", "a", &["pull"]);
        bad_type.resource_type = "Repo".into();
        assert!(Rules::compile(&[bad_type]).is_err());
    }
}
