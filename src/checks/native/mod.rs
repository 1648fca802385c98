//! Existing plugin command lines run in-process: a check whose command is a simple command
//! (see [`words`]) naming a plugin Concierge knows is run natively, with the plugin's own
//! options, status line and exit status, instead of forking it.
//!
//! * [`words`]: a command line as `/bin/sh` splits a simple command, or nothing;
//! * [`check_tcp`]: monitoring-plugins' `check_tcp`.
//!
//! A plugin given an option the native path does not run is [`Recognized::Unsupported`]:
//! the executor forks the real plugin if it is installed, else answers UNKNOWN saying why.

pub mod check_tcp;
pub mod words;

/// What a plugin's arguments make.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed<T> {
    /// Run natively with these.
    Run(T),
    /// Not natively: why, in a few words.
    Unsupported(String),
}

/// A recognized plugin command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Recognized {
    /// Run it natively.
    Run(Native),
    /// The plugin, but not runnable natively: the real one runs if installed.
    Unsupported {
        /// The plugin's name (`check_tcp`).
        plugin: &'static str,
        /// The program as the command names it (a name on `PATH`, or a path).
        program: String,
        /// Why not natively.
        why: String,
    },
}

/// A plugin run natively.
#[derive(Debug, Clone, PartialEq)]
pub enum Native {
    /// `check_tcp`.
    CheckTcp(check_tcp::Args),
}

impl Native {
    /// The plugin's name, for the result's `runner` attribute and the figures.
    pub fn plugin(&self) -> &'static str {
        match self {
            Self::CheckTcp(_) => "check_tcp",
        }
    }

    /// Run it: what the plugin would print, and its exit status.
    pub async fn run(&self) -> (String, i32) {
        match self {
            Self::CheckTcp(args) => check_tcp::run(args).await,
        }
    }
}

/// The plugin a command line runs, if Concierge knows it and the line is a simple command.
pub fn recognize(command: &str) -> Option<Recognized> {
    let words = words::split(command)?;
    let (program, args) = words.split_first()?;
    let name = program.rsplit('/').next().unwrap_or(program);
    let (plugin, parsed) = match name {
        "check_tcp" => ("check_tcp", check_tcp::parse(args)),
        _ => return None,
    };
    Some(match parsed {
        Parsed::Run(args) => Recognized::Run(Native::CheckTcp(args)),
        Parsed::Unsupported(why) => Recognized::Unsupported { plugin, program: program.clone(), why },
    })
}

/// Whether `program` can be run: a path to an executable file, or a name found on `PATH`.
pub fn installed(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    let executable =
        |p: &std::path::Path| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if program.contains('/') {
        return executable(std::path::Path::new(program));
    }
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| executable(&dir.join(program))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_plugins_in_simple_commands_are_recognized() {
        assert!(matches!(recognize("check_tcp -H 127.0.0.1 -p 22"), Some(Recognized::Run(Native::CheckTcp(_)))));
        assert!(matches!(
            recognize("/usr/lib/nagios/plugins/check_tcp -H 127.0.0.1 -p 22"),
            Some(Recognized::Run(Native::CheckTcp(_)))
        ));
        assert_eq!(recognize("check_tcp -H h -p 22 | grep OK"), None, "shell syntax: the shell runs it");
        assert_eq!(recognize("check_ping -H h"), None);
        assert_eq!(recognize("echo check_tcp"), None);
        let Some(Recognized::Unsupported { plugin, program, why }) = recognize("/opt/x/check_tcp -H h -p 1 -E") else {
            panic!()
        };
        assert_eq!(
            (plugin, program.as_str(), why.as_str()),
            ("check_tcp", "/opt/x/check_tcp", "option -E is not supported natively")
        );
        assert!(installed("sh") && !installed("/nonexistent/check_tcp") && !installed("no-such-program-here"));
    }
}
