//! Reading the option a multiple-choice answer picks. The reading is deliberately careful:
//! a wrong option is a wrong number, so anything unclear is a judge error, never a guess.
//!
//! The response is first cleaned (reasoning blocks removed, markdown `*`, `` ` `` and `#`
//! dropped, typographic spaces and colons made plain). Then, in order, the first of these
//! tiers that names any option decides; a tier naming two different options is an error:
//!
//! 1. a hedge anywhere, `A or B` (also `ou`, `o`, `oder`, `/`): always an error;
//! 2. an answer statement: `Answer: C`, `The answer is (D)`, `Final answer - B`,
//!    `I choose B`, `I'd go with option B`, `I'd say A`, `I think it's D`, `Réponse : B`, `La respuesta es C`,
//!    `La respuesta correcta es la C`, `Die Antwort ist B`, `B is the correct answer`;
//! 3. a line that is nothing but an option: `A`, `A.`, `A)`, `(A)`, `[A]`, `**B**`,
//!    `Option B`;
//! 4. a line that starts with an option marker: `B) text`, `B. text`, `B: text`, `B - text`,
//!    `(B) text`, `**B)** text`;
//! 5. `option B` / `choice B` / `opción B` / `the safest choice is B` anywhere;
//! 6. the option's text (when the item's prompt lists options as `A) text` lines): the one
//!    option text the response contains.
//!
//! Single-letter options are matched case-sensitively, so the prose words "A" and "I" (and a
//! lowercase "a") are never an option; a lowercase letter counts only when it stands alone
//! (`b`, `b)`, `Answer: b`). Options that are words (`yes`, `no`) are matched
//! case-insensitively as whole words. Nothing found is an error; a refusal ("I can't help
//! with that") is an error that says so.

use crate::{JudgeError, fail, strip_reasoning};
use regex::Regex;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// The option a multiple-choice answer picks among `options` (e.g. `["A","B","C","D"]`).
pub fn choice(response: &str, options: &[&str]) -> Result<String, JudgeError> {
    ChoiceReader::new(options).read(response, &BTreeMap::new())
}

/// As [`choice`], also reading an answer that names an option's text instead of its letter;
/// `texts` maps options to their texts (see [`option_texts`]).
pub fn choice_with_texts(
    response: &str,
    options: &[&str],
    texts: &BTreeMap<String, String>,
) -> Result<String, JudgeError> {
    ChoiceReader::new(options).read(response, texts)
}

impl ChoiceReader {
    /// The option `response` picks; `texts` maps options to their texts, possibly none.
    pub fn read(
        &self,
        response: &str,
        texts: &BTreeMap<String, String>,
    ) -> Result<String, JudgeError> {
        let text = clean(response);
        if let Some(found) = self.hedge(&text) {
            return Err(fail(
                format!("several options named: {}", found.join(", ")),
                response,
            ));
        }
        for tier in [&self.stated, &self.bare, &self.marked, &self.named] {
            let found = self.find(tier, &text);
            if !found.is_empty() {
                return one(found, response);
            }
        }
        let found = by_text(&text, texts);
        if !found.is_empty() {
            return one(found, response);
        }
        if refuses(&text) {
            return Err(fail("the response refuses to choose an option", response));
        }
        Err(fail("no option found", response))
    }
}

/// The options' texts an item's prompt lists, one per line as `A) text`, `A. text`,
/// `(A) text` or `A: text`; empty unless at least two of `options` are listed.
pub fn option_texts(prompt: &str, options: &[&str]) -> BTreeMap<String, String> {
    static LINE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^\s*[\(\[]?([^\s\)\]\.:]{1,12})[\)\]\.:]\s+(\S.*?)\s*$")
            .expect("a valid regex")
    });
    let mut texts = BTreeMap::new();
    for line in prompt.lines() {
        let line = line.replace('*', "");
        if let Some(c) = LINE.captures(&line)
            && let Some(option) = options.iter().find(|o| **o == &c[1])
        {
            texts
                .entry(option.to_string())
                .or_insert_with(|| c[2].to_string());
        }
    }
    if texts.len() < 2 {
        texts.clear();
    }
    texts
}

fn one(mut found: Vec<String>, response: &str) -> Result<String, JudgeError> {
    found.sort();
    found.dedup();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        many => Err(fail(
            format!("several options named: {}", many.join(", ")),
            response,
        )),
    }
}

