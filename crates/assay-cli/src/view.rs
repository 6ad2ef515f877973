//! `assay view [RUNS_DIR]`: a local web server on 127.0.0.1 over the run folders under
//! `.assay/runs` (or the folder given). `/` lists the runs (suite, models, results by state,
//! whether they are judged and scored) with a form to compare two; `/run/NAME/` is a run's
//! report page and `/compare?a=NAME&b=NAME` two runs side by side. Every request reads the
//! folders again, so a run whose files are still being written (results without judgements,
//! judgements without a summary) shows what is there now; a line not yet complete is left
//! out. Nothing is written. Serves until interrupted.

use crate::ToolError;
use assay_ir::{Judgement, ResultRecord, RunInfo, Scoring, SuiteInfo, Summary};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ViewArgs {
    /// The folder holding run folders (default: .assay/runs), or one run folder.
    pub runs_dir: Option<PathBuf>,
    /// The port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 8765)]
    pub port: u16,
}

/// One run folder as it is now.
struct RunView {
    info: Option<RunInfo>,
    scoring: Scoring,
    results: Vec<(ResultRecord, Option<Judgement>)>,
    judged: bool,
    scored: bool,
}

/// Reads a run folder leniently: a line that does not parse (one being written) is skipped.
fn load(dir: &Path) -> RunView {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let info = read("run.json").and_then(|t| serde_json::from_str(&t).ok());
    let scoring = read("scoring.json")
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let judgements: Vec<Judgement> = read("judgements.jsonl")
        .map(|t| {
            t.lines()
                .filter_map(|l| serde_json::from_str(&assay_run::redact::redact(l)).ok())
                .collect()
        })
        .unwrap_or_default();
    let results = read("results.jsonl")
        .map(|t| {
            t.lines()
                .filter_map(|l| {
                    serde_json::from_str::<ResultRecord>(&assay_run::redact::redact(l)).ok()
                })
                .enumerate()
                .map(|(i, r)| {
                    let j = judgements
                        .get(i)
                        .filter(|j| j.item_id == r.item_id && j.model == r.model)
                        .cloned();
                    (r, j)
                })
                .collect()
        })
        .unwrap_or_default();
    RunView {
        info,
        scoring,
        results,
        judged: dir.join("judgements.jsonl").is_file(),
        scored: dir.join("summary.json").is_file(),
    }
}

fn summary(name: &str, run: &RunView) -> Summary {
    let suite = run.info.as_ref().map_or_else(
        || SuiteInfo {
            name: name.to_string(),
            ..SuiteInfo::default()
        },
        |i| i.suite.clone(),
    );
    let mut pairs = run.results.iter().cloned();
    assay_score::summarize(&run.scoring, &suite, &mut pairs, None)
}

