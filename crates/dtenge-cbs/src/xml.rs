//! A small, bounded view of an XML document for reading ISO 20022 messages.
//!
//! The document is flattened into its elements, each with its path below the
//! root (`FICdtTrf/GrpHdr/MsgId`), its attributes and its text. A field is
//! then read by path, and "missing", "empty" and "given twice" each become a
//! precise error. Limits: [`MAX_FILE_BYTES`](crate::MAX_FILE_BYTES), nesting
//! depth [`MAX_DEPTH`], [`MAX_ELEMENTS`] elements. Only the five predefined
//! entities and character references are understood; a `DOCTYPE` is refused,
//! so no entity can expand.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, XmlVersion};

use dtenge_types::Amount;

use crate::CbsError;
use crate::model::{malformed, shorten};

/// Deepest element nesting read.
pub const MAX_DEPTH: usize = 32;
/// Most elements in one message.
pub const MAX_ELEMENTS: usize = 4096;
/// Largest whole-tenge part of an amount in digits (u64 tiyn holds 18 digits).
const MAX_WHOLE_DIGITS: usize = 17;

pub(crate) struct Element {
    pub path: String,
    pub attributes: Vec<(String, String)>,
    pub text: String,
}

impl Element {
    /// The trimmed text, refusing an empty element.
    pub fn text(&self) -> Result<&str, CbsError> {
        let text = self.text.trim();
        if text.is_empty() { Err(malformed(format!("element {} is empty", self.path))) } else { Ok(text) }
    }

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

pub(crate) struct Document {
    pub root_name: String,
    pub root_namespace: Option<String>,
    /// Every element below the root, in document order.
    pub elements: Vec<Element>,
}

impl Document {
    /// Parses `xml`, checking the root is `<Document>` in `namespace`.
    pub fn parse(xml: &[u8], namespace: &str, message: &str) -> Result<Document, CbsError> {
        if xml.len() > crate::MAX_FILE_BYTES {
            return Err(malformed(format!(
                "the file is {} bytes, more than the {}-byte limit",
                xml.len(),
                crate::MAX_FILE_BYTES
            )));
        }
        let xml = xml.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(xml);
        let text = std::str::from_utf8(xml)
            .map_err(|e| malformed(format!("not UTF-8 text (invalid byte at offset {})", e.valid_up_to())))?;
        let document = read(text)?;
        if document.root_name != "Document" {
            return Err(malformed(format!(
                "wrong message type: the root element is <{}>, expected <Document> of {message}",
                shorten(&document.root_name)
            )));
        }
        match document.root_namespace.as_deref() {
            Some(found) if found == namespace => Ok(document),
            Some(found) => Err(malformed(format!(
                "wrong message type: namespace {:?}, expected {namespace:?} ({message})",
                shorten(found)
            ))),
            None => Err(malformed(format!("the <Document> has no namespace, expected {namespace:?} ({message})"))),
        }
    }

    /// The one element at `path`: missing or repeated is an error.
    pub fn one(&self, path: &str) -> Result<&Element, CbsError> {
        self.optional(path)?.ok_or_else(|| malformed(format!("missing element {path}")))
    }

    /// The element at `path` if present; repeated is an error.
    pub fn optional(&self, path: &str) -> Result<Option<&Element>, CbsError> {
        match self.all(path).as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            many => Err(malformed(format!("element {path} appears {} times, expected once", many.len()))),
        }
    }

    /// Every element at `path`, in document order.
    pub fn all(&self, path: &str) -> Vec<&Element> {
        self.elements.iter().filter(|e| e.path == path).collect()
    }

    /// The trimmed, non-empty text of the one element at `path`.
    pub fn text(&self, path: &str) -> Result<&str, CbsError> {
        self.one(path)?.text()
    }

    /// The amount at `path`: `Ccy="KZT"` and a plain decimal of at most two decimals.
    pub fn kzt_amount(&self, path: &str) -> Result<Amount, CbsError> {
        let element = self.one(path)?;
        match element.attribute("Ccy") {
            Some("KZT") => {}
            Some(other) => {
                return Err(malformed(format!("{path} is in currency {:?}, expected KZT", shorten(other))));
            }
            None => return Err(malformed(format!("{path} has no Ccy attribute, expected Ccy=\"KZT\""))),
        }
        parse_plain_amount(element.text()?).map_err(|why| malformed(format!("{path}: {why}")))
    }
}

fn xml_error(reader_position: u64, error: impl std::fmt::Display) -> CbsError {
    malformed(format!("not well-formed XML at byte {reader_position}: {error}"))
}

