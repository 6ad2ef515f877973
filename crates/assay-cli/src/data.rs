//! Where a dataset's bytes come from. A spec names its data by `path` (a file of the package),
//! by `url` pinned with `sha256`, or both; the person running it may point any dataset at a
//! file of their own with `--data NAME=PATH`. [`DataResolver::locate`] turns those into one
//! local file, downloading pinned data into the local data cache when it has to.
//!
//! The cache is a folder of files named by their sha256 (`<cache>/<sha256>`). A file is only
//! ever put there by an atomic rename after its hash was checked, so a name in the cache always
//! matches its contents. The caller checks the hash of the file it gets again before use:
//! this module does not vouch for overrides or package files.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long connecting to a data server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the server may stay silent: before it answers, and between two reads of the body.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one whole download may take.
const DOWNLOAD_LIMIT: Duration = Duration::from_secs(10 * 60);

/// Where dataset files come from: `--data NAME=PATH` overrides, the package's own files, the
/// local data cache, and downloads.
pub struct DataResolver {
    /// Files given with `--data NAME=PATH`, by dataset name.
    overrides: BTreeMap<String, PathBuf>,
    /// The data cache: files named by their sha256.
    cache_dir: PathBuf,
    /// Never download.
    offline: bool,
    /// Whether downloads go through the proxies named in the environment (`HTTPS_PROXY`, ...).
    env_proxy: bool,
    /// The HTTP client, made at the first download.
    client: OnceLock<reqwest::blocking::Client>,
}

impl DataResolver {
    pub fn new(overrides: BTreeMap<String, PathBuf>, cache_dir: PathBuf, offline: bool) -> Self {
        DataResolver {
            overrides,
            cache_dir,
            offline,
            env_proxy: true,
            client: OnceLock::new(),
        }
    }

    /// Parses one `--data NAME=PATH` argument; the error is a usage message for clap.
    pub fn parse_override(arg: &str) -> Result<(String, PathBuf), String> {
        let Some((name, path)) = arg.split_once('=') else {
            return Err(format!("expected NAME=PATH, found `{arg}`"));
        };
        let mut chars = name.chars();
        let is_ident = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !is_ident {
            return Err(format!(
                "`{name}` is not a dataset name: expected NAME=PATH, where NAME is the name after `dataset` in the spec"
            ));
        }
        if path.is_empty() {
            return Err(format!(
                "no file given for dataset `{name}`: expected {name}=PATH"
            ));
        }
        Ok((name.to_owned(), PathBuf::from(path)))
    }