/// The run folders: the children of `root` holding results or a run.json, newest first; or
/// `root` itself when it is one.
fn runs(root: &Path) -> Vec<(String, PathBuf)> {
    let is_run = |d: &Path| {
        ["results.jsonl", "run.json", "scoring.json"]
            .iter()
            .any(|f| d.join(f).is_file())
    };
    if is_run(root) {
        let name = root
            .file_name()
            .map_or("run".into(), |n| n.to_string_lossy().into_owned());
        return vec![(name, root.to_path_buf())];
    }
    let mut found: Vec<(std::time::SystemTime, String, PathBuf)> = std::fs::read_dir(root)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().is_dir() && is_run(&e.path()))
                .map(|e| {
                    let modified = e
                        .metadata()
                        .and_then(|m| m.modified())
                        .unwrap_or(std::time::UNIX_EPOCH);
                    (
                        modified,
                        e.file_name().to_string_lossy().into_owned(),
                        e.path(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    found.into_iter().map(|(_, n, p)| (n, p)).collect()
}

fn find(root: &Path, name: &str) -> Option<PathBuf> {
    runs(root)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, p)| p)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `%XX` and `+` decoded.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn query(q: Option<&str>) -> BTreeMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn index(root: &Path) -> String {
    let runs = runs(root);
    let mut rows = String::new();
    let mut options = String::new();
    let mut live = false;
    for (name, dir) in &runs {
        let run = load(dir);
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        for (r, _) in &run.results {
            *counts.entry(r.state.as_str()).or_default() += 1;
        }
        let status = if run.scored && run.info.is_some() {
            "scored"
        } else if run.judged {
            "judging"
        } else if run.results.is_empty() {
            "running"
        } else {
            "answered"
        };
        live |= status != "scored";
        let models: Vec<String> = run.info.as_ref().map_or_else(
            || {
                run.results.iter().fold(Vec::new(), |mut acc, (r, _)| {
                    if !acc.contains(&r.model) {
                        acc.push(r.model.clone());
                    }
                    acc
                })
            },
            |i| i.models.clone(),
        );
        let suite = run.info.as_ref().map_or_else(
            || run.scoring.title.clone().unwrap_or_default(),
            |i| {
                format!(
                    "{} {}",
                    i.suite.name,
                    i.suite.version.as_deref().unwrap_or("")
                )
            },
        );
        let _ = std::fmt::Write::write_fmt(
            &mut rows,
            format_args!(
                "<tr data-run=\"{0}\" data-status=\"{status}\" data-results=\"{1}\"><td><a href=\"/run/{2}/\">{0}</a></td><td>{3}</td><td><code>{4}</code></td>\
                 <td>{5}</td><td>{status}</td><td>{6}</td></tr>",
                escape(name),
                run.results.len(),
                encode(name),
                escape(&suite),
                escape(&models.join(", ")),
                escape(
                    &counts
                        .iter()
                        .map(|(s, n)| format!("{n} {s}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                escape(run.info.as_ref().map_or("", |i| i.finished.as_str())),
            ),
        );
        let _ = std::fmt::Write::write_fmt(
            &mut options,
            format_args!("<option value=\"{0}\">{0}</option>", escape(name)),
        );
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{}<title>Assay runs</title><style>{}</style></head><body>\
         <header><h1>Runs</h1><p><code>{}</code>: {} run folder{}{}</p></header><main>\
         <table class=\"runs\"><thead><tr><th scope=\"col\">run</th><th scope=\"col\">suite</th><th scope=\"col\">models</th>\
         <th scope=\"col\">results</th><th scope=\"col\">status</th><th scope=\"col\">finished</th></tr></thead><tbody>{rows}</tbody></table>\
         <form class=\"filters\" action=\"/compare\" method=\"get\"><label>A<select name=\"a\">{options}</select></label>\
         <label>B<select name=\"b\">{options}</select></label><button type=\"submit\">compare</button></form></main></body></html>\n",
        if live {
            "<meta http-equiv=\"refresh\" content=\"5\">"
        } else {
            ""
        },
        assay_report::html::CSS,
        escape(&root.display().to_string()),
        runs.len(),
        if runs.len() == 1 { "" } else { "s" },
        if live {
            " (a run is still being written: this page reloads every 5 s)"
        } else {
            ""
        }
    )
}

fn report(name: &str, dir: &Path) -> String {
    let run = load(dir);
    let summary = summary(name, &run);
    let mut page = assay_report::html::Page::new(&summary, &run.scoring, run.info.as_ref());
    for (r, j) in &run.results {
        page.add(r, j.as_ref());
    }
    page.render_in_site(Some(("/", "all runs")))
}

fn compare(root: &Path, a: &str, b: &str) -> Option<String> {
    let (da, db) = (find(root, a)?, find(root, b)?);
    let (ra, rb) = (load(&da), load(&db));
    let (sa, sb) = (summary(a, &ra), summary(b, &rb));
    let diffs = assay_score::compare(&sa, &sb);
    let mut page = assay_report::compare_page::ComparePage::new(
        &sa,
        &sb,
        (a.to_string(), b.to_string()),
        &diffs,
        &rb.scoring.titles,
    );
    for (r, j) in &ra.results {
        page.add_a(r, j.as_ref());
    }
    for (r, j) in &rb.results {
        page.add_b(r, j.as_ref());
    }
    Some(page.render())
}

/// Answers one request; every page is built from the folders as they are now.
fn respond(
    root: &Path,
    method: &hyper::Method,
    path: &str,
    q: Option<&str>,
) -> (StatusCode, String) {
    if method != hyper::Method::GET {
        return (StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    let not_found = || (StatusCode::NOT_FOUND, "not found\n".to_string());
    match path {
        "/" => (StatusCode::OK, index(root)),
        "/compare" => {
            let q = query(q);
            match (q.get("a"), q.get("b")) {
                (Some(a), Some(b)) => {
                    compare(root, a, b).map_or_else(not_found, |p| (StatusCode::OK, p))
                }
                _ => (StatusCode::BAD_REQUEST, "give a=RUN&b=RUN\n".into()),
            }
        }
        _ => {
            let Some(rest) = path.strip_prefix("/run/") else {
                return not_found();
            };
            let name = decode(rest.trim_end_matches('/').trim_end_matches("/report.html"));
            // Only a run folder listed under the root, by its exact name.
            match find(root, &name) {
                Some(dir) => (StatusCode::OK, report(&name, &dir)),
                None => not_found(),
            }
        }
    }
}

async fn handle(
    root: PathBuf,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let q = req.uri().query().map(str::to_string);
    let answer =
        tokio::task::spawn_blocking(move || respond(&root, &method, &path, q.as_deref())).await;
    let (status, body) = answer.unwrap_or_else(|e| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the page failed: {e}\n"),
        )
    });
    let kind = if status == StatusCode::OK {
        "text/html; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let body = assay_run::redact::redact(&body).into_owned();
    Ok(Response::builder()
        .status(status)
        .header("content-type", kind)
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(body)))
        .expect("a response"))
}

pub fn view(args: &ViewArgs) -> Result<ExitCode, ToolError> {
    let root = args
        .runs_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(".assay").join("runs"));
    if !root.is_dir() {
        return Err(ToolError(format!(
            "{} is not a folder (give the folder holding run folders, e.g. .assay/runs)",
            root.display()
        )));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| ToolError(format!("cannot start the server: {e}")))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
            .await
            .map_err(|e| ToolError(format!("cannot listen on 127.0.0.1:{}: {e}", args.port)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ToolError(format!("cannot read the server's address: {e}")))?;
        outln!(
            "serving {} at http://{addr}/ (Ctrl-C stops)",
            root.display()
        );
        let _ = std::io::stdout().flush();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let root = root.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| handle(root.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_and_names_encode() {
        assert_eq!(decode("a%20b+c%2F"), "a b c/");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(encode("run 1/x"), "run%201%2Fx");
        let q = query(Some("a=x%2By&b=z"));
        assert_eq!(q.get("a").map(String::as_str), Some("x+y"));
    }
}
