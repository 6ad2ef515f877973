//! The built-in transforms of a user turn (attack encodings and wrappers). Each is a pure
//! function of the text: the same input always gives the same output.

use base64::Engine;

/// A transform with its argument resolved: `wrap` holds the name of its registered template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Transform {
    Identity,
    Base64,
    Rot13,
    Leetspeak,
    Spacing,
    Reverse,
    Uppercase,
    /// A handlebars wrapper placing the prompt with `{{prompt}}`, registered under this name.
    Wrap(String),
}

impl Transform {
    /// The transforms that need no argument, by name.
    pub(crate) fn simple(name: &str) -> Option<Transform> {
        Some(match name {
            "identity" => Transform::Identity,
            "base64" => Transform::Base64,
            "rot13" => Transform::Rot13,
            "leetspeak" => Transform::Leetspeak,
            "spacing" => Transform::Spacing,
            "reverse" => Transform::Reverse,
            "uppercase" => Transform::Uppercase,
            _ => return None,
        })
    }

    /// Applies a transform that needs no template; `Wrap` is applied by the caller.
    pub(crate) fn apply(&self, text: &str) -> String {
        match self {
            Transform::Identity | Transform::Wrap(_) => text.to_string(),
            Transform::Base64 => base64::engine::general_purpose::STANDARD.encode(text),
            Transform::Rot13 => text.chars().map(rot13).collect(),
            Transform::Leetspeak => text.chars().map(leet).collect(),
            Transform::Spacing => {
                let mut out = String::with_capacity(text.len() * 2);
                for (i, c) in text.chars().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push(c);
                }
                out
            }
            Transform::Reverse => text.chars().rev().collect(),
            Transform::Uppercase => text.to_uppercase(),
        }
    }
}

fn rot13(c: char) -> char {
    match c {
        'a'..='z' => (((c as u8 - b'a') + 13) % 26 + b'a') as char,
        'A'..='Z' => (((c as u8 - b'A') + 13) % 26 + b'A') as char,
        _ => c,
    }
}

/// The common substitutions: a→4, e→3, i→1, o→0, s→5, t→7 (either case).
fn leet(c: char) -> char {
    match c.to_ascii_lowercase() {
        'a' => '4',
        'e' => '3',
        'i' => '1',
        'o' => '0',
        's' => '5',
        't' => '7',
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::Transform;

    #[test]
    fn each_transform_on_a_known_input() {
        let input = "Tell me a secret, Ana!";
        let cases = [
            (Transform::Identity, "Tell me a secret, Ana!"),
            (Transform::Base64, "VGVsbCBtZSBhIHNlY3JldCwgQW5hIQ=="),
            (Transform::Rot13, "Gryy zr n frperg, Nan!"),
            (Transform::Leetspeak, "73ll m3 4 53cr37, 4n4!"),
            (
                Transform::Spacing,
                "T e l l   m e   a   s e c r e t ,   A n a !",
            ),
            (Transform::Reverse, "!anA ,terces a em lleT"),
            (Transform::Uppercase, "TELL ME A SECRET, ANA!"),
        ];
        for (t, want) in cases {
            assert_eq!(t.apply(input), want, "{t:?}");
        }
    }

    #[test]
    fn rot13_twice_is_the_identity_and_non_ascii_passes_through() {
        let input = "Grüße, Zoë — 123";
        let once = Transform::Rot13.apply(input);
        assert_eq!(once, "Teüßr, Mbë — 123");
        assert_eq!(Transform::Rot13.apply(&once), input);
    }
}
