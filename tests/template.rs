//! `template.yaml` as data: loaded with its short-form tags (`!Ref`, `!If`…)
//! turned into CloudFormation's long form (`{"Ref": …}`, `{"Fn::If": …}`),
//! every `Fn::ForEach` expanded as the `AWS::LanguageExtensions` transform
//! does before the SAM transform, and a small evaluator for the parts the
//! tests need: parameters (defaults or overrides), conditions, rules,
//! `Fn::If`, `Ref` and `AWS::NoValue`.
//!
//! serde_norway (maintained fork of serde_yaml 0.9) keeps a YAML tag as
//! `Value::Tagged`, so `!GetAtt Queue.Arn` arrives as tag + value instead of
//! failing or losing the tag as plain YAML loaders do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

/// The repository root (the `tests` package lives one level below it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `template.yaml` in long form, its `Fn::ForEach` loops expanded with every
/// parameter at its default.
pub fn load() -> Value {
    load_with(&[])
}

/// `template.yaml` in long form, its `Fn::ForEach` loops expanded with the
/// parameters at their defaults except `overrides` (as `Stack::with`).
pub fn load_with(overrides: &[(&str, &str)]) -> Value {
    let raw = load_unexpanded();
    Stack::with(&raw, overrides).expand_for_each(&raw)
}

/// `template.yaml` in long form, `Fn::ForEach` keys as written.
pub fn load_unexpanded() -> Value {
    let path = repo_root().join("template.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let yaml: serde_norway::Value =
        serde_norway::from_str(&text).unwrap_or_else(|e| panic!("parsing template.yaml: {e}"));
    long_form(yaml)
}

/// YAML to JSON, short-form intrinsic tags to their long form.
fn long_form(yaml: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n).expect("a YAML number is a JSON number"),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(long_form).collect()),
        Y::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Y::String(s) => s,
                        other => serde_norway::to_string(&other)
                            .expect("scalar key")
                            .trim()
                            .to_owned(),
                    };
                    (key, long_form(v))
                })
                .collect(),
        ),
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let value = long_form(tagged.value);
            match name {
                "Ref" => json!({ "Ref": value }),
                "Condition" => json!({ "Condition": value }),
                // `!GetAtt Resource.Attribute` is the one short form whose
                // scalar differs from the long form's list.
                "GetAtt" => match value {
                    Value::String(s) => {
                        let (resource, attribute) = s.split_once('.').unwrap_or((&s, ""));
                        json!({ "Fn::GetAtt": [resource, attribute] })
                    }
                    other => json!({ "Fn::GetAtt": other }),
                },
                other => json!({ format!("Fn::{other}"): value }),
            }
        }
    }
}

/// Parameter values: defaults of the template, with overrides.
pub struct Stack<'a> {
    pub template: &'a Value,
    parameters: BTreeMap<String, Value>,
}

