//! `ims admin`: provisioning straight into the catalog, no server needed.

use anyhow::{Context, Result};
use clap::Subcommand;

use ims_domain::metadefs::{LoadMode, LoadOutcome, MetadefService};
use ims_domain::principal::{Principal, expand_roles, roles};
use ims_domain::volume::{NewVolume, Volume, VolumeId, VolumeQuery, VolumeStatus};

use crate::app;
use crate::config::Config;

/// Admin commands.
#[derive(Subcommand)]
pub enum AdminCommand {
    /// Projects.
    Project {
        #[command(subcommand)]
        command: ProjectCommand,
    },
    /// Users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Roles and role assignments.
    Role {
        #[command(subcommand)]
        command: RoleCommand,
    },
    /// AK/SK credentials for the Huawei-style APIs.
    Credential {
        #[command(subcommand)]
        command: CredentialCommand,
    },
    /// Metadata definitions (Glance's metadefs).
    Metadefs {
        #[command(subcommand)]
        command: MetadefsCommand,
    },
    /// Volumes of every project.
    Volume {
        #[command(subcommand)]
        command: VolumeCommand,
    },
}

/// `ims admin volume …`. Sizes are bytes, or a number with K, M, G or T (binary units).
#[derive(Subcommand)]
pub enum VolumeCommand {
    /// List volumes: `id status size format project name` per line, newest first.
    List {
        /// Only this project's (id or name).
        #[arg(long)]
        project: Option<String>,
        /// Only volumes in this status (creating, ready, deleted, expunged, error); all
        /// but expunged ones by default.
        #[arg(long)]
        status: Option<String>,
    },
    /// Show one volume as JSON, with where its data lives and what backs it.
    Show {
        /// The volume id.
        id: String,
    },
    /// Create a volume in a project; prints its id. From an image it is a qcow2 overlay
    /// on the image's data (no copy), at least the image's virtual size.
    Create {
        /// Name.
        #[arg(long)]
        name: String,
        /// Owning project (id or name).
        #[arg(long, default_value = "admin")]
        project: String,
        /// Size; required for a blank volume, defaults to the image's virtual size.
        #[arg(long, value_parser = parse_size)]
        size: Option<u64>,
        /// An image id: make the volume from it.
        #[arg(long)]
        from_image: Option<String>,
        /// `qcow2` (default) or `raw`, for a blank volume.
        #[arg(long)]
        format: Option<String>,
        /// Description.
        #[arg(long)]
        description: Option<String>,
        /// The volume's id (a UUID); a fresh one by default.
        #[arg(long)]
        id: Option<String>,
    },
    /// Delete a volume softly (recoverable).
    Delete {
        /// The volume id.
        id: String,
    },
    /// Recover a deleted volume.
    Recover {
        /// The volume id.
        id: String,
    },
    /// Grow a volume.
    Resize {
        /// The volume id.
        id: String,
        /// The new size.
        #[arg(value_parser = parse_size)]
        size: u64,
    },
    /// Remove a deleted, failed or abandoned volume's data for good; `--force` deletes a
    /// ready volume first.
    Expunge {
        /// The volume id.
        id: String,
        /// Also expunge a ready volume.
        #[arg(long)]
        force: bool,
    },
}

/// `10G`, `512M`, `4096`: bytes, with binary K/M/G/T suffixes.
fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("unknown size unit {c:?}: use K, M, G or T")),
            };
            (&text[..i], shift)
        }
        _ => (text, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{text} is too large"))
}

/// `ims admin metadefs …`
#[derive(Subcommand)]
pub enum MetadefsCommand {
    /// Load definition files in Glance's JSON format (what `glance-manage
    /// db_load_metadefs` reads): every `*.json` of DIR, or one file. Prints `NAMESPACE
    /// created|skipped|merged|replaced` per file. An existing namespace is skipped unless
    /// `--merge` or `--overwrite`.
    Load {
        /// A directory of `*.json` files, or one file.
        path: std::path::PathBuf,
        /// Add what an existing namespace lacks.
        #[arg(long)]
        merge: bool,
        /// With `--merge`: also overwrite existing fields and definitions.
        #[arg(long, requires = "merge")]
        prefer_new: bool,
        /// Replace existing namespaces and everything in them.
        #[arg(long, conflicts_with = "merge")]
        overwrite: bool,
    },
}

/// `ims admin credential …`
#[derive(Subcommand)]
pub enum CredentialCommand {
    /// Create an AK/SK pair; prints `AK SK`. The secret is never shown again.
    Create {
        /// Owner (id or name).
        #[arg(long)]
        user: String,
        /// Default project of signed requests (id or name); the user's default if absent.
        #[arg(long)]
        project: Option<String>,
    },
    /// List a user's credentials: `AK project-id created-at` per line.
    List {
        /// Owner (id or name).
        #[arg(long)]
        user: String,
    },
    /// Delete a credential.
    Delete {
        /// The access key.
        access: String,
    },
}

