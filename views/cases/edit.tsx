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
                <a href={`#${fieldId(e.path)}`}>{e.message}</a>
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

/** The id of the input for a case field path (`vitalSigns.heartRate.value` → `f-vitalSigns-heartRate-value`). */
function fieldId(path: string): string {
  return "f-" + path.replace(/[^A-Za-z0-9_-]/g, "-");
}

/** A number field: digits in any script, a decimal point or comma; the browser says so before sending. */
const NUMBER_INPUT = {
  inputmode: "decimal",
  pattern: "\\s*[\\-\u2212]?[\\p{Nd}]+([.,][\\p{Nd}]+)?\\s*",
  title: "A number, such as 37.5",
} as const;

/** The problems with one field, under it. */
function FieldErrors(props: { errors: FieldError[] }) {
  if (props.errors.length === 0) return null;
  return <span class="field-error">{props.errors.map((e) => e.message).join(". ")}</span>;
}

function FieldInput(props: { field: Field; value: unknown; errors: FieldError[] }) {
  const { field, value } = props;
  const invalid = props.errors.length > 0 ? { "aria-invalid": "true" } : {};
  const errorsAt = (path: string) =>
    props.errors.filter((e) => e.path === path || e.path.startsWith(`${path}.`));
  const vitalInput = (name: string, current: unknown) => {
    const errors = errorsAt(name);
    return (
      <>
        <input
          id={fieldId(name)}
          name={name}
          value={current === undefined || current === null ? "" : String(current)}
          {...NUMBER_INPUT}
          {...(errors.length > 0 ? { "aria-invalid": "true" } : {})}
        />
        <FieldErrors errors={errors} />
      </>
    );
  };
  const text = (v: unknown) => (v === undefined || v === null ? "" : String(v));
  switch (field.kind) {
    case "text":
    case "number":
      return (
        <label>
          {field.label}
          <input
            id={fieldId(field.path)}
            name={field.path}
            value={text(value)}
            {...(field.kind === "number" ? NUMBER_INPUT : {})}
            {...invalid}
          />
          <FieldErrors errors={props.errors} />
        </label>
      );
    case "textarea":
      return (
        <label>
          {field.label}
          <textarea id={fieldId(field.path)} name={field.path} rows={3} {...invalid}>{text(value)}</textarea>
          <FieldErrors errors={props.errors} />
        </label>
      );
    case "enum":
      return (
        <label>
          {field.label}
          <select id={fieldId(field.path)} name={field.path} {...invalid}>
            {field.options.map((o) => <option value={o} selected={o === value}>{o}</option>)}
          </select>
          <FieldErrors errors={props.errors} />
        </label>
      );
    case "lines":
      return (
        <label>
          {field.label}
          <textarea id={fieldId(field.path)} name={field.path} rows={4} {...invalid}>
            {Array.isArray(value) ? value.join("\n") : ""}
          </textarea>
          <FieldErrors errors={props.errors} />
        </label>
      );
    case "csv":
      return (
        <label>
          {field.label}
          <input
            id={fieldId(field.path)}
            name={field.path}
            value={Array.isArray(value) ? value.join(", ") : ""}
            {...invalid}
          />
          <FieldErrors errors={props.errors} />
        </label>
      );
    case "table": {
      const rows = Array.isArray(value) ? value as Record<string, unknown>[] : [];
      const count = rows.length + 2;
      return (
        <fieldset class="table-field" id={fieldId(field.path)} {...invalid}>
          <legend>{field.label}</legend>
          <FieldErrors errors={props.errors} />
          <p class="muted">Clear a row to remove it; fill a blank row to add one.</p>
          <input type="hidden" name={`${field.path}.rows`} value={String(count)} />
          <div class="table-scroll" tabindex={0} role="region" aria-label={field.label}>
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
        <fieldset class="vitals-field" id={fieldId(field.path)} {...invalid}>
          <legend>{field.label} (leave a value empty if not measured)</legend>
          <label>
            Blood pressure, systolic (mmHg)
            {vitalInput("vitalSigns.bloodPressure.systolic", bp?.systolic)}
          </label>
          <label>
            Blood pressure, diastolic (mmHg)
            {vitalInput("vitalSigns.bloodPressure.diastolic", bp?.diastolic)}
          </label>
          {VITAL_UNITS.map(([key, label, units]) => (
            <div class="vital-row">
              <label>
                {label}
                {vitalInput(`vitalSigns.${key}.value`, v[key]?.value)}
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
