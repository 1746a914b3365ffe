/**
 * A section's editing form (fragment and page) and its inputs.
 */
import { CsrfField } from "../csrf.tsx";
import { type Column, type EditSection, type Field, getPath, VITAL_UNITS } from "../../cases/edit.ts";
import type { FieldError } from "../../cases/schema.ts";
import { renderPage } from "../layout.tsx";
import type { PageContext } from "../page.ts";
import { Hypothetical, plural } from "./common.tsx";

/** A section's form: the fields it edits, with the problems of a rejected save. */
export function SectionEditor(
  props: { c: unknown; caseId: string; section: EditSection; errors: FieldError[]; version: number },
) {
  const { section, caseId } = props;
  const action = `/cases/${caseId}/sections/${section.name}`;
  const errorsAt = (path: string) =>
    props.errors.filter((e) => e.path === path || e.path.startsWith(`${path}.`));
  return (
    <section
      class="case-section editing"
      id={`section-${section.name}`}
      aria-labelledby={`h-${section.name}`}
    >
      <h2 id={`h-${section.name}`}>Editing: {section.title}</h2>
      {props.errors.length > 0 && (
        <div class="form-error" role="alert">
          <p>Not saved: {plural(props.errors.length, "problem")} to fix.</p>
          <ul class="field-errors">
            {props.errors.map((e) => (
              <li>
                <code>{e.path}</code>: {e.message}
              </li>
            ))}
          </ul>
        </div>
      )}
      <form
        class="section-form"
        method="post"
        action={action}
        hx-post={action}
        hx-target={`#section-${section.name}`}
        hx-swap="outerHTML"
        {...{ "hx-status:422": "target:#section-" + section.name + " swap:outerHTML" }}
      >
        <CsrfField />
        <input type="hidden" name="base_version" value={String(props.version)} />
        {section.fields.map((field) => (
          <FieldInput field={field} value={getPath(props.c, field.path)} errors={errorsAt(field.path)} />
        ))}
        <div class="form-actions">
          <button type="submit">Save as a new version</button>
          <a
            class="button"
            href={`/cases/${caseId}#section-${section.name}`}
            hx-get={`/cases/${caseId}/sections/${section.name}`}
            hx-target={`#section-${section.name}`}
            hx-swap="outerHTML"
          >
            Cancel
          </a>
        </div>
      </form>
    </section>
  );
}