/// `ims admin project …`
#[derive(Subcommand)]
pub enum ProjectCommand {
    /// Create a project in domain Default; prints its id.
    Create {
        /// Name.
        name: String,
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List projects: `id name` per line.
    List,
    /// Delete a project (id or name).
    Delete {
        /// Id or name.
        project: String,
    },
}

/// `ims admin user …`
#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user; with `--project`, it becomes the default project and the user gets `--role` there.
    Create {
        /// Name.
        name: String,
        /// Password.
        #[arg(long, env = "IMS_NEW_USER_PASSWORD")]
        password: String,
        /// Default project (id or name).
        #[arg(long)]
        project: Option<String>,
        /// Role granted on `--project`.
        #[arg(long, default_value = "member")]
        role: String,
    },
    /// List users: `id name` per line.
    List,
    /// Set a user's password.
    Password {
        /// Id or name.
        user: String,
        /// New password.
        #[arg(long, env = "IMS_NEW_USER_PASSWORD")]
        password: String,
    },
    /// Delete a user (id or name).
    Delete {
        /// Id or name.
        user: String,
    },
}

/// `ims admin role …`
#[derive(Subcommand)]
pub enum RoleCommand {
    /// Create a role.
    Create {
        /// Name.
        name: String,
    },
    /// List roles: `id name` per line.
    List,
    /// Grant a role on a project to a user.
    Grant {
        /// Project id or name.
        #[arg(long)]
        project: String,
        /// User id or name.
        #[arg(long)]
        user: String,
        /// Role id or name.
        #[arg(long)]
        role: String,
    },
    /// Revoke a role.
    Revoke {
        /// Project id or name.
        #[arg(long)]
        project: String,
        /// User id or name.
        #[arg(long)]
        user: String,
        /// Role id or name.
        #[arg(long)]
        role: String,
    },
}

/// Runs an admin command against the configured catalog.
pub async fn run(config: Config, command: AdminCommand) -> Result<()> {
    let parts = app::open(&config, &app::Node::cli()).await?;
    app::bootstrap(&config, &parts.identity).await?;
    let id = &parts.identity;
    match command {
        AdminCommand::Metadefs {
            command:
                MetadefsCommand::Load {
                    path,
                    merge,
                    prefer_new,
                    overwrite,
                },
        } => {
            let mode = match (overwrite, merge) {
                (true, _) => LoadMode::Overwrite,
                (false, true) => LoadMode::Merge { prefer_new },
                (false, false) => LoadMode::Skip,
            };
            load_metadefs(&parts.metadefs, &path, mode).await?
        }
        AdminCommand::Volume { command } => volume_command(&parts, command).await?,
        AdminCommand::Project { command } => match command {
            ProjectCommand::Create { name, description } => println!(
                "{}",
                id.create_project(None, &name, None, &description).await?.id
            ),
            ProjectCommand::List => id
                .list_projects(None, None)
                .await?
                .iter()
                .for_each(|p| println!("{} {}", p.id, p.name)),
            ProjectCommand::Delete { project } => {
                id.delete_project(None, &id.project_id(&project).await?)
                    .await?
            }
        },
        AdminCommand::Credential { command } => match command {
            CredentialCommand::Create { user, project } => {
                let (cred, secret) = id
                    .create_credential(None, &user, project.as_deref())
                    .await?;
                eprintln!("keep the secret key now: it cannot be shown again");
                println!("{} {secret}", cred.access);
            }
            CredentialCommand::List { user } => {
                for c in id.list_credentials(None, &user).await? {
                    println!("{} {} {}", c.access, c.project_id, c.created_at);
                }
            }
            CredentialCommand::Delete { access } => id.delete_credential(None, &access).await?,
        },
        AdminCommand::User { command } => match command {
            UserCommand::Create {
                name,
                password,
                project,
                role,
            } => {
                let project_id = match &project {
                    Some(p) => Some(id.project_id(p).await?),
                    None => None,
                };
                let user = id
                    .create_user(None, &name, &password, None, project_id.as_deref())
                    .await?;
                if let Some(p) = project_id {
                    id.grant(None, &p, &user.id, &id.role_id(&role).await?)
                        .await?;
                }
                println!("{}", user.id);
            }
            UserCommand::List => id
                .list_users(None, None)
                .await?
                .iter()
                .for_each(|u| println!("{} {}", u.id, u.name)),
            UserCommand::Password { user, password } => {
                id.set_password(None, &id.user_id(&user).await?, &password)
                    .await?
            }
            UserCommand::Delete { user } => id.delete_user(None, &id.user_id(&user).await?).await?,
        },
        AdminCommand::Role { command } => match command {
            RoleCommand::Create { name } => println!("{}", id.create_role(None, &name).await?.id),
            RoleCommand::List => id
                .list_roles(None)
                .await?
                .iter()
                .for_each(|r| println!("{} {}", r.id, r.name)),
            RoleCommand::Grant {
                project,
                user,
                role,
            } => {
                id.grant(
                    None,
                    &id.project_id(&project).await?,
                    &id.user_id(&user).await?,
                    &id.role_id(&role).await?,
                )
                .await?
            }
            RoleCommand::Revoke {
                project,
                user,
                role,
            } => {
                id.revoke(
                    None,
                    &id.project_id(&project).await?,
                    &id.user_id(&user).await?,
                    &id.role_id(&role).await?,
                )
                .await?
            }
        },
    }
    parts.catalog.close().await;
    Ok(())
}