    /// The local file holding dataset `name`. In order: the `--data` override; `path` (already
    /// resolved against the package by the caller) when that file exists; the cache file
    /// `<cache>/<sha256>` when present and its contents match; a download of `url` checked
    /// against `sha256` into the cache, unless offline. Otherwise an error saying what to do.
    pub fn locate(
        &self,
        name: &str,
        path: Option<&Path>,
        url: Option<&str>,
        sha256: Option<&str>,
    ) -> Result<PathBuf, DataError> {
        if let Some(file) = self.overrides.get(name) {
            return if file.is_file() {
                Ok(file.clone())
            } else {
                Err(DataError::OverrideMissing {
                    name: name.to_owned(),
                    path: file.clone(),
                })
            };
        }
        if let Some(file) = path
            && file.is_file()
        {
            return Ok(file.to_path_buf());
        }
        let Some(sha256) = sha256 else {
            return Err(match url {
                Some(url) => DataError::Unpinned {
                    name: name.to_owned(),
                    url: url.to_owned(),
                },
                None => DataError::Missing {
                    name: name.to_owned(),
                    path: path.map(Path::to_path_buf),
                },
            });
        };
        if sha256.len() != 64 || !sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(DataError::InvalidHash {
                name: name.to_owned(),
                sha256: sha256.to_owned(),
            });
        }
        let sha256 = sha256.to_ascii_lowercase();
        let cached = self.cache_dir.join(&sha256);
        if cached.is_file() {
            if sha256_file(&cached).is_ok_and(|actual| actual == sha256) {
                return Ok(cached);
            }
            // A damaged cache entry (a crash, a hand edit): drop it and fetch it again.
            fs::remove_file(&cached).map_err(|source| DataError::CacheWrite {
                path: cached.clone(),
                source,
            })?;
        }
        match url {
            None => Err(DataError::Missing {
                name: name.to_owned(),
                path: path.map(Path::to_path_buf),
            }),
            Some(url) if self.offline => Err(DataError::NotAvailableOffline {
                name: name.to_owned(),
                url: url.to_owned(),
            }),
            Some(url) => self.download(name, url, &sha256),
        }
    }

    /// Downloads `url` to a temporary file in the cache, checks it against `sha256` (lowercase)
    /// and renames it to `<cache>/<sha256>`. On any failure the temporary file is removed.
    fn download(&self, name: &str, url: &str, sha256: &str) -> Result<PathBuf, DataError> {
        let cache_write = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DataError::CacheWrite { path, source }
        };
        let transport = |error: &dyn std::error::Error| DataError::Transport {
            name: name.to_owned(),
            url: url.to_owned(),
            message: error_chain(error),
        };
        fs::create_dir_all(&self.cache_dir).map_err(cache_write(&self.cache_dir))?;
        let mut part = tempfile::Builder::new()
            .prefix(&format!(".{sha256}."))
            .suffix(".part")
            .tempfile_in(&self.cache_dir)
            .map_err(cache_write(&self.cache_dir))?;

        let started = Instant::now();
        // `hf://datasets/OWNER/NAME@REVISION/PATH`: the Hub's file at that revision, with
        // the token from HF_TOKEN when there is one (a secret: redacted wherever it shows).
        let (location, token) = match assay_check::hub::hub_url(url) {
            Some(resolved) => {
                let resolved = resolved.map_err(|why| DataError::Transport {
                    name: name.to_owned(),
                    url: url.to_owned(),
                    message: why,
                })?;
                let token = std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty());
                if let Some(t) = &token {
                    assay_run::redact::register(t);
                }
                (resolved, token)
            }
            None => (url.to_owned(), None),
        };
        let mut request = self
            .client()
            .map_err(|error| transport(&error))?
            .get(&location);
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        let mut response = request
            .send()
            .map_err(|error| transport(&error.without_url()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(DataError::HttpStatus {
                name: name.to_owned(),
                url: url.to_owned(),
                status,
            });
        }

        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            if started.elapsed() > DOWNLOAD_LIMIT {
                return Err(DataError::TimedOut {
                    name: name.to_owned(),
                    url: url.to_owned(),
                    limit: DOWNLOAD_LIMIT,
                });
            }
            let read = match response.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(transport(&error)),
            };
            hasher.update(&buffer[..read]);
            part.write_all(&buffer[..read])
                .map_err(cache_write(part.path()))?;
        }
        part.as_file()
            .sync_all()
            .map_err(cache_write(part.path()))?;

        let actual = hex::encode(hasher.finalize());
        if actual != sha256 {
            // Dropping `part` deletes the bad download.
            return Err(DataError::HashMismatch {
                name: name.to_owned(),
                url: url.to_owned(),
                expected: sha256.to_owned(),
                actual,
            });
        }
        let cached = self.cache_dir.join(sha256);
        part.persist(&cached)
            .map_err(|error| DataError::CacheWrite {
                path: cached.clone(),
                source: error.error,
            })?;
        Ok(cached)
    }

    /// The HTTP client for downloads, made once.
    fn client(&self) -> Result<&reqwest::blocking::Client, reqwest::Error> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let mut builder = reqwest::blocking::Client::builder()
            .user_agent(concat!("assay/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(STALL_TIMEOUT);
        if !self.env_proxy {
            builder = builder.no_proxy();
        }
        let client = builder.build()?;
        Ok(self.client.get_or_init(|| client))
    }
}

/// An error and its causes, joined by `: `, each cause once.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        let text = error.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = error.source();
    }
    message
}

