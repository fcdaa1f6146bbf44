//! Staff users of the web interface: who they are, which participant they
//! act for, their roles, and their password hashes (Argon2id, PHC strings).
//!
//! Stored in `ui-staff.json` in the data directory (mode 0600). No password
//! is ever stored or shipped in clear except once: when `dtenge serve`
//! creates the demo staff it writes their generated passwords to
//! `ui-credentials.txt` (mode 0600) and prints them.

use std::path::Path;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};

use crate::error::UiError;

/// The staff file's name in the data directory.
pub const STAFF_FILE: &str = "ui-staff.json";
/// The demo credentials file's name in the data directory.
pub const CREDENTIALS_FILE: &str = "ui-credentials.txt";
/// Shortest password accepted for a staff user.
pub const PASSWORD_CHARS_MIN: usize = 10;

/// Demo credentials `(login, password)`, shown once.
pub type Credentials = Vec<(String, String)>;

/// What a staff user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    /// Prepares requests (transfers, issuance, DAs, holds…).
    Maker,
    /// Approves or rejects requests other staff prepared.
    Checker,
    /// NBK operator: platform monitoring, conversion approvals.
    Operator,
}

/// A staff user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StaffUser {
    /// Sign-in name.
    pub login: String,
    /// Full name, shown on requests ("maker's name").
    pub name: String,
    /// The participant the user acts for (`TREASURY`, `NBK`).
    pub participant: String,
    /// Roles.
    pub roles: Vec<StaffRole>,
    /// Argon2id PHC string.
    pub password_hash: String,
}

impl StaffUser {
    /// Whether the user has `role`.
    pub fn has(&self, role: StaffRole) -> bool {
        self.roles.contains(&role)
    }
}

/// A user to create, with a password in clear (hashed on creation).
#[derive(Debug, Clone)]
pub struct NewStaff {
    /// Sign-in name.
    pub login: String,
    /// Full name.
    pub name: String,
    /// Participant.
    pub participant: String,
    /// Roles.
    pub roles: Vec<StaffRole>,
    /// Password in clear.
    pub password: String,
}

/// All staff users.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Staff {
    /// Users.
    pub users: Vec<StaffUser>,
}

/// Hashes a password with Argon2id and a random salt.
pub fn hash_password(password: &str) -> Result<String, UiError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| UiError::Storage(format!("no OS randomness for a salt: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| UiError::Storage(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UiError::Storage(format!("hashing a password: {e}")))
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A random password of `chars` letters and digits (no look-alikes).
pub fn generate_password(chars: usize) -> Result<String, UiError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = vec![0u8; chars];
    getrandom::fill(&mut bytes).map_err(|e| UiError::Storage(format!("no OS randomness: {e}")))?;
    Ok(bytes.iter().map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()])).collect())
}

impl Staff {
    /// Users from `new`, passwords hashed. Refuses duplicate logins and short passwords.
    pub fn from_new(new: &[NewStaff]) -> Result<Staff, UiError> {
        let mut users: Vec<StaffUser> = Vec::with_capacity(new.len());
        for n in new {
            if n.login.trim().is_empty() || n.login.chars().any(char::is_whitespace) {
                return Err(UiError::BadInput(format!("login {:?}: give a name without spaces", n.login)));
            }
            if users.iter().any(|u| u.login == n.login) {
                return Err(UiError::BadInput(format!("login {} is given twice", n.login)));
            }
            if n.password.chars().count() < PASSWORD_CHARS_MIN {
                return Err(UiError::BadInput(format!(
                    "password of {}: at least {PASSWORD_CHARS_MIN} characters",
                    n.login
                )));
            }
            users.push(StaffUser {
                login: n.login.clone(),
                name: n.name.clone(),
                participant: n.participant.clone(),
                roles: n.roles.clone(),
                password_hash: hash_password(&n.password)?,
            });
        }
        Ok(Staff { users })
    }

    /// The demo staff: a Treasury maker, a Treasury checker, a Treasury head
    /// of department (maker and checker), and an NBK operator, each with a
    /// freshly generated password.
    pub fn demo_users() -> Result<Vec<NewStaff>, UiError> {
        let user = |login: &str, name: &str, participant: &str, roles: &[StaffRole]| -> Result<NewStaff, UiError> {
            Ok(NewStaff {
                login: login.to_string(),
                name: name.to_string(),
                participant: participant.to_string(),
                roles: roles.to_vec(),
                password: generate_password(14)?,
            })
        };
        Ok(vec![
            user("treasury.maker", "Aigul Sadykova", "TREASURY", &[StaffRole::Maker])?,
            user("treasury.checker", "Daniyar Omarov", "TREASURY", &[StaffRole::Checker])?,
            user("treasury.head", "Saule Iskakova", "TREASURY", &[StaffRole::Maker, StaffRole::Checker])?,
            user("nbk.operator", "Yerlan Bekov", "NBK", &[StaffRole::Operator])?,
        ])
    }

