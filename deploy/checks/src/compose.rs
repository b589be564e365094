//! The compose file as the checks see it: services with their image, command, environment,
//! dependencies, healthcheck, ports, networks, volumes and replicas; and compose's `${VAR}`
//! interpolation, so a value can be read as `docker compose up` would see it with no `.env`.

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde_json::Value;

/// One service of the compose file (merge keys already resolved).
#[derive(Debug, Clone, Default)]
pub struct Service {
    pub name: String,
    pub image: Option<String>,
    /// Built from a Dockerfile (`build:`) rather than pulled.
    pub build: bool,
    pub command: Vec<String>,
    pub entrypoint: Vec<String>,
    /// As written (before interpolation).
    pub environment: BTreeMap<String, String>,
    /// Dependency → condition (`service_started` when the short form is used).
    pub depends_on: BTreeMap<String, String>,
    /// The healthcheck's `test`, if any (and not disabled).
    pub healthcheck: Option<Vec<String>>,
    pub ports: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    pub profiles: Vec<String>,
    pub restart: Option<String>,
    /// `deploy.replicas` as written; compose runs one container when it is absent.
    pub replicas: Option<u64>,
    /// A fixed container name, which only one container can have.
    pub container_name: Option<String>,
    /// A fixed host name, which every replica would share.
    pub hostname: Option<String>,
}

/// A parsed compose file.
#[derive(Debug, Clone)]
pub struct Compose {
    /// The whole document, for checks that look at more than services.
    pub doc: Value,
    pub services: BTreeMap<String, Service>,
}

impl Compose {
    /// Parses a compose file's text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let doc = crate::yaml::parse(text)?;
        let mut services = BTreeMap::new();
        let listed = doc
            .get("services")
            .and_then(Value::as_object)
            .context("the compose file has no `services` mapping")?;
        for (name, body) in listed {
            let service = parse_service(name, body).with_context(|| format!("service {name}"))?;
            services.insert(name.clone(), service);
        }
        Ok(Self { doc, services })
    }

    /// `docker-compose.yml` at the workspace root.
    pub fn load() -> anyhow::Result<Self> {
        Self::parse(&crate::repo::read("docker-compose.yml")?)
    }

    pub fn service(&self, name: &str) -> anyhow::Result<&Service> {
        self.services
            .get(name)
            .with_context(|| format!("no service {name:?} in the compose file"))
    }

    /// A service's environment as compose passes it with no variables set (every `${VAR:-x}`
    /// takes its default).
    pub fn environment(&self, name: &str) -> anyhow::Result<BTreeMap<String, String>> {
        self.service(name)?
            .environment
            .iter()
            .map(|(k, v)| {
                interpolate(v, &|_| None)
                    .map(|v| (k.clone(), v))
                    .map_err(|e| anyhow::anyhow!("{name}: {k}: {e}"))
            })
            .collect()
    }

    /// The names of the top-level networks.
    pub fn networks(&self) -> BTreeMap<String, Value> {
        self.doc
            .get("networks")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }
}

fn parse_service(name: &str, body: &Value) -> anyhow::Result<Service> {
    let text = |key: &str| body.get(key).and_then(scalar_text);
    let healthcheck = match body.get("healthcheck") {
        Some(h) if h.get("disable").and_then(Value::as_bool) == Some(true) => None,
        Some(h) => h.get("test").map(words),
        None => None,
    };
    Ok(Service {
        name: name.to_owned(),
        image: text("image"),
        build: body.get("build").is_some(),
        command: body.get("command").map(words).unwrap_or_default(),
        entrypoint: body.get("entrypoint").map(words).unwrap_or_default(),
        environment: environment(body.get("environment"))?,
        depends_on: depends_on(body.get("depends_on"))?,
        healthcheck,
        ports: list(body.get("ports")),
        networks: match body.get("networks") {
            Some(Value::Object(map)) => map.keys().cloned().collect(),
            other => list(other),
        },
        volumes: list(body.get("volumes")),
        profiles: list(body.get("profiles")),
        restart: text("restart"),
        replicas: body.pointer("/deploy/replicas").and_then(replica_count),
        container_name: text("container_name"),
        hostname: text("hostname"),
    })
}

/// A replica count, written as a number or a quoted one.
fn replica_count(value: &Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

/// A scalar as compose reads it (`8080` and `"8080"` are the same string).
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(scalar_text).collect(),
        Some(other) => scalar_text(other).into_iter().collect(),
        None => Vec::new(),
    }
}

/// A command in exec form, or a string split on whitespace.
fn words(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        other => list(Some(other)),
    }
}

fn environment(value: Option<&Value>) -> anyhow::Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    match value {
        None => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                env.insert(key.clone(), scalar_text(value).unwrap_or_default());
            }
        }
        Some(Value::Array(items)) => {
            for item in items.iter().filter_map(scalar_text) {
                let (key, value) = item.split_once('=').unwrap_or((&item, ""));
                env.insert(key.to_owned(), value.to_owned());
            }
        }
        Some(other) => anyhow::bail!("environment is neither a mapping nor a list: {other}"),
    }
    Ok(env)
}

fn depends_on(value: Option<&Value>) -> anyhow::Result<BTreeMap<String, String>> {
    let mut deps = BTreeMap::new();
    match value {
        None => {}
        Some(Value::Array(items)) => {
            for item in items.iter().filter_map(scalar_text) {
                deps.insert(item, "service_started".to_owned());
            }
        }
        Some(Value::Object(map)) => {
            for (dep, spec) in map {
                let condition = spec
                    .get("condition")
                    .and_then(scalar_text)
                    .unwrap_or_else(|| "service_started".to_owned());
                deps.insert(dep.clone(), condition);
            }
        }
        Some(other) => anyhow::bail!("depends_on is neither a list nor a mapping: {other}"),
    }
    Ok(deps)
}

