//! `assay-lsp`: the language server behind `assay lsp`.
//!
//! It speaks LSP over a [`lsp_server::Connection`] (stdio in the CLI, in memory in tests).
//! Open documents are kept in memory and take precedence over the files on disk, so the
//! checker sees what the editor shows. After each change it waits for a quiet moment
//! (debounce) and publishes the checker's diagnostics for every file they point into. Hover,
//! definition, references, completion, document symbols and formatting are answered from a
//! fresh check of the document's package (`analysis.rs`); standard-library definitions are
//! written once to a cache folder so an editor can open them.
//!
//! It may depend on `assay-syntax` and `assay-check`, never on the CLI.

pub mod analysis;
mod convert;

use analysis::Target;
use assay_check::{Checked, FsLoader, Origin, Package, SourceLoader, manifest};
use convert::{LineMap, path_to_uri, uri_to_path};
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, RequestId, Response};
use lsp_types as lsp;
use lsp_types::notification::Notification as _;
use lsp_types::request::Request as _;
use std::collections::{BTreeMap, BTreeSet};
use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Duration;

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

/// How long the document must stay unchanged before it is checked again.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// Runs the server on stdin and stdout until the client says `exit`.
pub fn run_stdio() -> Result<()> {
    let (connection, io_threads) = Connection::stdio();
    serve(connection)?;
    io_threads.join()?;
    Ok(())
}

/// What the server announces it can do.
pub fn capabilities() -> lsp::ServerCapabilities {
    lsp::ServerCapabilities {
        text_document_sync: Some(lsp::TextDocumentSyncCapability::Kind(
            lsp::TextDocumentSyncKind::FULL,
        )),
        hover_provider: Some(lsp::HoverProviderCapability::Simple(true)),
        definition_provider: Some(lsp::OneOf::Left(true)),
        references_provider: Some(lsp::OneOf::Left(true)),
        completion_provider: Some(lsp::CompletionOptions {
            trigger_characters: Some(vec![".".into()]),
            ..Default::default()
        }),
        document_symbol_provider: Some(lsp::OneOf::Left(true)),
        document_formatting_provider: Some(lsp::OneOf::Left(true)),
        ..Default::default()
    }
}

/// Serves one connection: the initialize handshake, then requests until shutdown.
pub fn serve(connection: Connection) -> Result<()> {
    let caps = serde_json::to_value(capabilities())?;
    let (id, _params) = connection.initialize_start()?;
    connection.initialize_finish(
        id,
        serde_json::json!({
            "capabilities": caps,
            "serverInfo": { "name": "assay", "version": env!("CARGO_PKG_VERSION") },
        }),
    )?;
    let mut server = Server {
        docs: BTreeMap::new(),
        dirty: BTreeSet::new(),
        published: BTreeSet::new(),
        stdlib_dir: std::env::temp_dir()
            .join(format!("assay-{}-stdlib", env!("CARGO_PKG_VERSION"))),
    };
    loop {
        let message = if server.dirty.is_empty() {
            match connection.receiver.recv() {
                Ok(m) => m,
                Err(_) => return Ok(()),
            }
        } else {
            match connection.receiver.recv_timeout(DEBOUNCE) {
                Ok(m) => m,
                Err(crossbeam_timeout) if crossbeam_timeout.is_timeout() => {
                    server.publish_dirty(&connection)?;
                    continue;
                }
                Err(_) => return Ok(()),
            }
        };
        match message {
            Message::Request(req) => {
                if connection.handle_shutdown(&req)? {
                    return Ok(());
                }
                // Answers reflect the latest text, so pending checks run first.
                server.publish_dirty(&connection)?;
                let response = server.handle(req);
                connection.sender.send(Message::Response(response))?;
            }
            Message::Notification(n) => server.notify(n),
            Message::Response(_) => {}
        }
    }
}

