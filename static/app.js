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

  // A question being typed is kept in this tab (sessionStorage) until the server has it: a sign-in that ended,
  // a reload or a refused send never loses it.
  // Keyed by the signed-in user: on a shared ward computer the next person never gets someone else's words.
  const DRAFTS = "rounds-draft:";
  const draftUser = () => document.body.dataset.user || "";
  const draftKey = (box) => DRAFTS + draftUser() + ":" + box.id + ":" + location.pathname;
  const forEachDraft = (fn) => {
    try {
      for (const key of Object.keys(sessionStorage)) if (key.startsWith(DRAFTS)) fn(key);
    } catch { /* storage disabled */ }
  };
  const saveDraft = (box) => {
    try {
      if (box.value.trim()) sessionStorage.setItem(draftKey(box), box.value);
      else sessionStorage.removeItem(draftKey(box));
    } catch { /* storage full or disabled: nothing to keep */ }
  };
  const dropDraft = (box) => {
    try {
      sessionStorage.removeItem(draftKey(box));
    } catch { /* as above */ }
  };
  document.addEventListener("input", (event) => {
    const box = event.target;
    if (box instanceof HTMLTextAreaElement && (box.id === "composer-input" || box.id === "ask-input")) {
      saveDraft(box);
    }
  });
  const restoreDrafts = () => {
    // A signed-in page keeps only its user's drafts; signing out leaves none.
    const user = draftUser();
    if (user) forEachDraft((key) => key.startsWith(DRAFTS + user + ":") || sessionStorage.removeItem(key));
    if (/^\/login/.test(location.pathname) && /reason=signed-out/.test(location.search)) {
      forEachDraft((key) => sessionStorage.removeItem(key));
    }
    for (const id of ["composer-input", "ask-input"]) {
      const box = document.getElementById(id);
      if (!box || box.value.trim()) continue;
      try {
        const draft = sessionStorage.getItem(draftKey(box));
        if (draft) box.value = draft;
      } catch { /* as above */ }
    }
  };
  // Forms that do something hard to undo ask first (data-confirm); without this script they simply submit.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    const question = form instanceof HTMLFormElement && form.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // The home page's question is kept until the session it started opens (a refused one comes back from the
  // server; an ended sign-in keeps it for after signing in again).
  document.addEventListener("submit", (event) => {
    if (
      event.target.id === "logout" ||
      (event.target.getAttribute && event.target.getAttribute("action") === "/logout")
    ) {
      forEachDraft((key) => sessionStorage.removeItem(key));
    }
    if (event.target.id !== "ask-home") return;
    try {
      sessionStorage.setItem("rounds-asked", "1");
    } catch { /* as above */ }
  });
  const dropSentHomeDraft = () => {
    try {
      if (!sessionStorage.getItem("rounds-asked") || /^\/login/.test(location.pathname)) return;
      sessionStorage.removeItem("rounds-asked");
      if (/^\/sessions\//.test(location.pathname)) {
        sessionStorage.removeItem(DRAFTS + draftUser() + ":ask-input:/");
      }
    } catch { /* as above */ }
  };

  // The question is stored once the server starts streaming: only then is it safe to empty the box.
  document.addEventListener("htmx:sse:after:connection", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || form.id !== "composer") return;
    const action = event.detail.connection && event.detail.connection.url;
    if (action && /\/messages$/.test(action)) {
      const box = form.querySelector("textarea");
      box.value = "";
      dropDraft(box);
    }
  });
  // A reply is being written: screen readers wait for it whole (aria-busy) instead of hearing every piece,
  // then hear how it ended, and focus goes back to the composer (on a touch screen, to the reply, so that the
  // keyboard does not cover it).
  const live = () => document.getElementById("live");
  const markBusy = () => {
    const slot = live();
    if (slot) slot.setAttribute("aria-busy", "true");
  };
  document.addEventListener("htmx:before:request", (event) => {
    if (event.target.id === "composer") markBusy();
  });
  const announce = (text) => {
    const announcer = document.getElementById("reply-announcer");
    if (!announcer) return;
    announcer.textContent = "";
    setTimeout(() => (announcer.textContent = text), 50);
  };
  const ENDINGS = {
    completed: "Answer complete.",
    stopped: "Stopped. The text so far is kept.",
    interrupted: "The answer was interrupted. The text so far is kept; Continue finishes it.",
    error: "The answer failed. The message under it says what to do.",
  };
  const afterReply = (tries = 0) => {
    const box = document.getElementById("composer-input");
    if (!box) return;
    // htmx enables the composer again just after the stream closes.
    if (box.disabled && tries < 100) return requestAnimationFrame(() => afterReply(tries + 1));
    const slot = live();
    if (slot) slot.removeAttribute("aria-busy");
    const replies = document.querySelectorAll("#transcript article.msg.assistant[data-status]");
    const last = replies[replies.length - 1];
    if (last) announce(ENDINGS[last.dataset.status] || "");
    if (window.matchMedia("(pointer: coarse)").matches && last) {
      last.setAttribute("tabindex", "-1");
      last.focus({ preventScroll: true });
    } else {
      box.focus({ preventScroll: true });
    }
  };
  document.addEventListener("htmx:sse:close", (event) => {
    if (event.target.id === "composer" || event.target.id === "live") afterReply();
  });

  // Escape stops the reply being written (unless it closes something first: the drawer, a dialog).
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || event.defaultPrevented) return;
    const sidebar = document.getElementById("sidebar");
    if (sidebar && sidebar.classList.contains("open")) return closeDrawer(true);
    const stop = document.querySelector("#live .stop");
    if (stop && !stop.disabled) {
      event.preventDefault();
      stop.click();
    }
  });

  // On a phone the sessions and settings are a drawer, opened from the top of the conversation.
  document.documentElement.classList.add("js");
  const toggle = () => document.querySelector(".drawer-toggle");
  const openDrawer = () => {
    const sidebar = document.getElementById("sidebar");
    if (!sidebar) return;
    sidebar.classList.add("open");
    if (toggle()) toggle().setAttribute("aria-expanded", "true");
    const close = sidebar.querySelector(".drawer-close");
    if (close) close.focus();
  };
  const closeDrawer = (refocus) => {
    const sidebar = document.getElementById("sidebar");
    if (!sidebar || !sidebar.classList.contains("open")) return;
    sidebar.classList.remove("open");
    if (toggle()) {
      toggle().setAttribute("aria-expanded", "false");
      if (refocus) toggle().focus();
    }
  };
  document.addEventListener("click", (event) => {
    const target = event.target;
    if (!target.closest) return;
    // Copy puts the reply's text on the clipboard (as it reads, without the sources and the buttons).
    const copy = target.closest("button[data-copy]");
    if (copy) {
      const body = copy.closest("article") && copy.closest("article").querySelector(".msg-body");
      if (!body) return;
      const done = (ok) => {
        copy.textContent = ok ? "Copied" : "Copy failed: select the text instead";
        announce(ok ? "Reply copied." : "Copying failed; select the text instead.");
        setTimeout(() => (copy.textContent = "Copy"), 2500);
      };
      const text = body.innerText.trim();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(() => done(true), () => done(false));
      } else {
        const scratch = document.createElement("textarea");
        scratch.value = text;
        scratch.setAttribute("readonly", "");
        scratch.style.position = "fixed";
        scratch.style.opacity = "0";
        document.body.append(scratch);
        scratch.select();
        let ok = false;
        try {
          ok = document.execCommand("copy");
        } catch {
          ok = false;
        }
        scratch.remove();
        done(ok);
      }
      return;
    }
    // Edit and resend: the question goes back into the box to change and send as a new message (the
    // exchange it started stays in the record).
    const edit = target.closest("button[data-edit]");
    if (edit) {
      const body = edit.closest("article") && edit.closest("article").querySelector(".msg-body");
      const box = document.getElementById("composer-input");
      if (body && box && !box.disabled) {
        box.value = body.textContent.trim();
        saveDraft(box);
        box.focus();
        box.setSelectionRange(box.value.length, box.value.length);
        box.scrollIntoView({ block: "nearest" });
      }
      return;
    }
    const example = target.closest("button[data-example]");
    if (example) {
      const box = document.getElementById("composer-input");
      if (box) {
        box.value = example.dataset.example;
        box.focus();
      }
      return;
    }
    if (target.closest(".drawer-toggle")) return openDrawer();
    if (target.closest(".drawer-close")) return closeDrawer(true);
    if (!target.closest("#sidebar")) closeDrawer(false);
    // A citation opens its source's excerpt in place.
    const cite = target.closest("a.cite");
    if (cite) {
      const item = document.getElementById(cite.getAttribute("href").slice(1));
      const details = item && item.querySelector("details.source");
      if (details) {
        event.preventDefault();
        details.open = true;
        details.scrollIntoView({ block: "nearest", behavior: "smooth" });
        details.querySelector("summary").focus({ preventScroll: true });
      }
    }
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

  // Documents: say that an upload is on its way (a large file takes a while to send), and once it is taken,
  // clear the form for the next one.
  document.addEventListener("htmx:before:request", (event) => {
    if (event.target.id !== "upload-form") return;
    const notices = document.getElementById("upload-notices");
    const input = event.target.querySelector('input[type="file"]');
    const count = input && input.files ? input.files.length : 0;
    if (!notices) return;
    const note = document.createElement("p");
    note.className = "notice";
    note.textContent = `Sending ${count === 1 ? "the file" : `${count} files`} to Rounds…`;
    notices.replaceChildren(note);
  });
  document.addEventListener("htmx:after:request", (event) => {
    if (event.target.id !== "upload-form") return;
    const response = event.detail && event.detail.ctx && event.detail.ctx.response;
    if (response && response.status === 202) event.target.reset();
  });

  // Enter sends, Shift+Enter makes a new line (and an IME composition is left alone).
  document.addEventListener("keydown", (event) => {
    const box = event.target;
    if (!(box instanceof HTMLTextAreaElement) || (box.id !== "composer-input" && box.id !== "ask-input")) {
      return;
    }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (box.value.trim()) box.form.requestSubmit();
    }
  });

  // The home page's composer starts a session: one click, one session.
  document.addEventListener("submit", (event) => {
    if (event.target.id !== "ask-home") return;
    const button = event.target.querySelector('button[type="submit"]');
    if (button) setTimeout(() => (button.disabled = true), 0);
  });

  // Follow the reply as it grows, unless the reader scrolled up to read something else.
  // Scroll events arrive a frame late, so a reply chunk can land between the reader's scroll and its event:
  // the observer also compares the position with where it last put the page, and a move up unpins at once.
  // "The bottom" is the end of the conversation above the composer, not of the page (on a phone the page goes on
  // below it).
  let pinned = true;
  let placedAt = 0;
  const followTop = () => {
    const transcript = document.getElementById("transcript");
    if (!transcript) return document.documentElement.scrollHeight;
    const composer = document.getElementById("composer");
    const end = transcript.getBoundingClientRect().bottom + window.scrollY;
    return Math.max(0, end + (composer ? composer.offsetHeight : 0) + 24 - window.innerHeight);
  };
  const nearBottom = () => window.scrollY >= followTop() - 80;
  const toBottom = () => {
    const top = followTop();
    if (window.scrollY < top) window.scrollTo({ top });
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
    let pagePending = false;
    new MutationObserver((records) => {
      if (
        !pagePending &&
        records.some((r) =>
          (r.addedNodes.length > 0 && r.target.id === "transcript") || r.target.id === "live"
        )
      ) {
        pagePending = true;
        requestAnimationFrame(() => {
          pagePending = false;
          pageVersions();
        });
      }
      if (
        records.some((r) =>
          r.target.id === "live-body" || (r.target.closest && r.target.closest("#live-body")) ||
          (r.target.parentNode && r.target.parentNode.id === "live-body")
        )
      ) scheduleDraw();
      if (pinned && window.scrollY < placedAt - 40 && !nearBottom()) pinned = false;
      if (pinned) toBottom();
    }).observe(transcript, { childList: true, subtree: true, characterData: true });
  };

  // Markdown while the reply streams: the text so far (#live-body, what the server sent, escaped) is drawn as
  // Markdown in #live-view from escaped text, with a few tags and no attributes, so nothing the model writes
  // can become markup. The stored reply, rendered and sanitized by the server, replaces both at the end.
  const escapeHtml = (text) =>
    text.replace(
      /[&<>"']/g,
      (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c],
    );
  const inline = (text) =>
    escapeHtml(text).split(/(`[^`\n]+`)/).map((part, i) =>
      i % 2 === 1 ? "<code>" + part.slice(1, -1) + "</code>" : part
        .replace(/\*\*(?=\S)([^*\n]*?\S)\*\*/g, "<strong>$1</strong>")
        .replace(/(^|[^*\w])\*(?=\S)([^*\n]*?\S)\*(?![*\w])/g, "$1<em>$2</em>")
        .replace(/(^|[^_\w])_(?=\S)([^_\n]*?\S)_(?![_\w])/g, "$1<em>$2</em>")
    ).join("");
  const markdownSoFar = (text) => {
    const out = [];
    let list = null; // "ul" or "ol"
    let paragraph = [];
    let fence = null;
    const flushParagraph = () => {
      if (paragraph.length) out.push("<p>" + paragraph.map(inline).join("<br>") + "</p>");
      paragraph = [];
    };
    const closeList = () => {
      if (list) out.push("</" + list + ">");
      list = null;
    };
    for (const line of text.split("\n")) {
      if (fence !== null) {
        if (/^\s*```/.test(line)) {
          out.push("<pre><code>" + escapeHtml(fence.join("\n")) + "</code></pre>");
          fence = null;
        } else fence.push(line);
        continue;
      }
      if (/^\s*```/.test(line)) {
        flushParagraph();
        closeList();
        fence = [];
        continue;
      }
      const heading = /^(#{1,6})\s+(.*)$/.exec(line);
      const bullet = /^\s*[-*+]\s+(.*)$/.exec(line);
      const numbered = /^\s*\d{1,3}[.)]\s+(.*)$/.exec(line);
      if (heading) {
        flushParagraph();
        closeList();
        const level = Math.min(6, heading[1].length + 2);
        out.push("<h" + level + ">" + inline(heading[2]) + "</h" + level + ">");
      } else if (bullet || numbered) {
        flushParagraph();
        const kind = bullet ? "ul" : "ol";
        if (list !== kind) {
          closeList();
          out.push("<" + kind + ">");
          list = kind;
        }
        out.push("<li>" + inline((bullet || numbered)[1]) + "</li>");
      } else if (line.trim() === "") {
        flushParagraph();
        closeList();
      } else {
        if (list) closeList();
        paragraph.push(line);
      }
    }
    flushParagraph();
    closeList();
    if (fence !== null) out.push("<pre><code>" + escapeHtml(fence.join("\n")) + "</code></pre>");
    return out.join("");
  };
  let drawPending = false;
  const drawLive = () => {
    drawPending = false;
    const body = document.getElementById("live-body");
    const view = document.getElementById("live-view");
    if (!body || !view) return;
    const text = body.textContent;
    if (!text) {
      view.hidden = true;
      body.hidden = false;
      return;
    }
    view.innerHTML = markdownSoFar(text);
    view.hidden = false;
    body.hidden = true;
  };
  const scheduleDraw = () => {
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(drawLive);
  };

  // A practice station's timer: elapsed time against the station's minutes; it advises, it never ends the session.
  const stationTimer = () => {
    const timer = document.querySelector(".station-timer[data-started]");
    if (!timer) return;
    const started = Date.parse(timer.dataset.started);
    const limit = Number(timer.dataset.minutes) * 60;
    const elapsedText = timer.querySelector(".elapsed");
    let warned = false;
    const tick = () => {
      const seconds = Math.floor((Date.now() - started) / 1000);
      // A session picked up again later is not a station in progress.
      if (!Number.isFinite(seconds) || seconds < 0 || seconds > limit * 6) return (timer.hidden = true);
      timer.hidden = false;
      elapsedText.textContent = Math.floor(seconds / 60) + ":" + String(seconds % 60).padStart(2, "0");
      timer.classList.toggle("over", seconds >= limit);
      if (!warned && seconds >= limit - 120 && seconds < limit) {
        warned = true;
        announce("Two minutes left in the station.");
      }
      setTimeout(tick, 1000 - (Date.now() - started) % 1000);
    };
    tick();
  };

  // Regenerated replies: the earlier versions (collapsed "Earlier version" sections without this script) become a
  // ‹ 1/2 › pager on the reply, which shows one version at a time in its place. All of them are the server's
  // sanitized HTML (its allowlist has none of the tags that change meaning when HTML is parsed again).
  const pageVersions = (root) => {
    for (
      const reply of (root || document).querySelectorAll("#transcript article.msg.assistant[data-status]")
    ) {
      const earlier = [];
      let node = reply.previousElementSibling;
      while (node && node.matches("details.earlier-version")) {
        earlier.unshift(node);
        node = node.previousElementSibling;
      }
      const body = reply.querySelector(":scope > .msg-body");
      const head = reply.querySelector(":scope > .msg-head");
      if (!earlier.length || !body || !head || reply.dataset.paged === String(earlier.length)) continue;
      reply.dataset.paged = String(earlier.length);
      const versions = [...earlier.map((d) => d.querySelector(".msg-body").innerHTML), body.innerHTML];
      for (const d of earlier) d.hidden = true;
      const old = head.querySelector(".version-pager");
      if (old) old.remove();
      const pager = document.createElement("span");
      pager.className = "version-pager";
      const prev = document.createElement("button");
      const next = document.createElement("button");
      const label = document.createElement("span");
      prev.type = next.type = "button";
      prev.className = next.className = "secondary";
      prev.textContent = "‹";
      next.textContent = "›";
      prev.setAttribute("aria-label", "Earlier version");
      next.setAttribute("aria-label", "Later version");
      label.setAttribute("aria-live", "polite");
      pager.append(prev, label, next);
      head.append(pager);
      let shown = versions.length - 1;
      const show = (index) => {
        shown = Math.max(0, Math.min(versions.length - 1, index));
        body.innerHTML = versions[shown];
        label.textContent = `${shown + 1}/${versions.length}`;
        prev.disabled = shown === 0;
        next.disabled = shown === versions.length - 1;
        reply.classList.toggle("showing-earlier", shown < versions.length - 1);
      };
      prev.addEventListener("click", () => show(shown - 1));
      next.addEventListener("click", () => show(shown + 1));
      show(shown);
    }
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
    restoreDrafts();
    dropSentHomeDraft();
    follow();
    drawLive();
    stationTimer();
    pageVersions();
    localTimes(document);
    if (document.getElementById("transcript")) toBottom();
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
  document.addEventListener("htmx:after:swap", (event) => {
    localTimes(event.target.parentNode || document);
    pageVersions();
  });
})();