impl<'a> Stack<'a> {
    /// Every parameter at its default.
    pub fn with_defaults(template: &'a Value) -> Stack<'a> {
        Stack::with(template, &[])
    }

    /// Defaults, except the given `(parameter, value)`; a CommaDelimitedList
    /// value is written comma-separated, as on the command line.
    pub fn with(template: &'a Value, overrides: &[(&str, &str)]) -> Stack<'a> {
        let declared = template["Parameters"]
            .as_object()
            .expect("template has Parameters");
        for (name, _) in overrides {
            assert!(declared.contains_key(*name), "no parameter {name}");
        }
        let parameters = declared
            .iter()
            .map(|(name, spec)| {
                let raw = overrides
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| Value::String((*v).to_owned()))
                    .or_else(|| spec.get("Default").cloned())
                    .unwrap_or_else(|| panic!("parameter {name} has no default"));
                let text = match raw {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                let value = if spec["Type"] == "CommaDelimitedList" {
                    Value::Array(
                        text.split(',')
                            .map(|s| Value::String(s.trim().to_owned()))
                            .collect(),
                    )
                } else {
                    Value::String(text)
                };
                (name.clone(), value)
            })
            .collect();
        Stack {
            template,
            parameters,
        }
    }

    /// The template with every `Fn::ForEach::<loop>` key replaced by what it
    /// generates, as the `AWS::LanguageExtensions` transform does
    /// (<https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-foreach.html>):
    /// `[identifier, collection, {output key: output value}]`, the collection
    /// a list or a `Ref` to a CommaDelimitedList (an empty one is `[""]`, one
    /// empty item); in the output, `${identifier}` becomes the item and
    /// `&{identifier}` the item without its non-alphanumeric characters, in
    /// keys and in every string, and `{"Ref": identifier}` the item. A key
    /// generated twice (or generated and already there) fails, as the
    /// transform refuses it. Loops may nest.
    pub fn expand_for_each(&self, value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut out = Map::new();
                for (key, item) in map {
                    if key.starts_with("Fn::ForEach::") {
                        for (k, v) in self.for_each(key, item) {
                            assert!(
                                !map.contains_key(&k) && !out.contains_key(&k),
                                "{key}: {k} generated twice (logical ids must be unique)"
                            );
                            out.insert(k, v);
                        }
                    } else {
                        assert!(
                            !out.contains_key(key),
                            "{key} generated by a loop and also written out"
                        );
                        out.insert(key.clone(), self.expand_for_each(item));
                    }
                }
                Value::Object(out)
            }
            Value::Array(items) => {
                Value::Array(items.iter().map(|i| self.expand_for_each(i)).collect())
            }
            other => other.clone(),
        }
    }

    /// What one `Fn::ForEach` generates: (key, value) pairs, nested loops
    /// expanded.
    fn for_each(&self, key: &str, args: &Value) -> Vec<(String, Value)> {
        let [identifier, collection, output] = match array(args).as_slice() {
            [a, b, c] => [a, b, c],
            other => panic!("{key}: [identifier, collection, output] expected, found {other:?}"),
        };
        let identifier = identifier.as_str().expect("Fn::ForEach identifier");
        let items = match self.resolve(collection) {
            Some(Value::Array(items)) => items,
            other => panic!("{key}: the collection must be a list, found {other:?}"),
        };
        let mut out = Vec::new();
        for item in items {
            let item = item
                .as_str()
                .unwrap_or_else(|| panic!("{key}: collection item {item} is no string"));
            let substituted = substitute(output, identifier, item);
            let expanded = self.expand_for_each(&substituted);
            for (k, v) in expanded
                .as_object()
                .expect("Fn::ForEach output is an object")
            {
                assert!(
                    !out.iter().any(|(o, _)| o == k),
                    "{key}: {k} generated twice (logical ids must be unique)"
                );
                out.push((k.clone(), v.clone()));
            }
        }
        out
    }

    /// Whether the named condition holds.
    pub fn condition(&self, name: &str) -> bool {
        let definition = self.template["Conditions"]
            .get(name)
            .unwrap_or_else(|| panic!("no condition {name}"));
        self.holds(definition)
    }

    /// Whether a condition expression (of `Conditions`, or a rule's
    /// `RuleCondition` / `Assert`) holds.
    pub fn holds(&self, expression: &Value) -> bool {
        self.truth(expression)
    }

    fn truth(&self, value: &Value) -> bool {
        let (function, args) = single_key(value)
            .unwrap_or_else(|| panic!("condition expression expected, found {value}"));
        match function {
            "Fn::Equals" => {
                let [a, b] = two(args);
                self.resolve(a) == self.resolve(b)
            }
            "Fn::Not" => !self.truth(&args[0]),
            "Fn::And" => array(args).iter().all(|a| self.truth(a)),
            "Fn::Or" => array(args).iter().any(|a| self.truth(a)),
            "Condition" => self.condition(args.as_str().expect("condition name")),
            // Rule functions (Rules section only): a list and a string.
            "Fn::Contains" | "Fn::EachMemberEquals" => {
                let [list, string] = two(args);
                let list = self.resolve(list).unwrap_or(Value::Array(Vec::new()));
                let string = self.resolve(string);
                let mut members = array(&list).iter().map(|m| Some(m.clone()));
                if function == "Fn::Contains" {
                    members.any(|m| m == string)
                } else {
                    members.all(|m| m == string)
                }
            }
            other => panic!("unsupported condition function {other}"),
        }
    }

