//! Evaluating spec expressions to data: item fields of a dataset row, `where` filters over a
//! template's bindings. Values are JSON values; names resolve through an [`Env`].

use assay_syntax::ast::{BinaryOp, Expr, ExprKind, UnaryOp};
use serde_json::{Map, Number, Value};

/// What names mean where an expression is evaluated.
pub(crate) trait Env {
    /// The value of a dotted path (`row.prompt`, `topic`, `harm.physical`), or `None` when the
    /// path names nothing here.
    fn path(&self, segments: &[&str]) -> Option<Value>;
}

/// The functions expressions evaluated here may call (the checker keeps the same list).
const FUNCTIONS: &[&str] = &[
    "`len`",
    "`lower`",
    "`upper`",
    "`trim`",
    "`contains`",
    "`replace`",
    "`join`",
    "`format`",
];

/// `format("Q: {}\nA) {}", a, b)`: each `{}` takes the next value as text; `{{` and `}}` are
/// literal braces. The count of `{}` must match the values.
pub(crate) fn format_text(pattern: &str, values: &[Value]) -> Result<String, String> {
    let mut out = String::with_capacity(pattern.len());
    let mut next = values.iter();
    let mut used = 0;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('{', Some('{')) | ('}', Some('}')) => {
                chars.next();
                out.push(c);
            }
            ('{', Some('}')) => {
                chars.next();
                used += 1;
                match next.next() {
                    Some(v) => out.push_str(&text(v)),
                    None => return Err(miscount(placeholders(pattern), values.len())),
                }
            }
            _ => out.push(c),
        }
    }
    if used != values.len() {
        return Err(miscount(used, values.len()));
    }
    Ok(out)
}

fn miscount(placeholders: usize, values: usize) -> String {
    let s = if values == 1 { "" } else { "s" };
    format!("`format` has {placeholders} `{{}}` but {values} value{s}")
}

/// How many `{}` a `format` pattern holds (`{{` and `}}` are literal braces).
pub(crate) fn placeholders(pattern: &str) -> usize {
    let mut count = 0;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('{', Some('{')) | ('}', Some('}')) => {
                chars.next();
            }
            ('{', Some('}')) => {
                chars.next();
                count += 1;
            }
            _ => {}
        }
    }
    count
}

/// Evaluates an expression; `Err` says why in words.
pub(crate) fn eval(expr: &Expr, env: &dyn Env) -> Result<Value, String> {
    Ok(match &expr.kind {
        ExprKind::Str(s) => Value::String(s.clone()),
        ExprKind::Number(n) => number(*n),
        ExprKind::Bool(b) => Value::Bool(*b),
        ExprKind::List(items) => Value::Array(
            items
                .iter()
                .map(|e| eval(e, env))
                .collect::<Result<_, _>>()?,
        ),
        ExprKind::Record(props) => {
            let mut map = Map::new();
            for p in props {
                map.insert(p.key.name.clone(), eval(&p.value, env)?);
            }
            Value::Object(map)
        }
        ExprKind::Path(segments) => {
            let names: Vec<&str> = segments.iter().map(|s| s.name.as_str()).collect();
            match env.path(&names) {
                Some(v) => v,
                // A bare word nothing defines is itself: `expect = refuse`, `persona = typical`.
                None if names.len() == 1 => Value::String(names[0].to_string()),
                None => return Err(format!("`{}` names no value here", names.join("."))),
            }
        }
        ExprKind::Call { callee, args } => match (callee.name.as_str(), args.as_slice()) {
            ("len", [a]) => match eval(&a.value, env)? {
                Value::String(s) => number(s.chars().count() as f64),
                Value::Array(a) => number(a.len() as f64),
                other => return Err(format!("`len` takes a string or a list, found {other}")),
            },
            ("lower", [a]) => Value::String(text(&eval(&a.value, env)?).to_lowercase()),
            ("upper", [a]) => Value::String(text(&eval(&a.value, env)?).to_uppercase()),
            ("contains", [a, b]) => {
                let hay = eval(&a.value, env)?;
                let needle = eval(&b.value, env)?;
                Value::Bool(match hay {
                    Value::Array(items) => items.contains(&needle),
                    other => text(&other).contains(&text(&needle)),
                })
            }
            ("trim", [a]) => Value::String(text(&eval(&a.value, env)?).trim().to_string()),
            // An attachment: read by the item's `attachments` (`attachment.rs`).
            (kind @ ("image" | "audio"), [a, pin @ ..]) if pin.len() <= 1 => {
                let mut o = serde_json::Map::new();
                o.insert("$attachment".into(), Value::String(kind.to_string()));
                o.insert("source".into(), eval(&a.value, env)?);
                // `image(row.url, row.sha256)`: a URL pinned by the hash of its bytes.
                if let [sha256] = pin {
                    o.insert("sha256".into(), eval(&sha256.value, env)?);
                }
                Value::Object(o)
            }
            ("replace", [a, from, to]) => {
                let from = text(&eval(&from.value, env)?);
                let to = text(&eval(&to.value, env)?);
                let a = text(&eval(&a.value, env)?);
                Value::String(if from.is_empty() {
                    a
                } else {
                    a.replace(&from, &to)
                })
            }
            ("join", [list, sep]) => {
                let sep = text(&eval(&sep.value, env)?);
                match eval(&list.value, env)? {
                    Value::Array(items) => Value::String(
                        items
                            .iter()
                            .filter(|v| !v.is_null())
                            .map(text)
                            .collect::<Vec<_>>()
                            .join(&sep),
                    ),
                    Value::Null => Value::Null,
                    other => return Err(format!("`join` takes a list, found {}", kind(&other))),
                }
            }
            ("format", [pattern, rest @ ..]) => {
                let pattern = text(&eval(&pattern.value, env)?);
                let values = rest
                    .iter()
                    .map(|a| eval(&a.value, env))
                    .collect::<Result<Vec<_>, _>>()?;
                Value::String(format_text(&pattern, &values)?)
            }
            (name, _) => {
                return Err(format!(
                    "`{name}(...)` cannot be evaluated here; expressions here take {}",
                    FUNCTIONS.join(", ")
                ));
            }
        },
        ExprKind::Unary { op, operand } => {
            let v = eval(operand, env)?;
            match op {
                UnaryOp::Not => Value::Bool(!truthy(&v)),
                UnaryOp::Neg => number(-as_f64(&v)?),
            }
        }
        ExprKind::Binary { op, lhs, rhs } => binary(*op, lhs, rhs, env)?,
        ExprKind::Index { base, index } => {
            let base = eval(base, env)?;
            let index = eval(index, env)?;
            match (&base, &index) {
                (Value::Array(a), Value::Number(n)) => n
                    .as_u64()
                    .and_then(|i| a.get(i as usize).cloned())
                    .unwrap_or(Value::Null),
                (Value::Object(m), key) => m.get(&text(key)).cloned().unwrap_or(Value::Null),
                _ => {
                    return Err(format!(
                        "cannot index {} with {}",
                        kind(&base),
                        kind(&index)
                    ));
                }
            }
        }
        ExprKind::Range { .. } => return Err("a range is not a value".into()),
    })
}

