// The book in one language at a time (CONTRIBUTING.md, "How to add a chapter"). Every prose block exists twice, in
// <div class="lang-ko"> and <div class="lang-en">; this script sets <html lang data-lang> and
// lang.css hides the other language. It runs in <head> (jupyter-book loads _static/*.js there,
// without defer), so the language is set before the page is first painted: no flash.
// The choice is kept in localStorage; a first visit gets English if the browser's preferred
// language is English, Korean otherwise. Without JavaScript both languages show.
(() => {
  const KEY = "ctrkit-lang";
  const LABELS = { ko: "한국어", en: "English" };

  function chosen() {
    let saved = null;
    try {
      saved = localStorage.getItem(KEY);
    } catch (e) {} // storage can be blocked (privacy settings); the default still works
    if (saved === "ko" || saved === "en") return saved;
    const browser = (navigator.languages && navigator.languages[0]) || navigator.language || "";
    return browser.toLowerCase().startsWith("en") ? "en" : "ko";
  }

  function apply(lang) {
    document.documentElement.lang = lang;
    document.documentElement.dataset.lang = lang;
    for (const button of document.querySelectorAll(".lang-switch button")) {
      button.setAttribute("aria-pressed", button.dataset.lang === lang);
    }
  }

  function choose(lang) {
    try {
      localStorage.setItem(KEY, lang);
    } catch (e) {}
    apply(lang);
  }

  // The switch: two buttons at the start of the article's top bar (sphinx-book-theme).
  function addSwitch() {
    const box = document.createElement("div");
    box.className = "lang-switch";
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", "언어 · Language");
    for (const [lang, label] of Object.entries(LABELS)) {
      const button = document.createElement("button");
      button.type = "button";
      button.lang = button.dataset.lang = lang;
      button.textContent = label;
      button.addEventListener("click", () => choose(lang));
      box.append(button);
    }
    (document.querySelector(".article-header-buttons") || document.body).prepend(box);
    apply(document.documentElement.dataset.lang);
  }

  apply(chosen());
  document.addEventListener("DOMContentLoaded", addSwitch);
  // Follow a choice made in another tab, or on a later page before "back" restored this one.
  window.addEventListener("storage", () => apply(chosen()));
  window.addEventListener("pageshow", () => apply(chosen()));
})();
