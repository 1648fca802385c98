//! The one failure type of the built-in checks: a machine-readable [`Reason`] and the
//! message shown in the check's output.
//!
//! The reason is published as the result's `reason` attribute (`"reason": "timeout"`),
//! which handlers and filters match on, so [`Reason::as_str`] spells exactly the words
//! results have always carried.

/// Why a built-in check failed: a machine-readable reason and the message shown in its output.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct CheckFailure {
    /// The machine-readable reason, published as the result's `reason`.
    pub reason: Reason,
    /// What the output says about it.
    pub message: String,
}

impl CheckFailure {
    /// A failure for `reason` saying `message`.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self { reason, message: message.into() }
    }

    /// Parameters that cannot be used (the reason of every validation error).
    pub fn parameters(message: impl Into<String>) -> Self {
        Self::new(Reason::Parameters, message)
    }
}

/// Why a built-in check is not OK; one variant per published `reason` string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// `parameters`: the check's parameters cannot be used.
    Parameters,
    /// `dns`: the name did not resolve (or the DNS query failed).
    Dns,
    /// `connect`: no address accepted a TCP connection.
    Connect,
    /// `tls_handshake`: TLS could not be set up or the handshake failed.
    TlsHandshake,
    /// `tls_verify`: the server's certificate chain was not accepted.
    TlsVerify,
    /// `timeout`: the probe did not finish in time.
    Timeout,
    /// `http`: the HTTP exchange itself failed (handshake, no response, body read).
    Http,
    /// `status`: an HTTP status code that is not accepted.
    Status,
    /// `body`: the body does (not) match the expected pattern.
    Body,
    /// `body_size`: the body is larger than allowed.
    BodySize,
    /// `header`: a response header is missing or does (not) match.
    Header,
    /// `redirects`: too many redirects, or one that cannot be followed.
    Redirects,
    /// `latency`: slower than the warning or critical threshold.
    Latency,
    /// `expect`: a TCP response does not match the expected pattern.
    Expect,
    /// `rcode`: a DNS response code that is not accepted.
    Rcode,
    /// `answer`: the DNS answers are not the expected ones.
    Answer,
    /// `file`: a certificate file cannot be read.
    File,
    /// `certificate`: a presented certificate does not parse.
    Certificate,
    /// `cert_expiry`: the certificate expires within the thresholds.
    CertExpiry,
    /// `parse`: a scraped metrics page cannot be parsed.
    Parse,
    /// `empty`: no metric to deliver.
    Empty,
    /// `delivery`: the broker did not confirm the courier's metrics.
    Delivery,
    /// `duplicate_series`: the courier dropped duplicate series.
    DuplicateSeries,
    /// `output_size`: the courier's converted output would be larger than allowed.
    OutputSize,
}

impl Reason {
    /// The published `reason` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Parameters => "parameters",
            Self::Dns => "dns",
            Self::Connect => "connect",
            Self::TlsHandshake => "tls_handshake",
            Self::TlsVerify => "tls_verify",
            Self::Timeout => "timeout",
            Self::Http => "http",
            Self::Status => "status",
            Self::Body => "body",
            Self::BodySize => "body_size",
            Self::Header => "header",
            Self::Redirects => "redirects",
            Self::Latency => "latency",
            Self::Expect => "expect",
            Self::Rcode => "rcode",
            Self::Answer => "answer",
            Self::File => "file",
            Self::Certificate => "certificate",
            Self::CertExpiry => "cert_expiry",
            Self::Parse => "parse",
            Self::Empty => "empty",
            Self::Delivery => "delivery",
            Self::DuplicateSeries => "duplicate_series",
            Self::OutputSize => "output_size",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_its_message_and_reason_string() {
        let failure = CheckFailure::new(Reason::TlsHandshake, "TLS handshake failed: eof");
        assert_eq!(failure.to_string(), "TLS handshake failed: eof");
        assert_eq!(failure.reason.to_string(), "tls_handshake");
        assert_eq!(CheckFailure::parameters("x").reason.as_str(), "parameters");
    }

    // The strings are published in results: a rename here breaks users' filters.
    #[test]
    fn reason_strings_are_the_published_ones() {
        use Reason::*;
        let all = [
            (Parameters, "parameters"),
            (Dns, "dns"),
            (Connect, "connect"),
            (TlsHandshake, "tls_handshake"),
            (TlsVerify, "tls_verify"),
            (Timeout, "timeout"),
            (Http, "http"),
            (Status, "status"),
            (Body, "body"),
            (BodySize, "body_size"),
            (Header, "header"),
            (Redirects, "redirects"),
            (Latency, "latency"),
            (Rcode, "rcode"),
            (Answer, "answer"),
            (File, "file"),
            (Certificate, "certificate"),
            (CertExpiry, "cert_expiry"),
            (Parse, "parse"),
            (Empty, "empty"),
            (Delivery, "delivery"),
            (DuplicateSeries, "duplicate_series"),
            (OutputSize, "output_size"),
        ];
        for (reason, text) in all {
            assert_eq!(reason.as_str(), text);
        }
    }
}
