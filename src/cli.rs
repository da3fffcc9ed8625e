//! The command line: run the server, apply migrations, manage users, check the configuration.

use std::{io::BufRead, net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use secrecy::SecretString;
use tokio::net::TcpListener;

use crate::{
    accounts::{Restriction, registration_tokens::NewRegistrationToken, user_id},
    app::{self, AppState},
    clock::{Clock, OsRandomness, SystemClock},
    config::Config,
    telemetry,
};

/// Where the quick start keeps its generated configuration.
pub const DEFAULT_CONFIG_PATH: &str = "vestibule-data/vestibule.toml";

/// Vestibule: a Matrix account and authentication server.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Configuration file. Without it, `vestibule-data/vestibule.toml` is used, and generated
    /// with defaults (SQLite under ./vestibule-data, 127.0.0.1:8008) if it does not exist.
    #[arg(long, short, global = true, env = "VESTIBULE_CONFIG")]
    pub config: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: apply pending migrations, then listen on the configured addresses
    /// until SIGINT or SIGTERM.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage user accounts directly in the configured database.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the tokens that `m.login.registration_token` registration flows ask for.
    #[command(subcommand)]
    RegistrationToken(RegistrationTokenCommand),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// Account management for operators.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. The password is read from --password, or else from the first line of
    /// standard input.
    Create {
        /// Localpart or full user ID of the new account.
        username: String,
        /// The password (visible to other local users in the process list: prefer stdin).
        #[arg(long, env = "VESTIBULE_USER_PASSWORD")]
        password: Option<String>,
    },
    /// Set a new password without knowing the old one, and log out every session unless
    /// --keep-sessions is given. The password is read like for `create`.
    ResetPassword {
        /// Localpart or full user ID.
        username: String,
        /// The new password.
        #[arg(long, env = "VESTIBULE_USER_PASSWORD")]
        password: Option<String>,
        /// Keep the user's existing sessions logged in.
        #[arg(long)]
        keep_sessions: bool,
    },
    /// Deactivate an account: it can no longer log in, every session ends, and its user ID is
    /// never handed out again.
    Deactivate {
        /// Localpart or full user ID.
        username: String,
        /// Also delete the profile (display name, avatar, other fields).
        #[arg(long)]
        erase: bool,
    },
    /// Lock an account: its sessions stay, but every request except logout gets 401
    /// M_USER_LOCKED, and it cannot log in, until unlocked.
    Lock {
        /// Localpart or full user ID.
        username: String,
    },
    /// Lift a lock.
    Unlock {
        /// Localpart or full user ID.
        username: String,
    },
    /// Suspend an account: it can still log in and read, but profile changes get 403
    /// M_USER_SUSPENDED, until unsuspended.
    Suspend {
        /// Localpart or full user ID.
        username: String,
    },
    /// Lift a suspension.
    Unsuspend {
        /// Localpart or full user ID.
        username: String,
    },
    /// Make a user a server administrator, who may lock and suspend accounts through the admin
    /// API (`/_matrix/client/v1/admin/lock|suspend/{userId}`) and look up sessions (whois).
    GrantAdmin {
        /// Localpart or full user ID.
        username: String,
    },
    /// Take the administrator role away.
    RevokeAdmin {
        /// Localpart or full user ID.
        username: String,
    },
}

/// Registration-token management for operators.
#[derive(Debug, Subcommand)]
pub enum RegistrationTokenCommand {
    /// Create a token and print it.
    Create {
        /// The token text (1-64 characters of A-Z a-z 0-9 . _ ~ -); random when omitted.
        #[arg(long)]
        token: Option<String>,
        /// How many accounts it may create; unlimited when omitted.
        #[arg(long)]
        uses: Option<i64>,
        /// How long it stays valid, e.g. "12h" or "7days"; forever when omitted.
        #[arg(long, value_parser = humantime::parse_duration)]
        valid_for: Option<std::time::Duration>,
    },
    /// List every token with its uses and expiry.
    List,
    /// Revoke a token: registrations can no longer use it.
    Revoke {
        /// The token text.
        token: String,
    },
}

/// Configuration helpers.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate the configuration (file plus environment), then print it with its
    /// secrets (database password, SMTP password, CAPTCHA secret) masked.
    Check,
    /// Print a commented configuration file with every option at its default.
    Example,
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Config(ConfigCommand::Example) = cli.command {
        print!("{}", Config::example_toml());
        return Ok(());
    }
    let config = match &cli.config {
        Some(path) => Config::load(Some(path))?,
        None => Config::load_or_generate(DEFAULT_CONFIG_PATH.as_ref())?,
    };
    telemetry::init_logging(&config.observability);
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            app::open_store(&config).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::User(command) => manage_user(config, command).await,
        Command::RegistrationToken(command) => manage_registration_tokens(config, command).await,
        Command::Config(ConfigCommand::Check) => {
            print!(
                "{}",
                toml::to_string_pretty(&config).context("rendering configuration")?
            );
            Ok(())
        }
        Command::Config(ConfigCommand::Example) => Ok(()),
    }
}

