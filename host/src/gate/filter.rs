//! Tool filters: the operator's `allowed_tools` / `denied_tools` and a
//! token's scopes, all glob patterns over full function names
//! (`text.greet`, `text.analysis.word-stats`). Each level can only narrow
//! what the one above allows, and a deny always wins.

/// `*` matches any run of characters (dots included), `?` one character.
/// Iterative with backtracking to the last `*`: linear in practice, no
/// recursion on untrusted input.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A pattern is non-empty and uses only the characters tool names use,
/// plus `*` and `?`.
pub fn validate_pattern(p: &str) -> Result<(), String> {
    if p.is_empty() || p.len() > 256 {
        return Err("a pattern must be 1-256 characters, e.g. \"text.*\"".into());
    }
    if let Some(c) = p.chars().find(|c| !(c.is_ascii_alphanumeric() || "-_.*?".contains(*c))) {
        return Err(format!("character {c:?} cannot appear in a tool name; use a-z, 0-9, '-', '_', '.', and '*' or '?' as wildcards"));
    }
    Ok(())
}

/// Why a filter refused a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterDenial {
    /// `denied_tools` matched (the pattern).
    Denied(String),
    /// Not matched by `allowed_tools`.
    NotAllowed,
    /// Not matched by the token's scopes.
    OutOfScope,
}

impl std::fmt::Display for FilterDenial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FilterDenial::Denied(p) => write!(f, "denied by [gate] denied_tools pattern {p:?}"),
            FilterDenial::NotAllowed => write!(f, "not in [gate] allowed_tools"),
            FilterDenial::OutOfScope => write!(f, "outside the token's tool scopes"),
        }
    }
}

/// The operator's filter.
#[derive(Debug, Clone, Default)]
pub struct ToolFilter {
    pub allowed: Option<Vec<String>>,
    pub denied: Vec<String>,
}

impl ToolFilter {
    /// Checks `name` against the operator's lists, then the caller's scopes
    /// (`None`: the caller is not scoped, e.g. stdio without `--token`).
    pub fn check(&self, scopes: Option<&[String]>, name: &str) -> Result<(), FilterDenial> {
        if let Some(p) = self.denied.iter().find(|p| glob_match(p, name)) {
            return Err(FilterDenial::Denied(p.clone()));
        }
        if let Some(allowed) = &self.allowed {
            if !allowed.iter().any(|p| glob_match(p, name)) {
                return Err(FilterDenial::NotAllowed);
            }
        }
        if let Some(scopes) = scopes {
            if !scopes.iter().any(|p| glob_match(p, name)) {
                return Err(FilterDenial::OutOfScope);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let cases = [
            ("text.*", "text.greet", true),
            ("text.*", "text.analysis.word-stats", true),
            ("text.*", "textual.greet", false),
            ("text.*", "text", false),
            ("*", "anything.at.all", true),
            ("text.greet", "text.greet", true),
            ("text.greet", "text.greeting", false),
            ("*.greet", "text.greet", true),
            ("*.greet", "text.greet.x", false),
            ("t?xt.*", "text.a", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("", "", true),
            ("", "x", false),
            ("**", "", true),
        ];
        for (p, n, want) in cases {
            assert_eq!(glob_match(p, n), want, "{p:?} vs {n:?}");
        }
    }

    #[test]
    fn long_adversarial_input_is_fast() {
        let name = "a".repeat(10_000);
        let started = std::time::Instant::now();
        assert!(!glob_match("*a*a*a*a*a*b", &name));
        assert!(started.elapsed().as_secs() < 2);
    }

    #[test]
    fn levels_only_narrow_and_deny_wins() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let f = ToolFilter { allowed: Some(s(&["text.*", "fetch.get"])), denied: s(&["text.secret*"]) };
        let all = s(&["*"]);
        let text = s(&["text.*"]);
        let cases: &[(Option<&[String]>, &str, Result<(), FilterDenial>)] = &[
            (None, "text.greet", Ok(())),
            (None, "fetch.get", Ok(())),
            (None, "fetch.post", Err(FilterDenial::NotAllowed)),
            (None, "text.secret-key", Err(FilterDenial::Denied("text.secret*".into()))),
            // A token scoped to everything cannot widen the operator's list.
            (Some(&all), "fetch.post", Err(FilterDenial::NotAllowed)),
            (Some(&all), "text.secret", Err(FilterDenial::Denied("text.secret*".into()))),
            (Some(&text), "fetch.get", Err(FilterDenial::OutOfScope)),
            (Some(&text), "text.greet", Ok(())),
            (Some(&[]), "text.greet", Err(FilterDenial::OutOfScope)),
        ];
        for (scopes, name, want) in cases {
            assert_eq!(&f.check(*scopes, name), want, "{name} with {scopes:?}");
        }
        let none = ToolFilter { allowed: Some(vec![]), denied: vec![] };
        assert_eq!(none.check(None, "text.greet"), Err(FilterDenial::NotAllowed));
        assert_eq!(ToolFilter::default().check(None, "x.y"), Ok(()));
    }

    #[test]
    fn patterns_are_validated() {
        for ok in ["text.*", "*", "a-b_c.d?"] {
            assert!(validate_pattern(ok).is_ok(), "{ok}");
        }
        for bad in ["", "text/*", "a b", "é"] {
            assert!(validate_pattern(bad).is_err(), "{bad}");
        }
    }
}