    /// The value with every `Fn::If`, `Ref` to a parameter and `Fn::Join`
    /// evaluated; None for `AWS::NoValue`. A `Ref`/`Fn::GetAtt` to a resource
    /// stays as it is (its value is only known to CloudFormation).
    pub fn resolve(&self, value: &Value) -> Option<Value> {
        if let Some((function, args)) = single_key(value) {
            match function {
                "Fn::If" => {
                    let items = array(args);
                    let name = items[0].as_str().expect("Fn::If condition name");
                    let branch = if self.condition(name) {
                        &items[1]
                    } else {
                        &items[2]
                    };
                    return self.resolve(branch);
                }
                "Ref" => {
                    let name = args.as_str().expect("Ref name");
                    if name == "AWS::NoValue" {
                        return None;
                    }
                    if let Some(v) = self.parameters.get(name) {
                        return Some(v.clone());
                    }
                    return Some(value.clone());
                }
                "Fn::Join" => {
                    let [separator, items] = two(args);
                    let separator = separator.as_str().expect("Fn::Join separator");
                    let items = self.resolve(items).unwrap_or(Value::Array(Vec::new()));
                    let parts: Vec<String> = array(&items)
                        .iter()
                        .map(|i| match self.resolve(i) {
                            Some(Value::String(s)) => s,
                            // A resource's name, known once deployed.
                            Some(Value::Object(o)) if o.len() == 1 && o["Ref"].is_string() => {
                                format!("placeholder-{}", o["Ref"].as_str().unwrap_or_default())
                            }
                            other => panic!("Fn::Join of a non-string {other:?}"),
                        })
                        .collect();
                    return Some(Value::String(parts.join(separator)));
                }
                _ => {}
            }
        }
        Some(match value {
            Value::Array(items) => {
                Value::Array(items.iter().filter_map(|i| self.resolve(i)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .filter_map(|(k, v)| self.resolve(v).map(|v| (k.clone(), v)))
                    .collect::<Map<_, _>>(),
            ),
            other => other.clone(),
        })
    }
}

/// A `Fn::ForEach` output with `identifier` replaced by `item`: `${identifier}`
/// as it is, `&{identifier}` without non-alphanumeric characters, in keys and
/// strings alike, and `{"Ref": identifier}` by the item.
fn substitute(value: &Value, identifier: &str, item: &str) -> Value {
    let text = |s: &str| {
        let alphanumeric: String = item.chars().filter(char::is_ascii_alphanumeric).collect();
        s.replace(&format!("${{{identifier}}}"), item)
            .replace(&format!("&{{{identifier}}}"), &alphanumeric)
    };
    match value {
        Value::String(s) => Value::String(text(s)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| substitute(i, identifier, item))
                .collect(),
        ),
        Value::Object(map) => {
            if single_key(value) == Some(("Ref", &json!(identifier))) {
                return json!(item);
            }
            Value::Object(
                map.iter()
                    .map(|(k, v)| (text(k), substitute(v, identifier, item)))
                    .collect(),
            )
        }
        other => other.clone(),
    }
}

/// `{"Fn::X": args}` or `{"Ref": name}`: the function and its arguments.
pub fn single_key(value: &Value) -> Option<(&str, &Value)> {
    let map = value.as_object()?;
    if map.len() != 1 {
        return None;
    }
    let (k, v) = map.iter().next()?;
    (k == "Ref" || k == "Condition" || k.starts_with("Fn::")).then_some((k.as_str(), v))
}

fn array(value: &Value) -> &Vec<Value> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("list expected, found {value}"))
}

fn two(value: &Value) -> [&Value; 2] {
    match array(value).as_slice() {
        [a, b] => [a, b],
        other => panic!("two arguments expected, found {other:?}"),
    }
}

