//! `concierge courier discover URL`: scrape an endpoint once and list its metric
//! families (name, type, label keys, samples), to write the courier's include/exclude
//! rules.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::args::{Auth, set, set_headers};
use super::exit;
use crate::checks::courier::{CourierParams, scrape};
use crate::proto::Object;

/// `concierge courier …`.
#[derive(Subcommand, Debug)]
pub enum CourierAction {
    /// List the metric families an endpoint exposes (name, type, label keys, samples), to
    /// write include/exclude rules
    Discover(DiscoverArgs),
}

/// `concierge courier discover URL`.
#[derive(Debug, Clone, Args)]
pub struct DiscoverArgs {
    /// The metrics endpoint
    pub url: String,
    /// prometheus, dropwizard or json [default: detected]
    #[arg(long)]
    pub format: Option<String>,
    /// Request header "Name: value" (repeatable)
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    #[command(flatten)]
    pub auth: Auth,
    /// Do not verify the TLS certificate
    #[arg(short = 'k', long)]
    pub insecure: bool,
    /// Seconds for the scrape [default: 10]
    #[arg(short = 't', long)]
    pub timeout: Option<f64>,
}

impl DiscoverArgs {
    /// The courier parameters these flags describe.
    pub fn to_params(&self) -> Result<Value, String> {
        let mut p = Object::new();
        p.insert("url".into(), self.url.clone().into());
        set(&mut p, "format", self.format.clone().map(Value::from));
        set_headers(&mut p, "headers", &self.headers)?;
        self.auth.apply(&mut p);
        if self.insecure {
            p.insert("tls".into(), json!({"insecure": true}));
        }
        set(&mut p, "timeout", self.timeout.map(Value::from));
        Ok(Value::Object(p))
    }
}

/// `concierge courier discover`: scrape once and list the families.
pub async fn discover(args: &DiscoverArgs) -> ExitCode {
    let params =
        args.to_params().and_then(|v| serde::Deserialize::deserialize(v).map_err(|e: serde_json::Error| e.to_string()));
    let params: CourierParams = match params {
        Ok(p) => p,
        Err(problem) => {
            eprintln!("UNKNOWN: {problem}");
            return ExitCode::from(exit::UNKNOWN);
        }
    };
    match scrape(&params).await.and_then(|scraped| {
        let page = scraped.parse()?;
        Ok((page.families, page.samples.len(), scraped.format_label(), scraped.seconds))
    }) {
        Ok((families, samples, format, seconds)) => {
            let width = families.iter().map(|f| f.name.len()).max().unwrap_or(4).max(4);
            println!(
                "# {} families, {samples} samples, {format}, scraped in {seconds:.3} s from {}",
                families.len(),
                params.url
            );
            println!("{:<width$}  {:<9}  {:>7}  LABELS", "NAME", "TYPE", "SAMPLES");
            for f in &families {
                println!("{:<width$}  {:<9}  {:>7}  {}", f.name, f.kind.label(), f.samples, f.label_keys.join(","));
            }
            ExitCode::from(exit::OK)
        }
        Err(failure) => {
            eprintln!("CRITICAL: {} ({})", failure.message, failure.reason.as_str());
            ExitCode::from(2)
        }
    }
}