function FieldInput(props: { field: Field; value: unknown; errors: FieldError[] }) {
  const { field, value } = props;
  const invalid = props.errors.length > 0 ? { "aria-invalid": "true" } : {};
  const text = (v: unknown) => (v === undefined || v === null ? "" : String(v));
  switch (field.kind) {
    case "text":
    case "number":
      return (
        <label>
          {field.label}
          <input
            name={field.path}
            value={text(value)}
            inputmode={field.kind === "number" ? "decimal" : undefined}
            {...invalid}
          />
        </label>
      );
    case "textarea":
      return (
        <label>
          {field.label}
          <textarea name={field.path} rows={3} {...invalid}>{text(value)}</textarea>
        </label>
      );
    case "enum":
      return (
        <label>
          {field.label}
          <select name={field.path} {...invalid}>
            {field.options.map((o) => <option value={o} selected={o === value}>{o}</option>)}
          </select>
        </label>
      );
    case "lines":
      return (
        <label>
          {field.label}
          <textarea name={field.path} rows={4} {...invalid}>
            {Array.isArray(value) ? value.join("\n") : ""}
          </textarea>
        </label>
      );
    case "csv":
      return (
        <label>
          {field.label}
          <input name={field.path} value={Array.isArray(value) ? value.join(", ") : ""} {...invalid} />
        </label>
      );
    case "table": {
      const rows = Array.isArray(value) ? value as Record<string, unknown>[] : [];
      const count = rows.length + 2;
      return (
        <fieldset class="table-field" {...invalid}>
          <legend>{field.label}</legend>
          <p class="muted">Clear a row to remove it; fill a blank row to add one.</p>
          <input type="hidden" name={`${field.path}.rows`} value={String(count)} />
          <div class="table-scroll">
            <table>
              <thead>
                <tr>{field.columns.map((c) => <th scope="col">{c.label}</th>)}</tr>
              </thead>
              <tbody>
                {Array.from({ length: count }, (_, i) => (
                  <tr>
                    {field.columns.map((column) => (
                      <td>
                        <CellInput
                          name={`${field.path}.${i}.${column.key}`}
                          label={`${column.label}, row ${i + 1}`}
                          column={column}
                          value={rows[i]?.[column.key]}
                        />
                      </td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </fieldset>
      );
    }
    case "vitals": {
      const v = (value ?? {}) as Record<string, { value?: number; unit?: string; on?: string } | undefined>;
      const bp = (value as { bloodPressure?: { systolic: number; diastolic: number } } | undefined)
        ?.bloodPressure;
      return (
        <fieldset class="vitals-field" {...invalid}>
          <legend>{field.label} (leave a value empty if not measured)</legend>
          <label>
            Blood pressure, systolic (mmHg)
            <input name="vitalSigns.bloodPressure.systolic" inputmode="decimal" value={text(bp?.systolic)} />
          </label>
          <label>
            Blood pressure, diastolic (mmHg)
            <input
              name="vitalSigns.bloodPressure.diastolic"
              inputmode="decimal"
              value={text(bp?.diastolic)}
            />
          </label>
          {VITAL_UNITS.map(([key, label, units]) => (
            <div class="vital-row">
              <label>
                {label}
                <input name={`vitalSigns.${key}.value`} inputmode="decimal" value={text(v[key]?.value)} />
              </label>
              <label>
                Unit
                <select name={`vitalSigns.${key}.unit`}>
                  {units.map((u) => <option value={u} selected={u === v[key]?.unit}>{u}</option>)}
                </select>
              </label>
              {key === "oxygenSaturation" && (
                <label>
                  On
                  <input
                    name="vitalSigns.oxygenSaturation.on"
                    value={text(v[key]?.on)}
                    placeholder="room air"
                  />
                </label>
              )}
            </div>
          ))}
        </fieldset>
      );
    }
  }
}

function CellInput(props: { name: string; label: string; column: Column; value: unknown }) {
  const { column, value } = props;
  const text = Array.isArray(value)
    ? value.join(", ")
    : value === undefined || value === null
    ? ""
    : String(value);
  if (column.kind === "enum") {
    return (
      <select name={props.name} aria-label={props.label}>
        <option value=""></option>
        {column.options!.map((o) => <option value={o} selected={o === value}>{o}</option>)}
      </select>
    );
  }
  if (column.kind === "textarea") {
    return <textarea name={props.name} aria-label={props.label} rows={2}>{text}</textarea>;
  }
  return <input name={props.name} aria-label={props.label} value={text} />;
}

/** A section's form alone, for htmx, or inside a page without it. */
export function sectionEditorFragment(
  props: { c: unknown; caseId: string; section: EditSection; errors: FieldError[]; version: number },
): string {
  return String(<SectionEditor {...props} />);
}

/** GET /cases/:id/sections/:name/edit without htmx. */
export function sectionEditorPage(
  page: PageContext,
  props: {
    c: unknown;
    title: string;
    caseId: string;
    section: EditSection;
    errors: FieldError[];
    version: number;
  },
): string {
  return renderPage(
    page,
    `Edit ${props.section.title.toLowerCase()} · ${props.title}`,
    <div class="cases">
      <p class="breadcrumbs">
        <a href={`/cases/${props.caseId}`}>← {props.title}</a>
      </p>
      <Hypothetical />
      <SectionEditor {...props} />
    </div>,
  );
}
