/**
 * Real files for document and table ingest tests, made here: a PDF with a text layer per page (the file format
 * by hand: objects, a content stream per page, an xref table), a Word document (the OOXML parts zipped with
 * JSZip), and a Parquet table (hyparquet-writer).
 */
import JSZip from "jszip";
import { parquetWriteBuffer } from "hyparquet-writer";

/** A PDF whose pages hold these lines of text (Helvetica, WinAnsi: Latin-1 characters only). */
export function makePdf(pages: string[][], options: { title?: string } = {}): Uint8Array {
  const objects: string[] = [];
  const pageCount = pages.length;
  const fontRef = 3 + pageCount * 2;
  objects.push(`<< /Type /Catalog /Pages 2 0 R >>`);
  objects.push(
    `<< /Type /Pages /Kids [${pages.map((_, i) => `${3 + i * 2} 0 R`).join(" ")}] /Count ${pageCount} >>`,
  );
  for (const [i, lines] of pages.entries()) {
    objects.push(
      `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 ${fontRef} 0 R >> >> ` +
        `/Contents ${4 + i * 2} 0 R >>`,
    );
    const content = lines.map((line, k) =>
      `BT /F1 11 Tf 56 ${740 - k * 15} Td (${line.replace(/[()\\]/g, (c) => `\\${c}`)}) Tj ET`
    ).join("\n");
    objects.push(`<< /Length ${latin1(content).length} >>\nstream\n${content}\nendstream`);
  }
  objects.push(`<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>`);
  let info = "";
  if (options.title) {
    objects.push(`<< /Title (${options.title.replace(/[()\\]/g, (c) => `\\${c}`)}) >>`);
    info = ` /Info ${objects.length} 0 R`;
  }
  let out = "%PDF-1.4\n";
  const offsets: number[] = [];
  for (const [i, object] of objects.entries()) {
    offsets.push(latin1(out).length);
    out += `${i + 1} 0 obj\n${object}\nendobj\n`;
  }
  const xref = latin1(out).length;
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  out += offsets.map((o) => `${String(o).padStart(10, "0")} 00000 n \n`).join("");
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R${info} >>\nstartxref\n${xref}\n%%EOF\n`;
  return latin1(out);
}

function latin1(text: string): Uint8Array {
  return Uint8Array.from(text, (ch) => ch.charCodeAt(0) & 0xff);
}

/** A .docx whose body is these blocks: `{ heading }` (Heading 1/2) or `{ text }` paragraphs. */
export async function makeDocx(
  blocks: ({ heading: string; level?: 1 | 2 } | { text: string })[],
): Promise<Uint8Array> {
  const escape = (t: string) => t.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const body = blocks.map((block) =>
    "heading" in block
      ? `<w:p><w:pPr><w:pStyle w:val="Heading${block.level ?? 1}"/></w:pPr><w:r><w:t>${
        escape(block.heading)
      }</w:t></w:r></w:p>`
      : `<w:p><w:r><w:t xml:space="preserve">${escape(block.text)}</w:t></w:r></w:p>`
  ).join("");
  const zip = new JSZip();
  zip.file(
    "[Content_Types].xml",
    `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>
<Override PartName="/word/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"/>
</Types>`,
  );
  zip.file(
    "_rels/.rels",
    `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>
</Relationships>`,
  );
  zip.file(
    "word/_rels/document.xml.rels",
    `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>
</Relationships>`,
  );
  zip.file(
    "word/styles.xml",
    `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:styles xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">
<w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/></w:style>
<w:style w:type="paragraph" w:styleId="Heading2"><w:name w:val="heading 2"/></w:style>
</w:styles>`,
  );
  zip.file(
    "word/document.xml",
    `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>${body}</w:body></w:document>`,
  );
  return await zip.generateAsync({ type: "uint8array", compression: "DEFLATE" });
}

/** A Parquet file with these string columns (all the same length). */
export function makeParquet(columns: Record<string, (string | null)[]>): Uint8Array {
  const buffer = parquetWriteBuffer({
    columnData: Object.entries(columns).map(([name, data]) => ({ name, data, type: "STRING" as const })),
  });
  return new Uint8Array(buffer);
}
