//! A command line split into words as `/bin/sh` splits a *simple* command: blanks separate
//! words, single quotes keep everything, double quotes keep everything but `\` before
//! `$ ` `` ` `` `"` `\` and newline, a backslash outside quotes keeps the next character.
//! Anything the shell would do more with — pipes, lists, redirections, substitutions,
//! variables, globs, `~`, comments, assignments before the command — is not a simple
//! command: `None`, and the command runs through the shell as it always did.

/// The words of `line`, or `None` when the shell would do more than split it.
pub fn split(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut globbed = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    if std::mem::take(&mut globbed) && !literal_glob(&word) {
                        return None;
                    }
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        other => word.push(other),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            escaped @ ('"' | '\\') => word.push(escaped),
                            // `\$` and `` \` `` keep the character; a line continuation is shell work.
                            escaped @ ('$' | '`') => word.push(escaped),
                            '\n' => return None,
                            other => {
                                word.push('\\');
                                word.push(other);
                            }
                        },
                        '$' | '`' => return None,
                        other => word.push(other),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next()? {
                    '\n' => return None,
                    other => word.push(other),
                }
            }
            // Operators, substitutions, expansions, comments, globs: the shell's work.
            '|' | '&' | ';' | '<' | '>' | '(' | ')' | '$' | '`' | '\n' => return None,
            '*' | '?' | '[' => {
                in_word = true;
                globbed = true;
                word.push(c);
            }
            '#' if !in_word => return None,
            '~' if !in_word => return None,
            '=' if words.is_empty() && in_word && !word.is_empty() => return None,
            // Reserved words, and brace expansion where `/bin/sh` is bash.
            '{' | '}' => return None,
            other => {
                in_word = true;
                word.push(other);
            }
        }
    }
    if in_word {
        if globbed && !literal_glob(&word) {
            return None;
        }
        words.push(word);
    }
    (!words.is_empty()).then_some(words)
}

/// Whether a word with glob characters is left as it is by the shell because it cannot match
/// a file: a URL (`http://h/?q=1`), whose first component (`http:`) is no directory here.
fn literal_glob(word: &str) -> bool {
    word.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            && !std::path::Path::new(&format!("{scheme}:")).is_dir()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(line: &str) -> Option<Vec<&'static str>> {
        split(line).map(|v| v.into_iter().map(|s| &*Box::leak(s.into_boxed_str())).collect())
    }

    #[test]
    fn simple_commands_split_as_sh_splits_them() {
        assert_eq!(w("check_tcp -H 127.0.0.1  -p 22"), Some(vec!["check_tcp", "-H", "127.0.0.1", "-p", "22"]));
        assert_eq!(
            w(r#"check-http.rb -u 'https://x/?a=1&b=2' -q "OK \"fine\"""#),
            Some(vec!["check-http.rb", "-u", "https://x/?a=1&b=2", "-q", r#"OK "fine""#])
        );
        assert_eq!(w(r"a b\ c 'd''e' x\'y"), Some(vec!["a", "b c", "de", "x'y"]));
        assert_eq!(w(r#"a "b\n\$c\\""#), Some(vec!["a", r"b\n$c\"]));
        assert_eq!(w("a ''"), Some(vec!["a", ""]));
        assert_eq!(w("a -s=x b=c"), Some(vec!["a", "-s=x", "b=c"]), "= after the command is literal");
        assert_eq!(w("a x#y"), Some(vec!["a", "x#y"]), "# inside a word is literal");
        assert_eq!(w("   "), None);
        assert_eq!(w("check-http.rb -u http://h/a?b=1&c=[2]"), None, "& is an operator even in a URL");
        assert_eq!(w("check-http.rb -u http://h/a?b=1 -q x*"), None, "a glob that may match a file");
        assert_eq!(
            w("check-http.rb -u http://h/a?b=[1]"),
            Some(vec!["check-http.rb", "-u", "http://h/a?b=[1]"]),
            "a URL cannot match a file while no `http:` directory exists"
        );
    }

    #[test]
    fn anything_more_is_left_to_the_shell() {
        for line in [
            "check_tcp -H h | cat",
            "a && b",
            "a; b",
            "a > out",
            "a < in",
            "a $(b)",
            "a `b`",
            "a $HOME",
            "a \"$HOME\"",
            "X=1 check_tcp -H h",
            "a *.txt",
            "a file?.txt",
            "a /etc/host[s]",
            "a ://x?",
            "a ~/x",
            "a # comment",
            "a 'unterminated",
            "a \"unterminated",
            "a \\",
            "(a)",
            "a &",
            "a\nb",
            "{ a; }",
        ] {
            assert_eq!(split(line), None, "{line:?}");
        }
    }
}