fn read(text: &str) -> Result<Document, CbsError> {
    let mut reader = NsReader::from_str(text);
    let mut builder = Builder::default();
    loop {
        let (namespace, event) = match reader.read_resolved_event() {
            Ok((resolved, event)) => (namespace_of(&resolved), event),
            Err(e) => return Err(xml_error(reader.error_position(), e)),
        };
        let position = reader.buffer_position();
        match event {
            Event::Decl(declaration) => {
                if let Some(encoding) = declaration.encoding() {
                    let encoding = encoding.map_err(|e| xml_error(position, e))?;
                    if !encoding.eq_ignore_ascii_case("utf-8") {
                        return Err(malformed(format!(
                            "encoding {:?} declared, only UTF-8 is accepted",
                            shorten(&encoding)
                        )));
                    }
                }
            }
            Event::DocType(_) => return Err(malformed("a DOCTYPE is not accepted in an ISO 20022 message")),
            Event::PI(_) | Event::Comment(_) => {}
            Event::Start(start) => builder.open(&start, namespace, position)?,
            Event::Empty(start) => {
                builder.open(&start, namespace, position)?;
                builder.close();
            }
            Event::End(_) => builder.close(),
            Event::Text(content) => builder.text(&content.xml10_content(), position)?,
            Event::CData(content) => builder.text(&content.xml10_content(), position)?,
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(ch)) => ch.to_string(),
                    Ok(None) => resolve_predefined_entity(&reference).map(str::to_owned).ok_or_else(|| {
                        malformed(format!(
                            "unknown entity &{};, only &lt; &gt; &amp; &apos; &quot; and character references are accepted",
                            shorten(&reference)
                        ))
                    })?,
                    Err(e) => return Err(xml_error(position, e)),
                };
                builder.text(&resolved, position)?;
            }
            Event::Eof => return builder.finish(),
        }
    }
}

fn namespace_of(resolved: &ResolveResult<'_>) -> Option<String> {
    match resolved {
        ResolveResult::Bound(namespace) => Some(namespace.into_inner().to_owned()),
        _ => None,
    }
}

/// Collects elements as the reader reports them.
#[derive(Default)]
struct Builder {
    /// The root's local name and namespace, once seen.
    root: Option<(String, Option<String>)>,
    root_closed: bool,
    /// Local names of the open elements, the root first.
    stack: Vec<String>,
    /// Index into `elements` of each open element below the root.
    open: Vec<usize>,
    elements: Vec<Element>,
}

impl Builder {
    fn open(&mut self, start: &BytesStart<'_>, namespace: Option<String>, position: u64) -> Result<(), CbsError> {
        let name = start.local_name().into_inner().to_owned();
        if self.root_closed {
            return Err(malformed(format!("a second root element <{}> after </Document>", shorten(&name))));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(malformed(format!("elements nested deeper than {MAX_DEPTH} levels")));
        }
        let mut attributes = Vec::new();
        for attribute in start.attributes() {
            let attribute = attribute.map_err(|e| xml_error(position, e))?;
            if attribute.key.as_namespace_binding().is_some() {
                continue;
            }
            let value = attribute.normalized_value(XmlVersion::Implicit1_0).map_err(|e| xml_error(position, e))?;
            attributes.push((attribute.key.local_name().into_inner().to_owned(), value.into_owned()));
        }
        if self.root.is_none() {
            self.root = Some((name.clone(), namespace));
        } else {
            if self.elements.len() >= MAX_ELEMENTS {
                return Err(malformed(format!("more than {MAX_ELEMENTS} elements")));
            }
            let mut path = self.stack.get(1..).map(|below_root| below_root.join("/")).unwrap_or_default();
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(&name);
            self.open.push(self.elements.len());
            self.elements.push(Element { path, attributes, text: String::new() });
        }
        self.stack.push(name);
        Ok(())
    }

    fn close(&mut self) {
        if self.stack.len() > 1 {
            self.open.pop();
        }
        self.stack.pop();
        if self.stack.is_empty() {
            self.root_closed = true;
        }
    }

    fn text(&mut self, text: &str, position: u64) -> Result<(), CbsError> {
        if self.stack.is_empty() {
            if text.trim().is_empty() {
                return Ok(());
            }
            if self.root.is_none() {
                return Err(malformed(format!(
                    "not an XML document: it starts with the text {:?}, not an element",
                    shorten(text.trim())
                )));
            }
            return Err(malformed(format!("text outside the root element at byte {position}")));
        }
        if let Some(element) = self.open.last().and_then(|&index| self.elements.get_mut(index)) {
            element.text.push_str(text);
        }
        Ok(())
    }

