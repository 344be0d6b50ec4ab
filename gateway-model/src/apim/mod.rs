//! APIM policy XML: a `<policies>` document (as API Management and its
//! APIOps extractor write them) translated into the same validated model
//! as the catalog's YAML policies.
//!
//! ```xml
//! <policies>
//!   <inbound>
//!     <base />
//!     <rate-limit-by-key calls="10" renewal-period="60"
//!                        counter-key="@(context.Subscription.Id)" />
//!   </inbound>
//!   <backend><forward-request timeout="30" /></backend>
//!   <outbound><set-header name="x-powered-by" exists-action="delete" /></outbound>
//!   <on-error />
//! </policies>
//! ```
//!
//! Each policy element is read into the settings its YAML form takes
//! (`elements.rs`: attribute and child names exactly as Microsoft
//! documents them) and validated by that policy's own parser, so there is
//! one validation path. Every problem is collected with its line and
//! column; any problem refuses the whole document.

mod elements;
mod lenient;
mod reader;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::{
    catalog::NamedValues,
    policy::{Placed, PolicySpec, ScopePolicies, Section, Step, choose::ChooseSpec},
};
pub use lenient::escape_expressions;
use reader::Reader;

/// Whether a scope's `policies` text is an XML document rather than YAML.
pub fn is_xml(text: &str) -> bool {
    text.trim_start().starts_with('<')
}

/// The XML document of `text`; `None` when malformed (reported).
fn document<'t>(
    text: &'t str,
    at: &str,
    problems: &mut Vec<String>,
) -> Option<roxmltree::Document<'t>> {
    match roxmltree::Document::parse(text) {
        Ok(doc) => Some(doc),
        Err(e) => {
            let pos = e.pos();
            // roxmltree ends its message with the position given first.
            let message = e.to_string();
            let message = message
                .strip_suffix(&format!(" at {}:{}", pos.row, pos.col))
                .unwrap_or(&message);
            problems.push(format!(
                "{at}: policy XML line {}, column {}: malformed XML: {message}; fix the document (attribute values in quotes, & written &amp;, < written &lt;)",
                pos.row, pos.col
            ));
            None
        }
    }
}

/// Parses a `<policies>` document of one scope; `at` names the scope for
/// messages (`api "orders"`), problems go to `problems`.
pub fn parse_scope(
    text: &str,
    at: &str,
    named: &NamedValues,
    problems: &mut Vec<String>,
) -> ScopePolicies {
    let mut out = ScopePolicies::default();
    let text = escape_expressions(text);
    let Some(doc) = document(&text, at, problems) else {
        return out;
    };
    let mut r = Reader::new(&doc, at, named, problems);
    let root = doc.root_element();
    if root.tag_name().name() != "policies" {
        r.problem(
            root,
            format!(
                "the document's root is <{}>; an APIM policy document is <policies> with <inbound>, <backend>, <outbound> and <on-error>",
                root.tag_name().name()
            ),
        );
        return out;
    }
    r.attributes(root, &[]);
    let place_at = at.replace('"', "");
    for section_node in r.children(root, &["inbound", "backend", "outbound", "on-error"]) {
        let name = section_node.tag_name().name();
        let Some(section) = Section::ALL.into_iter().find(|s| s.name() == name) else {
            continue;
        };
        if out.section(section).is_some() {
            r.problem(
                section_node,
                format!("<{name}> appears twice; merge them into one"),
            );
            continue;
        }
        r.attributes(section_node, &[]);
        let place = format!("{place_at}/{name}");
        let mut steps = Vec::new();
        let mut bases = 0;
        for (i, node) in r.children(section_node, &[]).into_iter().enumerate() {
            if node.tag_name().name() == "base" {
                r.attributes(node, &[]);
                r.no_children(node);
                bases += 1;
                if bases == 2 {
                    r.problem(node, "<base /> appears twice in a section; keep one".into());
                }
                steps.push(Step::Base);
                continue;
            }
            for p in policies(&mut r, node, section, format!("{place}/{i}")) {
                steps.push(Step::Policy(p));
            }
        }
        out.set_section(section, steps);
    }
    out
}

/// The policies of a `<fragment>` document included at `place` of
/// `section`; `at` names the fragment for messages.
pub(crate) fn parse_fragment(
    text: &str,
    at: &str,
    section: Section,
    place: &str,
    named: &NamedValues,
    problems: &mut Vec<String>,
) -> Vec<Arc<Placed>> {
    let text = escape_expressions(text);
    let Some(doc) = document(&text, at, problems) else {
        return Vec::new();
    };
    let mut r = Reader::new(&doc, at, named, problems);
    let root = doc.root_element();
    if root.tag_name().name() != "fragment" {
        r.problem(
            root,
            format!(
                "the fragment's root is <{}>; a policy fragment is <fragment> holding policies",
                root.tag_name().name()
            ),
        );
        return Vec::new();
    }
    r.attributes(root, &[]);
    let mut out = Vec::new();
    for (i, node) in r.children(root, &[]).into_iter().enumerate() {
        if node.tag_name().name() == "base" {
            r.problem(
                node,
                "<base /> cannot be in a fragment; put it in the scope that includes it".into(),
            );
            continue;
        }
        out.extend(policies(&mut r, node, section, format!("{place}/{i}")));
    }
    out
}

