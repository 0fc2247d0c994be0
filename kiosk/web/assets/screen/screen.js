// Visitor screen: renders the kiosk's view (pushed by server-sent events) and sends touches
// and keys back. It never decides anything itself: the conversation loop does.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const STATE_NAMES = {
    idle: "待っています", prompting: "どうぞ話してください", listening: "聞いています",
    thinking: "調べています", answering: "お答えしています", clarifying: "確かめています",
    suggesting: "見つかりませんでした", waiting: "次の質問をどうぞ", warning: "まだお使いですか",
  };
  const STATE_MARKS = {
    idle: "■", prompting: "▶", listening: "●", thinking: "…", answering: "♪",
    clarifying: "？", suggesting: "×", waiting: "▶", warning: "！",
  };
  let config = { keymap: {}, text_sizes: [1], furigana: false, categories: [] };
  let furigana = false;
  let sizeIndex = 0;
  let view = null;
  let lastState = "idle";

  function post(path, body) {
    return fetch(path, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
    }).catch(() => {});
  }

  function put(el, text, ruby) {
    if (furigana && ruby) { el.innerHTML = ruby; } else { el.textContent = text || ""; }
  }

  function show(el, visible) { el.hidden = !visible; }

  function buttonList(list, items, rubies, onPick) {
    list.replaceChildren();
    items.forEach((item, i) => {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      put(b, item, rubies && rubies[i]);
      b.addEventListener("click", () => onPick(item, i));
      li.appendChild(b);
      list.appendChild(li);
    });
  }

  function applySize() {
    const sizes = config.text_sizes.length ? config.text_sizes : [1];
    document.documentElement.style.setProperty("--scale", String(sizes[sizeIndex]));
  }

  function render(v) {
    view = v;
    if (v.state === "idle" && lastState !== "idle") {
      // a session ended: forget the visitor's screen settings and typing too
      sizeIndex = 0; furigana = !!config.furigana; $("q").value = ""; applySize();
      loadConfig();
    }
    lastState = v.state;
    const r = v.ruby || {};
    $("state-name").textContent = STATE_NAMES[v.state] || v.state;
    $("state-mark").textContent = STATE_MARKS[v.state] || "■";
    document.body.dataset.state = v.state;
    put($("status"), v.status, r.status);
    show($("notice"), !!v.notice); put($("notice"), v.notice, r.notice);
    const warning = v.state === "warning";
    show($("warning"), warning);
    $("warning-text").textContent = warning
      ? (v.seconds_left === null || v.seconds_left === undefined
          ? "続けるときは、ボタンを押してください。"
          : "あと " + v.seconds_left + " 秒で終わります。続けるときは、ボタンを押してください。")
      : "";
    show($("heard"), !!v.heard); put($("heard-text"), v.heard, r.heard);
    const a = v.answer;
    show($("answer"), !!a);
    if (a) {
      const ra = r.answer || {};
      put($("answer-title"), a.title, ra.title);
      const body = $("answer-body");
      body.replaceChildren();
      if (furigana && ra.body) {
        const p = document.createElement("p"); p.innerHTML = ra.body.replace(/\n/g, "<br>");
        body.appendChild(p);
      } else {
        (a.body || "").split(/\n+/).forEach((line) => {
          if (!line.trim()) return;
          const p = document.createElement("p"); p.textContent = line; body.appendChild(p);
        });
      }
      const facts = $("answer-facts");
      facts.replaceChildren();
      [["address", "住所"], ["phone", "電話"], ["hours", "時間"]].forEach(([k, label]) => {
        if (!a[k]) return;
        const dt = document.createElement("dt"); dt.textContent = label;
        const dd = document.createElement("dd"); put(dd, a[k], ra[k]);
        facts.append(dt, dd);
      });
      $("answer-source").textContent = a.provenance || (a.source ? "出典：" + a.source : "");
    }
    show($("ask"), !!v.question); put($("ask-question"), v.question, r.question);
    show($("choices"), v.choices.length > 0);
    buttonList($("choice-list"), v.choices, r.choices, (_t, i) => post("/api/choose", { index: i }));
    show($("suggest"), v.categories.length > 0);
    buttonList($("suggest-list"), v.categories, r.categories,
               (c) => post("/api/category", { category: c }));
    const hp = $("headphones");
    hp.setAttribute("aria-pressed", v.headphones ? "true" : "false");
    hp.firstChild.textContent = v.headphones ? "イヤホン：オン" : "イヤホン：オフ";
    $("furigana").setAttribute("aria-pressed", furigana ? "true" : "false");
    $("furigana").textContent = furigana ? "ふりがな：オン" : "ふりがな：オフ";
    $("levels").textContent = "話す速さ " + v.rate_step + "／" + v.rate_steps +
      "（" + v.rate_steps + " がふつう）・音の大きさ " + v.volume_step + "／" + v.volume_steps +
      (v.mic ? "" : "・マイクは使えません") + (v.speaker ? "" : "・音が出ません");
  }

  function loadConfig() {
    return fetch("/api/config").then((r) => r.json()).then((c) => {
      config = c;
      buttonList($("category-list"), c.categories || [], null,
                 (cat) => post("/api/category", { category: cat }));
    }).catch(() => {});
  }

  function rerender() { if (view) render(view); }

  function onKey(e) {
    const t = e.target;
    const tag = t && t.tagName ? t.tagName.toLowerCase() : "";
    if (tag === "input" || tag === "textarea") {
      if (e.key === "Escape") { t.blur(); }
      return;
    }
    if ((tag === "button" || tag === "a") && (e.key === " " || e.key === "Enter")) return;
    const action = config.keymap[e.key];
    if (!action) return;
    e.preventDefault();
    if (action === "press") post("/api/press"); else post("/api/key", { command: action });
  }

  document.addEventListener("DOMContentLoaded", () => {
    loadConfig().then(() => { furigana = !!config.furigana; applySize(); rerender(); });
    $("talk").addEventListener("click", () => post("/api/press"));
    $("extend").addEventListener("click", () => post("/api/press"));
    document.querySelectorAll("button[data-key]").forEach((b) => {
      b.addEventListener("click", () => post("/api/key", { command: b.dataset.key }));
    });
    $("bigger").addEventListener("click", () => {
      sizeIndex = Math.min(sizeIndex + 1, config.text_sizes.length - 1); applySize();
    });
    $("smaller").addEventListener("click", () => { sizeIndex = Math.max(sizeIndex - 1, 0); applySize(); });
    $("furigana").addEventListener("click", () => { furigana = !furigana; rerender(); });
    $("text-search").addEventListener("submit", (e) => {
      e.preventDefault();
      const text = $("q").value.trim();
      if (text) post("/api/query", { text: text });
    });
    document.addEventListener("keydown", onKey);
    fetch("/api/view").then((r) => r.json()).then(render).catch(() => {});
    const source = new EventSource("/events");
    source.onmessage = (e) => render(JSON.parse(e.data));
  });
})();
