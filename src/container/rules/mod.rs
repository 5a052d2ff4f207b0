//! Who may do what on which repository: the `[[registry.rules]]` list.
//!
//! Rules are tried in order and the first whose account, type and name
//! pattern match decides; the caller gets the actions it asked for that the
//! rule allows. No matching rule grants nothing. Administrators get every
//! action they ask for, whatever the rules say.

use crate::config::ContainerRule;

use super::scope::Scope;

/// Who is asking for access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Account<'a> {
    Anonymous,
    User { name: &'a str, is_admin: bool },
}

/// The compiled rules.
#[derive(Debug, Clone)]
pub struct ContainerRules {
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

impl ContainerRules {
    /// Checks and compiles the configured rules.
    pub fn compile(rules: &[ContainerRule]) -> Result<ContainerRules, String> {
        let rules = rules
            .iter()
            .enumerate()
            .map(|(i, rule)| Rule::compile(rule).map_err(|e| format!("rule {}: {e}", i + 1)))
            .collect::<Result<_, _>>()?;
        Ok(ContainerRules { rules })
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
    fn compile(rule: &ContainerRule) -> Result<Rule, String> {
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
mod tests;
