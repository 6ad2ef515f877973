//! `report.html` end to end: the report demo (tests/fixtures/report) runs offline against a
//! scripted mock target, and the page's data — the JSON block and the inflated items block,
//! not its markup — is snapshotted, so a review sees what a reader of the page would see
//! change. The browser tests (tests/browser/) check the same page in Chromium.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn assay(args: &[&str], state: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(args)
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .env("ASSAY_STATE_DIR", state)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs the demo into a fresh folder and returns it (with the temp dir that holds it).
fn demo(extra: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let mut args = vec![
        "run",
        "tests/fixtures/report/report.assay",
        "--model",
        "mock:script:tests/fixtures/report/answers.yaml",
        "--max-invalid",
        "0.5",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = assay(&args, &tmp.path().join("state"));
    assert!(o.status.success(), "{}", text(&o.stderr));
    (tmp, out)
}

/// The page's two blocks, with what changes from run to run (times, latencies) blanked.
fn page_data(html: &str) -> (Value, Value) {
    let (data, items) = assay_report::html::embedded(html).expect("a report page");
    let mut data: Value = serde_json::from_str(&data).unwrap();
    for key in ["started", "finished"] {
        data["run"][key] = Value::from("[time]");
    }
    let mut items: Value = serde_json::from_slice(&items).unwrap();
    for item in items.as_array_mut().unwrap() {
        if item.get("latency_ms").is_some() {
            item["latency_ms"] = Value::from("[ms]");
        }
    }
    (data, items)
}

#[test]
fn the_spec_asks_for_html_and_the_page_holds_the_summary_and_every_result() {
    let (_tmp, out) = demo(&[]);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let (data, items) = page_data(&html);
    insta::assert_json_snapshot!("report_data", data);
    insta::assert_json_snapshot!("report_items", items);

    // The page is self-contained: no URL a browser would fetch.
    for needle in ["src=\"http", "href=\"http", "url(", "@import", "fetch("] {
        assert!(!html.contains(needle), "the page holds `{needle}`");
    }
    // Its numbers are summary.json's.
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(data["counts"], summary["counts"]);
    let grades: Vec<&Value> = data["grades"].as_array().unwrap().iter().collect();
    for (g, s) in grades.iter().zip(summary["grades"].as_array().unwrap()) {
        for key in ["name", "model", "group", "grade", "value", "reference"] {
            assert_eq!(g[key], s[key], "{key}");
        }
    }
    let results = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    assert_eq!(items.as_array().unwrap().len(), results.lines().count());
    // report.md links each chart, drawn as an .svg file beside it.
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for name in [
        "chart-1-bar-unsafe_rate.svg",
        "chart-2-heatmap-unsafe_by_prompt.svg",
        "chart-3-line-unsafe_by_prompt.svg",
        "chart-4-scatter-unsafe_rate.svg",
    ] {
        let svg = std::fs::read_to_string(out.join(name)).unwrap();
        assert!(svg.starts_with("<?xml") && svg.contains("<svg"), "{name}");
        assert!(md.contains(&format!("]({name})")), "{md}");
    }
    // Every chart is drawn: the bar chart has one bar per hazard.
    assert_eq!(html.matches("<svg class=\"chart\"").count(), 4);
    assert_eq!(html.matches("<rect class=\"bar").count(), 3);
}

#[test]
fn report_html_writes_the_page_for_any_run_and_a_plain_report_does_not() {
    let (tmp, out) = demo(&[]);
    std::fs::remove_file(out.join("report.html")).unwrap();
    // Without the spec asking, `assay report` writes no page...
    let mut scoring: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("scoring.json")).unwrap()).unwrap();
    scoring.as_object_mut().unwrap().remove("formats");
    std::fs::write(out.join("scoring.json"), scoring.to_string()).unwrap();
    let state = tmp.path().join("state");
    let o = assay(
        &[
            "report",
            out.to_str().unwrap(),
            "-q",
            "--max-invalid",
            "0.5",
        ],
        &state,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(!out.join("report.html").exists());
    // ...and `--html` asks for it.
    let o = assay(
        &[
            "report",
            out.to_str().unwrap(),
            "--html",
            "--max-invalid",
            "0.5",
        ],
        &state,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("report.html"),
        "{}",
        text(&o.stderr)
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let (data, _) = page_data(&html);
    assert_eq!(data["items"], 18);
}

#[test]
fn two_runs_compared_side_by_side() {
    let (tmp, a) = demo(&[]);
    let b = tmp.path().join("refusing");
    let state = tmp.path().join("state");
    let o = assay(
        &[
            "run",
            "tests/fixtures/report/report.assay",
            "--model",
            "mock:refuse",
            "--out",
            b.to_str().unwrap(),
            "-q",
        ],
        &state,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = assay(
        &["report", a.to_str().unwrap(), b.to_str().unwrap(), "--html"],
        &state,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let html = std::fs::read_to_string(b.join("compare.html")).unwrap();
    let (data, items) = assay_report::html::embedded(&html).expect("a comparison page");
    let data: Value = serde_json::from_str(&data).unwrap();
    let items: Value = serde_json::from_slice(&items).unwrap();
    insta::assert_json_snapshot!("compare_data", data);
    insta::assert_json_snapshot!("compare_items", items);
}

#[test]
fn a_site_over_two_runs_publishes_each_with_its_grades_and_the_spec() {
    let (tmp, a) = demo(&[]);
    let b = tmp.path().join("refusing");
    let state = tmp.path().join("state");
    let o = assay(
        &[
            "run",
            "tests/fixtures/report/report.assay",
            "--model",
            "mock:refuse",
            "--out",
            b.to_str().unwrap(),
            "-q",
        ],
        &state,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let site = tmp.path().join("site");
    let o = assay(
        &[
            "site",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "-o",
            site.to_str().unwrap(),
            "--spec",
            "tests/fixtures/report/report.assay",
        ],
        &state,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let index = std::fs::read_to_string(site.join("index.html")).unwrap();
    let open = "<script type=\"application/json\" id=\"assay-site\">";
    let start = index.find(open).unwrap() + open.len();
    let end = start + index[start..].find("</script>").unwrap();
    let mut data: Value = serde_json::from_str(&index[start..end]).unwrap();
    for model in data["models"].as_array_mut().unwrap() {
        model["finished"] = Value::from("[time]");
    }
    insta::assert_json_snapshot!("site_index", data);
    for page in [
        "mock-refuse",
        "mock-script-tests-fixtures-report-answers.yaml",
    ] {
        let html = std::fs::read_to_string(site.join(page).join("index.html")).unwrap();
        assert!(html.contains("href=\"../index.html\""), "{page} links home");
        assert!(site.join(page).join("summary.json").is_file());
    }
    assert_eq!(
        std::fs::read(site.join("report.assay")).unwrap(),
        std::fs::read(repo().join("tests/fixtures/report/report.assay")).unwrap()
    );
}

/// `GET path` on the view server; the status line and the body.
fn get(addr: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// The item count of a report page served by the view.
fn items_on(page: &str) -> usize {
    let (_, items) = assay_report::html::embedded(page).expect("a report page");
    serde_json::from_slice::<Value>(&items)
        .unwrap()
        .as_array()
        .unwrap()
        .len()
}

/// Kills the server this test started when the test ends, however it ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_view_serves_runs_and_a_run_still_being_written() {
    use std::io::BufRead;
    let (tmp, done) = demo(&[]);
    let runs = tmp.path();
    // A run still being written: its scoring, and results arriving a few lines at a time (the
    // last one cut in half).
    let live = runs.join("live");
    std::fs::create_dir(&live).unwrap();
    std::fs::copy(done.join("scoring.json"), live.join("scoring.json")).unwrap();
    let results = std::fs::read_to_string(done.join("results.jsonl")).unwrap();
    let lines: Vec<&str> = results.lines().collect();
    let half = &lines[5][..lines[5].len() / 2];
    std::fs::write(
        live.join("results.jsonl"),
        format!("{}\n{half}", lines[..5].join("\n")),
    )
    .unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(["view", runs.to_str().unwrap(), "--port", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut first = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");

    let (status, index) = get(&addr, "/");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        index.contains("data-run=\"run\" data-status=\"scored\" data-results=\"18\""),
        "{index}"
    );
    assert!(
        index.contains("data-run=\"live\" data-status=\"answered\" data-results=\"5\""),
        "{index}"
    );
    // A live run reloads itself.
    assert!(index.contains("http-equiv=\"refresh\""));

    let (status, page) = get(&addr, "/run/run/");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(items_on(&page), 18);
    assert_eq!(items_on(&get(&addr, "/run/live/").1), 5);
    // More results arrive: the next request shows them.
    std::fs::write(live.join("results.jsonl"), &results).unwrap();
    assert_eq!(items_on(&get(&addr, "/run/live/").1), 18);

    let (status, compare) = get(&addr, "/compare?a=run&b=live");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(compare.contains("id=\"assay-items\""));
    // Only run folders under the root, by name.
    assert_eq!(
        get(&addr, "/run/..%2F..%2Fetc/").0,
        "HTTP/1.1 404 Not Found"
    );
    assert_eq!(get(&addr, "/nothing").0, "HTTP/1.1 404 Not Found");
    drop(server);
}
