//! A judge's `when`: an item condition deciding whether the judge applies to an item. The
//! checker allows only item fields, literals, `==`, `!=`, `in`, `and`, `or` and `not`, so
//! the condition is evaluated here from the result record alone, before anything is sent to
//! a model. A field the item lacks (no persona, an axis it was not crossed with) equals no
//! value.

use assay_ir::{MetricExpr, ResultRecord};

/// Whether `when` holds for `record`; a condition that cannot be read (which the checker
/// prevents) holds, so the judge judges rather than silently skipping items.
pub fn applies(when: &MetricExpr, record: &ResultRecord) -> bool {
    truth(when, record).unwrap_or(true)
}

/// A value of a `when` expression: absent, a text, a list of texts or a truth.
#[derive(Debug, PartialEq)]
enum Value<'a> {
    Absent,
    Text(&'a str),
    List(Vec<Value<'a>>),
    Bool(bool),
}

fn truth(expr: &MetricExpr, record: &ResultRecord) -> Option<bool> {
    match value(expr, record)? {
        Value::Bool(b) => Some(b),
        _ => None,
    }
}

fn value<'a>(expr: &'a MetricExpr, record: &'a ResultRecord) -> Option<Value<'a>> {
    use MetricExpr as E;
    Some(match expr {
        E::Bool(b) => Value::Bool(*b),
        E::Text(s) => Value::Text(s),
        E::List(items) => Value::List(
            items
                .iter()
                .map(|i| value(i, record))
                .collect::<Option<_>>()?,
        ),
        E::Field(name) => field(name, record),
        E::Unary { op, operand } if op == "not" || op == "!" => {
            Value::Bool(!truth(operand, record)?)
        }
        E::Binary { op, lhs, rhs } => match op.as_str() {
            "and" => Value::Bool(truth(lhs, record)? && truth(rhs, record)?),
            "or" => Value::Bool(truth(lhs, record)? || truth(rhs, record)?),
            "==" => Value::Bool(same(&value(lhs, record)?, &value(rhs, record)?)),
            "!=" => Value::Bool(!same(&value(lhs, record)?, &value(rhs, record)?)),
            "in" => {
                let needle = value(lhs, record)?;
                match value(rhs, record)? {
                    Value::List(items) => Value::Bool(items.iter().any(|i| same(&needle, i))),
                    _ => return None,
                }
            }
            _ => return None,
        },
        _ => return None,
    })
}

fn same(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::Absent, _) | (_, Value::Absent) => false,
        (a, b) => a == b,
    }
}

fn field<'a>(name: &str, record: &'a ResultRecord) -> Value<'a> {
    let labels = &record.labels;
    let text = |s: Option<&'a String>| s.map_or(Value::Absent, |s| Value::Text(s));
    match name {
        "hazard" => text(labels.hazard.as_ref()),
        "sub_hazard" => text(labels.sub_hazard.as_ref()),
        "persona" => text(labels.persona.as_ref()),
        "locale" => text(labels.locale.as_ref()),
        "expect" => Value::Text(record.expect.as_str()),
        "template" | "dataset" => Value::Text(&record.source),
        "group" => text(record.group.as_ref()),
        "model" => Value::Text(&record.model),
        "gold" => text(record.gold.as_ref()),
        axis => text(labels.axes.get(axis)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_ir::{Expect, Labels, State};

    fn record(persona: Option<&str>, expect: Expect) -> ResultRecord {
        ResultRecord {
            item_id: "i".into(),
            model: "m".into(),
            state: State::Ok,
            key: String::new(),
            source: "mc".into(),
            labels: Labels {
                persona: persona.map(str::to_string),
                axes: [("task".to_string(), "choice".to_string())].into(),
                ..Labels::default()
            },
            expect,
            gold: None,
            group: None,
            source_id: None,
            messages: vec![],
            response: None,
            error: None,
            latency_ms: None,
            usage: None,
            cost: None,
            cached: false,
            turns: Vec::new(),
            final_turn: None,
            attachments: Vec::new(),
            stop: None,
            failed_turn: None,
            calls: None,
        }
    }

    fn bin(op: &str, lhs: MetricExpr, rhs: MetricExpr) -> MetricExpr {
        MetricExpr::Binary {
            op: op.into(),
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        }
    }

    fn field(name: &str) -> MetricExpr {
        MetricExpr::Field(name.into())
    }

    fn text(s: &str) -> MetricExpr {
        MetricExpr::Text(s.into())
    }

    #[test]
    fn conditions_over_item_fields() {
        let refuse = record(Some("malicious"), Expect::Refuse);
        let answer = record(None, Expect::Answer("A".into()));
        let is_refuse = bin("==", field("expect"), text("refuse"));
        assert!(applies(&is_refuse, &refuse));
        assert!(!applies(&is_refuse, &answer));
        let is_answer = bin("==", field("expect"), text("answer"));
        assert!(applies(&is_answer, &answer));
        // A missing persona equals nothing, and differs from everything.
        let malicious = bin("==", field("persona"), text("malicious"));
        assert!(applies(&malicious, &refuse));
        assert!(!applies(&malicious, &answer));
        assert!(applies(&bin("!=", field("persona"), text("x")), &answer));
        let task = bin("in", field("task"), MetricExpr::List(vec![text("choice")]));
        assert!(applies(&task, &answer));
        let both = bin(
            "and",
            task.clone(),
            MetricExpr::Unary {
                op: "not".into(),
                operand: Box::new(malicious),
            },
        );
        assert!(applies(&both, &answer));
        assert!(!applies(&both, &refuse));
    }
}