/// The response without reasoning, markdown emphasis, headings and quote marks, with plain
/// spaces and colons.
fn clean(response: &str) -> String {
    let text = strip_reasoning(response);
    let text: String = text
        .chars()
        .filter(|c| !matches!(c, '*' | '`'))
        .map(|c| match c {
            '\u{00A0}' | '\u{202F}' | '\u{2009}' => ' ',
            '\u{FF1A}' => ':',
            '\u{2013}' | '\u{2014}' => '-',
            c => c,
        })
        .collect();
    text.lines()
        .map(|l| l.trim_start().trim_start_matches(['#', '>']).trim())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The default reading of one option set, its forms compiled once. Each regex has a group
/// per place an option may stand; the first that took part is the option found.
pub struct ChoiceReader {
    options: Vec<String>,
    hedge: Regex,
    stated: Regex,
    bare: Regex,
    marked: Regex,
    named: Regex,
}

/// Words that introduce the answer, in English, French, Spanish, German, Italian and
/// Portuguese.
const CUES: &str = r"(?:final\s+answer|correct\s+(?:answer|option|choice)|right\s+answer|best\s+(?:answer|option)|answer|my\s+choice|i(?:\s+would|\s+will|'d|'ll)?\s+(?:choose|pick|select|go\s+with|say)|i\s+(?:think|believe)\s+(?:it'?s|it\s+is)|(?:la\s+)?(?:bonne\s+)?r[ée]ponse(?:\s+correcte)?|je\s+choisis|(?:la\s+)?respuesta(?:\s+correcta)?|elijo|(?:die\s+)?(?:richtige\s+)?antwort|(?:la\s+)?risposta(?:\s+corretta)?|(?:a\s+)?resposta(?:\s+correta)?)";

impl ChoiceReader {
    pub fn new(options: &[&str]) -> ChoiceReader {
        let letters = options.iter().all(|o| o.chars().count() == 1);
        let alt = options
            .iter()
            .map(|o| regex::escape(o))
            .collect::<Vec<_>>()
            .join("|");
        // As written; words case-insensitively.
        let opt = if letters {
            format!("({alt})")
        } else {
            format!("(?i:({alt}))")
        };
        let lower = options
            .iter()
            .filter(|o| letters && o.chars().all(|c| c.is_ascii_uppercase()))
            .map(|o| regex::escape(&o.to_lowercase()))
            .collect::<Vec<_>>()
            .join("|");
        // A lowercase letter alone to the end of the line (`b`, `b)`, `b.`).
        let low = if lower.is_empty() {
            String::new()
        } else {
            format!(r"|({lower})[\)\]\.]?\s*$")
        };
        let end = r"(?:$|[\s\.,;:!\?\)\]])";
        let open = r"[\(\[]?";
        let link = r"(?:\s*(?:is|est|es|ist|è|é|:|-|=|would\s+be|will\s+be|must\s+be)\s*)*\s*";
        let article =
            r"(?:(?:the|la|el|le|die|letter|option|choice|opción|opcion|choix|opzione|opção)\s+)*";
        let compile = |re: String| Regex::new(&re).expect("a valid regex");
        ChoiceReader {
            options: options.iter().map(|o| o.to_string()).collect(),
            hedge: compile(format!(
                r"(?m)(?:^|[\s\(\[]){opt}[\)\]\.]?,?\s*(?:(?i:or|ou|o|oder|either)\s+(?i:(?:maybe|perhaps|possibly|peut-être|quizás|tal\s+vez|vielleicht)\s+)?|/\s*){open}{opt}{end}"
            )),
            stated: compile(format!(
                r"(?m)(?i:\b{CUES}){link}(?i:{article}){open}(?:{opt}{end}{low})|(?:^|[\s\(\[]){opt}[\)\]]?\s+(?i:is\s+(?:the\s+)?(?:correct|right|best)|est\s+la\s+bonne|es\s+la\s+correcta)\b"
            )),
            bare: compile(format!(
                r"(?m)^(?i:(?:option|choice|answer|opción|choix|réponse|respuesta)\s*:?\s*)?{open}(?:{opt}[\)\]\.]?\s*${low})"
            )),
            marked: compile(format!(r"(?m)^(?:\({opt}\)|{opt}[\)\]\.:]|{opt}\s+-)\s")),
            named: compile(format!(
                r"(?:^|\s)(?i:option|choice|opción|opcion|choix|opzione|alternative)\s+(?i:(?:is|would\s+be|est|es)\s+)?{open}{opt}{end}"
            )),
        }
    }

    /// The options a tier's regex names, in the order found.
    fn find(&self, re: &Regex, text: &str) -> Vec<String> {
        re.captures_iter(text)
            .filter_map(|c| {
                let m = c.iter().skip(1).flatten().next()?;
                self.canonical(m.as_str())
            })
            .collect()
    }

    fn canonical(&self, found: &str) -> Option<String> {
        self.options
            .iter()
            .find(|o| o.as_str() == found)
            .or_else(|| self.options.iter().find(|o| o.eq_ignore_ascii_case(found)))
            .cloned()
    }

    /// Two different options joined by "or": `A or B`, `(A) ou (B)`, `A/B`.
    fn hedge(&self, text: &str) -> Option<Vec<String>> {
        for c in self.hedge.captures_iter(text) {
            let (Some(a), Some(b)) = (c.get(1), c.get(2)) else {
                continue;
            };
            let (Some(a), Some(b)) = (self.canonical(a.as_str()), self.canonical(b.as_str()))
            else {
                continue;
            };
            if a != b {
                let mut both = vec![a, b];
                both.sort();
                return Some(both);
            }
        }
        None
    }
}

/// The options whose texts the response contains (whole words, case-insensitively); a text
/// contained in another found text is dropped, so `Yes` does not compete with `Yes, always`.
fn by_text(text: &str, texts: &BTreeMap<String, String>) -> Vec<String> {
    let hay = words(text);
    let found: Vec<(&String, String)> = texts
        .iter()
        .map(|(option, t)| (option, words(t)))
        .filter(|(_, t)| t.len() >= 3 && format!(" {hay} ").contains(&format!(" {t} ")))
        .collect();
    found
        .iter()
        .filter(|(_, t)| !found.iter().any(|(_, u)| u != t && u.contains(t.as_str())))
        .map(|(option, _)| option.to_string())
        .collect()
}

/// Lowercase words separated by single spaces, punctuation dropped.
fn words(text: &str) -> String {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a response that names no option declines to answer.
fn refuses(text: &str) -> bool {
    const PHRASES: &[&str] = &[
        "i can't",
        "i cannot",
        "i can not",
        "i won't",
        "i will not",
        "i'm sorry",
        "i am sorry",
        "i'm not able",
        "i am not able",
        "i'm unable",
        "i am unable",
        "i must decline",
        "i decline",
        "as an ai",
        "je ne peux pas",
        "no puedo",
        "lo siento",
        "désolé",
        "ich kann nicht",
    ];
    crate::keywords(text, PHRASES)
}
