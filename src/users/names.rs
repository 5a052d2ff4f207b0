//! Usernames (NFKC-normalised, Django's alphabet) and passwords: what
//! may be one.

use unicode_normalization::UnicodeNormalization;

use crate::{
    error::{Error, Result},
    secret::Secret,
};

/// A username as stored and looked up: NFKC-normalised, as Django does.
pub fn normalise(username: &str) -> String {
    username.nfkc().collect()
}

/// What no two usernames may share: the NFKC case-folded form.
pub fn username_key(username: &str) -> String {
    normalise(username).to_lowercase()
}

/// Django's rule: 1 to 150 letters, digits and `@.+-_`.
pub fn validate_username(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.chars().count() <= 150
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "@.+-_".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidRequest(
            "Enter a valid username: 1 to 150 letters, digits and @/./+/-/_ characters.".into(),
        ))
    }
}

pub(super) fn validate_password(password: &Secret) -> Result<()> {
    let len = password.expose().chars().count();
    if len == 0 || len > 1024 {
        return Err(Error::InvalidRequest(
            "A password must be 1 to 1024 characters long.".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alike_names_normalise_to_one_key() {
        assert_eq!(normalise("ａｄｍｉｎ"), "admin");
        assert_eq!(normalise("𝐚𝐝𝐦𝐢𝐧"), "admin");
        assert_eq!(normalise("ADMIN"), "ADMIN");
        for name in ["admin", "ADMIN", "ａｄｍｉｎ", "𝐚𝐝𝐦𝐢𝐧", "Ａｄｍｉｎ"]
        {
            assert_eq!(username_key(name), "admin", "{name}");
        }
    }
}