struct Server {
    /// Open documents by path: their text overrides the disk.
    docs: BTreeMap<PathBuf, String>,
    /// Documents changed since their diagnostics were published.
    dirty: BTreeSet<PathBuf>,
    /// Files that have diagnostics published, to clear them when they go away.
    published: BTreeSet<PathBuf>,
    /// Where standard-library modules are written for go-to-definition.
    stdlib_dir: PathBuf,
}

/// Reads open documents from memory and everything else from disk.
struct Overlay<'a> {
    docs: &'a BTreeMap<PathBuf, String>,
}

impl SourceLoader for Overlay<'_> {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        match self.docs.get(&assay_check::normalize(path)) {
            Some(text) => Ok(text.clone()),
            None => FsLoader.read(path),
        }
    }
    fn is_file(&self, path: &Path) -> bool {
        self.docs.contains_key(&assay_check::normalize(path)) || FsLoader.is_file(path)
    }
    fn canonical(&self, path: &Path) -> Option<PathBuf> {
        FsLoader.canonical(path)
    }
}

/// The package a spec belongs to: the nearest folder above it with `assay.toml`, else the
/// spec alone.
fn package_for(path: &Path, loader: &dyn SourceLoader) -> Package {
    let mut dir = path.parent();
    while let Some(d) = dir {
        if loader.is_file(&d.join(manifest::MANIFEST))
            && let Ok(mut package) = manifest::read_package(d, loader)
        {
            package.entry = path.strip_prefix(d).unwrap_or(path).to_path_buf();
            return package;
        }
        dir = d.parent();
    }
    Package::single_file(path)
}

impl Server {
    fn check(&self, path: &Path) -> Option<Checked> {
        let loader = Overlay { docs: &self.docs };
        let package = package_for(path, &loader);
        assay_check::check(&package, &loader).ok()
    }

    /// The checked package of a document and the index of the document's module in it.
    fn analyze(&self, uri: &lsp::Uri) -> Option<(Checked, usize, PathBuf)> {
        let path = uri_to_path(uri)?;
        let checked = self.check(&path)?;
        let m = checked.modules.iter().position(|m| match &m.origin {
            Origin::File { path: p, .. } => {
                assay_check::normalize(p) == assay_check::normalize(&path)
            }
            Origin::Std(_) => false,
        })?;
        Some((checked, m, path))
    }

    fn text_of(&self, path: &Path) -> Option<String> {
        self.docs
            .get(path)
            .cloned()
            .or_else(|| std::fs::read_to_string(path).ok())
    }

    fn notify(&mut self, n: Notification) {
        match n.method.as_str() {
            lsp::notification::DidOpenTextDocument::METHOD => {
                if let Ok(p) = serde_json::from_value::<lsp::DidOpenTextDocumentParams>(n.params)
                    && let Some(path) = uri_to_path(&p.text_document.uri)
                {
                    self.docs.insert(path.clone(), p.text_document.text);
                    self.dirty.insert(path);
                }
            }
            lsp::notification::DidChangeTextDocument::METHOD => {
                if let Ok(p) = serde_json::from_value::<lsp::DidChangeTextDocumentParams>(n.params)
                    && let Some(path) = uri_to_path(&p.text_document.uri)
                    && let Some(change) = p.content_changes.into_iter().last()
                {
                    self.docs.insert(path.clone(), change.text);
                    self.dirty.insert(path);
                }
            }
            lsp::notification::DidCloseTextDocument::METHOD => {
                if let Ok(p) = serde_json::from_value::<lsp::DidCloseTextDocumentParams>(n.params)
                    && let Some(path) = uri_to_path(&p.text_document.uri)
                {
                    self.docs.remove(&path);
                }
            }
            lsp::notification::DidSaveTextDocument::METHOD => {
                if let Ok(p) = serde_json::from_value::<lsp::DidSaveTextDocumentParams>(n.params)
                    && let Some(path) = uri_to_path(&p.text_document.uri)
                {
                    self.dirty.insert(path);
                }
            }
            _ => {}
        }
    }

