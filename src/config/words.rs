//! `{name}` placeholders in the argv words of `command` deploy steps:
//! opsdeck fills them with values it resolved, inside the one word they
//! stand in (`repo:{tag}` → `repo:0.1.9`), so a value never becomes a
//! second argument nor reaches a shell.

use std::collections::BTreeMap;

/// The placeholder names in `word`, in order: `{` + a lowercase name
/// (letters, digits, `_`) + `}`. Other braces are left alone (`{}`, JSON).
pub fn placeholders(word: &str) -> Vec<&str> {
    pieces(word)
        .into_iter()
        .filter_map(|piece| match piece {
            Piece::Name(name) => Some(name),
            Piece::Text(_) => None,
        })
        .collect()
}

/// `word` with each placeholder replaced by its value; a placeholder
/// without a value stays as written. Values are not searched again, so a
/// value holding `{sha}` stays as it is.
pub fn fill(word: &str, values: &BTreeMap<String, String>) -> String {
    pieces(word)
        .into_iter()
        .map(|piece| match piece {
            Piece::Name(name) => values
                .get(name)
                .map_or_else(|| format!("{{{name}}}"), Clone::clone),
            Piece::Text(text) => text.to_owned(),
        })
        .collect()
}

enum Piece<'a> {
    Text(&'a str),
    Name(&'a str),
}

fn pieces(word: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut rest = word;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with('}') {
            pieces.push(Piece::Text(&rest[..open]));
            pieces.push(Piece::Name(&after[..name_len]));
            rest = &after[name_len + 1..];
        } else {
            pieces.push(Piece::Text(&rest[..=open]));
            rest = after;
        }
    }
    pieces.push(Piece::Text(rest));
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_placeholders_inside_one_word() {
        let values = BTreeMap::from([
            ("tag".to_owned(), "0.1.9".to_owned()),
            ("sha".to_owned(), "{tag} x".to_owned()),
        ]);
        assert_eq!(fill("repo:{tag}", &values), "repo:0.1.9");
        assert_eq!(fill("{sha}", &values), "{tag} x");
        assert_eq!(
            fill("{}{TAG}{ta g}{other}", &values),
            "{}{TAG}{ta g}{other}"
        );
        assert_eq!(placeholders("a{ref}b{sha}{}{"), vec!["ref", "sha"]);
        assert!(placeholders("{\"json\": 1}").is_empty());
    }
}