/// The sha256 of a file's contents as 64 lowercase hexadecimal digits, read in pieces.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => hasher.update(&buffer[..read]),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Why a dataset's file could not be had.
#[derive(Debug)]
pub enum DataError {
    /// `--data NAME=PATH` names no file.
    OverrideMissing { name: String, path: PathBuf },
    /// The dataset has neither an existing `path` nor a pinned `url`.
    Missing { name: String, path: Option<PathBuf> },
    /// The dataset has a `url` without `sha256`: unpinned data is never downloaded.
    Unpinned { name: String, url: String },
    /// The `sha256` is not 64 hexadecimal digits, so it names no cache file.
    InvalidHash { name: String, sha256: String },
    /// Downloads are off and the cache does not hold the data.
    NotAvailableOffline { name: String, url: String },
    /// The server answered with a status other than success.
    HttpStatus {
        name: String,
        url: String,
        status: reqwest::StatusCode,
    },
    /// The connection could not be made, or broke off.
    Transport {
        name: String,
        url: String,
        message: String,
    },
    /// The download took longer than `limit`.
    TimedOut {
        name: String,
        url: String,
        limit: Duration,
    },
    /// The downloaded bytes do not have the pinned hash; they were thrown away.
    HashMismatch {
        name: String,
        url: String,
        expected: String,
        actual: String,
    },
    /// The cache folder or a file in it could not be made or written.
    CacheWrite { path: PathBuf, source: io::Error },
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::OverrideMissing { name, path } => write!(
                f,
                "`--data {name}={}`: there is no such file",
                path.display()
            ),
            DataError::Missing {
                name,
                path: Some(path),
            } => write!(
                f,
                "dataset `{name}`: {} does not exist; create it, or pass `--data {name}=PATH`",
                path.display()
            ),
            DataError::Missing { name, path: None } => write!(
                f,
                "dataset `{name}` has no `path` or pinned `url`; pass `--data {name}=PATH`"
            ),
            DataError::Unpinned { name, url } => write!(
                f,
                "dataset `{name}` has a `url` but no `sha256`, so {url} is not downloaded: add `sha256 = \"...\"` to the dataset, or pass `--data {name}=PATH`"
            ),
            DataError::InvalidHash { name, sha256 } => write!(
                f,
                "dataset `{name}`: `sha256 = \"{sha256}\"` is not 64 hexadecimal digits"
            ),
            DataError::NotAvailableOffline { name, url } => write!(
                f,
                "dataset `{name}` is not available offline: download {url} and pass `--data {name}=PATH`"
            ),
            DataError::HttpStatus { name, url, status } => write!(
                f,
                "dataset `{name}`: downloading {url} failed: the server answered {status}"
            ),
            DataError::Transport { name, url, message } => {
                write!(f, "dataset `{name}`: downloading {url} failed: {message}")
            }
            DataError::TimedOut { name, url, limit } => write!(
                f,
                "dataset `{name}`: downloading {url} took longer than {} s; download it yourself and pass `--data {name}=PATH`",
                limit.as_secs()
            ),
            DataError::HashMismatch {
                name,
                url,
                expected,
                actual,
            } => write!(
                f,
                "dataset `{name}`: the file downloaded from {url} has sha256 {actual}, but the spec pins {expected}; the data there has changed or the pin is wrong (the download was not kept)"
            ),
            DataError::CacheWrite { path, source } => write!(
                f,
                "cannot write the data cache at {}: {source}; set ASSAY_DATA_DIR to a writable folder",
                path.display()
            ),
        }
    }
}

