//! `hf://` dataset URLs: files on the Hugging Face Hub at a pinned revision.

/// The Hub's download URL of `hf://datasets/OWNER/NAME@REVISION/PATH` (also `hf://models/`
/// and `hf://spaces/`): `{HF_ENDPOINT}/datasets/OWNER/NAME/resolve/REVISION/PATH`, with
/// `HF_ENDPOINT` defaulting to `https://huggingface.co` as in Hugging Face's own tools.
/// `None` for any other URL; an error for an `hf://` URL without a pinned revision.
pub fn hub_url(url: &str) -> Option<Result<String, String>> {
    let rest = url.strip_prefix("hf://")?;
    let resolve = || -> Result<String, String> {
        let (kind, rest) = rest
            .split_once('/')
            .ok_or_else(|| format!("`{url}` is not hf://datasets/OWNER/NAME@REVISION/PATH"))?;
        if !matches!(kind, "datasets" | "models" | "spaces") {
            return Err(format!(
                "`{url}`: the Hub holds `datasets`, `models` and `spaces`, not `{kind}`"
            ));
        }
        let mut parts = rest.splitn(3, '/');
        let (owner, name_rev, path) = (parts.next(), parts.next(), parts.next());
        let (Some(owner), Some(name_rev), Some(path)) = (owner, name_rev, path) else {
            return Err(format!(
                "`{url}` is not hf://{kind}/OWNER/NAME@REVISION/PATH"
            ));
        };
        let Some((name, revision)) = name_rev.split_once('@').filter(|(_, r)| !r.is_empty()) else {
            return Err(format!(
                "`{url}` names no revision: pin one, hf://{kind}/{owner}/{name_rev}@COMMIT/{path}, so the data cannot change under the hash"
            ));
        };
        let host = std::env::var("HF_ENDPOINT")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "https://huggingface.co".into());
        let host = host.trim_end_matches('/');
        // Models live at the root of the Hub; datasets and spaces under their kind.
        let prefix = if kind == "models" {
            String::new()
        } else {
            format!("/{kind}")
        };
        Ok(format!(
            "{host}{prefix}/{owner}/{name}/resolve/{revision}/{path}"
        ))
    };
    Some(resolve())
}

#[cfg(test)]
mod tests {
    use super::hub_url;

    #[test]
    fn hub_urls_resolve_to_the_files_at_their_revision() {
        // HF_ENDPOINT is not set in tests: the Hub itself.
        if std::env::var_os("HF_ENDPOINT").is_some() {
            return;
        }
        assert_eq!(
            hub_url("hf://datasets/acme/prompts@0123abcd/data/train.parquet"),
            Some(Ok(
                "https://huggingface.co/datasets/acme/prompts/resolve/0123abcd/data/train.parquet"
                    .into()
            ))
        );
        assert_eq!(
            hub_url("hf://models/acme/guard@v1/labels.json"),
            Some(Ok(
                "https://huggingface.co/acme/guard/resolve/v1/labels.json".into()
            ))
        );
        assert!(hub_url("https://example.org/x.csv").is_none());
        for bad in [
            "hf://datasets/acme/prompts/train.parquet",
            "hf://datasets/acme/prompts@/train.parquet",
            "hf://buckets/acme/prompts@1/x",
            "hf://datasets/acme",
        ] {
            assert!(matches!(hub_url(bad), Some(Err(_))), "{bad}");
        }
    }
}
