// Mailharness web UI: progressive enhancement of server-rendered pages.
// Live lists over the API's server-sent events, copy buttons, tabs, relative times,
// keyboard shortcuts. Everything works without it except the live updates.
"use strict";

(function () {
  const UI = "/ui";
  const FRAGMENT = { "X-Mailharness-Fragment": "1" };

  // -- times: "3 min ago" / "in 2 h", the full local time in the tooltip ----------------
  const units = [["year", 31536000], ["month", 2592000], ["day", 86400], ["hour", 3600], ["minute", 60]];
  const rtf = typeof Intl !== "undefined" && Intl.RelativeTimeFormat
    ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto", style: "short" }) : null;

  function relative(date) {
    const secs = (date.getTime() - Date.now()) / 1000;
    const abs = Math.abs(secs);
    if (abs < 45 || !rtf) return abs < 45 ? (secs < 0 ? "just now" : "in a moment") : date.toLocaleString();
    for (const [unit, size] of units) {
      if (abs >= size) return rtf.format(Math.round(secs / size), unit);
    }
    return rtf.format(Math.round(secs), "second");
  }

  function localizeTimes(root) {
    root.querySelectorAll("time[data-relative]").forEach((el) => {
      const date = new Date(el.getAttribute("datetime"));
      if (isNaN(date.getTime())) return;
      el.textContent = relative(date);
      el.title = date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
    });
  }

  // -- copy to the clipboard ----------------------------------------------------------
  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (_) {
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "sr";
      document.body.appendChild(area);
      area.select();
      let ok = false;
      try { ok = document.execCommand("copy"); } catch (_e) { ok = false; }
      area.remove();
      return ok;
    }
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-copy]");
    if (button) {
      event.preventDefault();
      const ok = await copyText(button.getAttribute("data-copy"));
      const label = button.dataset.label || button.textContent;
      button.dataset.label = label;
      button.textContent = ok ? "Copied" : "Copy failed";
      button.setAttribute("aria-live", "polite");
      setTimeout(() => { button.textContent = label; }, 1500);
      return;
    }
    if (event.target.closest("[data-open-help]")) showHelp();
  });

  // -- confirmations for destructive forms --------------------------------------------
  document.addEventListener("submit", (event) => {
    const form = event.target;
    const question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // -- tabs (message page) ------------------------------------------------------------
  function setupTabs(block) {
    const tabs = Array.from(block.querySelectorAll("[data-tab]"));
    if (!tabs.length) return;
    function select(tab, focus) {
      tabs.forEach((t) => {
        const on = t === tab;
        t.setAttribute("aria-selected", on ? "true" : "false");
        t.tabIndex = on ? 0 : -1;
        const panel = document.getElementById(t.getAttribute("aria-controls"));
        if (panel) panel.hidden = !on;
      });
      if (focus) tab.focus();
    }
    const fromHash = tabs.find((t) => t.getAttribute("href") === location.hash);
    select(fromHash || tabs[0], false);
    tabs.forEach((tab, i) => {
      tab.addEventListener("click", (event) => {
        event.preventDefault();
        select(tab, false);
        history.replaceState(null, "", tab.getAttribute("href"));
      });
      tab.addEventListener("keydown", (event) => {
        let next = null;
        if (event.key === "ArrowRight") next = tabs[(i + 1) % tabs.length];
        if (event.key === "ArrowLeft") next = tabs[(i - 1 + tabs.length) % tabs.length];
        if (event.key === "Home") next = tabs[0];
        if (event.key === "End") next = tabs[tabs.length - 1];
        if (next) {
          event.preventDefault();
          select(next, true);
          history.replaceState(null, "", next.getAttribute("href"));
        }
      });
    });
    block.selectTab = (n) => { if (tabs[n]) { select(tabs[n], true); history.replaceState(null, "", tabs[n].getAttribute("href")); } };
  }

  // -- live updates over server-sent events --------------------------------------------
  function parseRows(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    return Array.from(template.content.querySelectorAll("li[data-message-id]"));
  }

  // The stream resumes from where the page was read (data-since), so nothing that
  // happened in between is missed; on reconnects the browser sends Last-Event-ID.
  function eventsUrl(section, inboxId, type) {
    const since = section.getAttribute("data-since");
    return "/api/v1/events?inbox_id=" + encodeURIComponent(inboxId) + "&types=" + type +
      (since ? "&since=" + encodeURIComponent(since) : "");
  }

  function liveInbox(section) {
    const inboxId = section.getAttribute("data-live-inbox");
    const list = section.querySelector("[data-rows]");
    const empty = section.querySelector("[data-empty]");
    const state = section.querySelector("[data-live-state]");
    const badge = document.querySelector("[data-count]");
    const title = section.getAttribute("data-live-title");
    let unread = parseInt(section.getAttribute("data-unread") || "0", 10);
    let running = null;
    let again = false;

    function setTitle() {
      document.title = (unread > 0 ? "(" + unread + ") " : "") + title + " · Mailharness";
    }

    async function fetchRows(since) {
      const url = UI + "/inboxes/" + inboxId + "/rows" + (since ? "?since=" + encodeURIComponent(since) : "");
      const response = await fetch(url, { headers: FRAGMENT, credentials: "same-origin" });
      if (response.status === 401) { location.reload(); return null; }
      if (!response.ok) return since ? fetchRows(null) : null; // the newest one was deleted
      return parseRows(await response.text());
    }

    async function catchUp() {
      const first = list.querySelector("li[data-message-id]");
      const rows = await fetchRows(first ? first.getAttribute("data-message-id") : null);
      if (!rows) return;
      let added = 0;
      rows.reverse().forEach((row) => {  // oldest first, each goes to the top
        if (document.getElementById(row.id)) return;
        row.classList.add("fresh");
        localizeTimes(row);
        list.insertBefore(row, list.firstChild);
        added += 1;
        if (row.classList.contains("unread")) unread += 1;
      });
      if (added) {
        if (empty) empty.hidden = true;
        if (badge) badge.textContent = String(parseInt(badge.textContent || "0", 10) + added);
        setTitle();
      }
    }

    function refresh() {  // one catch-up at a time; events during one ask for another
      if (running) { again = true; return running; }
      running = catchUp().catch(() => {}).finally(() => {
        running = null;
        if (again) { again = false; refresh(); }
      });
      return running;
    }

    const source = new EventSource(eventsUrl(section, inboxId, "message.received"));
    source.addEventListener("open", () => {
      state.textContent = "Live: new mail appears here as it arrives.";
      state.classList.add("live");
      refresh();  // whatever arrived between the page and the stream
    });
    source.addEventListener("message.received", () => refresh());
    source.addEventListener("error", () => {
      state.classList.remove("live");
      state.textContent = source.readyState === EventSource.CLOSED
        ? "Live updates are unavailable; reload to see new mail." : "Reconnecting…";
    });
  }

  function liveSent(section) {
    const inboxId = section.getAttribute("data-live-sent");
    const state = section.querySelector("[data-live-state]");
    const pending = new Set();

    async function refreshCard(outboundId) {
      if (pending.has(outboundId)) return;
      pending.add(outboundId);
      try {
        const response = await fetch(UI + "/outbound/" + encodeURIComponent(outboundId) + "/card", { headers: FRAGMENT, credentials: "same-origin" });
        if (response.status === 401) { location.reload(); return; }
        if (!response.ok) return;
        const template = document.createElement("template");
        template.innerHTML = await response.text();
        const card = template.content.querySelector("[data-outbound]");
        if (!card) return;
        localizeTimes(card);
        const current = document.getElementById(card.id);
        if (current) { current.replaceWith(card); return; }
        if (section.hasAttribute("data-paged")) return;  // new mail belongs on the first page
        const list = section.querySelector("[data-outbounds]");
        const empty = section.querySelector("[data-empty]");
        list.insertBefore(card, list.firstChild);
        if (empty) empty.hidden = true;
      } finally {
        pending.delete(outboundId);
      }
    }

    const source = new EventSource(eventsUrl(section, inboxId, "delivery.updated"));
    source.addEventListener("open", () => {
      state.textContent = "Live: delivery states update as they change.";
      state.classList.add("live");
      // Anything still in flight may have moved on while the stream was connecting.
      section.querySelectorAll("[data-outbound]").forEach((card) => {
        if (card.querySelector('[data-state="queued"], [data-state="deferred"]')) refreshCard(card.getAttribute("data-outbound"));
      });
    });
    source.addEventListener("delivery.updated", (event) => {
      try {
        const delivery = JSON.parse(event.data);
        if (delivery && delivery.outbound_id) refreshCard(delivery.outbound_id);
      } catch (_) { /* not ours */ }
    });
    source.addEventListener("error", () => {
      state.classList.remove("live");
      state.textContent = source.readyState === EventSource.CLOSED
        ? "Live updates are unavailable; reload to see changes." : "Reconnecting…";
    });
  }

  function liveRules() {
    const source = new EventSource("/api/v1/events?types=rule.hit");
    source.addEventListener("rule.hit", (event) => {
      try {
        const rule = JSON.parse(event.data);
        const cell = rule && document.querySelector("#r-" + CSS.escape(rule.id) + " [data-hits]");
        if (cell) cell.textContent = String(rule.hits);
      } catch (_) { /* not ours */ }
    });
  }

  // -- keyboard -----------------------------------------------------------------------
  function showHelp() {
    const help = document.getElementById("help");
    if (help && !help.open) help.showModal();
  }

  function navItems() {
    return Array.from(document.querySelectorAll("[data-nav-item]")).filter((el) => el.offsetParent !== null);
  }

  function move(step) {
    const items = navItems();
    if (!items.length) return;
    const at = items.indexOf(document.activeElement);
    const next = at < 0 ? (step > 0 ? 0 : items.length - 1) : Math.min(items.length - 1, Math.max(0, at + step));
    items[next].focus();
    items[next].scrollIntoView({ block: "nearest" });
  }

  let prefix = null;
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target.closest && target.closest("input, textarea, select, [contenteditable], dialog[open]")) {
      if (event.key === "Escape" && target.blur) target.blur();
      return;
    }
    const key = event.key;
    if (prefix === "g") {
      prefix = null;
      const to = { i: UI + "/", r: UI + "/rules", s: UI + "/status" }[key];
      if (to) { event.preventDefault(); location.href = to; }
      return;
    }
    const click = (selector) => { const el = document.querySelector(selector); if (el) { event.preventDefault(); el.click(); } };
    switch (key) {
      case "/": {
        const search = document.querySelector("[data-key-search]");
        if (search) { event.preventDefault(); search.focus(); search.select(); }
        break;
      }
      case "j": event.preventDefault(); move(1); break;
      case "k": event.preventDefault(); move(-1); break;
      case "u": click("[data-key-up]"); break;
      case "c": click("[data-key-copy]"); break;
      case "n": click("[data-key-new]"); break;
      case "?": event.preventDefault(); showHelp(); break;
      case "g": prefix = "g"; setTimeout(() => { prefix = null; }, 1200); break;
      default:
        if (/^[1-9]$/.test(key)) {
          const block = document.querySelector("[data-tabs]");
          if (block && block.selectTab) { event.preventDefault(); block.selectTab(parseInt(key, 10) - 1); }
        }
    }
  });

  // -- start ----------------------------------------------------------------------------
  function start() {
    localizeTimes(document);
    setInterval(() => localizeTimes(document), 30000);
    document.querySelectorAll("[data-tabs]").forEach(setupTabs);
    document.querySelectorAll("[data-live-inbox]:not([data-paged])").forEach(liveInbox);
    document.querySelectorAll("[data-live-sent]").forEach(liveSent);
    document.querySelectorAll("table[data-live-rules]").forEach(liveRules);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