impl std::error::Error for DataError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::thread::JoinHandle;

    const BODY: &[u8] = b"text,label\nthe film is a joy,1\nthe film is a chore,0\n";

    fn digest(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// A minimal HTTP/1.1 server on loopback: answers `GET <path>` from its routes, 404
    /// otherwise, one request per connection, and counts the requests it served.
    struct TestServer {
        addr: SocketAddr,
        hits: Arc<AtomicUsize>,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl TestServer {
        fn start(routes: &[(&str, &[u8])]) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let routes: BTreeMap<String, Vec<u8>> = routes
                .iter()
                .map(|(path, body)| ((*path).to_owned(), body.to_vec()))
                .collect();
            let hits = Arc::new(AtomicUsize::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let thread = {
                let (hits, stop) = (hits.clone(), stop.clone());
                std::thread::spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(stream) = stream else { continue };
                        hits.fetch_add(1, Ordering::SeqCst);
                        serve(stream, &routes);
                    }
                })
            };
            TestServer {
                addr,
                hits,
                stop,
                thread: Some(thread),
            }
        }

        fn url(&self, path: &str) -> String {
            format!("http://{}{path}", self.addr)
        }

        fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }
    }

    impl Drop for TestServer {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            // Wake the accept loop so that it sees `stop`.
            let _ = TcpStream::connect(self.addr);
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    fn serve(mut stream: TcpStream, routes: &BTreeMap<String, Vec<u8>>) {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
            match stream.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => return,
            }
        }
        let head = String::from_utf8_lossy(&head);
        let path = head.split(' ').nth(1).unwrap_or("");
        let (status, body) = match routes.get(path) {
            Some(body) => ("200 OK", body.as_slice()),
            None => ("404 Not Found", b"not found".as_slice()),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/csv\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes());
        let _ = stream.write_all(body);
    }

    fn resolver(cache: &Path, offline: bool) -> DataResolver {
        resolver_with(BTreeMap::new(), cache, offline)
    }

    fn resolver_with(
        overrides: BTreeMap<String, PathBuf>,
        cache: &Path,
        offline: bool,
    ) -> DataResolver {
        let mut resolver = DataResolver::new(overrides, cache.to_path_buf(), offline);
        resolver.env_proxy = false;
        resolver
    }

    /// The names of the files in a folder, sorted; empty when the folder does not exist.
    fn listing(dir: &Path) -> Vec<String> {
        let Ok(entries) = fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn sha256_file_matches_known_digests() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("abc");
        fs::write(&small, b"abc").unwrap();
        assert_eq!(
            sha256_file(&small).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // Larger than the read buffer, so it is hashed in several pieces.
        let big_bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let big = dir.path().join("big");
        fs::write(&big, &big_bytes).unwrap();
        assert_eq!(sha256_file(&big).unwrap(), digest(&big_bytes));
        let missing = sha256_file(&dir.path().join("none")).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn download_is_verified_and_cached_under_its_hash() {
        let server = TestServer::start(&[("/sst%20test.csv", BODY)]);
        let cache = tempfile::tempdir().unwrap();
        let cache_dir = cache.path().join("nested/data");
        let data = resolver(&cache_dir, false);
        let sha = digest(BODY);
        let url = server.url("/sst%20test.csv");

        let file = data.locate("sst", None, Some(&url), Some(&sha)).unwrap();
        assert_eq!(file, cache_dir.join(&sha));
        assert_eq!(fs::read(&file).unwrap(), BODY);
        assert_eq!(server.hits(), 1);
        assert_eq!(listing(&cache_dir), vec![sha.clone()]);

        // The second time the cache answers, without asking the server.
        let again = data.locate("sst", None, Some(&url), Some(&sha)).unwrap();
        assert_eq!(again, file);
        assert_eq!(server.hits(), 1);

        // So does a fresh resolver, even offline, and an uppercase pin names the same file.
        let offline = resolver(&cache_dir, true);
        let upper = sha.to_ascii_uppercase();
        assert_eq!(
            offline
                .locate("sst", None, Some(&url), Some(&upper))
                .unwrap(),
            file
        );
        assert_eq!(server.hits(), 1);
    }

    #[test]
    fn hash_mismatch_shows_both_hashes_and_keeps_nothing() {
        let server = TestServer::start(&[("/sst.csv", BODY)]);
        let cache = tempfile::tempdir().unwrap();
        let data = resolver(cache.path(), false);
        let pinned = digest(b"the data the spec was built on");
        let url = server.url("/sst.csv");

        let error = data
            .locate("sst", None, Some(&url), Some(&pinned))
            .unwrap_err();
        let DataError::HashMismatch {
            name,
            url: error_url,
            expected,
            actual,
        } = &error
        else {
            panic!("expected a hash mismatch, got {error:?}");
        };
        assert_eq!(name, "sst");
        assert_eq!(error_url, &url);
        assert_eq!(expected, &pinned);
        assert_eq!(actual, &digest(BODY));
        assert_eq!(
            error.to_string(),
            format!(
                "dataset `sst`: the file downloaded from {url} has sha256 {}, but the spec pins {pinned}; the data there has changed or the pin is wrong (the download was not kept)",
                digest(BODY)
            )
        );
        assert_eq!(listing(cache.path()), Vec::<String>::new());
    }

    #[test]
    fn http_error_names_status_and_url() {
        let server = TestServer::start(&[]);
        let cache = tempfile::tempdir().unwrap();
        let data = resolver(cache.path(), false);
        let url = server.url("/gone.csv");

        let error = data
            .locate("sst", None, Some(&url), Some(&digest(BODY)))
            .unwrap_err();
        assert!(
            matches!(&error, DataError::HttpStatus { status, .. } if status.as_u16() == 404),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            format!("dataset `sst`: downloading {url} failed: the server answered 404 Not Found")
        );
        assert_eq!(server.hits(), 1);
        assert_eq!(listing(cache.path()), Vec::<String>::new());
    }

    #[test]
    fn refused_connection_is_a_transport_error_naming_the_url() {
        // A port that was just free: nothing listens there.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/sst.csv");
        let cache = tempfile::tempdir().unwrap();
        let data = resolver(cache.path(), false);

        let error = data
            .locate("sst", None, Some(&url), Some(&digest(BODY)))
            .unwrap_err();
        let DataError::Transport { message, .. } = &error else {
            panic!("expected a transport error, got {error:?}");
        };
        assert!(
            message.to_lowercase().contains("connect"),
            "message: {message}"
        );
        assert_eq!(
            error.to_string(),
            format!("dataset `sst`: downloading {url} failed: {message}")
        );
        assert_eq!(listing(cache.path()), Vec::<String>::new());
    }

    #[test]
    fn offline_without_cache_says_to_pass_data() {
        let server = TestServer::start(&[("/sst.csv", BODY)]);
        let cache = tempfile::tempdir().unwrap();
        let data = resolver(cache.path(), true);
        let url = server.url("/sst.csv");

        let error = data
            .locate("sst", None, Some(&url), Some(&digest(BODY)))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "dataset `sst` is not available offline: download {url} and pass `--data sst=PATH`"
            )
        );
        assert_eq!(server.hits(), 0);
    }

    #[test]
    fn damaged_cache_entry_is_downloaded_again() {
        let server = TestServer::start(&[("/sst.csv", BODY)]);
        let cache = tempfile::tempdir().unwrap();
        let sha = digest(BODY);
        fs::write(cache.path().join(&sha), b"truncated").unwrap();
        let url = server.url("/sst.csv");

        // Offline, the damaged entry is removed rather than returned.
        let offline = resolver(cache.path(), true);
        let error = offline
            .locate("sst", None, Some(&url), Some(&sha))
            .unwrap_err();
        assert!(
            matches!(error, DataError::NotAvailableOffline { .. }),
            "{error:?}"
        );
        assert_eq!(listing(cache.path()), Vec::<String>::new());

        fs::write(cache.path().join(&sha), b"truncated").unwrap();
        let file = resolver(cache.path(), false)
            .locate("sst", None, Some(&url), Some(&sha))
            .unwrap();
        assert_eq!(fs::read(&file).unwrap(), BODY);
        assert_eq!(server.hits(), 1);
    }

    #[test]
    fn override_wins_over_package_file_and_download() {
        let server = TestServer::start(&[("/sst.csv", BODY)]);
        let dir = tempfile::tempdir().unwrap();
        let mine = dir.path().join("mine.csv");
        fs::write(&mine, b"text,label\n").unwrap();
        let package_file = dir.path().join("sst.csv");
        fs::write(&package_file, BODY).unwrap();
        let overrides = BTreeMap::from([("sst".to_owned(), mine.clone())]);
        let data = resolver_with(overrides, &dir.path().join("cache"), false);

        let file = data
            .locate(
                "sst",
                Some(&package_file),
                Some(&server.url("/sst.csv")),
                Some(&digest(BODY)),
            )
            .unwrap();
        assert_eq!(file, mine);
        assert_eq!(server.hits(), 0);
        // Other datasets are not affected by the override.
        assert_eq!(
            data.locate("other", Some(&package_file), None, None)
                .unwrap(),
            package_file
        );
    }

    #[test]
    fn override_naming_no_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let package_file = dir.path().join("sst.csv");
        fs::write(&package_file, BODY).unwrap();
        let missing = dir.path().join("typo.csv");
        let overrides = BTreeMap::from([("sst".to_owned(), missing.clone())]);
        let data = resolver_with(overrides, &dir.path().join("cache"), false);

        let error = data
            .locate("sst", Some(&package_file), None, None)
            .unwrap_err();
        assert!(
            matches!(&error, DataError::OverrideMissing { name, path } if name == "sst" && *path == missing),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            format!("`--data sst={}`: there is no such file", missing.display())
        );
    }

    #[test]
    fn package_file_is_used_when_present() {
        let server = TestServer::start(&[("/sst.csv", BODY)]);
        let dir = tempfile::tempdir().unwrap();
        let package_file = dir.path().join("sst.csv");
        fs::write(&package_file, BODY).unwrap();
        let data = resolver(&dir.path().join("cache"), false);

        let file = data
            .locate(
                "sst",
                Some(&package_file),
                Some(&server.url("/sst.csv")),
                Some(&digest(BODY)),
            )
            .unwrap();
        assert_eq!(file, package_file);
        assert_eq!(server.hits(), 0);
        assert_eq!(listing(&dir.path().join("cache")), Vec::<String>::new());
    }

    #[test]
    fn missing_package_file_without_url_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let data = resolver(&dir.path().join("cache"), false);
        let absent = dir.path().join("data/sst.csv");

        let error = data.locate("sst", Some(&absent), None, None).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "dataset `sst`: {} does not exist; create it, or pass `--data sst=PATH`",
                absent.display()
            )
        );
        let error = data.locate("sst", None, None, None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "dataset `sst` has no `path` or pinned `url`; pass `--data sst=PATH`"
        );
    }

    #[test]
    fn unpinned_url_is_never_downloaded() {
        let server = TestServer::start(&[("/sst.csv", BODY)]);
        let cache = tempfile::tempdir().unwrap();
        let url = server.url("/sst.csv");

        let error = resolver(cache.path(), false)
            .locate("sst", None, Some(&url), None)
            .unwrap_err();
        assert!(matches!(error, DataError::Unpinned { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!(
                "dataset `sst` has a `url` but no `sha256`, so {url} is not downloaded: add `sha256 = \"...\"` to the dataset, or pass `--data sst=PATH`"
            )
        );
        assert_eq!(server.hits(), 0);
    }

    #[test]
    fn hash_that_is_not_hex_never_becomes_a_path() {
        let server = TestServer::start(&[("/sst.csv", BODY)]);
        let cache = tempfile::tempdir().unwrap();
        let url = server.url("/sst.csv");

        let error = resolver(cache.path(), false)
            .locate("sst", None, Some(&url), Some("../../etc/passwd"))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "dataset `sst`: `sha256 = \"../../etc/passwd\"` is not 64 hexadecimal digits"
        );
        assert_eq!(server.hits(), 0);
    }

    #[test]
    fn unwritable_cache_is_reported_with_its_path() {
        let server = TestServer::start(&[("/sst.csv", BODY)]);
        let dir = tempfile::tempdir().unwrap();
        // A file where the cache folder should be.
        let blocked = dir.path().join("cache");
        fs::write(&blocked, b"").unwrap();

        let error = resolver(&blocked, false)
            .locate(
                "sst",
                None,
                Some(&server.url("/sst.csv")),
                Some(&digest(BODY)),
            )
            .unwrap_err();
        let DataError::CacheWrite { path, .. } = &error else {
            panic!("expected a cache error, got {error:?}");
        };
        assert_eq!(path, &blocked);
        assert!(
            error.to_string().starts_with(&format!(
                "cannot write the data cache at {}: ",
                blocked.display()
            )),
            "{error}"
        );
        assert!(
            error
                .to_string()
                .ends_with("; set ASSAY_DATA_DIR to a writable folder")
        );
        assert_eq!(server.hits(), 0);
    }

    #[test]
    fn parse_override_accepts_name_equals_path() {
        assert_eq!(
            DataResolver::parse_override("sst=data/my sst.csv=v2"),
            Ok(("sst".to_owned(), PathBuf::from("data/my sst.csv=v2")))
        );
        assert_eq!(
            DataResolver::parse_override("sst"),
            Err("expected NAME=PATH, found `sst`".to_owned())
        );
        assert_eq!(
            DataResolver::parse_override("=x.csv"),
            Err("`` is not a dataset name: expected NAME=PATH, where NAME is the name after `dataset` in the spec".to_owned())
        );
        assert_eq!(
            DataResolver::parse_override("2sst=x.csv"),
            Err("`2sst` is not a dataset name: expected NAME=PATH, where NAME is the name after `dataset` in the spec".to_owned())
        );
        assert_eq!(
            DataResolver::parse_override("sst="),
            Err("no file given for dataset `sst`: expected sst=PATH".to_owned())
        );
    }
}