/// The operator, as the domain sees it: an administrator acting in `project`.
fn operator(project: &str) -> Principal {
    Principal {
        user_id: "ims-admin".into(),
        user_name: "ims admin".into(),
        project_id: project.to_string(),
        roles: expand_roles([roles::ADMIN]),
    }
}

fn volume_json(v: &Volume) -> serde_json::Value {
    serde_json::json!({
        "id": v.id.to_string(),
        "project_id": v.project_id,
        "name": v.name,
        "description": v.description,
        "size": v.size,
        "format": v.format.as_str(),
        "status": v.status.as_str(),
        "source_image": v.source_image.map(|i| i.to_string()),
        "backing": v.backing.as_ref().map(|b| serde_json::json!({
            "image_id": b.image_id.to_string(),
            "blob_key": b.blob_key,
            "format": b.format.as_str(),
        })),
        "location": v.location,
        "created_at": v.created_at.to_string(),
        "updated_at": v.updated_at.to_string(),
        "deleted_at": v.deleted_at.map(|t| t.to_string()),
    })
}

async fn volume_command(parts: &app::Parts, command: VolumeCommand) -> Result<()> {
    let (svc, id) = (&parts.volumes, &parts.identity);
    let admin = operator(&id.project_id("admin").await?);
    match command {
        VolumeCommand::List { project, status } => {
            let query = VolumeQuery {
                project_id: match project {
                    Some(p) => Some(id.project_id(&p).await?),
                    None => None,
                },
                status: status.map(|s| s.parse()).transpose()?,
                ..Default::default()
            };
            for v in svc.list(&admin, query).await? {
                println!(
                    "{} {} {} {} {} {}",
                    v.id, v.status, v.size, v.format, v.project_id, v.name
                );
            }
        }
        VolumeCommand::Show { id: vid } => {
            let v = svc.get(&admin, &vid).await?;
            println!("{}", serde_json::to_string_pretty(&volume_json(&v))?);
        }
        VolumeCommand::Create {
            name,
            project,
            size,
            from_image,
            format,
            description,
            id: chosen,
        } => {
            let who = operator(&id.project_id(&project).await?);
            let chosen = match chosen {
                Some(text) => Some(
                    VolumeId::parse(&text)
                        .ok_or_else(|| anyhow::anyhow!("--id {text:?} is not a UUID"))?,
                ),
                None => None,
            };
            let req = NewVolume {
                id: chosen,
                name,
                description,
                size,
                format: format.map(|f| f.parse()).transpose()?,
            };
            let v = match from_image {
                Some(image) => svc.create_from_image(&who, &image, req).await?,
                None => svc.create_blank(&who, req).await?,
            };
            println!("{}", v.id);
        }
        VolumeCommand::Delete { id: vid } => {
            svc.delete(&admin, &vid).await?;
        }
        VolumeCommand::Recover { id: vid } => {
            svc.recover(&admin, &vid).await?;
        }
        VolumeCommand::Resize { id: vid, size } => {
            svc.resize(&admin, &vid, size).await?;
        }
        VolumeCommand::Expunge { id: vid, force } => {
            if force && svc.get(&admin, &vid).await?.status == VolumeStatus::Ready {
                svc.delete(&admin, &vid).await?;
            }
            svc.expunge(&admin, &vid).await?;
        }
    }
    Ok(())
}

/// The definition files under `path`, in name order.
fn definition_files(path: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<_> = std::fs::read_dir(path)
        .with_context(|| format!("reading {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        anyhow::bail!("no *.json definition files in {}", path.display());
    }
    Ok(files)
}

/// Loads each file; a file that cannot be read or is refused is reported and the rest
/// still load (as glance-manage does), but the command then fails.
async fn load_metadefs(svc: &MetadefService, path: &std::path::Path, mode: LoadMode) -> Result<()> {
    let mut failed = 0;
    for file in definition_files(path)? {
        let loaded = async {
            let text = std::fs::read_to_string(&file)?;
            let doc: serde_json::Value = serde_json::from_str(&text)?;
            anyhow::Ok(svc.load(&doc, mode).await?)
        };
        match loaded.await {
            Ok((name, outcome)) => println!(
                "{name} {}",
                match outcome {
                    LoadOutcome::Created => "created",
                    LoadOutcome::Skipped => "skipped",
                    LoadOutcome::Merged => "merged",
                    LoadOutcome::Replaced => "replaced",
                }
            ),
            Err(e) => {
                failed += 1;
                eprintln!("{}: {e:#}", file.display());
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} definition file(s) not loaded");
    }
    Ok(())
}