/// A variable reference in a compose value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub name: String,
    /// `${VAR:-default}` / `${VAR-default}`.
    pub default: Option<String>,
    /// `${VAR:?message}` / `${VAR?message}`: compose refuses to start without it.
    pub required: bool,
}

/// Compose interpolation: `$$` is a literal `$`; `${VAR}`, `$VAR`, `${VAR:-default}`,
/// `${VAR-default}`, `${VAR:?err}`, `${VAR?err}`. `vars` answers a variable's value (compose's
/// environment or `.env`); with `|_| None` the result is what a bare `docker compose up` sees.
pub fn interpolate(text: &str, vars: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    for piece in pieces(text)? {
        match piece {
            Piece::Text(t) => out.push_str(&t),
            Piece::Var(reference) => match (vars(&reference.name), &reference.default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) if reference.required => {
                    return Err(format!("${{{}}} is required and unset", reference.name));
                }
                (None, None) => {}
            },
        }
    }
    Ok(out)
}

/// The variables `text` refers to.
pub fn references(text: &str) -> Result<Vec<Reference>, String> {
    Ok(pieces(text)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Var(r) => Some(r),
            Piece::Text(_) => None,
        })
        .collect())
}

enum Piece {
    Text(String),
    Var(Reference),
}

fn pieces(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        literal.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            literal.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let end = inner
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {text:?}"))?;
            let body = &inner[..end];
            pieces.push(Piece::Text(std::mem::take(&mut literal)));
            pieces.push(Piece::Var(reference(body, text)?));
            rest = &inner[end + 1..];
        } else {
            let name_len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if name_len == 0 {
                return Err(format!("a lone $ in {text:?} (write $$ for a literal $)"));
            }
            pieces.push(Piece::Text(std::mem::take(&mut literal)));
            pieces.push(Piece::Var(Reference {
                name: after[..name_len].to_owned(),
                default: None,
                required: false,
            }));
            rest = &after[name_len..];
        }
    }
    literal.push_str(rest);
    pieces.push(Piece::Text(literal));
    Ok(pieces)
}

fn reference(body: &str, text: &str) -> Result<Reference, String> {
    let name_len = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    let (name, modifier) = body.split_at(name_len);
    if name.is_empty() {
        return Err(format!("an empty variable name in {text:?}"));
    }
    let (default, required) = if let Some(d) = modifier
        .strip_prefix(":-")
        .or_else(|| modifier.strip_prefix('-'))
    {
        (Some(d.to_owned()), false)
    } else if modifier.starts_with(":?") || modifier.starts_with('?') {
        (None, true)
    } else if modifier.is_empty() {
        (None, false)
    } else {
        return Err(format!("unsupported variable form ${{{body}}} in {text:?}"));
    };
    Ok(Reference {
        name: name.to_owned(),
        default,
        required,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_a_variable_is_unset_and_dollar_dollar_is_a_dollar() {
        let text = "postgres://u:${PW:-secret}@h/db $$topic ${OTHER}";
        assert_eq!(
            interpolate(text, &|_| None).expect("interpolates"),
            "postgres://u:secret@h/db $topic "
        );
        let set = |name: &str| (name == "PW").then(|| "given".to_owned());
        assert_eq!(
            interpolate(text, &set).expect("interpolates"),
            "postgres://u:given@h/db $topic "
        );
    }

    #[test]
    fn a_required_variable_without_a_value_is_an_error() {
        assert!(interpolate("${SECRET:?set it}", &|_| None).is_err());
    }

    #[test]
    fn a_lone_dollar_is_an_error() {
        assert!(interpolate("costs $ 5", &|_| None).is_err());
    }

    #[test]
    fn services_environment_and_dependencies_are_read_in_both_forms() {
        let compose = Compose::parse(
            "services:\n  a:\n    image: x:1\n    environment:\n      PORT: 8080\n    depends_on: [b]\n  b:\n    image: y:2\n    environment: [\"K=v\"]\n    depends_on:\n      a:\n        condition: service_healthy\n",
        )
        .expect("parses");
        assert_eq!(compose.services["a"].environment["PORT"], "8080");
        assert_eq!(compose.services["a"].depends_on["b"], "service_started");
        assert_eq!(compose.services["b"].environment["K"], "v");
        assert_eq!(compose.services["b"].depends_on["a"], "service_healthy");
    }

    #[test]
    fn replicas_container_name_and_hostname_are_read() {
        let compose = Compose::parse(
            "x: &base\n  deploy:\n    replicas: 2\nservices:\n  a:\n    <<: *base\n    image: x:1\n  b:\n    image: y:2\n    container_name: b-1\n    hostname: b\n    deploy:\n      replicas: \"3\"\n  c:\n    image: z:3\n",
        )
        .expect("parses");
        assert_eq!(compose.services["a"].replicas, Some(2));
        assert_eq!(compose.services["b"].replicas, Some(3));
        assert_eq!(compose.services["b"].container_name.as_deref(), Some("b-1"));
        assert_eq!(compose.services["b"].hostname.as_deref(), Some("b"));
        assert_eq!(compose.services["c"].replicas, None);
    }

    #[test]
    fn a_file_without_services_is_an_error() {
        assert!(Compose::parse("volumes: {}\n").is_err());
    }
}
