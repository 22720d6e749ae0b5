"""Browser test of the built book (book/_build/html, made by `make book`) in headless Chromium.

Checks what only a browser can: the 한국어 / English switch (one language at a time, set before
the page is painted, remembered across pages), plotly figures and equations drawn with the book's
own plotly.js and MathJax (no internet), and no errors in the browser console; and that each
chapter's Colab button opens the notebook's real path in the repository.
Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them).
"""

import functools
import http.server
import json
import re
import shutil
import tempfile
import threading
import warnings
from pathlib import Path
from urllib.parse import urlparse

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

REPO = Path(__file__).parents[1]
SITE = REPO / "book" / "_build" / "html"
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
TIMEOUT = 30  # seconds to wait for anything in the browser
# Runs first in every page: remembers the language the page had when it was first painted.
FIRST_FRAME = "requestAnimationFrame(() => { window.langAtFirstFrame = document.documentElement.dataset.lang; });"


def require_site():
    assert (SITE / "index.html").is_file(), f"{SITE} has no built site: run `make book` first"


@pytest.fixture(scope="module")
def site_url():
    """Serve the built site on 127.0.0.1 at a free port, in a thread."""
    require_site()
    handler = functools.partial(QuietHandler, directory=str(SITE))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}"
        server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def start_chromium(language):
    """Headless Chromium whose browser language is `language`, in a fresh profile."""
    if not (CHROMIUM and CHROMEDRIVER):
        reason = "BROWSER TEST NOT RUN: no chromium / chromedriver (apt-get install chromium chromium-driver)"
        warnings.warn(reason)
        pytest.skip(reason)
    profile = tempfile.mkdtemp(prefix="ctrkit-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", f"--lang={language}", "--window-size=1400,1000"]:
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": language})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": FIRST_FRAME})
    driver.profile_dir = profile
    return driver


