//! Structured logs (text or JSON) and the process-wide Prometheus recorder.

use std::{io::IsTerminal, sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::{LogFormat, ObservabilityConfig};

/// Installs the log subscriber: `RUST_LOG` if set, else the configured filter.
pub fn init_logging(config: &ObservabilityConfig) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log_filter));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if config.log_format == LogFormat::Json {
        registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init()
    } else {
        // Colours only for a person at a terminal, never in a file or a log collector.
        let colours = std::io::stderr().is_terminal();
        registry
            .with(fmt::layer().with_ansi(colours).with_writer(std::io::stderr))
            .try_init()
    };
    if let Err(err) = result {
        eprintln!("logging was already initialised: {err}");
    }
}

/// How often the recorder's histograms are compacted when nobody scrapes them.
const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The process-wide Prometheus recorder, installed on first use (the `metrics` facade has one
/// global recorder, so every server in the process shares it). A thread of its own runs the
/// recorder's upkeep: without it, every latency sample is kept until the next scrape, so a
/// server nobody scrapes grows with every request it serves.
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => {
                let upkeep = handle.clone();
                let started = std::thread::Builder::new()
                    .name("vestibule-metrics-upkeep".into())
                    .spawn(move || {
                        loop {
                            std::thread::sleep(METRICS_UPKEEP_INTERVAL);
                            upkeep.run_upkeep();
                        }
                    });
                if let Err(err) = started {
                    tracing::warn!(error = %err, "metrics upkeep thread could not start");
                }
                Some(handle)
            }
            Err(err) => {
                tracing::warn!(error = %err, "metrics recorder unavailable");
                None
            }
        })
        .clone()
}
