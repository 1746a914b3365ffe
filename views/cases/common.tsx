/**
 * Pieces the case pages share: the hypothetical label, field errors, lists, dates.
 */
import type { FieldError } from "../../cases/schema.ts";

export function Hypothetical() {
  return (
    <p class="hypothetical" role="note">
      <strong>Hypothetical case.</strong>{" "}
      Written for medical education: not a real patient, not clinical guidance.
    </p>
  );
}

export function Select(
  props: { name: string; label: string; all: string; value: string; options: [string, string][] },
) {
  return (
    <label>
      {props.label}
      <select name={props.name}>
        <option value="">{props.all}</option>
        {props.options.map(([value, label]) => (
          <option value={value} selected={value === props.value}>{label}</option>
        ))}
      </select>
    </label>
  );
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

export function FieldErrors(props: { errors: FieldError[] }) {
  const shown = props.errors.slice(0, 50);
  return (
    <div class="form-error" role="alert">
      <p>
        The case was not imported: {plural(props.errors.length, "problem")} to fix.
      </p>
      <ul class="field-errors">
        {shown.map((e) => (
          <li>
            <code>{e.path}</code>: {e.message}
          </li>
        ))}
      </ul>
      {props.errors.length > shown.length && <p>… and {props.errors.length - shown.length} more.</p>}
    </div>
  );
}

export function List(props: { items: string[]; ordered?: boolean; empty?: string }) {
  if (props.items.length === 0) return <p class="muted">{props.empty ?? "None."}</p>;
  const items = props.items.map((i) => <li>{i}</li>);
  return props.ordered ? <ol>{items}</ol> : <ul>{items}</ul>;
}

export function Pairs(props: { rows: [string, string][] }) {
  return (
    <dl class="pairs">
      {props.rows.map(([k, v]) => (
        <>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </>
      ))}
    </dl>
  );
}

export function formatWhen(date: Date): string {
  return date.toISOString().slice(0, 16).replace("T", " ") + " UTC";
}
