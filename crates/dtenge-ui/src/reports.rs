//! Reports for download (SPEC §7 "Reports"): a [`Table`] of text and money
//! cells rendered as CSV (UTF-8 with a byte-order mark so spreadsheet
//! programs read Cyrillic; amounts as `1500.00`) or XLSX (amounts as
//! numbers with a two-decimal format). Headers in the page's language.

use rust_xlsxwriter::{Format, Workbook};

use crate::error::UiError;

/// One cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// Text.
    Text(String),
    /// Money in tiyn.
    Money(u64),
}

impl Cell {
    fn csv(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::Money(tiyn) => format!("{}.{:02}", tiyn / 100, tiyn % 100),
        }
    }
}

/// A report: a title, column headers, rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Title (sheet name, file name stem).
    pub title: String,
    /// Column headers.
    pub columns: Vec<String>,
    /// Rows, as many cells as columns.
    pub rows: Vec<Vec<Cell>>,
}

/// The table as CSV bytes.
pub fn to_csv(table: &Table) -> Result<Vec<u8>, UiError> {
    let mut out = Vec::from("\u{feff}".as_bytes());
    {
        let mut writer = csv::Writer::from_writer(&mut out);
        writer.write_record(&table.columns).map_err(|e| UiError::Report(e.to_string()))?;
        for row in &table.rows {
            writer.write_record(row.iter().map(Cell::csv)).map_err(|e| UiError::Report(e.to_string()))?;
        }
        writer.flush().map_err(|e| UiError::Report(e.to_string()))?;
    }
    Ok(out)
}

/// The table as an XLSX workbook.
pub fn to_xlsx(table: &Table) -> Result<Vec<u8>, UiError> {
    let err = |e: rust_xlsxwriter::XlsxError| UiError::Report(e.to_string());
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    let name: String = table.title.chars().filter(|c| !"[]:*?/\\".contains(*c)).take(31).collect();
    sheet.set_name(if name.is_empty() { "Report" } else { &name }).map_err(err)?;
    let bold = Format::new().set_bold();
    let money = Format::new().set_num_format("#,##0.00");
    for (col, header) in table.columns.iter().enumerate() {
        let col = u16::try_from(col).map_err(|_| UiError::Report("too many columns".into()))?;
        sheet.write_string_with_format(0, col, header, &bold).map_err(err)?;
        sheet.set_column_width(col, 18).map_err(err)?;
    }
    for (r, row) in table.rows.iter().enumerate() {
        let r = u32::try_from(r + 1).map_err(|_| UiError::Report("too many rows".into()))?;
        for (c, cell) in row.iter().enumerate() {
            let c = u16::try_from(c).map_err(|_| UiError::Report("too many columns".into()))?;
            match cell {
                Cell::Text(t) => sheet.write_string(r, c, t).map_err(err)?,
                // Exact for any amount below 2^53 tiyn; the display is rounded to tiyn anyway.
                #[allow(clippy::cast_precision_loss)]
                Cell::Money(tiyn) => sheet.write_number_with_format(r, c, *tiyn as f64 / 100.0, &money).map_err(err)?,
            };
        }
    }
    workbook.save_to_buffer().map_err(err)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn table() -> Table {
        Table {
            title: "Операции".into(),
            columns: vec!["Получатель".into(), "Сумма".into()],
            rows: vec![vec![Cell::Text("ТОО \"Дорожник\", Астана".into()), Cell::Money(150_005)]],
        }
    }

    #[test]
    fn csv_quotes_text_and_writes_amounts_with_a_point() {
        let bytes = to_csv(&table()).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with('\u{feff}'));
        assert_eq!(text.trim_start_matches('\u{feff}'), "Получатель,Сумма\n\"ТОО \"\"Дорожник\"\", Астана\",1500.05\n");
    }

    #[test]
    fn xlsx_is_a_zip_workbook() {
        let bytes = to_xlsx(&table()).unwrap();
        assert_eq!(&bytes[..2], b"PK");
    }
}
