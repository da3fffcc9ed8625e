//! Outgoing email: SMTP through lettre, with plain-text and HTML templates that an operator can
//! override from a directory.
//!
//! Sending happens on the async runtime (lettre's tokio transport), never blocking a worker.
//! The request that asks for an email waits for the SMTP server to accept it, retrying
//! transient failures, because the client must learn whether a verification email went out:
//! a send that still fails is reported to the client and logged, never dropped silently.

use std::{path::Path, sync::Arc, time::Duration};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
    transport::smtp::authentication::Credentials,
};
use minijinja::{Environment, context};

use crate::config::{EmailConfig, SmtpTls};

/// The built-in templates, replaced file by file by those in `email.template_dir`.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "verification_subject.txt",
        include_str!("../templates/email/verification_subject.txt"),
    ),
    (
        "verification.txt",
        include_str!("../templates/email/verification.txt"),
    ),
    (
        "verification.html",
        include_str!("../templates/email/verification.html"),
    ),
    (
        "in_use_subject.txt",
        include_str!("../templates/email/in_use_subject.txt"),
    ),
    ("in_use.txt", include_str!("../templates/email/in_use.txt")),
    (
        "in_use.html",
        include_str!("../templates/email/in_use.html"),
    ),
];

/// How long one SMTP attempt may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the mailer could not be built or an email not sent.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// A setting is unusable.
    #[error("email configuration: {0}")]
    Config(String),
    /// A template is malformed or failed to render.
    #[error("email template: {0}")]
    Template(#[from] minijinja::Error),
    /// The message could not be built (for example a bad recipient).
    #[error("email message: {0}")]
    Message(String),
    /// The SMTP server refused or could not be reached, after every attempt.
    #[error("sending email failed")]
    Smtp(#[from] lettre::transport::smtp::Error),
}

impl EmailError {
    /// Whether sending again can never succeed: the SMTP server refused the email for good
    /// (a 5xx answer), or it could not even be built. Anything else (a server that is down, a
    /// 4xx answer) may pass later.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Smtp(err) => err.is_permanent(),
            Self::Config(_) | Self::Template(_) | Self::Message(_) => true,
        }
    }
}

/// What a verification email is for; the templates word it accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailPurpose {
    /// Registering an account.
    Register,
    /// Adding the address to an account.
    Add,
    /// Resetting a forgotten password.
    Password,
}

impl EmailPurpose {
    /// The purpose named by [`Self::as_str`]'s string.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "register" => Some(Self::Register),
            "add" => Some(Self::Add),
            "password" => Some(Self::Password),
            _ => None,
        }
    }

    /// The name the templates and the store use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Add => "add",
            Self::Password => "password",
        }
    }
}

/// A verification email to send.
#[derive(Debug, Clone)]
pub struct VerificationEmail<'a> {
    /// The recipient.
    pub to: &'a str,
    /// What it is for.
    pub purpose: EmailPurpose,
    /// The validation page's URL (with the token).
    pub link: &'a str,
    /// The short code the user may type into a client instead.
    pub code: &'a str,
}

/// Sends email through the configured SMTP server.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    templates: Arc<Environment<'static>>,
    server_name: String,
}