    /// Loads `ui-staff.json` from `data`, or creates the demo staff there
    /// (and `ui-credentials.txt` with their passwords). Returns the staff and,
    /// when just created, the demo credentials `(login, password)`.
    pub fn load_or_create_demo(data: &Path) -> Result<(Staff, Option<Credentials>), UiError> {
        let path = data.join(STAFF_FILE);
        if path.exists() {
            return Ok((Staff::load(&path)?, None));
        }
        let new = Staff::demo_users()?;
        let staff = Staff::from_new(&new)?;
        let mut text = String::from(
            "# dtenge web interface: demo staff created by `dtenge serve`. Change or delete after reading.\n",
        );
        for n in &new {
            text.push_str(&format!("{}\t{}\t{}\n", n.login, n.password, n.name));
        }
        write_private(&data.join(CREDENTIALS_FILE), &text)?;
        staff.save(&path)?;
        Ok((staff, Some(new.into_iter().map(|n| (n.login, n.password)).collect())))
    }

    /// Reads a staff file.
    pub fn load(path: &Path) -> Result<Staff, UiError> {
        let text = std::fs::read_to_string(path).map_err(|e| UiError::Storage(format!("{}: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| UiError::Storage(format!("{}: {e}", path.display())))
    }

    /// Writes a staff file (mode 0600).
    pub fn save(&self, path: &Path) -> Result<(), UiError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| UiError::Storage(e.to_string()))?;
        write_private(path, &text)
    }

    /// The user signing in with `login` and `password`, if both match.
    /// An unknown login costs the same hashing work as a wrong password.
    pub fn authenticate(&self, login: &str, password: &str) -> Option<&StaffUser> {
        match self.users.iter().find(|u| u.login == login) {
            Some(u) if verify_password(password, &u.password_hash) => Some(u),
            Some(_) => None,
            None => {
                static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
                let dummy = DUMMY.get_or_init(|| hash_password("not any user's password").unwrap_or_default());
                let _ = verify_password(password, dummy);
                None
            }
        }
    }

    /// A user by login.
    pub fn user(&self, login: &str) -> Option<&StaffUser> {
        self.users.iter().find(|u| u.login == login)
    }
}

fn write_private(path: &Path, text: &str) -> Result<(), UiError> {
    let err = |e: std::io::Error| UiError::Storage(format!("{}: {e}", path.display()));
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write as _;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(err)?;
        file.write_all(text.as_bytes()).map_err(err)?;
        file.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn passwords_are_hashed_and_checked() {
        let staff = Staff::from_new(&[NewStaff {
            login: "a.maker".into(),
            name: "A".into(),
            participant: "TREASURY".into(),
            roles: vec![StaffRole::Maker],
            password: "correct horse battery".into(),
        }])
        .unwrap();
        assert!(!staff.users[0].password_hash.contains("correct"));
        assert!(staff.authenticate("a.maker", "correct horse battery").is_some());
        assert!(staff.authenticate("a.maker", "wrong password!").is_none());
        assert!(staff.authenticate("nobody", "correct horse battery").is_none());
    }

    #[test]
    fn short_passwords_and_duplicate_logins_are_refused() {
        let user = |login: &str, password: &str| NewStaff {
            login: login.into(),
            name: "N".into(),
            participant: "TREASURY".into(),
            roles: vec![StaffRole::Checker],
            password: password.into(),
        };
        assert!(Staff::from_new(&[user("x", "short")]).is_err());
        assert!(Staff::from_new(&[user("x", "long enough pw"), user("x", "long enough pw")]).is_err());
    }

    #[test]
    fn demo_staff_are_written_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let (staff, created) = Staff::load_or_create_demo(dir.path()).unwrap();
        let created = created.unwrap();
        let (login, password) = &created[0];
        assert!(staff.authenticate(login, password).is_some());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(CREDENTIALS_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "credentials readable by others");
        }
        let (again, none) = Staff::load_or_create_demo(dir.path()).unwrap();
        assert!(none.is_none());
        assert!(again.authenticate(login, password).is_some());
    }
}