/// Checks that a fragment's document is well-formed with a `<fragment>`
/// root: its policies are checked where it is included.
pub(crate) fn check_fragment(text: &str, at: &str, problems: &mut Vec<String>) {
    let text = escape_expressions(text);
    let Some(doc) = document(&text, at, problems) else {
        return;
    };
    let root = doc.root_element();
    if root.tag_name().name() != "fragment" {
        let (line, column) = {
            let p = doc.text_pos_at(root.range().start);
            (p.row, p.col)
        };
        problems.push(format!(
            "{at}: policy XML line {line}, column {column}: <{}>: a policy fragment's root is <fragment>; put its policies inside <fragment>...</fragment>",
            root.tag_name().name()
        ));
    }
}

/// `<include-fragment fragment-id="name" />`: the fragment's policies.
fn include_fragment(
    r: &mut Reader,
    node: roxmltree::Node,
    section: Section,
    place: &str,
) -> Vec<Arc<Placed>> {
    r.attributes(node, &["fragment-id"]);
    r.no_children(node);
    let Some(id) = r.literal(node, "fragment-id") else {
        if node.attribute("fragment-id").is_none() {
            r.problem(
                node,
                "needs fragment-id=\"NAME\", the name of a policy fragment".into(),
            );
        }
        return Vec::new();
    };
    let (at, named) = (r.at(), r.named());
    match crate::policy::expand_fragment(&id, section, named, at, place, r.problems()) {
        Ok(list) => list,
        Err(m) => {
            r.attr_problem(node, "fragment-id", m);
            Vec::new()
        }
    }
}

/// The policies of one element: itself (a `choose` with its branches),
/// and for `<retry>` the `<forward-request>` it wraps, which sets the
/// backend section's timeout as a sibling would.
fn policies(
    r: &mut Reader,
    node: roxmltree::Node,
    section: Section,
    place: String,
) -> Vec<Arc<Placed>> {
    if node.tag_name().name() == "include-fragment" {
        return include_fragment(r, node, section, &place);
    }
    let mut out: Vec<_> = policy(r, node, section, place.clone())
        .into_iter()
        .collect();
    if node.tag_name().name() == "retry" {
        for (i, inner) in node.children().filter(|c| c.is_element()).enumerate() {
            out.extend(policy(r, inner, section, format!("{place}/retry/{i}")));
        }
    }
    out
}

/// One policy element (a `choose` with its branches included); `None`
/// when it has problems (reported).
fn policy(
    r: &mut Reader,
    node: roxmltree::Node,
    section: Section,
    place: String,
) -> Option<Arc<Placed>> {
    let name = node.tag_name().name();
    if name == "choose" {
        let choose = choose(r, node, section, &place)?;
        return Some(Arc::new(Placed {
            place,
            spec: PolicySpec::Choose(Box::new(choose)),
        }));
    }
    let (policy, args) = elements::translate(r, node)?;
    match PolicySpec::parse(policy, section, args) {
        Ok(spec) => Some(Arc::new(Placed { place, spec })),
        Err(m) => {
            let m = elements::xml_names(node.tag_name().name(), policy, &m);
            r.problem(node, m);
            None
        }
    }
}

/// `<choose>` with `<when condition="...">` branches and an optional
/// `<otherwise>`.
fn choose(
    r: &mut Reader,
    node: roxmltree::Node,
    section: Section,
    place: &str,
) -> Option<ChooseSpec> {
    let before = r.problem_count();
    r.attributes(node, &[]);
    if section == Section::Backend {
        r.problem(
            node,
            "<choose> in the backend section is not supported yet; decide in <inbound> (e.g. with set-backend-service) or in <outbound>".into(),
        );
        return None;
    }
    let mut spec = ChooseSpec {
        whens: Vec::new(),
        otherwise: Vec::new(),
    };
    let mut otherwise_seen = false;
    let mut n = 0;
    for branch in r.children(node, &["when", "otherwise"]) {
        if otherwise_seen {
            r.problem(
                branch,
                "<otherwise> must be the last branch of <choose>; move it after every <when>"
                    .into(),
            );
            continue;
        }
        let inner_place = if branch.tag_name().name() == "otherwise" {
            otherwise_seen = true;
            r.attributes(branch, &[]);
            format!("{place}/otherwise")
        } else {
            n += 1;
            r.attributes(branch, &["condition"]);
            format!("{place}/when {n}")
        };
        // A bad condition is reported; the branch's policies are still checked.
        let condition = if branch.tag_name().name() == "when" {
            r.condition(branch)
        } else {
            None
        };
        let mut list = Vec::new();
        for (i, inner) in r.children(branch, &[]).into_iter().enumerate() {
            if inner.tag_name().name() == "base" {
                r.problem(
                    inner,
                    "<base /> cannot be inside <choose>; put it in the section itself".into(),
                );
                continue;
            }
            list.extend(policies(r, inner, section, format!("{inner_place}/{i}")));
        }
        match (branch.tag_name().name(), condition) {
            ("otherwise", _) => spec.otherwise = list,
            (_, Some(c)) => spec.whens.push((c, list)),
            _ => {}
        }
    }
    if n == 0 && r.problem_count() == before {
        r.problem(
            node,
            "<choose> needs at least one <when condition=\"...\">".into(),
        );
    }
    (r.problem_count() == before).then_some(spec)
}