    /// Checks every changed document and publishes diagnostics for each file they touch.
    fn publish_dirty(&mut self, connection: &Connection) -> Result<()> {
        let dirty = std::mem::take(&mut self.dirty);
        for path in dirty {
            let Some(checked) = self.check(&path) else {
                continue;
            };
            let mut by_file: BTreeMap<PathBuf, Vec<lsp::Diagnostic>> = BTreeMap::new();
            by_file.insert(path.clone(), Vec::new());
            for d in &checked.diagnostics {
                let file = checked.sources.get(d.primary.span.file);
                if file.name.starts_with("std::") {
                    continue;
                }
                let file_path = PathBuf::from(&file.name);
                let file_path = if file_path.is_absolute() {
                    file_path
                } else {
                    std::env::current_dir().unwrap_or_default().join(file_path)
                };
                let lines = LineMap::new(&file.text);
                let related: Vec<lsp::DiagnosticRelatedInformation> = d
                    .secondary
                    .iter()
                    .filter_map(|l| {
                        let f = checked.sources.get(l.span.file);
                        let uri = path_to_uri(Path::new(&f.name))?;
                        Some(lsp::DiagnosticRelatedInformation {
                            location: lsp::Location {
                                uri,
                                range: LineMap::new(&f.text).range(l.span),
                            },
                            message: l.message.clone(),
                        })
                    })
                    .collect();
                let mut message = d.message.clone();
                if !d.primary.message.is_empty() {
                    message.push_str(&format!(" ({})", d.primary.message));
                }
                if let Some(help) = &d.help {
                    message.push_str(&format!("\nhelp: {help}"));
                }
                by_file
                    .entry(assay_check::normalize(&file_path))
                    .or_default()
                    .push(lsp::Diagnostic {
                        range: lines.range(d.primary.span),
                        severity: Some(if d.is_error() {
                            lsp::DiagnosticSeverity::ERROR
                        } else {
                            lsp::DiagnosticSeverity::WARNING
                        }),
                        code: Some(lsp::NumberOrString::String(d.code.as_str().into())),
                        source: Some("assay".into()),
                        message,
                        related_information: (!related.is_empty()).then_some(related),
                        ..Default::default()
                    });
            }
            for stale in self.published.clone() {
                if stale != path && !by_file.contains_key(&stale) && self.docs.contains_key(&stale)
                {
                    continue;
                }
                by_file.entry(stale).or_default();
            }
            for (file, diagnostics) in by_file {
                let Some(uri) = path_to_uri(&file) else {
                    continue;
                };
                if diagnostics.is_empty() {
                    self.published.remove(&file);
                } else {
                    self.published.insert(file.clone());
                }
                let params = lsp::PublishDiagnosticsParams {
                    uri,
                    diagnostics,
                    version: None,
                };
                connection
                    .sender
                    .send(Message::Notification(Notification::new(
                        lsp::notification::PublishDiagnostics::METHOD.into(),
                        params,
                    )))?;
            }
        }
        Ok(())
    }

    fn handle(&mut self, req: Request) -> Response {
        let id = req.id.clone();
        let result = match req.method.as_str() {
            lsp::request::HoverRequest::METHOD => self.hover(req.params),
            lsp::request::GotoDefinition::METHOD => self.definition(req.params),
            lsp::request::References::METHOD => self.references(req.params),
            lsp::request::Completion::METHOD => self.completion(req.params),
            lsp::request::DocumentSymbolRequest::METHOD => self.symbols(req.params),
            lsp::request::Formatting::METHOD => self.formatting(req.params),
            other => {
                return Response::new_err(
                    id,
                    ErrorCode::MethodNotFound as i32,
                    format!("assay lsp does not handle `{other}`"),
                );
            }
        };
        match result {
            Ok(value) => Response::new_ok(id, value),
            Err(e) => error_response(id, e),
        }
    }

    /// The occurrence under the cursor and what it refers to.
    fn target_at(&self, position: &lsp::TextDocumentPositionParams) -> Option<(Checked, Target)> {
        let (checked, m, path) = self.analyze(&position.text_document.uri)?;
        let text = self.text_of(&path)?;
        let offset = LineMap::new(&text).offset(position.position)?;
        let occ = analysis::occurrence_at(&checked, m, offset)?;
        let target = analysis::resolve(&checked, m, &occ)?;
        Some((checked, target))
    }

