//! The access rules, rule by rule.

use super::*;

fn rule(account: &str, repository: &str, actions: &[&str]) -> ContainerRule {
    ContainerRule {
        account: account.into(),
        resource_type: "repository".into(),
        repository: repository.into(),
        actions: actions.iter().map(|a| a.to_string()).collect(),
    }
}

fn scope(text: &str) -> Scope {
    Scope::parse(text).unwrap()
}

fn defaults() -> ContainerRules {
    ContainerRules::compile(&crate::config::ContainerConfig::default().rules).unwrap()
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
    let rules = ContainerRules::compile(&[]).unwrap();
    let asked = scope("repository:alice/hello:pull,push,delete");
    assert_eq!(rules.allowed(ADMIN, &asked), ["pull", "push", "delete"]);
    assert_eq!(rules.allowed(ADMIN, &scope("registry:catalog:*")), ["*"]);
}

#[test]
fn granted_actions_are_the_intersection_of_asked_and_allowed() {
    let rules = ContainerRules::compile(&[rule("*", "shared/*", &["pull", "delete"])]).unwrap();
    assert_eq!(
        rules.allowed(BOB, &scope("repository:shared/x:push,pull")),
        ["pull"]
    );
}

#[test]
fn the_first_matching_rule_wins() {
    let rules = ContainerRules::compile(&[
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
    let rules = ContainerRules::compile(&[rule("", "public/*", &["pull"])]).unwrap();
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
    let rules = ContainerRules::compile(&[rule("*", "*", &["pull"])]).unwrap();
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
    let rules = ContainerRules::compile(&[rule("alice", "*", &["*"])]).unwrap();
    assert_eq!(
        rules.allowed(ALICE, &scope("repository:x/y:pull,push,delete")),
        ["pull", "push", "delete"]
    );
}

#[test]
fn rules_apply_to_their_resource_type() {
    let mut catalog = rule("*", "catalog", &["*"]);
    catalog.resource_type = "registry".into();
    let rules = ContainerRules::compile(&[catalog, rule("*", "*", &["pull"])]).unwrap();
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
    let unknown_variable =
        ContainerRules::compile(&[rule("*", "${user}/*", &["pull"])]).unwrap_err();
    assert!(
        unknown_variable.starts_with("rule 1:"),
        "{unknown_variable}"
    );
    assert!(ContainerRules::compile(&[rule("*", "a/*", &["Pull"])]).is_err());
    assert!(ContainerRules::compile(&[rule("*", "", &["pull"])]).is_err());
    let mut bad_type = rule("*", "a", &["pull"]);
    bad_type.resource_type = "Repo".into();
    assert!(ContainerRules::compile(&[bad_type]).is_err());
}
