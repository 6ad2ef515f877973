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
            "no judge reads them yet",
            "remove `logprobs`; score judges read the number the model writes",
        );
    }
}

pub(crate) fn check_judge(ctx: &mut Ctx<'_>, judge: &Judge) {
    if let Some(rule) = judge.props.name("rule")
        && rule.name == "jury"
    {
        refuse(
            ctx,
            rule.span,
            "a jury (`rule = jury`)",
            "juries are not combined yet",
            "use `rule = majority` with `tie`, or `weighted` with `weights`",
        );
    }
    if let Some(p) = judge.props.get("reduce") {
        refuse(
            ctx,
            p.key.span,
            "reducing several scores (`reduce`)",
            "score juries are not reduced yet",
            "remove `reduce`: each score judge gives one score",
        );
    }
    if let Some(from) = judge.props.name("from")
        && from.name == "logprobs"
    {
        refuse(
            ctx,
            from.span,
            "a score from token log-probabilities (`from = logprobs`)",
            "expected scores are not computed yet",
            "use `from = text`: the judge reads the number the model writes",
        );
    }
    if let Some(ExprKind::List(steps)) = judge.props.value("preprocess").map(|v| &v.kind) {
        for step in steps {
            if let ExprKind::Call { callee, .. } = &step.kind
                && callee.name == "extract_llm"
            {
                refuse(
                    ctx,
                    callee.span,
                    "extracting an answer with a model (`extract_llm`)",
                    "not run yet",
                    "use `extract(\"regex\")`, or a `choice` judge, which reads the option itself",
                );
            }
        }
    }
}

/// `attachments` on a template or a dataset's item.
pub(crate) fn check_attachments(ctx: &mut Ctx<'_>, props: &Props) {
    if let Some(p) = props.get("attachments") {
        refuse(
            ctx,
            p.key.span,
            "sending attachments with a prompt (`attachments`)",
            "no provider is sent images or audio yet",
            "remove `attachments`; multimodal items need a later version",
        );
    }
}
