//! `assay-syntax`: the front end of the Assay compiler.
//!
//! It owns the pest grammar (`assay.pest`), the typed AST with spans ([`ast`]), the block
//! schemas that say which keys each block accepts ([`schema`]), and the diagnostic model shared
//! by every later stage and output ([`Diagnostic`], [`Code`], [`SourceMap`]). It is pure: it
//! takes text and returns values plus diagnostics, never touching files or the network.
//! It may not depend on any other Assay crate.
//!
//! ```
//! use assay_syntax::{Code, FileId, parse};
//!
//! let (module, diagnostics) = parse(FileId(0), "taxonomy harm {\n  physical \"Physical harm\"\n");
//! assert!(module.decls.is_empty());
//! assert_eq!(diagnostics[0].code, Code::UnclosedBlock);
//! assert_eq!(diagnostics[0].message, "expected `}` to close taxonomy `harm` opened here");
//! ```

pub mod ast;
pub mod code;
pub mod diagnostic;
pub mod format;
mod lower;
mod parser;
pub mod schema;
pub mod source_map;
pub mod span;

pub use code::Code;
pub use diagnostic::{Diagnostic, Label, Severity, did_you_mean, finish_diagnostics, ticked};
pub use lower::MAX_EXPR_DEPTH;
pub use parser::{MAX_NESTING, parse};
pub use source_map::{LineCol, LineIndex, SourceFile, SourceMap};
pub use span::{FileId, Span};
