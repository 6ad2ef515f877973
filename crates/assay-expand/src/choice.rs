//! Multiple-choice option shuffling, an expansion-time transform: with `shuffle = true` on a
//! `choice` judge, every item with an answer key whose last user turn lists the judge's
//! options one per line (`A) text`, `A. text`, `(A) text`, `A: text`) has the option texts
//! permuted over the same letters, and its answer key follows its text. The permutation is
//! drawn from a ChaCha8 generator seeded by the suite seed and the item's key, so a compiled
//! suite is the same on every machine, and each item gets its own order.

use crate::sample::derive_seed;
use assay_ir::{Expect, Item, Role};
use assay_syntax::ast::{Decl, ExprKind, JudgeKind};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// The options of the first `choice` judge with `shuffle = true`, and the seed.
pub(crate) struct Shuffle {
    options: Vec<String>,
    seed: u64,
}

impl Shuffle {
    /// `None` when no `choice` judge asks for shuffling.
    pub(crate) fn of(checked: &assay_check::Checked, seed: u64) -> Option<Shuffle> {
        checked
            .model
            .in_source_order()
            .into_iter()
            .find_map(|(_, def)| match &def.decl {
                Decl::Judge(j)
                    if j.kind == JudgeKind::Choice
                        && matches!(
                            j.props.value("shuffle").map(|v| &v.kind),
                            Some(ExprKind::Bool(true))
                        ) =>
                {
                    Some(Shuffle {
                        options: j
                            .props
                            .value("options")
                            .and_then(|o| match &o.kind {
                                ExprKind::List(items) => Some(
                                    items
                                        .iter()
                                        .filter_map(|i| match &i.kind {
                                            ExprKind::Str(s) => Some(s.clone()),
                                            _ => None,
                                        })
                                        .collect(),
                                ),
                                _ => None,
                            })
                            .unwrap_or_default(),
                        seed,
                    })
                }
                _ => None,
            })
    }

    /// Shuffles the item's options in place; an item without an answer key among the
    /// options, or whose prompt lists fewer than two of them, is left as it is.
    pub(crate) fn apply(&self, item: &mut Item) {
        let Expect::Answer(key) = &item.expect else {
            return;
        };
        let Some(turn) = item
            .messages
            .iter_mut()
            .rev()
            .find(|m| m.role == Role::User)
        else {
            return;
        };
        let seed = derive_seed(self.seed, &item.key);
        if let Some((prompt, answer)) = shuffle(&turn.content, key, &self.options, seed) {
            turn.content = prompt;
            item.expect = Expect::Answer(answer);
        }
    }
}

/// The prompt with its option texts permuted, and the answer key that follows the key's
/// text; `None` when there is nothing to shuffle.
pub(crate) fn shuffle(
    prompt: &str,
    key: &str,
    options: &[String],
    seed: u64,
) -> Option<(String, String)> {
    let mut lines: Vec<String> = prompt.split('\n').map(str::to_string).collect();
    // (line index, letter, marker before the text, text)
    let mut found: Vec<(usize, String, String, String)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some((letter, marker, text)) = option_line(line)
            && options.iter().any(|o| o == letter)
            && !found.iter().any(|f| f.1 == letter)
        {
            found.push((i, letter.to_string(), marker.to_string(), text.to_string()));
        }
    }
    let from = found.iter().position(|f| f.1 == key)?;
    if found.len() < 2 {
        return None;
    }
    // Fisher-Yates over the texts; the letters keep their places.
    let mut order: Vec<usize> = (0..found.len()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for i in (1..order.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let mut answer = key.to_string();
    for (slot, &text_of) in order.iter().enumerate() {
        let (line, letter, marker, _) = &found[slot];
        lines[*line] = format!("{marker}{}", found[text_of].3);
        if text_of == from {
            answer = letter.clone();
        }
    }
    Some((lines.join("\n"), answer))
}

/// A line listing an option, `  (A) text`, as its letter, everything before the text, and
/// the text.
fn option_line(line: &str) -> Option<(&str, &str, &str)> {
    let body = line.trim_start();
    let body = body.strip_prefix(['(', '[']).unwrap_or(body);
    let end = body.find([')', ']', '.', ':'])?;
    let letter = &body[..end];
    if letter.is_empty() || letter.chars().count() > 12 || letter.contains(char::is_whitespace) {
        return None;
    }
    let rest = &body[end + 1..];
    let text = rest.trim_start();
    if text.len() == rest.len() || text.trim_end().is_empty() {
        return None;
    }
    let marker = &line[..line.len() - text.len()];
    Some((letter, marker, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn abcd() -> Vec<String> {
        ["A", "B", "C", "D"].map(String::from).to_vec()
    }

    const PROMPT: &str = "Which gloves resist acetone?\nA) Latex\nB) Nitrile\nC) Butyl rubber\nD) Cotton\nAnswer with a letter.";

    #[test]
    fn the_key_follows_its_text() {
        for seed in 0..50 {
            let (prompt, answer) = shuffle(PROMPT, "C", &abcd(), seed).unwrap();
            let line = prompt
                .lines()
                .find(|l| l.starts_with(&format!("{answer})")))
                .unwrap();
            assert_eq!(line, format!("{answer}) Butyl rubber"), "seed {seed}");
            let mut texts: Vec<&str> = prompt.lines().skip(1).take(4).map(|l| &l[3..]).collect();
            texts.sort();
            assert_eq!(texts, ["Butyl rubber", "Cotton", "Latex", "Nitrile"]);
            assert!(prompt.starts_with("Which gloves") && prompt.ends_with("letter."));
        }
    }

    #[test]
    fn the_order_is_seeded_and_varies() {
        let first = shuffle(PROMPT, "C", &abcd(), 1);
        assert_eq!(first, shuffle(PROMPT, "C", &abcd(), 1));
        let answers: std::collections::BTreeSet<String> = (0..40)
            .map(|s| shuffle(PROMPT, "C", &abcd(), s).unwrap().1)
            .collect();
        assert_eq!(answers.len(), 4, "every position is drawn: {answers:?}");
        // Golden value: the generator and the derivation are part of the suite's identity.
        let (prompt, answer) = shuffle(PROMPT, "C", &abcd(), 8).unwrap();
        assert_eq!(
            (prompt.as_str(), answer.as_str()),
            (
                "Which gloves resist acetone?\nA) Latex\nB) Nitrile\nC) Cotton\nD) Butyl rubber\nAnswer with a letter.",
                "D"
            )
        );
    }

    #[test]
    fn nothing_to_shuffle_is_left_alone() {
        assert_eq!(shuffle("No options here.", "A", &abcd(), 1), None);
        assert_eq!(shuffle("Pick:\nA) one", "A", &abcd(), 1), None);
        assert_eq!(shuffle(PROMPT, "E", &abcd(), 1), None);
    }
}
