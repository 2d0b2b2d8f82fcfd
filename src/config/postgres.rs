//! A `postgres-backup` sweep's `database`, as libpq reads it: a database
//! name, a `key=value` connection string ("host=/run/postgresql
//! dbname=sitg") or a `postgresql://` URI. A password in it would reach
//! `pg_dump`'s argv, which every user of the host can read in `ps`: it
//! belongs in a `passfile`.

/// The database name `text` names (`None`: libpq's default, the user's
/// name), or why it is refused.
pub fn postgres_database(text: &str) -> Result<Option<String>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("expected a database name or a libpq connection string, found \"\"".into());
    }
    let password = || {
        Err(
            "a password here would be in pg_dump's command line, visible to every user of the host in `ps`: put it in a PGPASSFILE and name that file in `passfile`"
                .to_owned(),
        )
    };
    if let Some(rest) = ["postgresql://", "postgres://"]
        .iter()
        .find_map(|scheme| text.strip_prefix(scheme))
    {
        let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = main.split_once('/').unwrap_or((main, ""));
        let userinfo = authority.rsplit_once('@').map(|(u, _)| u).unwrap_or("");
        let in_query = query.split('&').any(|kv| kv.starts_with("password="));
        if userinfo.contains(':') || in_query {
            return password();
        }
        return Ok(Some(path.to_owned()).filter(|p| !p.is_empty()));
    }
    if !text.contains('=') {
        return Ok(Some(text.to_owned()));
    }
    let pairs = conninfo(text)?;
    if pairs.iter().any(|(k, _)| k == "password") {
        return password();
    }
    Ok(pairs
        .into_iter()
        .find(|(k, _)| k == "dbname")
        .map(|(_, v)| v))
}

/// The `key = value` pairs of a libpq connection string; a value may be
/// single-quoted, with `\'` and `\\` inside.
fn conninfo(text: &str) -> Result<Vec<(String, String)>, String> {
    let bad = || {
        format!(
            "expected a libpq connection string like \"host=/run/postgresql dbname=sitg\", found {text:?}"
        )
    };
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if key.is_empty() || chars.next() != Some('=') {
            return Err(bad());
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => value.push(chars.next().ok_or_else(bad)?),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err(bad()),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                match c {
                    '\\' => value.push(chars.next().ok_or_else(bad)?),
                    c => value.push(c),
                }
            }
        }
        pairs.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_connection_strings_and_uris_name_a_database() {
        let named = |t: &str| postgres_database(t).unwrap();
        assert_eq!(named("sitg"), Some("sitg".into()));
        assert_eq!(
            named("host=/run/postgresql dbname=sitg"),
            Some("sitg".into())
        );
        assert_eq!(named("host = /tmp dbname = 'my db'"), Some("my db".into()));
        assert_eq!(named("host=/run/postgresql"), None);
        assert_eq!(
            named("postgresql://sitg@localhost:5432/app?sslmode=require"),
            Some("app".into())
        );
        assert_eq!(
            named("postgresql:///app?host=/run/postgresql"),
            Some("app".into())
        );
    }

    #[test]
    fn a_password_or_nonsense_is_refused() {
        for refused in [
            "",
            "host=/tmp dbname=sitg password=hunter2",
            "dbname='unterminated",
            "=sitg",
            "postgresql://sitg:hunter2@localhost/sitg",
            "postgresql://localhost/sitg?password=hunter2",
        ] {
            assert!(postgres_database(refused).is_err(), "{refused}");
        }
        let why = postgres_database("dbname=a password=b").unwrap_err();
        assert!(why.contains("passfile"), "{why}");
    }
}
