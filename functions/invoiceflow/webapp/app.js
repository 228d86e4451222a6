// invoiceflow web app: plain JavaScript over the public HTTP API, no dependencies.
// The token lives only in this script's memory (never a cookie or web storage): no cookie
// means no CSRF surface, and nothing outlives the tab; reloading the page signs out.
"use strict";

(() => {
  const POLL_MS = 1000;
  // a status that cannot be read this many times in a row stops being polled
  const POLL_GIVE_UP = 5;
  const PAGE_SIZE = 10;
  const FINAL = new Set(["ready", "failed"]);
  const LABELS = {
    pdf: "PDF",
    xlsx: "XLSX",
    cii: "CII e-invoice (XML)",
    ubl: "UBL e-invoice (XML)",
    facturx: "Factur-X PDF",
    json: "submitted JSON",
    document: "completed JSON",
  };
  // the formats that are a PDF (facturx: the PDF with the e-invoice inside), for the preview
  const PDF_FORMATS = ["pdf", "facturx"];
  // the upload form's choice, by the names of its checkboxes
  const CHOICES = { pdf: "PDF", xlsx: "Excel", cii: "CII", ubl: "UBL", facturx: "Factur-X" };
  // one of each pair only: the server refuses both (facturx is the PDF, under the same name)
  const EXCLUSIVE = { pdf: "facturx", facturx: "pdf" };

  let token = null;
  let session = 0; // bumped on sign-out: pollers of an older session stop
  let blobUrls = [];
  let pageCursors = [null]; // the cursor of each page seen; the last is the current page
  let nextCursor = null;
  let pageItems = [];
  let listSeq = 0; // the newest list request: an older answer arriving late is not drawn
  let previewOpener = null; // the button that opened the preview gets the focus back

  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    node.append(...children);
    return node;
  };

  function notify(message) {
    $("notice").textContent = message;
  }

  function basic(email, password) {
    const bytes = new TextEncoder().encode(`${email}:${password}`);
    return "Basic " + btoa(String.fromCharCode(...bytes));
  }

  async function api(path, options = {}) {
    const headers = { ...(options.headers || {}), Authorization: `Bearer ${token}` };
    const response = await fetch(path, { ...options, headers, credentials: "omit" });
    if (response.status === 401 && token !== null) {
      signOut("Your session has ended: sign in again.");
      throw new Error("signed out");
    }
    return response;
  }

  async function problemOf(response) {
    try {
      return await response.json();
    } catch {
      return { detail: `the server answered ${response.status}` };
    }
  }

  // ------------------------------------------------------------------ sign in and out

  async function signIn(event) {
    event.preventDefault();
    const email = $("email").value.trim();
    const password = $("password").value;
    const error = $("sign-in-error");
    error.textContent = "";
    if (!email || !password) {
      error.textContent = "Enter your email and password.";
      return;
    }
    let response;
    try {
      response = await fetch("/login", {
        method: "POST",
        headers: { Authorization: basic(email, password) },
        credentials: "omit",
      });
    } catch {
      error.textContent = "The service cannot be reached; try again.";
      return;
    }
    if (!response.ok) {
      const body = await problemOf(response);
      error.textContent =
        response.status === 401 ? "Wrong email or password." : body.detail || "Sign-in failed.";
      return;
    }
    token = (await response.json()).token;
    $("password").value = "";
    $("sign-in").hidden = true;
    $("work").hidden = false;
    $("sign-out").hidden = false;
    $("who").hidden = false;
    $("who").textContent = `Signed in as ${email}`;
    notify("");
    $("upload-title").setAttribute("tabindex", "-1");
    $("upload-title").focus();
    loadPage([null]);
  }

  function signOut(message) {
    token = null;
    session += 1;
    for (const url of blobUrls) URL.revokeObjectURL(url);
    blobUrls = [];
    $("uploads").replaceChildren();
    $("no-uploads").hidden = false;
    $("invoices").tBodies[0].replaceChildren();
    pageItems = [];
    pageCursors = [null];
    nextCursor = null;
    listSeq += 1;
    $("page-no").textContent = "";
    $("prev-page").disabled = true;
    $("next-page").disabled = true;
    $("list-caption").textContent = "";
    $("sign-in-error").textContent = "";
    $("paste").value = "";
    $("search").value = "";
    resetFormats();
    closePreview();
    $("work").hidden = true;
    $("sign-out").hidden = true;
    $("who").hidden = true;
    $("sign-in").hidden = false;
    notify(message);
    $("email").focus();
  }

  // ------------------------------------------------------------------ formats

  function formatBoxes() {
    return Array.from(document.querySelectorAll('#formats input[name="format"]'));
  }

  // the checked formats, in the form's order: sent as ?formats= with every upload
  function chosenFormats() {
    return formatBoxes()
      .filter((box) => box.checked)
      .map((box) => box.value);
  }

  function formatChanged(event) {
    const box = event.target;
    const other = EXCLUSIVE[box.value];
    const note = $("formats-note");
    note.textContent = "";
    if (!box.checked || !other) return;
    const partner = formatBoxes().find((b) => b.value === other);
    if (partner && partner.checked) {
      partner.checked = false;
      note.textContent =
        `${CHOICES[other]} unchecked: Factur-X is the PDF with the e-invoice inside, ` +
        "so an upload gets one or the other.";
    }
  }

  function resetFormats() {
    for (const box of formatBoxes()) box.checked = box.defaultChecked;
    $("formats-note").textContent = "";
  }

  // the formats to ask for, or null (and a notice) when none is checked
  function formatsOrNotice() {
    const formats = chosenFormats();
    if (formats.length) return formats;
    notify("Check at least one format under Formats first.");
    formatBoxes()[0].focus();
    return null;
  }

  // ------------------------------------------------------------------ uploads

  function valueAt(doc, pointer) {
    if (doc === undefined || !pointer) return undefined;
    let node = doc;
    for (const raw of pointer.split("/").slice(1)) {
      const key = raw.replaceAll("~1", "/").replaceAll("~0", "~");
      if (node === null || typeof node !== "object" || !(key in node)) return undefined;
      node = node[key];
    }
    return node;
  }

  function setStatus(card, status, text) {
    const badge = card.querySelector(".status");
    badge.dataset.status = status;
    badge.textContent = text || status;
  }

  function showProblems(card, body, doc) {
    const detail = card.querySelector(".detail");
    detail.textContent = body.detail || "";
    const list = card.querySelector(".problems");
    list.replaceChildren();
    for (const problem of body.problems || []) {
      const item = el("li");
      // an EN 16931 (or XRechnung) business rule the document breaks: its id first
      if (problem.rule) item.append(el("strong", { class: "rule", text: problem.rule }), " · ");
      item.append(el("code", { text: problem.pointer || "/" }));
      const value = valueAt(doc, problem.pointer);
      if (value !== undefined && typeof value !== "object") {
        item.append(" ", el("span", { class: "value", text: `(is ${JSON.stringify(value)})` }));
      }
      item.append(`: ${problem.message}`);
      list.append(item);
    }
  }

  function newCard(name, formats) {
    const card = el(
      "li",
      { class: "card" },
      el("h3", { text: name }),
      el("p", { class: "asked", text: `Formats: ${formats.map((f) => CHOICES[f] || f).join(", ")}` }),
      el(
        "p",
        { "aria-live": "polite" },
        "Status: ",
        el("span", { class: "status", "data-status": "sending", text: "sending" })
      ),
      el("p", { class: "detail error" }),
      el("ul", { class: "problems" }),
      el("div", { class: "actions" })
    );
    $("no-uploads").hidden = true;
    $("uploads").prepend(card);
    return card;
  }

  async function upload(name, text, formats) {
    const mine = session;
    const card = newCard(name, formats);
    let doc;
    try {
      doc = JSON.parse(text);
    } catch {
      doc = undefined; // the server says what is wrong with it
    }
    let response;
    try {
      response = await api(`/upload?formats=${formats.map(encodeURIComponent).join(",")}`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Idempotency-Key": idempotencyKey() },
        body: text,
      });
    } catch (err) {
      if (mine === session) setStatus(card, "rejected", "not sent: the service cannot be reached");
      return;
    }
    if (mine !== session) return;
    const body = await problemOf(response);
    if (response.status !== 202) {
      setStatus(card, "rejected", `rejected (${response.status})`);
      showProblems(card, body, doc);
      return;
    }
    card.querySelector("h3").textContent = `Invoice ${body.number} (${name})`;
    card.dataset.invoiceId = body.invoice_id;
    setStatus(card, body.status);
    poll(card, body.invoice_id, mine);
  }

  function idempotencyKey() {
    // crypto.randomUUID exists only in secure contexts (https, localhost); a LAN address over
    // http has getRandomValues only
    if (crypto.randomUUID) return crypto.randomUUID();
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) =>
      b.toString(16).padStart(2, "0")
    ).join("");
  }

  async function poll(card, invoiceId, mine) {
    let misses = 0;
    while (mine === session) {
      let view;
      try {
        const response = await api(`/invoices/${encodeURIComponent(invoiceId)}`);
        if (response.ok) view = await response.json();
      } catch {
        view = undefined;
      }
      if (mine !== session) return;
      if (!view) {
        misses += 1;
        if (misses >= POLL_GIVE_UP) {
          card.querySelector(".detail").textContent =
            "Status unknown: the service did not answer; the invoice list shows it once it does.";
          return;
        }
      } else {
        misses = 0;
        setStatus(card, view.status);
        if (FINAL.has(view.status)) {
          if (view.status === "failed") {
            card.querySelector(".detail").textContent = `Reason: ${view.error || "unknown"}`;
          } else {
            card.querySelector(".actions").replaceChildren(...fileButtons(view, true));
          }
          loadPage(pageCursors);
          return;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS * 2 ** misses));
    }
  }

  async function uploadFiles(files) {
    const mine = session;
    if (!files.length) return;
    // the formats checked when the files were chosen, for each of them
    const formats = formatsOrNotice();
    if (!formats) return;
    await Promise.all(
      Array.from(files).map(async (file) => {
        const text = await file.text();
        if (mine === session) await upload(file.name, text, formats);
      })
    );
  }

  // ------------------------------------------------------------------ files

  function fileButtons(view, withPreview) {
    const buttons = [];
    const formats = Object.keys(view.files || {});
    const label = view.number || view.invoice_id;
    const pdfFormat = PDF_FORMATS.find((fmt) => formats.includes(fmt));
    if (withPreview && pdfFormat) {
      const preview = el("button", { type: "button", text: "Preview PDF" });
      preview.addEventListener("click", () => showPreview(view, preview, pdfFormat));
      buttons.push(preview);
    }
    for (const fmt of formats) {
      const name = LABELS[fmt] || fmt.toUpperCase();
      const button = el("button", {
        type: "button",
        class: "link",
        "aria-label": `Download ${name} of invoice ${label}`,
        text: `Download ${name}`,
      });
      button.addEventListener("click", () => download(view, fmt));
      buttons.push(button);
    }
    return buttons;
  }

  // every file the view lists, by its id (the completed document has no /invoices/{id}/ path)
  async function fetchBlob(view, fmt) {
    const fileId = view.files[fmt].file_id;
    const response = await api(`/download?fid=${encodeURIComponent(fileId)}`);
    if (!response.ok) {
      notify(`The ${fmt} cannot be fetched: ${(await problemOf(response)).detail || response.status}`);
      return null;
    }
    const disposition = response.headers.get("Content-Disposition") || "";
    return { blob: await response.blob(), name: fileName(disposition) || `${view.number}.${fmt}` };
  }

  // the file's name: the UTF-8 filename* (the plain filename is its ASCII stand-in)
  function fileName(disposition) {
    const utf8 = /filename\*=UTF-8''([^;\s]+)/i.exec(disposition);
    if (utf8) {
      try {
        return decodeURIComponent(utf8[1]);
      } catch {
        // not percent-encoded UTF-8: the plain name below
      }
    }
    const plain = /filename="([^"]+)"/.exec(disposition);
    return plain ? plain[1] : null;
  }

  function blobUrl(blob) {
    const url = URL.createObjectURL(blob);
    blobUrls.push(url);
    return url;
  }

  function revoke(url) {
    URL.revokeObjectURL(url);
    blobUrls = blobUrls.filter((u) => u !== url);
  }

  async function download(view, fmt) {
    const mine = session;
    const file = await fetchBlob(view, fmt).catch(() => null);
    if (!file || mine !== session) return;
    const url = blobUrl(file.blob);
    const link = el("a", { href: url, download: file.name, hidden: "" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => revoke(url), 10000); // the browser has taken the file by then
    notify(`Downloaded ${file.name}.`);
  }

  async function showPreview(view, opener, fmt) {
    const mine = session;
    const file = await fetchBlob(view, fmt).catch(() => null);
    if (!file || mine !== session) return;
    closePreview(false);
    previewOpener = opener;
    const pdf = new Blob([file.blob], { type: "application/pdf" });
    $("preview-name").textContent = `${file.name}, page 1`;
    $("preview-frame").src = `${blobUrl(pdf)}#page=1`;
    $("preview").hidden = false;
    $("preview-title").setAttribute("tabindex", "-1");
    $("preview-title").focus();
  }

  function closePreview(returnFocus) {
    const src = $("preview-frame").getAttribute("src");
    if (src) revoke(src.split("#")[0]);
    $("preview-frame").removeAttribute("src");
    $("preview").hidden = true;
    if (returnFocus && previewOpener && previewOpener.isConnected) previewOpener.focus();
    previewOpener = null;
  }

  // ------------------------------------------------------------------ the list

  async function loadPage(cursors) {
    const mine = session;
    const seq = ++listSeq;
    const cursor = cursors[cursors.length - 1];
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (cursor) query.set("cursor", cursor);
    let body;
    try {
      const response = await api(`/invoices?${query}`);
      if (!response.ok) {
        const detail = (await problemOf(response)).detail || response.status;
        if (mine === session && seq === listSeq) notify(`The list cannot be loaded: ${detail}`);
        return;
      }
      body = await response.json();
    } catch {
      return;
    }
    if (mine !== session || seq !== listSeq) return;
    pageCursors = cursors;
    nextCursor = body.next_cursor;
    pageItems = body.items;
    $("page-no").textContent = `Page ${cursors.length}`;
    $("prev-page").disabled = cursors.length < 2;
    $("next-page").disabled = !nextCursor;
    renderList();
  }

  function renderList() {
    const needle = $("search").value.trim().toLowerCase();
    const rows = pageItems
      .filter((v) => !needle || `${v.number} ${v.status}`.toLowerCase().includes(needle))
      .map((v) =>
        el(
          "tr",
          {},
          el("td", { text: v.number }),
          el("td", {}, el("span", { class: "status", "data-status": v.status, text: v.status })),
          el("td", { text: new Date(v.created_at).toLocaleString() }),
          el("td", {}, ...(v.status === "ready" ? fileButtons(v, false) : []))
        )
      );
    $("invoices").tBodies[0].replaceChildren(...rows);
    const shown = rows.length === pageItems.length ? "" : `, ${rows.length} of ${pageItems.length} shown`;
    $("list-caption").textContent = pageItems.length
      ? `Newest first${shown}`
      : "No invoices yet.";
  }

  // ------------------------------------------------------------------ wiring

  document.addEventListener("DOMContentLoaded", () => {
    $("sign-in-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", () => signOut("Signed out."));
    $("files").addEventListener("change", (event) => {
      uploadFiles(event.target.files);
      event.target.value = "";
    });
    // a file dropped outside the drop zone must not navigate away (the session is in memory)
    document.addEventListener("dragover", (event) => event.preventDefault());
    document.addEventListener("drop", (event) => event.preventDefault());
    const drop = $("drop");
    drop.addEventListener("dragover", (event) => {
      event.preventDefault();
      drop.classList.add("over");
    });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("over");
      uploadFiles(event.dataTransfer.files);
    });
    $("send-paste").addEventListener("click", () => {
      const text = $("paste").value;
      if (!text.trim()) {
        notify("Paste an invoice's JSON first.");
        $("paste").focus();
        return;
      }
      const formats = formatsOrNotice();
      if (formats) upload("pasted JSON", text, formats);
    });
    for (const box of formatBoxes()) box.addEventListener("change", formatChanged);
    $("close-preview").addEventListener("click", () => closePreview(true));
    $("search").addEventListener("input", renderList);
    $("refresh").addEventListener("click", () => loadPage(pageCursors));
    $("prev-page").addEventListener("click", () => loadPage(pageCursors.slice(0, -1)));
    $("next-page").addEventListener("click", () => loadPage([...pageCursors, nextCursor]));
    $("email").focus();
  });
})();