    fn finish(self) -> Result<Document, CbsError> {
        if let Some(unclosed) = self.stack.last() {
            return Err(malformed(format!("the file ends inside <{}>", shorten(unclosed))));
        }
        let (root_name, root_namespace) =
            self.root.ok_or_else(|| malformed("no XML element found (an empty file, or not XML)"))?;
        Ok(Document { root_name, root_namespace, elements: self.elements })
    }
}

/// Escapes text for an element or a double-quoted attribute.
pub(crate) use quick_xml::escape::escape as esc;

/// Strict ISO amount for tiyn: `4000`, `4000.5`, `4000.00`; no sign, no
/// exponent, no grouping, at most two decimals, more than zero.
pub fn parse_plain_amount(text: &str) -> Result<Amount, String> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (text, ""),
    };
    if text.starts_with('-') {
        return Err(format!("{:?} is negative", shorten(text)));
    }
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || (text.contains('.') && fraction.is_empty()) {
        return Err(format!("{:?} is not a plain decimal amount such as 4000.00", shorten(text)));
    }
    if fraction.len() > 2 {
        return Err(format!(
            "{:?} has {} decimals; tenge amounts have at most 2 (tiyn)",
            shorten(text),
            fraction.len()
        ));
    }
    if whole.len() > MAX_WHOLE_DIGITS {
        return Err(format!("{:?} is too large", shorten(text)));
    }
    let whole_tiyn = whole.parse::<u64>().ok().and_then(|tenge| tenge.checked_mul(100));
    let fraction_tiyn = format!("{fraction:0<2}").parse::<u64>().ok();
    let tiyn = match (whole_tiyn, fraction_tiyn) {
        (Some(w), Some(f)) => w.checked_add(f),
        _ => None,
    };
    match tiyn {
        Some(0) => Err("the amount is zero".to_string()),
        Some(tiyn) => Ok(Amount::from_tiyn(tiyn)),
        None => Err(format!("{:?} is too large", shorten(text))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_amounts_parse_strictly() {
        assert_eq!(parse_plain_amount("4000.00"), Ok(Amount::from_tiyn(400_000)));
        assert_eq!(parse_plain_amount("4000.5"), Ok(Amount::from_tiyn(400_050)));
        assert_eq!(parse_plain_amount("4000"), Ok(Amount::from_tiyn(400_000)));
        assert_eq!(parse_plain_amount("0.01"), Ok(Amount::from_tiyn(1)));
        assert_eq!(parse_plain_amount("99999999999999999.99"), Ok(Amount::from_tiyn(9_999_999_999_999_999_999)));
        for (text, why) in [
            ("-5.00", "negative"),
            ("4000.001", "3 decimals"),
            ("4 000,00", "plain decimal"),
            ("4000.", "plain decimal"),
            (".5", "plain decimal"),
            ("+5", "plain decimal"),
            ("1e5", "plain decimal"),
            ("0.00", "zero"),
            ("999999999999999999", "too large"),
        ] {
            let err = parse_plain_amount(text).expect_err(text);
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn reads_paths_text_and_entities() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
            <p:Document xmlns:p="urn:x"><p:A><p:B Ccy="KZT">1&amp;2&#x41;<![CDATA[<c>]]></p:B><p:B/></p:A></p:Document>"#;
        let document = Document::parse(xml, "urn:x", "test").expect("parses");
        assert_eq!(document.root_name, "Document");
        assert_eq!(document.all("A/B").len(), 2);
        assert!(document.one("A/B").is_err());
        let first = document.all("A/B")[0];
        assert_eq!(first.text, "1&2A<c>");
        assert_eq!(first.attribute("Ccy"), Some("KZT"));
    }

    #[test]
    fn refuses_doctype_entities_depth_and_trailing_roots() {
        let deep = format!("<Document xmlns=\"urn:x\">{}{}</Document>", "<a>".repeat(40), "</a>".repeat(40));
        for (xml, why) in [
            (r#"<!DOCTYPE x [<!ENTITY e "boom">]><Document xmlns="urn:x">&e;</Document>"#, "DOCTYPE"),
            (r#"<Document xmlns="urn:x">&e;</Document>"#, "unknown entity"),
            (r#"<Document xmlns="urn:x"></Document><Document/>"#, "second root"),
            (r#"<Document xmlns="urn:x"><a>"#, "ends inside"),
            (r#"<Document xmlns="urn:y"/>"#, "wrong message type"),
            (r#"<Document/>"#, "no namespace"),
            ("", "no XML element"),
            (deep.as_str(), "nested deeper"),
        ] {
            let err = Document::parse(xml.as_bytes(), "urn:x", "test").err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(why), "{xml}: {err:?}");
        }
    }
}