    /// A location for a span, writing standard-library modules to disk so they can open.
    fn location(&self, checked: &Checked, span: assay_syntax::Span) -> Option<lsp::Location> {
        let file = checked.sources.get(span.file);
        let path = match file.name.strip_prefix("std::") {
            Some(module) => {
                let path = self
                    .stdlib_dir
                    .join(format!("{}.assay", module.replace("::", "/")));
                if std::fs::read_to_string(&path).ok().as_deref() != Some(file.text.as_str()) {
                    std::fs::create_dir_all(path.parent()?).ok()?;
                    std::fs::write(&path, &file.text).ok()?;
                }
                path
            }
            None => {
                let p = PathBuf::from(&file.name);
                if p.is_absolute() {
                    p
                } else {
                    std::env::current_dir().ok()?.join(p)
                }
            }
        };
        Some(lsp::Location {
            uri: path_to_uri(&path)?,
            range: LineMap::new(&file.text).range(span),
        })
    }

    fn hover(&self, params: serde_json::Value) -> Result<serde_json::Value> {
        let p: lsp::HoverParams = serde_json::from_value(params)?;
        let Some((checked, target)) = self.target_at(&p.text_document_position_params) else {
            return Ok(serde_json::Value::Null);
        };
        let hover = lsp::Hover {
            contents: lsp::HoverContents::Markup(lsp::MarkupContent {
                kind: lsp::MarkupKind::Markdown,
                value: analysis::hover_text(&checked, &target),
            }),
            range: None,
        };
        Ok(serde_json::to_value(hover)?)
    }

    fn definition(&self, params: serde_json::Value) -> Result<serde_json::Value> {
        let p: lsp::GotoDefinitionParams = serde_json::from_value(params)?;
        let Some((checked, target)) = self.target_at(&p.text_document_position_params) else {
            return Ok(serde_json::Value::Null);
        };
        match self.location(&checked, target.span()) {
            Some(loc) => Ok(serde_json::to_value(lsp::GotoDefinitionResponse::Scalar(
                loc,
            ))?),
            None => Ok(serde_json::Value::Null),
        }
    }

    fn references(&self, params: serde_json::Value) -> Result<serde_json::Value> {
        let p: lsp::ReferenceParams = serde_json::from_value(params)?;
        let Some((checked, target)) = self.target_at(&p.text_document_position) else {
            return Ok(serde_json::Value::Null);
        };
        let locations: Vec<lsp::Location> = analysis::references(&checked, &target)
            .into_iter()
            .filter(|span| p.context.include_declaration || *span != target.span())
            .filter_map(|span| self.location(&checked, span))
            .collect();
        Ok(serde_json::to_value(locations)?)
    }

    fn completion(&self, params: serde_json::Value) -> Result<serde_json::Value> {
        let p: lsp::CompletionParams = serde_json::from_value(params)?;
        let position = &p.text_document_position;
        let Some((checked, m, path)) = self.analyze(&position.text_document.uri) else {
            return Ok(serde_json::Value::Null);
        };
        let text = self.text_of(&path).unwrap_or_default();
        let Some(offset) = LineMap::new(&text).offset(position.position) else {
            return Ok(serde_json::Value::Null);
        };
        let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let items: Vec<lsp::CompletionItem> =
            analysis::completions(&checked, m, &text[line_start..offset])
                .into_iter()
                .map(|c| lsp::CompletionItem {
                    kind: Some(completion_kind(&c.kind)),
                    detail: Some(c.detail),
                    label: c.label,
                    ..Default::default()
                })
                .collect();
        Ok(serde_json::to_value(lsp::CompletionResponse::Array(items))?)
    }

