//! Constructs the language declares that this version cannot run. Each is refused here
//! (E0124), saying what to do instead, so that a spec that checks runs as written: nothing is
//! accepted and then skipped, ignored, or failed on every item after the calls were paid for.

use super::Ctx;
use assay_syntax::ast::*;
use assay_syntax::{Code, Diagnostic, Span};

fn refuse(ctx: &mut Ctx<'_>, span: Span, what: &str, label: &str, help: &str) {
    ctx.error(
        Diagnostic::new(
            Code::NotRunnable,
            span,
            format!("{what} is not supported by this version of Assay"),
        )
        .label(label.to_string())
        .help(help.to_string()),
    );
}

pub(crate) fn check_target(ctx: &mut Ctx<'_>, target: &Target) {
    if let Some(p) = target.props.get("logprobs") {
        refuse(
            ctx,
            p.key.span,
            "asking a target for log-probabilities (`logprobs`)",
            "nothing reads a target's log-probabilities",
            "remove `logprobs`; a score judge with `from = logprobs` asks its model for them",
        );
    }
}

pub(crate) fn check_judge(ctx: &mut Ctx<'_>, judge: &Judge) {
    // A score judge's own samples; a jury's `reduce` is run (see `judge.rs`).
    if judge.kind == JudgeKind::Score
        && let Some(p) = judge.props.get("reduce")
    {
        refuse(
            ctx,
            p.key.span,
            "sampling one score judge several times (`reduce` on a `score` judge)",
            "no samples are drawn yet",
            "remove `reduce`, or make a jury: `judge j: ensemble { members = [a, b]  rule = jury  reduce = mean ... }`",
        );
    }
}
