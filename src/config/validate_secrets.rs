//! Where a `[[app.secret]]` lives and how its value is made, checked:
//! `generate` or `generate_with` fits `file` or an env value, an env value
//! has an env file, and no two secrets write the same variable of the same
//! file (see `rotation.rs` for what the keys mean).

use super::problems::{Label, Problems};
use super::rotation::Place;
use super::validate::{absolute, argv};
use super::values::check_env_name;
use super::{App, Secret, Source};

/// The keys of one secret that say where it lives and how it is made.
pub(super) fn check(app: &App, secret: &Secret, label: &Label, p: &mut Problems) {
    let key = |k: &str| label.key(k);
    let source = secret.source();
    match &source {
        Err(e) if secret.generate_with.is_some() && secret.file.is_none() => {
            p.error(&key("generate_with"), e.clone())
        }
        Err(e) if secret.generate.is_empty() => p.error(label, e.clone()),
        Err(e) => p.error(&key("generate"), e.clone()),
        Ok(Source::Command(run)) => argv(p, &key("generate_with"), run),
        Ok(_) => {}
    }
    absolute(p, &key("env_file"), secret.env_file.as_deref());
    absolute(p, &key("file"), secret.file.as_deref());
    if let Some(name) = &secret.key
        && let Err(e) = check_env_name(name)
    {
        p.error(&key("key"), e);
    }
    if secret.file.is_some() {
        for other in [
            "env_file",
            "key",
            "gitea_webhook",
            "github_webhook",
            "store",
        ] {
            if p.is_written(&key(other)) {
                p.error(
                    &key(other),
                    format!(
                        "`{other}` is for a value in an env file; a `file` secret is the whole file"
                    ),
                );
            }
        }
    } else if secret.place(app).is_none() && secret.store.is_none() {
        p.error(
            label,
            "this secret is written to an env file: set `env_file` on the app (or on the secret), or give it a `store`",
        );
    }
}

/// No two secrets of an app write the same variable of the same env file,
/// or the same key file: the second would undo the first.
pub(super) fn distinct_places(app: &App, labels: &[Label], p: &mut Problems) {
    for (i, (secret, label)) in app.secrets.iter().zip(labels).enumerate() {
        let Some(place) = secret.place(app) else {
            continue;
        };
        // A second secret of the same name is reported as such already.
        let earlier = app.secrets[..i]
            .iter()
            .filter(|other| other.name != secret.name)
            .find(|other| other.place(app).as_ref() == Some(&place));
        if let Some(other) = earlier {
            let what = match place {
                Place::Env { file, key } => format!("{key} of {}", file.display()),
                Place::File(file) => file.display().to_string(),
            };
            p.error(
                label,
                format!(
                    "secret {:?} already holds {what}; give this one its own `env_file` or `key`",
                    other.name
                ),
            );
        }
    }
}