/// The logical id a `Ref` or `Fn::GetAtt` points to.
pub fn referenced(value: &Value) -> Option<&str> {
    match single_key(value)? {
        ("Ref", name) => name.as_str(),
        ("Fn::GetAtt", args) => args.get(0)?.as_str(),
        _ => None,
    }
}

/// One `AWS::Serverless::Function`, with Globals merged as SAM merges them.
pub struct FunctionResource {
    pub logical_id: String,
    /// `Metadata.BuildProperties.Binary`: the folder under `functions/`.
    pub binary: String,
    pub properties: Value,
    pub metadata: Value,
}

/// Every SAM function of the template.
pub fn functions(template: &Value) -> Vec<FunctionResource> {
    let globals = template["Globals"]["Function"].clone();
    template["Resources"]
        .as_object()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(id, r)| FunctionResource {
            logical_id: id.clone(),
            binary: r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_else(|| panic!("{id}: Metadata.BuildProperties.Binary missing"))
                .to_owned(),
            properties: merge(&globals, &r["Properties"]),
            metadata: r["Metadata"].clone(),
        })
        .collect()
}

/// SAM's Globals merge: maps merge key by key, the resource's value wins otherwise.
fn merge(global: &Value, local: &Value) -> Value {
    match (global, local) {
        (Value::Object(g), Value::Object(l))
            if single_key(global).is_none() && single_key(local).is_none() =>
        {
            let mut out = g.clone();
            for (k, v) in l {
                let merged = match g.get(k) {
                    Some(gv) => merge(gv, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (g, Value::Null) => g.clone(),
        (_, l) => l.clone(),
    }
}

impl FunctionResource {
    /// The function's events of `kind` (`EventBridgeRule`, `Schedule`):
    /// (name, properties) each.
    pub fn events_of(&self, kind: &str) -> Vec<(&str, &Value)> {
        // deploy-gate has none: CodeDeploy invokes it directly.
        let Some(events) = self.properties["Events"].as_object() else {
            return Vec::new();
        };
        events
            .iter()
            .filter(|(_, e)| e["Type"] == kind)
            .map(|(name, e)| (name.as_str(), &e["Properties"]))
            .collect()
    }

    /// The function's EventBridge rule events (at least one for a function
    /// `route::RULES` routes to): (name, properties).
    pub fn eventbridge_rules(&self) -> Vec<(&str, &Value)> {
        let rules = self.events_of("EventBridgeRule");
        let routed = signalbox::route::RULES
            .iter()
            .any(|r| r.function.name() == self.binary);
        assert!(
            !rules.is_empty() || !routed,
            "{}: an EventBridgeRule event expected",
            self.logical_id
        );
        rules
    }
}

/// The value under every combination of `Fn::If` branches (NoValue dropped).
pub fn every_variant(value: &Value) -> Vec<Value> {
    if let Some(("Fn::If", args)) = single_key(value) {
        let args = args.as_array().expect("Fn::If args");
        return args[1..]
            .iter()
            .flat_map(every_variant)
            .filter(|v| single_key(v) != Some(("Ref", &json!("AWS::NoValue"))))
            .collect();
    }
    match value {
        Value::Object(map) => {
            let mut variants = vec![Map::new()];
            for (k, v) in map {
                let options = every_variant(v);
                variants = variants
                    .into_iter()
                    .flat_map(|partial| {
                        options.iter().map(move |o| {
                            let mut p = partial.clone();
                            p.insert(k.clone(), o.clone());
                            p
                        })
                    })
                    .collect();
            }
            variants.into_iter().map(Value::Object).collect()
        }
        Value::Array(items) => {
            let mut variants = vec![Vec::new()];
            for item in items {
                let options = every_variant(item);
                variants = variants
                    .into_iter()
                    .flat_map(|partial| {
                        options.iter().map(move |o| {
                            let mut p = partial.clone();
                            p.push(o.clone());
                            p
                        })
                    })
                    .collect();
            }
            variants.into_iter().map(Value::Array).collect()
        }
        other => vec![other.clone()],
    }
}