async fn build_state(config: Config) -> anyhow::Result<AppState> {
    let metrics = if config.observability.metrics_enabled {
        telemetry::metrics_handle()
    } else {
        None
    };
    let store = app::open_store(&config).await?;
    Ok(app::build(
        config,
        store,
        Arc::new(SystemClock),
        Arc::new(OsRandomness),
        metrics,
    )?)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let addresses = config.listen.clone();
    let metrics_address = config
        .observability
        .metrics_enabled
        .then_some(config.observability.metrics_listen);
    let state = build_state(config).await?;
    let mut client = Vec::new();
    for address in addresses {
        client.push(bind(address, "listen").await?);
    }
    let metrics = match metrics_address {
        Some(address) => Some(bind(address, "observability.metrics_listen").await?),
        None => None,
    };
    let listeners = crate::Listeners { client, metrics };
    crate::serve(state, listeners, shutdown_signal())
        .await
        .context("server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// Listens on `address`, the value of the configuration key `key`.
async fn bind(address: SocketAddr, key: &str) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} ({key})"))?;
    let address = listener.local_addr().unwrap_or(address);
    tracing::info!(%address, key, "listening");
    Ok(listener)
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

fn read_password(given: Option<String>) -> anyhow::Result<SecretString> {
    let password = match given {
        Some(password) => password,
        None => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    if password.is_empty() {
        bail!("no password given (use --password or pipe it on standard input)");
    }
    Ok(SecretString::from(password))
}

async fn manage_user(config: Config, command: UserCommand) -> anyhow::Result<()> {
    let state = build_state(config).await?;
    let accounts = &state.accounts;
    let existing_user = |username: &str| {
        user_id::user_id_for_login(username, accounts.server_name())
            .with_context(|| format!("{username:?} is not a user of this server"))
    };
    match command {
        UserCommand::Create { username, password } => {
            let user_id = accounts
                .create_user(&username, read_password(password)?)
                .await?;
            println!("created {user_id}");
        }
        UserCommand::ResetPassword {
            username,
            password,
            keep_sessions,
        } => {
            let user_id = existing_user(&username)?;
            accounts
                .reset_password(&user_id, read_password(password)?, !keep_sessions)
                .await?;
            println!("password of {user_id} reset");
        }
        UserCommand::Deactivate { username, erase } => {
            let user_id = existing_user(&username)?;
            let unbound = accounts.close_account(&user_id, erase).await?;
            println!(
                "deactivated {user_id} (identity server unbind: {})",
                unbound.as_str()
            );
        }
        UserCommand::Lock { username } => {
            let user_id = existing_user(&username)?;
            accounts
                .set_restriction(&user_id, Restriction::Locked, true)
                .await?;
            println!("locked {user_id}");
        }
        UserCommand::Unlock { username } => {
            let user_id = existing_user(&username)?;
            accounts
                .set_restriction(&user_id, Restriction::Locked, false)
                .await?;
            println!("unlocked {user_id}");
        }
        UserCommand::Suspend { username } => {
            let user_id = existing_user(&username)?;
            accounts
                .set_restriction(&user_id, Restriction::Suspended, true)
                .await?;
            println!("suspended {user_id}");
        }
        UserCommand::Unsuspend { username } => {
            let user_id = existing_user(&username)?;
            accounts
                .set_restriction(&user_id, Restriction::Suspended, false)
                .await?;
            println!("unsuspended {user_id}");
        }
        UserCommand::GrantAdmin { username } => {
            let user_id = existing_user(&username)?;
            accounts.set_admin(&user_id, true).await?;
            println!("{user_id} is now a server administrator");
        }
        UserCommand::RevokeAdmin { username } => {
            let user_id = existing_user(&username)?;
            accounts.set_admin(&user_id, false).await?;
            println!("{user_id} is no longer a server administrator");
        }
    }
    Ok(())
}

async fn manage_registration_tokens(
    config: Config,
    command: RegistrationTokenCommand,
) -> anyhow::Result<()> {
    let state = build_state(config).await?;
    let tokens = &state.registration_tokens;
    match command {
        RegistrationTokenCommand::Create {
            token,
            uses,
            valid_for,
        } => {
            let expires_at_ms = match valid_for {
                Some(duration) => {
                    let lifetime_ms =
                        i64::try_from(duration.as_millis()).context("--valid-for is too long")?;
                    Some(SystemClock.now_ms().saturating_add(lifetime_ms))
                }
                None => None,
            };
            let record = tokens
                .create(NewRegistrationToken {
                    token,
                    uses_allowed: uses,
                    expires_at_ms,
                })
                .await?;
            println!("{}", record.token);
        }
        RegistrationTokenCommand::List => {
            println!("TOKEN\tUSES_ALLOWED\tPENDING\tCOMPLETED\tEXPIRES");
            for record in tokens.list().await? {
                let uses = record
                    .uses_allowed
                    .map_or_else(|| "unlimited".to_owned(), |uses| uses.to_string());
                let expires = record
                    .expires_at_ms
                    .map_or_else(|| "never".to_owned(), format_time);
                println!(
                    "{}\t{uses}\t{}\t{}\t{expires}",
                    record.token, record.pending, record.completed
                );
            }
        }
        RegistrationTokenCommand::Revoke { token } => {
            if !tokens.revoke(&token).await? {
                bail!("no registration token {token:?}");
            }
            println!("revoked {token}");
        }
    }
    Ok(())
}

/// Milliseconds since the epoch as an RFC 3339 UTC time.
fn format_time(ms: i64) -> String {
    let time = std::time::UNIX_EPOCH
        + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or_default());
    humantime::format_rfc3339_seconds(time).to_string()
}