def quit_chromium(driver):
    driver.quit()
    shutil.rmtree(driver.profile_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(site_url):
    """A browser whose reader prefers Korean (started after site_url: a missing site fails first)."""
    driver = start_chromium("ko-KR")
    yield driver
    quit_chromium(driver)


def wait(driver, condition, message):
    return WebDriverWait(driver, TIMEOUT, poll_frequency=0.1).until(lambda d: condition(), message)


def wait_for_page(driver, path):
    """Wait until the browser shows the page `path`, loaded, with its language switch."""
    script = "return document.readyState === 'complete' && document.querySelector('.lang-switch button') !== null"
    wait(driver, lambda: urlparse(driver.current_url).path == f"/{path}" and driver.execute_script(script),
         f"{path} did not load with its language switch")


def open_page(driver, site_url, path):
    driver.get(f"{site_url}/{path}")
    wait_for_page(driver, path)


def shown_language(driver):
    """'ko' or 'en' when exactly that language's prose is visible, checked on every block of the page."""
    ko = [e.is_displayed() for e in driver.find_elements(By.CSS_SELECTOR, ".lang-ko")]
    en = [e.is_displayed() for e in driver.find_elements(By.CSS_SELECTOR, ".lang-en")]
    assert ko and en, "the page has no bilingual prose blocks"
    if all(ko) and not any(en):
        return "ko"
    if all(en) and not any(ko):
        return "en"
    return f"mixed (ko {ko}, en {en})"


def html_lang(driver):
    return driver.execute_script("return document.documentElement.lang")


def test_language_switch_is_remembered_across_pages(site_url, browser):
    open_page(browser, site_url, "intro.html")
    browser.execute_script("localStorage.clear()")  # a first visit
    browser.get(f"{site_url}/")  # index.html sends the reader on to intro.html
    wait_for_page(browser, "intro.html")
    assert shown_language(browser) == "ko" and html_lang(browser) == "ko"

    browser.find_element(By.CSS_SELECTOR, ".lang-switch button[data-lang='en']").click()
    wait(browser, lambda: shown_language(browser) == "en", "English did not show after clicking 'English'")
    assert html_lang(browser) == "en"

    browser.find_element(By.CSS_SELECTOR, "nav.bd-links a[href$='01_data.html']").click()  # the sidebar's chapter 01
    wait_for_page(browser, "notebooks/01_data.html")
    assert shown_language(browser) == "en" and html_lang(browser) == "en"
    first_frame = browser.execute_script("return window.langAtFirstFrame")
    assert first_frame == "en", "the page was painted before its language was set"

    browser.find_element(By.CSS_SELECTOR, ".lang-switch button[data-lang='ko']").click()
    wait(browser, lambda: shown_language(browser) == "ko", "Korean did not show after clicking '한국어'")
    open_page(browser, site_url, "glossary.html")
    assert shown_language(browser) == "ko" and html_lang(browser) == "ko"


def test_english_browser_starts_in_english(site_url):
    driver = start_chromium("en-US")
    try:
        open_page(driver, site_url, "intro.html")
        assert shown_language(driver) == "en" and html_lang(driver) == "en"
    finally:
        quit_chromium(driver)


def chapter_pages():
    return sorted(p.relative_to(SITE).as_posix() for p in (SITE / "notebooks").glob("*.html"))


def test_colab_buttons_open_the_repository_notebooks():
    """Colab opens github/<org>/<repo>/blob/<branch>/<path>: the notebook's path in the repository
    (notebooks/01_data.ipynb), not its path through the book/notebooks link, which GitHub does not follow."""
    require_site()
    assert chapter_pages(), "the site has no chapter"
    for page in chapter_pages():
        html = (SITE / page).read_text(encoding="utf-8")
        paths = re.findall(r'href="https://colab\.research\.google\.com/github/[^/]+/[^/]+/blob/[^/]+/([^"]+)"', html)
        assert paths == [Path(page).with_suffix(".ipynb").as_posix()], f"{page}: Colab opens {paths}"
        assert (REPO / paths[0]).is_file()


HANGUL = re.compile("[\uac00-\ud7a3]")
ENGLISH_WORDS = re.compile(r"\b[A-Za-z]*[a-z]{2,}\b")  # a word with lower-case letters: not an acronym such as AUC
FORMULAS = {"sign(x)·log(1+|x|)"}  # axis titles that are mathematics, the same in both languages


def figure_layouts(html: str):
    """The layout of every plotly figure in a built page (the JSON arguments of its Plotly.newPlot calls)."""
    decoder = json.JSONDecoder()
    for call in re.finditer(r'Plotly\.newPlot\(\s*"[^"]+",\s*', html):
        _, end = decoder.raw_decode(html, call.end())  # the traces
        layout, _ = decoder.raw_decode(html, html.index("{", end))  # the next argument
        yield layout


def figure_labels(layout: dict):
    """The title, axis titles, legend title and annotations (subplot titles among them) of a figure."""
    title = layout.get("title", {}).get("text")
    axes = [v.get("title", {}).get("text") for k, v in layout.items() if re.fullmatch(r"[xy]axis\d*", k)]
    legend = layout.get("legend", {}).get("title", {}).get("text")
    return [t for t in (title, *axes, legend, *(a.get("text") for a in layout.get("annotations", []))) if t]


def english_only(label: str) -> bool:
    """A label of two or more English words without its Korean; names (`pwl`, `C1`, `ECE`, `UMAP 1`) and
    formulas are the same in both languages."""
    return label not in FORMULAS and len(ENGLISH_WORDS.findall(label)) >= 2 and not HANGUL.search(label)


def test_english_only_can_fail():
    assert english_only("test auc") and english_only("block 1 (the last), mean over rows")
    assert not english_only("테스트 · test auc") and not english_only("ECE") and not english_only("UMAP 1")


def test_figure_labels_are_in_both_languages():
    """Figure titles, axis titles, legend titles and annotations carry Korean and English, as the prose does."""
    require_site()
    labels = [(page, label) for page in chapter_pages()
              for layout in figure_layouts((SITE / page).read_text(encoding="utf-8")) for label in figure_labels(layout)]
    assert len(labels) > 50, f"found only {len(labels)} figure labels: has the page layout changed?"
    untranslated = [(page, label) for page, label in labels if english_only(label)]
    assert not untranslated, f"figure labels in English only: {untranslated}"


def test_plotly_figures_are_drawn(site_url, browser):
    all_drawn = "return [...document.querySelectorAll('.plotly-graph-div')].every(d => d.querySelector('.main-svg'))"
    figures = 0
    for page in chapter_pages():
        open_page(browser, site_url, page)
        n = len(browser.find_elements(By.CSS_SELECTOR, ".plotly-graph-div"))
        wait(browser, lambda: browser.execute_script(all_drawn), f"plotly did not draw the {n} figures of {page}")
        figures += n
    assert figures > 0, "no chapter has a plotly figure"


def test_equations_are_typeset(site_url, browser):
    """MathJax comes with the book (sphinx-mathjax-offline), so equations render without internet."""
    for page in ["intro.html", *chapter_pages()]:
        open_page(browser, site_url, page)
        if browser.execute_script("return document.querySelector('.math') !== null"):
            wait(browser, lambda: browser.execute_script("return document.querySelector('mjx-container') !== null"),
                 f"MathJax did not typeset the equations of {page}")


def test_no_console_errors(site_url, browser):
    pages = ["intro.html", "glossary.html", "search.html", "genindex.html", *chapter_pages()]
    errors = []
    browser.get_log("browser")  # drop what earlier tests left
    for page in pages:
        open_page(browser, site_url, page)
        errors += [f"{page}: {entry['message']}" for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, "errors in the browser console:\n" + "\n".join(errors)