fn binary(op: BinaryOp, lhs: &Expr, rhs: &Expr, env: &dyn Env) -> Result<Value, String> {
    // `and` and `or` short-circuit.
    match op {
        BinaryOp::And => {
            return Ok(Value::Bool(
                truthy(&eval(lhs, env)?) && truthy(&eval(rhs, env)?),
            ));
        }
        BinaryOp::Or => {
            return Ok(Value::Bool(
                truthy(&eval(lhs, env)?) || truthy(&eval(rhs, env)?),
            ));
        }
        _ => {}
    }
    let a = eval(lhs, env)?;
    let b = eval(rhs, env)?;
    Ok(match op {
        BinaryOp::Eq => Value::Bool(equal(&a, &b)),
        BinaryOp::Ne => Value::Bool(!equal(&a, &b)),
        BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            let ord = match (&a, &b) {
                (Value::String(x), Value::String(y)) => x.cmp(y),
                _ => as_f64(&a)?
                    .partial_cmp(&as_f64(&b)?)
                    .ok_or("cannot compare NaN")?,
            };
            Value::Bool(match op {
                BinaryOp::Lt => ord.is_lt(),
                BinaryOp::Le => ord.is_le(),
                BinaryOp::Gt => ord.is_gt(),
                _ => ord.is_ge(),
            })
        }
        BinaryOp::In => match &b {
            Value::Array(items) => Value::Bool(items.iter().any(|x| equal(&a, x))),
            Value::String(s) => Value::Bool(s.contains(&text(&a))),
            Value::Object(m) => Value::Bool(m.contains_key(&text(&a))),
            other => {
                return Err(format!(
                    "`in` needs a list or a string, found {}",
                    kind(other)
                ));
            }
        },
        BinaryOp::Add => match (&a, &b) {
            (Value::String(x), y) => Value::String(format!("{x}{}", text(y))),
            _ => number(as_f64(&a)? + as_f64(&b)?),
        },
        BinaryOp::Sub => number(as_f64(&a)? - as_f64(&b)?),
        BinaryOp::Mul => number(as_f64(&a)? * as_f64(&b)?),
        BinaryOp::Div => number(as_f64(&a)? / as_f64(&b)?),
        BinaryOp::Pow => number(as_f64(&a)?.powf(as_f64(&b)?)),
        BinaryOp::And | BinaryOp::Or => unreachable!("handled above"),
        BinaryOp::Given => {
            return Err(
                "`|` conditions an aggregate, as in `rate(x | y)`; it is not a value".into(),
            );
        }
    })
}

/// Numbers compare by value (`1 == 1.0`); everything else structurally.
fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// A whole number stays an integer in JSON, so `3` is written `3`, not `3.0`.
pub(crate) fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::Number(Number::from(n as i64))
    } else {
        Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

fn as_f64(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| "not a number".to_string()),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("\"{s}\" is not a number")),
        other => Err(format!("expected a number, found {}", kind(other))),
    }
}

/// A value as text: strings as they are, everything else as JSON.
pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a record",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn format_fills_each_placeholder_in_order() {
        let values = [json!("Why?"), json!(3), json!(null)];
        assert_eq!(
            format_text("Q: {}\nA) {} {{x}} [{}]", &values).unwrap(),
            "Q: Why?\nA) 3 {x} []"
        );
        assert_eq!(placeholders("{} {{}} {}"), 2);
        assert_eq!(
            format_text("{} and {}", &[json!("a")]).unwrap_err(),
            "`format` has 2 `{}` but 1 value"
        );
        assert_eq!(
            format_text("{}", &[json!("a"), json!("b")]).unwrap_err(),
            "`format` has 1 `{}` but 2 values"
        );
    }
}
