// Clicks through a Snakemake report for tests/test_report.py, which appends this script to
// a copy of report.html and loads it in headless Chromium (--dump-dom).
//
// Why: the report is one React page without URL routing. A figure and its caption enter
// the DOM only after clicks (category, subcategory, then the row's buttons), so a plain
// DOM dump never shows them. On "load" this script opens every category, subcategory,
// toggle value and row, each click rendered synchronously (ReactDOM.flushSync, so there
// are no timers to wait for), and writes what every row showed as JSON into
// <pre id="report-driver-result">: {categories, figures: [{category, subcategory, toggle,
// labels, tag, src, resultPath, caption}], error}.
window.addEventListener("load", () => {
  const record = { categories: [], figures: [], error: null };
  const output = document.createElement("pre");
  output.id = "report-driver-result";
  output.hidden = true;
  document.body.appendChild(output);

  const click = (element) => ReactDOM.flushSync(() => element.click());
  const navbar = () => document.querySelector("#app > div > nav");
  const navbarPanel = () => navbar().querySelector(":scope > div > div.p-3");
  const mainPanel = () => document.querySelector("#app > div > div.grow");
  const menuEntries = () =>
    [...navbarPanel().querySelectorAll(":scope > ul > li > a")].map((a) => [a.textContent.trim(), a]);
  const openEntry = (name) => {
    const entry = menuEntries().find(([text]) => text === name);
    if (!entry) throw new Error(`no menu entry "${name}"`);
    click(entry[1]);
  };
  const goHome = () => click(navbar().querySelector(":scope > div > nav li a"));
  const resultsTable = () => navbarPanel().querySelector("table");

  // Opens a results table (a toggle value chosen if any) and returns its rows.
  const openRows = (category, subcategory, toggleId) => {
    goHome();
    openEntry(category);
    if (subcategory !== null) openEntry(subcategory);
    if (toggleId !== null) click(document.getElementById(toggleId));
    return [...resultsTable().querySelectorAll("tbody > tr")];
  };

  // Shows row `index` (eye button), then its details (info button): what a reader sees.
  const visitRow = (category, subcategory, toggleId, index) => {
    const row = openRows(category, subcategory, toggleId)[index];
    const [show, info] = row.querySelectorAll("td:last-child a");
    const figure = {
      category,
      subcategory,
      toggle: toggleId,
      labels: [...row.querySelectorAll("td:not(:last-child)")].map((td) => td.textContent.trim()),
    };
    click(show);
    const shown = mainPanel().querySelector("img, iframe");
    figure.tag = shown && shown.tagName.toLowerCase();
    figure.src = shown && shown.getAttribute("src");
    click(info);
    figure.resultPath = navbar().querySelector(":scope > div > nav li.grow").textContent.trim();
    const heading = [...navbarPanel().querySelectorAll("li")].find((li) => li.textContent.trim() === "Description");
    figure.caption = heading && heading.nextElementSibling ? heading.nextElementSibling.innerHTML : null;
    record.figures.push(figure);
  };

  try {
    // createRoot renders asynchronously: make sure the first render has happened.
    ReactDOM.flushSync(() => root.render(e(App)));
    goHome();
    const general = new Set(["Workflow", "Statistics", "About"]);
    record.categories = menuEntries().map(([text]) => text).filter((text) => !general.has(text));
    for (const category of record.categories) {
      goHome();
      openEntry(category);
      // one subcategory: the category opens straight onto its table
      const subcategories = resultsTable() ? [null] : menuEntries().map(([text]) => text);
      for (const subcategory of subcategories) {
        openRows(category, subcategory, null);
        const toggleIds = [...navbarPanel().querySelectorAll("fieldset input[type=radio]")].map((r) => r.id);
        for (const toggleId of toggleIds.length ? toggleIds : [null]) {
          const rows = openRows(category, subcategory, toggleId).length;
          for (let index = 0; index < rows; index++) visitRow(category, subcategory, toggleId, index);
        }
      }
    }
    goHome();
  } catch (error) {
    record.error = String(error.stack || error);
  }
  output.textContent = JSON.stringify(record);
});
