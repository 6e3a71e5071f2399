//! AK/SK credentials: created for a user and shown once, then looked up by access key
//! so a dialect can verify a request signature and act as the key's owner.

use sha2::Digest;
use time::OffsetDateTime;

use super::service::IdentityService;
use crate::context::now;
use crate::error::{Error, Result};
use crate::identity::Credential;
use crate::principal::Principal;
use crate::sealing::Sealer;

/// Access keys: upper-case letters and digits, as Huawei issues them.
const AK_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// Secret keys: letters and digits.
const SK_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `len` characters drawn uniformly from `alphabet` (rejection sampling, no bias).
fn random_string(alphabet: &[u8], len: usize) -> Result<String> {
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf).map_err(Error::internal)?;
        for &b in buf.iter().filter(|&&b| usize::from(b) < limit) {
            if out.len() < len {
                out.push(char::from(alphabet[usize::from(b) % alphabet.len()]));
            }
        }
    }
    Ok(out)
}

fn unknown_key() -> Error {
    Error::Unauthenticated(
        "The access key is unknown or its owner cannot act in this project.".into(),
    )
}

impl IdentityService {
    fn sealer(&self) -> Result<&Sealer> {
        self.sealer
            .as_ref()
            .ok_or_else(|| Error::internal("no credential key is configured"))
    }

    /// Creates a credential for `user` (id or name) acting by default in `project` (id or
    /// name; the user's default project if absent). Returns it with the secret, which is
    /// shown this once and otherwise only ever kept sealed. A caller (`who`; `None` is
    /// the operator's CLI) must be an admin.
    pub async fn create_credential(
        &self,
        who: Option<&Principal>,
        user: &str,
        project: Option<&str>,
    ) -> Result<(Credential, String)> {
        who.map(crate::policy::require_admin).transpose()?;
        let user = self.get_user(None, &self.user_id(user).await?).await?;
        let project_id = match project {
            Some(p) => self.project_id(p).await?,
            None => user
                .default_project_id
                .clone()
                .ok_or_else(|| Error::invalid("the user has no default project; name one"))?,
        };
        if self.roles_of(&project_id, &user.id).await?.is_empty() {
            return Err(Error::invalid("the user has no role in that project"));
        }
        let secret = random_string(SK_ALPHABET, 40)?;
        let credential = Credential {
            access: random_string(AK_ALPHABET, 20)?,
            sealed_secret: self.sealer()?.seal(&secret)?,
            user_id: user.id,
            project_id,
            created_at: now(),
        };
        self.repo.insert_credential(&credential).await?;
        Ok((credential, secret))
    }

    /// A user's credentials (id or name), without secrets; for admins.
    pub async fn list_credentials(
        &self,
        who: Option<&Principal>,
        user: &str,
    ) -> Result<Vec<Credential>> {
        who.map(crate::policy::require_admin).transpose()?;
        self.repo.list_credentials(&self.user_id(user).await?).await
    }

    /// Deletes a credential by access key; for admins.
    pub async fn delete_credential(&self, who: Option<&Principal>, access: &str) -> Result<()> {
        who.map(crate::policy::require_admin).transpose()?;
        if self.repo.delete_credential(access).await? {
            Ok(())
        } else {
            Err(Error::NotFound {
                kind: crate::Entity::Credential,
                id: access.into(),
            })
        }
    }

    /// The credential and its opened secret, to verify a signature with.
    pub async fn credential_secret(&self, access: &str) -> Result<(Credential, String)> {
        let credential = self
            .repo
            .get_credential(access)
            .await?
            .ok_or_else(unknown_key)?;
        let secret = self.sealer()?.open(&credential.sealed_secret)?;
        Ok((credential, secret))
    }

    /// Checks that this node's credential key is the one the catalog's AK/SK secrets are
    /// sealed with (every node of a cluster needs the same): a value sealed under the
    /// first key is recorded, and must open under every later one. A node with another
    /// key would answer every signed request with an error.
    pub async fn check_sealer(&self) -> Result<()> {
        const CHECK: &str = "ims credential key check";
        let sealer = self.sealer()?;
        let recorded = match self.repo.sealer_check().await? {
            Some(check) => check,
            None => self.repo.record_sealer_check(&sealer.seal(CHECK)?).await?,
        };
        match sealer.open(&recorded) {
            Ok(opened) if opened == CHECK => Ok(()),
            _ => Err(Error::invalid(
                "the credential key is not the one this catalog's AK/SK secrets are sealed with",
            )),
        }
    }

    /// Records the first use of a verified signature of a state-changing request until it
    /// `expires` (leaves the date window), on every node alike, and refuses it when it
    /// comes again later than `grace` after that first use: a captured request cannot be
    /// sent again, to this node or another. A signature already out of its window is not
    /// recorded (its date check refuses it).
    pub async fn first_signature_use(
        &self,
        access: &str,
        signature: &str,
        expires: OffsetDateTime,
        grace: std::time::Duration,
    ) -> Result<()> {
        let t = now();
        if expires <= t {
            return Ok(());
        }
        let digest = hex::encode(sha2::Sha256::digest(format!("{access}:{signature}")));
        let first = self.repo.signature_first_used(&digest, t, expires).await?;
        if t - first <= grace {
            return Ok(());
        }
        Err(Error::Unauthenticated(
            "Incorrect IAM authentication information: this signed request was already received; sign each request anew".into(),
        ))
    }

    /// Who a verified signed request acts as: the key's owner, in the project the request
    /// names (`X-Project-Id`) or else the key's own, with the owner's roles there.
    pub async fn principal_for_credential(
        &self,
        credential: &Credential,
        project: Option<&str>,
    ) -> Result<Principal> {
        let project_id = project.unwrap_or(&credential.project_id);
        self.principal_in(&credential.user_id, project_id)
            .await
            .map_err(|_| unknown_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_use_their_alphabets() {
        let ak = random_string(AK_ALPHABET, 20).unwrap();
        assert_eq!(ak.len(), 20);
        assert!(ak.bytes().all(|b| AK_ALPHABET.contains(&b)));
        let sk = random_string(SK_ALPHABET, 40).unwrap();
        assert_eq!(sk.len(), 40);
        assert_ne!(sk, random_string(SK_ALPHABET, 40).unwrap());
    }
}
