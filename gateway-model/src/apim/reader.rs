//! Walking a policy document: attributes and children checked against
//! what an element takes, named values substituted, and every problem
//! reported once with its line and column.

use std::sync::Arc;

use edgegw_policy_expr::{Expression, Ty, is_expression};
use roxmltree::{Document, Node};

use crate::{catalog::NamedValues, policy::condition::Condition};

pub(super) struct Reader<'d, 'p> {
    doc: &'d Document<'d>,
    at: &'d str,
    named: &'d NamedValues,
    problems: &'p mut Vec<String>,
}

impl<'d, 'p> Reader<'d, 'p> {
    pub fn new(
        doc: &'d Document<'d>,
        at: &'d str,
        named: &'d NamedValues,
        problems: &'p mut Vec<String>,
    ) -> Self {
        Reader {
            doc,
            at,
            named,
            problems,
        }
    }

    /// The scope's name for messages (`api "orders"`).
    pub fn at(&self) -> &'d str {
        self.at
    }

    /// Named values and fragments the document may refer to.
    pub fn named(&self) -> &'d NamedValues {
        self.named
    }

    /// Where problems go: a fragment's document reports into the same list.
    pub fn problems(&mut self) -> &mut Vec<String> {
        self.problems
    }

    pub fn problem_count(&self) -> usize {
        self.problems.len()
    }

    /// Line and column of a byte offset of the document.
    pub fn position(&self, offset: usize) -> (u32, u32) {
        let pos = self.doc.text_pos_at(offset);
        (pos.row, pos.col)
    }

    fn push(&mut self, offset: usize, what: String, message: &str) {
        let (line, column) = self.position(offset);
        self.problems.push(format!(
            "{}: policy XML line {line}, column {column}: {what}: {message}",
            self.at
        ));
    }

    /// A problem of an element.
    pub fn problem(&mut self, node: Node, message: String) {
        self.push(
            node.range().start,
            format!("<{}>", node.tag_name().name()),
            &message,
        );
    }

    /// A problem of an element's attribute.
    pub fn attr_problem(&mut self, node: Node, attr: &str, message: String) {
        let offset = node
            .attributes()
            .find(|a| a.name() == attr)
            .map_or(node.range().start, |a| a.range().start);
        self.push(
            offset,
            format!("<{}> attribute \"{attr}\"", node.tag_name().name()),
            &message,
        );
    }

    /// Reports every attribute of `node` not in `allowed`.
    pub fn attributes(&mut self, node: Node, allowed: &[&str]) {
        for a in node.attributes() {
            if !allowed.contains(&a.name()) {
                let fix = if allowed.is_empty() {
                    "remove it; this element takes no attributes".to_string()
                } else {
                    format!("remove it or use one of: {}", allowed.join(", "))
                };
                self.push(
                    a.range().start,
                    format!("<{}> attribute \"{}\"", node.tag_name().name(), a.name()),
                    &format!("unknown attribute; {fix}"),
                );
            }
        }
    }

    /// The child elements of `node`; with `allowed` not empty, others are
    /// reported. Text other than whitespace between them is reported.
    pub fn children<'a, 'i>(&mut self, node: Node<'a, 'i>, allowed: &[&str]) -> Vec<Node<'a, 'i>> {
        let mut out = Vec::new();
        for child in node.children() {
            if child.is_element() {
                let name = child.tag_name().name();
                if !allowed.is_empty() && !allowed.contains(&name) {
                    self.problem(
                        child,
                        format!(
                            "unknown element inside <{}>; use {}",
                            node.tag_name().name(),
                            allowed.join(", ")
                        ),
                    );
                    continue;
                }
                out.push(child);
            } else if child.is_text() && !child.text().unwrap_or_default().trim().is_empty() {
                self.push(
                    child.range().start,
                    format!("text inside <{}>", node.tag_name().name()),
                    "unexpected text; only elements belong here",
                );
            }
        }
        out
    }

    /// Reports any child of an element that takes none.
    pub fn no_children(&mut self, node: Node) {
        for child in node.children() {
            if child.is_element() {
                self.problem(
                    child,
                    format!(
                        "<{}> takes no child elements; remove it",
                        node.tag_name().name()
                    ),
                );
            } else if child.is_text() && !child.text().unwrap_or_default().trim().is_empty() {
                self.push(
                    child.range().start,
                    format!("text inside <{}>", node.tag_name().name()),
                    "this element takes no text; remove it",
                );
            }
        }
    }

    /// An attribute's value with named values substituted; `None` when
    /// absent or when it has a problem (reported).
    pub fn attr(&mut self, node: Node, name: &str) -> Option<String> {
        let value = node.attribute(name)?;
        self.substitute(value)
            .map_err(|e| self.attr_problem(node, name, e))
            .ok()
    }

    /// A text attribute where an expression is not (yet) accepted.
    pub fn literal(&mut self, node: Node, name: &str) -> Option<String> {
        let value = self.attr(node, name)?;
        if is_expression(&value) {
            self.attr_problem(
                node,
                name,
                "policy expressions are not supported in this attribute yet; write a literal value"
                    .into(),
            );
            return None;
        }
        Some(value)
    }

    /// The element's text with named values substituted ("" when empty).
    pub fn text(&mut self, node: Node) -> Option<String> {
        for child in node.children().filter(|c| c.is_element()) {
            self.problem(
                child,
                format!(
                    "<{}> holds text only; remove this element",
                    node.tag_name().name()
                ),
            );
        }
        let text: String = node
            .children()
            .filter(|c| c.is_text())
            .filter_map(|c| c.text())
            .collect();
        self.substitute(text.trim())
            .map_err(|e| self.problem(node, e))
            .ok()
    }

    /// A Liquid template's text: the element's content as written (child
    /// elements included, e.g. a SOAP envelope), with the named values
    /// that exist substituted; other `{{...}}` are the template's own.
    pub fn template_text(&self, node: Node) -> String {
        let raw = if node.children().any(|c| c.is_element()) {
            let first = node.first_child().map_or(0, |c| c.range().start);
            let last = node.last_child().map_or(first, |c| c.range().end);
            self.doc.input_text()[first..last].to_string()
        } else {
            node.children()
                .filter(|c| c.is_text())
                .filter_map(|c| c.text())
                .collect()
        };
        self.named.substitute_known(raw.trim())
    }

    fn substitute(&self, text: &str) -> Result<String, String> {
        self.named.substitute(text)
    }

    /// An attribute that is a policy expression, parsed where it stands.
    pub fn expression(&mut self, node: Node, name: &str) -> Option<Arc<Expression>> {
        let attr = node.attributes().find(|a| a.name() == name)?;
        let value = self.attr(node, name)?;
        let (line, column) = self.position(attr.range_value().start);
        match Expression::parse_at(&value, line, column) {
            Ok(e) => Some(Arc::new(e)),
            Err(e) => {
                self.attr_problem(node, name, e.to_string());
                None
            }
        }
    }

    /// The `condition` of a `<when>`: a boolean expression.
    pub fn condition(&mut self, node: Node) -> Option<Condition> {
        let Some(text) = node.attribute("condition") else {
            self.problem(
                node,
                "needs condition=\"@(...)\", e.g. condition=\"@(context.Request.Method == &quot;GET&quot;)\"".into(),
            );
            return None;
        };
        if !is_expression(text) {
            self.attr_problem(
                node,
                "condition",
                format!("\"{text}\" is not a policy expression; write condition=\"@(...)\""),
            );
            return None;
        }
        let e = self.expression(node, "condition")?;
        if *e.ty() != Ty::Bool {
            self.attr_problem(
                node,
                "condition",
                format!(
                    "the expression is of type {}, a condition must be bool",
                    e.ty()
                ),
            );
            return None;
        }
        Some(Condition::Expression(e))
    }
}
