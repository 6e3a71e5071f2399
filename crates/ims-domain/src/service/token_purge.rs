//! Identity's part in the periodic sweep: expired tokens are deleted.

use async_trait::async_trait;

use super::identity::IdentityService;
use crate::error::Result;
use crate::job::Sweeper;

/// Deletes expired tokens every sweep.
pub struct TokenPurge(pub IdentityService);

#[async_trait]
impl Sweeper for TokenPurge {
    fn name(&self) -> &'static str {
        "token purge"
    }

    async fn sweep(&self) -> Result<()> {
        self.0.purge_expired_tokens().await.map(|_| ())
    }
}
