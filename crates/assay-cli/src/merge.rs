//! `assay merge`: the shards of a run (`assay run --shard K/N`) put back into one run folder
//! by `assay_run::shard::merge`, then judged (unless every shard was) and scored, as
//! `assay judge` does.

use crate::ToolError;
use crate::score::{JudgeArgs, JudgeMediaArgs, ScoreArgs};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// The shards' run folders, every part K/N of one run once.
    #[arg(required = true)]
    pub parts: Vec<PathBuf>,
    /// The merged run folder.
    #[arg(long, short)]
    pub out: PathBuf,
    #[command(flatten)]
    pub score: ScoreArgs,
    /// Judge requests in flight per judge, when the merged run still has to be judged.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub concurrency: u32,
    /// Neither read nor write the response cache.
    #[arg(long)]
    pub no_cache: bool,
    /// No tables or progress output.
    #[arg(long, short)]
    pub quiet: bool,
    /// Skip the check that every judge model's key variable is set and its endpoint answers.
    #[arg(long)]
    pub no_preflight: bool,
    #[command(flatten)]
    pub media: JudgeMediaArgs,
}

pub fn merge(args: &MergeArgs) -> Result<ExitCode, ToolError> {
    let merged = assay_run::shard::merge(&args.parts, &args.out).map_err(ToolError)?;
    if !args.quiet {
        errln!(
            "merged {} shards: {} items, {} results, into {}{}",
            merged.parts,
            merged.items,
            merged.results,
            args.out.display(),
            if merged.judged {
                " (their judgements merged too)"
            } else {
                "; judging it now"
            }
        );
    }
    let judge = JudgeArgs {
        run_dir: args.out.clone(),
        score: args.score.clone(),
        concurrency: args.concurrency,
        retries: 5,
        timeout: std::time::Duration::from_secs(120),
        rpm: None,
        no_cache: args.no_cache,
        quiet: args.quiet,
        no_preflight: args.no_preflight,
        media: args.media.clone(),
    };
    if merged.judged {
        let scoring = crate::score::read_scoring(&args.out)?;
        crate::score::report_dir(&args.out, &scoring, &args.score, args.quiet)
    } else {
        crate::score::judge(&judge)
    }
}
