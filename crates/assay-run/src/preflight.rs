//! Preflight: before the first call of a run, every model it will use (targets, and judges
//! that ask a model) is checked for what would make every one of its calls fail: its key
//! variable unset (when the provider needs a key), or nothing answering at its endpoint (a
//! TCP connect to host and port with a short timeout; an unknown host or a refused connection
//! fails). Local commands and mocks are not checked. A problem found here costs nothing; the
//! same problem found by the calls costs every call made before it.

use crate::engine::ModelRun;
use std::collections::BTreeMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long a connection may take to open before the endpoint counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A model the run will call, and what it is for (`target`, `judge \`guard\``).
pub struct ModelUse<'a> {
    pub role: String,
    pub model: &'a ModelRun,
}

/// One problem: which model, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub role: String,
    pub model: String,
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} `{}`: {}", self.role, self.model, self.what)
    }
}

/// Checks every model; returns every problem, in the order of `uses`. An endpoint shared by
/// several models is connected to once. With a proxy set in the environment, endpoints are
/// not connected to (the proxy, not this machine, reaches them).
pub fn check(uses: &[ModelUse<'_>], timeout: Duration) -> Vec<Problem> {
    let mut problems = Vec::new();
    let proxied = [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()));
    let mut reached: BTreeMap<String, Result<(), String>> = BTreeMap::new();
    for u in uses {
        let (key_env, url) = u.model.provider.needs();
        let problem = |what: String| Problem {
            role: u.role.clone(),
            model: u.model.name.clone(),
            what,
        };
        if let Some(var) = key_env
            && std::env::var_os(var).is_none_or(|v| v.is_empty())
        {
            problems.push(problem(format!(
                "the environment variable {var} is not set; it must hold the API key"
            )));
        }
        let Some(url) = url else { continue };
        if proxied {
            continue;
        }
        // A model with replicas needs one of them up: the others are retried during the run.
        let urls: Vec<&str> = if u.model.replicas.is_empty() {
            vec![url]
        } else {
            u.model
                .replicas
                .iter()
                .filter_map(|r| r.needs().1)
                .collect()
        };
        let mut failures = Vec::new();
        for url in &urls {
            let outcome = reached
                .entry(url.to_string())
                .or_insert_with(|| reach(url, timeout));
            match outcome {
                Ok(()) => {
                    failures.clear();
                    break;
                }
                Err(why) => failures.push(format!("its endpoint {url} {why}")),
            }
        }
        if !failures.is_empty() {
            problems.push(problem(failures.join("; ")));
        }
    }
    problems
}

/// Opens (and closes) a TCP connection to the URL's host and port.
fn reach(url: &str, timeout: Duration) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("is not a URL ({e})"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| "names no host".to_string())?;
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| "names no port".to_string())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot be found: unknown host `{host}` ({e})"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("cannot be found: unknown host `{host}`"));
    }
    let mut last = String::new();
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                last = format!(
                    "did not accept a connection within {} s ({addr})",
                    timeout.as_secs_f64()
                );
            }
            Err(e) => last = format!("refused the connection ({addr}: {e})"),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{Endpoint, Provider};

    fn model(spec: &str, endpoint: Option<&str>, key: Option<&str>) -> ModelRun {
        ModelRun {
            name: spec.into(),
            provider: Provider::parse(
                spec,
                &Endpoint {
                    base_url: endpoint.map(str::to_string),
                    api_key_env: key.map(str::to_string),
                },
            )
            .unwrap(),
            params: Default::default(),
            price: None,
            system: None,
            limits: Default::default(),
            defense: None,
            replicas: Vec::new(),
        }
    }

    #[test]
    fn mocks_need_nothing() {
        let m = model("mock:refuse", None, None);
        let uses = [ModelUse {
            role: "target".into(),
            model: &m,
        }];
        assert!(check(&uses, CONNECT_TIMEOUT).is_empty());
    }

    #[test]
    fn a_refused_endpoint_and_an_unset_key_are_both_named() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}");
        let m = model(
            "anthropic:c",
            Some(&url),
            Some("ASSAY_PREFLIGHT_TEST_UNSET_KEY"),
        );
        let uses = [ModelUse {
            role: "judge `guard`".into(),
            model: &m,
        }];
        let problems = check(&uses, CONNECT_TIMEOUT);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].to_string().starts_with(
            "judge `guard` `anthropic:c`: the environment variable ASSAY_PREFLIGHT_TEST_UNSET_KEY is not set"
        ));
        assert!(
            problems[1].what.contains("refused the connection"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_named_key_variable_must_be_set_even_for_a_local_server() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}/v1", l.local_addr().unwrap().port());
        let named = model(
            "openai_compatible:m",
            Some(&url),
            Some("ASSAY_PREFLIGHT_TEST_UNSET_KEY"),
        );
        let unnamed = model("openai_compatible:m", Some(&url), None);
        let uses = [
            ModelUse {
                role: "target".into(),
                model: &named,
            },
            ModelUse {
                role: "target".into(),
                model: &unnamed,
            },
        ];
        let problems = check(&uses, CONNECT_TIMEOUT);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].what.contains("ASSAY_PREFLIGHT_TEST_UNSET_KEY"));
    }

    #[test]
    fn a_listening_endpoint_passes() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}/v1", l.local_addr().unwrap().port());
        let m = model("openai_compatible:m", Some(&url), None);
        let uses = [ModelUse {
            role: "target".into(),
            model: &m,
        }];
        assert!(check(&uses, CONNECT_TIMEOUT).is_empty());
    }
}