impl Mailer {
    /// The mailer for `config`, or `None` when no SMTP server is configured. Templates are
    /// loaded and checked here, so a broken override stops start-up.
    pub fn from_config(
        config: &EmailConfig,
        server_name: &str,
    ) -> Result<Option<Self>, EmailError> {
        if config.smtp_host.is_empty() {
            return Ok(None);
        }
        let config_error =
            |err: lettre::transport::smtp::Error| EmailError::Config(err.to_string());
        let builder = match config.tls {
            SmtpTls::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.smtp_host.as_str())
            }
            SmtpTls::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.smtp_host)
                    .map_err(config_error)?
            }
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.smtp_host)
                .map_err(config_error)?,
        };
        let mut builder = builder.port(config.smtp_port).timeout(Some(SMTP_TIMEOUT));
        if !config.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                config.username.clone(),
                config.password.expose().to_owned(),
            ));
        }
        let from = config.from.clone();
        Ok(Some(Self {
            transport: builder.build(),
            from,
            templates: Arc::new(load_templates(&config.template_dir)?),
            server_name: server_name.to_owned(),
        }))
    }

    /// Sends a verification email, retrying transient SMTP failures.
    pub async fn send_verification(&self, email: VerificationEmail<'_>) -> Result<(), EmailError> {
        let values = context! {
            server_name => self.server_name,
            purpose => email.purpose.as_str(),
            link => email.link,
            code => email.code,
            address => email.to,
        };
        self.send("verification", email.to, &values).await
    }

    /// Tells the owner of `to` that someone tried to register it (or add it) again: what the
    /// spec recommends instead of `M_THREEPID_IN_USE` when the answer must not reveal that
    /// the address has an account.
    pub async fn send_address_in_use(
        &self,
        to: &str,
        purpose: EmailPurpose,
    ) -> Result<(), EmailError> {
        let values = context! {
            server_name => self.server_name,
            purpose => purpose.as_str(),
            address => to,
        };
        self.send("in_use", to, &values).await
    }

    /// Renders the `{kind}_subject.txt`, `{kind}.txt` and `{kind}.html` templates and sends them.
    async fn send(
        &self,
        kind: &str,
        to: &str,
        values: &minijinja::Value,
    ) -> Result<(), EmailError> {
        let render = |name: String| -> Result<String, EmailError> {
            Ok(self.templates.get_template(&name)?.render(values)?)
        };
        let to: Mailbox = to
            .parse()
            .map_err(|err| EmailError::Message(format!("recipient: {err}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(render(format!("{kind}_subject.txt"))?.trim())
            .multipart(MultiPart::alternative_plain_html(
                render(format!("{kind}.txt"))?,
                render(format!("{kind}.html"))?,
            ))
            .map_err(|err| EmailError::Message(err.to_string()))?;
        self.send_once(message).await
    }

    async fn send_once(&self, message: Message) -> Result<(), EmailError> {
        match self.transport.send(message).await {
            Ok(_) => {
                metrics::counter!("vestibule_emails_sent_total").increment(1);
                Ok(())
            }
            Err(err) => {
                let outcome = if err.is_permanent() {
                    "refused"
                } else {
                    "deferred"
                };
                metrics::counter!("vestibule_email_failures_total", "outcome" => outcome)
                    .increment(1);
                Err(EmailError::Smtp(err))
            }
        }
    }
}

/// The built-in templates, with any file of the same name in `dir` taking its place.
fn load_templates(dir: &str) -> Result<Environment<'static>, EmailError> {
    let mut env = Environment::new();
    for (name, builtin) in TEMPLATES {
        let source = if dir.is_empty() {
            None
        } else {
            let path = Path::new(dir).join(name);
            match std::fs::read_to_string(&path) {
                Ok(source) => Some(source),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
                Err(err) => {
                    return Err(EmailError::Config(format!(
                        "reading {}: {err}",
                        path.display()
                    )));
                }
            }
        };
        env.add_template_owned(*name, source.unwrap_or_else(|| (*builtin).to_owned()))?;
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_templates_render_every_purpose_and_escape_html() {
        let env = load_templates("").expect("templates load");
        for purpose in ["register", "add", "password"] {
            let values = context! {
                server_name => "example.org",
                purpose => purpose,
                link => "https://example.org/v?a=1&b=<2>",
                code => "ABCD1234",
            };
            let text = env
                .get_template("verification.txt")
                .unwrap()
                .render(&values)
                .unwrap();
            assert!(text.contains("https://example.org/v?a=1&b=<2>") && text.contains("ABCD1234"));
            let html = env
                .get_template("verification.html")
                .unwrap()
                .render(&values)
                .unwrap();
            assert!(html.contains("a=1&amp;b=&lt;2&gt;"), "{html}");
            let subject = env
                .get_template("verification_subject.txt")
                .unwrap()
                .render(&values)
                .unwrap();
            assert!(subject.contains("example.org"));
        }
    }

    #[test]
    fn a_template_directory_overrides_file_by_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("verification.txt"), "code {{ code }}").unwrap();
        let env = load_templates(dir.path().to_str().unwrap()).unwrap();
        let text = env
            .get_template("verification.txt")
            .unwrap()
            .render(context! { code => "XYZ" })
            .unwrap();
        assert_eq!(text, "code XYZ");
        assert!(env.get_template("verification.html").is_ok());
        std::fs::write(dir.path().join("verification.html"), "{% if %}").unwrap();
        assert!(load_templates(dir.path().to_str().unwrap()).is_err());
    }

    #[test]
    fn no_smtp_host_means_no_mailer() {
        let mailer = Mailer::from_config(&EmailConfig::default(), "example.org").unwrap();
        assert!(mailer.is_none());
    }
}
