// deno-lint-ignore-file no-window no-window-prefix -- browser script: window is the page here, not Deno
// Rounds: small enhancements on top of htmx. Everything works without this file, only less smoothly.
(() => {
  "use strict";

  const newId = () =>
    (globalThis.crypto && crypto.randomUUID)
      ? crypto.randomUUID()
      : Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);

  // htmx 4 honours formaction only on boosted forms. The composer's Regenerate and Continue buttons use it,
  // so the persistent composer form makes every streaming request (hx-sse follows the element that asked).
  // Each submission gets a fresh idempotency key; a reconnect reuses the request, and so the key.
  // Every htmx request carries the session's anti-forgery token (forms also carry it as a hidden field).
  const csrf = document.querySelector('meta[name="csrf-token"]');
  document.addEventListener("htmx:config:request", (event) => {
    const request = event.detail.ctx.request;
    if (csrf && request.headers) request.headers["X-CSRF-Token"] = csrf.content;
    const submitter = request.submitter;
    if (submitter && submitter.hasAttribute("formaction")) {
      request.action = submitter.getAttribute("formaction");
    }
    if (request.body instanceof FormData && request.body.has("client_id")) {
      request.body.set("client_id", newId());
    }
    if (event.detail.ctx.sourceElement && event.detail.ctx.sourceElement.id === "composer") {
      const error = document.getElementById("composer-error");
      if (error) error.replaceChildren();
    }
  });

  // The question is stored once the server starts streaming: only then is it safe to empty the box.
  document.addEventListener("htmx:sse:after:connection", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || form.id !== "composer") return;
    const action = event.detail.connection && event.detail.connection.url;
    if (action && /\/messages$/.test(action)) form.querySelector("textarea").value = "";
  });
  document.addEventListener("htmx:sse:close", (event) => {
    if (event.target.id === "composer") event.target.querySelector("textarea").focus();
  });

  // Case generation: Cancel aborts the request (the server stops the model when the stream closes), and the
  // page always ends in a final state: the saved case opens, or a message says what happened.
  let cancelled = false;
  const cancelButton = () => document.getElementById("cancel-generation");
  document.addEventListener("htmx:before:request", (event) => {
    if (event.target.id !== "new-case" || !cancelButton()) return;
    cancelled = false;
    cancelButton().hidden = false;
    // On a phone the progress is below the form: bring it into view.
    const status = document.getElementById("generation-status");
    if (status) status.scrollIntoView({ block: "nearest" });
  });
  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("#cancel-generation");
    if (!button) return;
    cancelled = true;
    button.hidden = true;
    const form = document.getElementById("new-case");
    if (form) form.dispatchEvent(new CustomEvent("htmx:abort"));
  });
  const generationEnded = (form) => {
    const button = cancelButton();
    if (button) button.hidden = true;
    const status = document.getElementById("generation-status");
    if (!status) return;
    const link = status.querySelector("a[data-open-case]");
    // A generated case is saved: open it (the link stays for anyone without this script).
    if (link) return window.location.assign(link.getAttribute("href"));
    if (status.querySelector(".generation-failed, .form-error, .error-panel")) return;
    const note = document.createElement("div");
    note.className = cancelled ? "notice" : "form-error generation-failed";
    note.setAttribute("role", cancelled ? "status" : "alert");
    note.textContent = cancelled
      ? "Generation cancelled. Nothing was saved."
      : "The connection to the server was lost before the case was finished. Nothing was saved: try again.";
    status.replaceChildren(note);
    const submit = form && form.querySelector('button[type="submit"]');
    if (submit) submit.focus();
  };
  document.addEventListener("htmx:after:request", (event) => {
    // A refused form (422, 503) is not a stream: its answer is swapped in as usual.
    const response = event.detail && event.detail.ctx && event.detail.ctx.response;
    if (event.target.id === "new-case" && response && response.status >= 400 && cancelButton()) {
      cancelButton().hidden = true;
    }
  });
  // The result arrived: nothing is left to cancel (the stream ends a moment later), and it is shown whole.
  document.addEventListener("htmx:sse:after:message", (event) => {
    if (event.target.id !== "new-case" || !cancelButton()) return;
    const result = document.querySelector(
      "#generation-status .generation-done, #generation-status .generation-failed",
    );
    if (!result) return;
    cancelButton().hidden = true;
    result.scrollIntoView({ block: "nearest" });
  });
  document.addEventListener("htmx:finally:request", (event) => {
    if (event.target.id === "new-case") generationEnded(event.target);
  });

  // Enter sends, Shift+Enter makes a new line (and an IME composition is left alone).
  document.addEventListener("keydown", (event) => {
    const box = event.target;
    if (!(box instanceof HTMLTextAreaElement) || box.id !== "composer-input") return;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (box.value.trim()) box.form.requestSubmit();
    }
  });

  // Follow the reply as it grows, unless the reader scrolled up to read something else.
  // Scroll events arrive a frame late, so a reply chunk can land between the reader's scroll and its event:
  // the observer also compares the position with where it last put the page, and a move up unpins at once.
  let pinned = true;
  let placedAt = 0;
  const nearBottom = () => window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 80;
  const toBottom = () => {
    window.scrollTo({ top: document.documentElement.scrollHeight });
    placedAt = window.scrollY;
  };
  window.addEventListener("scroll", () => {
    pinned = nearBottom();
    if (pinned) placedAt = window.scrollY;
  }, { passive: true });
  const follow = () => {
    const transcript = document.getElementById("transcript");
    if (!transcript || transcript.dataset.followed) return;
    transcript.dataset.followed = "1";
    new MutationObserver(() => {
      if (pinned && window.scrollY < placedAt - 40 && !nearBottom()) pinned = false;
      if (pinned) toBottom();
    }).observe(transcript, { childList: true, subtree: true, characterData: true });
  };

  // Sliders show their value; times show in the reader's time zone.
  document.addEventListener("input", (event) => {
    const input = event.target;
    if (input instanceof HTMLInputElement && input.type === "range") {
      const output = input.closest("label") && input.closest("label").querySelector("output");
      if (output) output.value = input.value;
    }
  });
  const localTimes = (root) => {
    for (const time of root.querySelectorAll("time[datetime]")) {
      const date = new Date(time.getAttribute("datetime"));
      if (!Number.isNaN(date.getTime())) {
        time.textContent = date.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
      }
    }
  };

  const ready = () => {
    follow();
    localTimes(document);
    if (document.getElementById("transcript")) toBottom();
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
  document.addEventListener("htmx:after:swap", (event) => localTimes(event.target.parentNode || document));
})();