    fn symbols(&self, params: serde_json::Value) -> Result<serde_json::Value> {
        let p: lsp::DocumentSymbolParams = serde_json::from_value(params)?;
        let Some(path) = uri_to_path(&p.text_document.uri) else {
            return Ok(serde_json::Value::Null);
        };
        let text = self.text_of(&path).unwrap_or_default();
        let (module, _) = assay_syntax::parse(assay_syntax::FileId(0), &text);
        let lines = LineMap::new(&text);
        #[allow(deprecated)] // `deprecated` is a required field of the LSP type
        fn convert(lines: &LineMap<'_>, s: analysis::Symbol) -> lsp::DocumentSymbol {
            lsp::DocumentSymbol {
                name: s.name,
                detail: Some(s.kind.clone()),
                kind: symbol_kind(&s.kind),
                tags: None,
                deprecated: None,
                range: lines.range(s.span),
                selection_range: lines.range(s.selection),
                children: (!s.children.is_empty())
                    .then(|| s.children.into_iter().map(|c| convert(lines, c)).collect()),
            }
        }
        let symbols: Vec<lsp::DocumentSymbol> = analysis::symbols(&module)
            .into_iter()
            .map(|s| convert(&lines, s))
            .collect();
        Ok(serde_json::to_value(lsp::DocumentSymbolResponse::Nested(
            symbols,
        ))?)
    }

    fn formatting(&self, params: serde_json::Value) -> Result<serde_json::Value> {
        let p: lsp::DocumentFormattingParams = serde_json::from_value(params)?;
        let Some(path) = uri_to_path(&p.text_document.uri) else {
            return Ok(serde_json::Value::Null);
        };
        let text = self.text_of(&path).unwrap_or_default();
        let (_, diagnostics) = assay_syntax::parse(assay_syntax::FileId(0), &text);
        if diagnostics.iter().any(|d| d.is_error()) {
            // A file with syntax errors is not formatted: the edit would guess.
            return Ok(serde_json::Value::Null);
        }
        let Ok(formatted) = assay_syntax::format::format(&text) else {
            return Ok(serde_json::Value::Null);
        };
        if formatted == text {
            return Ok(serde_json::to_value(Vec::<lsp::TextEdit>::new())?);
        }
        let lines = LineMap::new(&text);
        let edit = lsp::TextEdit {
            range: lsp::Range {
                start: lsp::Position::new(0, 0),
                end: lines.position(text.len()),
            },
            new_text: formatted,
        };
        Ok(serde_json::to_value(vec![edit])?)
    }
}

fn error_response(id: RequestId, e: Box<dyn Error + Send + Sync>) -> Response {
    Response::new_err(id, ErrorCode::InvalidParams as i32, e.to_string())
}

fn completion_kind(kind: &str) -> lsp::CompletionItemKind {
    match kind {
        "keyword" => lsp::CompletionItemKind::KEYWORD,
        "category" => lsp::CompletionItemKind::ENUM_MEMBER,
        "taxonomy" | "mapping" => lsp::CompletionItemKind::ENUM,
        "judge" | "metric" => lsp::CompletionItemKind::FUNCTION,
        "target" | "program" | "module" => lsp::CompletionItemKind::MODULE,
        "persona" => lsp::CompletionItemKind::CLASS,
        "axis" => lsp::CompletionItemKind::PROPERTY,
        _ => lsp::CompletionItemKind::VARIABLE,
    }
}

fn symbol_kind(kind: &str) -> lsp::SymbolKind {
    match kind {
        "suite" => lsp::SymbolKind::PACKAGE,
        "taxonomy" | "mapping" => lsp::SymbolKind::ENUM,
        "category" => lsp::SymbolKind::ENUM_MEMBER,
        "judge" | "metric" | "grade" => lsp::SymbolKind::FUNCTION,
        "standard" => lsp::SymbolKind::CONSTANT,
        "target" | "program" => lsp::SymbolKind::MODULE,
        "persona" => lsp::SymbolKind::CLASS,
        "template" | "dataset" => lsp::SymbolKind::STRUCT,
        "axis" => lsp::SymbolKind::PROPERTY,
        _ => lsp::SymbolKind::OBJECT,
    }
}
