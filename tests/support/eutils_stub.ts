/**
 * A stand-in for NCBI's E-utilities over real HTTP: `esearch.fcgi` answers JSON as NCBI does (an `esearchresult`
 * with `idlist`, or its `ERROR`), `efetch.fcgi` answers PubMed XML (`PubmedArticleSet`), and either can be made
 * to fail the ways NCBI does: 429 with its rate-limit JSON, 5xx with an HTML page, or no answer at all.
 */

/** One article the stub knows. */
export interface StubArticle {
  pmid: string;
  title: string;
  journal: string;
  year: string;
  /** Abstract sections: label → text. */
  sections: Record<string, string>;
}

/** Two articles written for the tests (hypothetical: no real PMID, journal or finding). */
export const HYPOTHETICAL_ARTICLES: StubArticle[] = [{
  pmid: "39000001",
  title: "Home blood pressure telemonitoring in resistant hypertension: a hypothetical trial",
  journal: "J Hypothet Cardiol",
  year: "2024",
  sections: {
    BACKGROUND: "Telemonitoring of home blood pressure may help resistant hypertension.",
    RESULTS:
      "Telemonitoring lowered systolic blood pressure in resistant hypertension by 9 mmHg at 12 months.",
  },
}, {
  pmid: "39000002",
  title: "Spironolactone as a fourth drug for resistant hypertension (hypothetical)",
  journal: "Hypothet Hypertens Rev",
  year: "2023",
  sections: {
    CONCLUSIONS: "Spironolactone lowered blood pressure in resistant hypertension more than placebo.",
  },
}];

/** A request the stub received: the path and its query parameters. */
export interface EutilsRequest {
  path: string;
  params: Record<string, string>;
  at: number;
}

/** How the next requests fail (consumed in order); absent: they succeed. */
export type EutilsFault = "rate_limited" | "unavailable" | "hang" | "search_error";

export interface EutilsStub {
  url: string;
  requests: EutilsRequest[];
  /** Faults for the next requests, in order. */
  fail(...faults: EutilsFault[]): void;
  close(): Promise<void>;
}

const xml = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** The article as efetch returns it (the parts Rounds reads, in NCBI's shape). */
function articleXml(a: StubArticle): string {
  const sections = Object.entries(a.sections).map(([label, text]) =>
    `<AbstractText Label="${label}" NlmCategory="${label}">${xml(text)}</AbstractText>`
  ).join("\n");
  return `<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">${a.pmid}</PMID>
<Article PubModel="Print"><Journal><ISSN IssnType="Electronic">0000-0000</ISSN>
<JournalIssue CitedMedium="Internet"><Volume>12</Volume><PubDate><Year>${a.year}</Year><Month>Mar</Month></PubDate></JournalIssue>
<Title>${xml(a.journal)} (full title)</Title><ISOAbbreviation>${xml(a.journal)}</ISOAbbreviation></Journal>
<ArticleTitle>${xml(a.title)}</ArticleTitle><Abstract>${sections}</Abstract></Article>
<MeshHeadingList><MeshHeading><DescriptorName MajorTopicYN="Y">Hypertension</DescriptorName></MeshHeading></MeshHeadingList>
</MedlineCitation><PubmedData><ArticleIdList><ArticleId IdType="pubmed">${a.pmid}</ArticleId></ArticleIdList></PubmedData></PubmedArticle>`;
}

/** Starts the stub; a search matches the articles whose title or abstract holds every term. */
export function startEutilsStub(articles: StubArticle[]): EutilsStub {
  const requests: EutilsRequest[] = [];
  const faults: EutilsFault[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const url = new URL(request.url);
    const path = url.pathname.split("/").pop() ?? "";
    requests.push({ path, params: Object.fromEntries(url.searchParams), at: Date.now() });
    const fault = faults.shift();
    if (fault === "hang") {
      await new Promise((resolve) => request.signal.addEventListener("abort", resolve, { once: true }));
      return new Response(null, { status: 504 });
    }
    if (fault === "rate_limited") {
      return Response.json({
        error: "API rate limit exceeded",
        "api-key": "127.0.0.1",
        count: "4",
        limit: "3",
      }, {
        status: 429,
        headers: { "retry-after": "1" },
      });
    }
    if (fault === "unavailable") {
      return new Response("<html><body><h1>502 Bad Gateway</h1></body></html>", {
        status: 502,
        headers: { "content-type": "text/html" },
      });
    }
    if (path === "esearch.fcgi") {
      if (fault === "search_error") {
        return Response.json({
          header: { type: "esearch", version: "0.3" },
          esearchresult: { ERROR: "Invalid query" },
        });
      }
      const terms = (url.searchParams.get("term") ?? "").toLowerCase().split(/\s+/).filter(Boolean);
      const retmax = Number(url.searchParams.get("retmax") ?? 20);
      const hits = articles.filter((a) => {
        const text = `${a.title} ${Object.values(a.sections).join(" ")}`.toLowerCase();
        return terms.length > 0 && terms.every((t) => text.includes(t));
      }).map((a) => a.pmid);
      return Response.json({
        header: { type: "esearch", version: "0.3" },
        esearchresult: {
          count: String(hits.length),
          retmax: String(Math.min(retmax, hits.length)),
          retstart: "0",
          idlist: hits.slice(0, retmax),
          translationset: [],
          querytranslation: terms.join(" AND "),
        },
      });
    }
    if (path === "efetch.fcgi") {
      const ids = (url.searchParams.get("id") ?? "").split(",");
      const found = articles.filter((a) => ids.includes(a.pmid));
      return new Response(
        `<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" "https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n<PubmedArticleSet>\n${
          found.map(articleXml).join("\n")
        }\n</PubmedArticleSet>`,
        { headers: { "content-type": "text/xml; charset=UTF-8" } },
      );
    }
    return new Response("Not found", { status: 404 });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/entrez/eutils`,
    requests,
    fail: (...more) => void faults.push(...more),
    close: () => server.shutdown(),
  };
}
