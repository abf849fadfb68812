// The coursemart page: courses from /v1/courses/recent, filtered, paged by cursor, with every
// filter and the number of pages shown in the page's URL (reload, back and a shared link give
// the same view).
"use strict";

const PAGE_SIZE = 50;
const SEARCH_PAUSE_MS = 400;
const MAX_LIMIT = 1000;
const KEY_STORAGE = "coursemart.apiKey";
const DEFAULTS = { order: "upcoming" };
const DAY_MS = 24 * 60 * 60 * 1000;
const ORDERS = ["upcoming", "past", "recent"];
const MAX_PAGES = 20;

const elements = {
  keyForm: document.getElementById("key-form"),
  key: document.getElementById("api-key"),
  filters: document.getElementById("filters"),
  filtersToggle: document.getElementById("filters-toggle"),
  filtersCount: document.getElementById("filters-count"),
  filterFields: document.getElementById("filter-fields"),
  addressError: document.getElementById("address-error"),
  category: document.getElementById("category"),
  level: document.getElementById("level"),
  error: document.getElementById("error"),
  status: document.getElementById("status"),
  freshness: document.getElementById("freshness"),
  table: document.getElementById("courses"),
  rows: document.querySelector("#courses tbody"),
  more: document.getElementById("more"),
};

let nextCursor = null;
let shown = 0;
let pages = 1;
let generation = 0; // a newer listing makes older answers stale
let busy = false; // a listing is being read: More waits (it stays focusable, unlike disabled)

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, params = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, value);
  }
  const headers = { Accept: "application/json" };
  const key = sessionStorage.getItem(KEY_STORAGE);
  if (key) headers["x-api-key"] = key;
  let response;
  try {
    response = await fetch(url, { headers });
  } catch (error) {
    throw new ApiError(0, "The API cannot be reached. Is the server running?");
  }
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    body = null;
  }
  if (!response.ok) {
    const message = body && body.message ? body.message : `HTTP ${response.status}`;
    throw new ApiError(response.status, message);
  }
  return body;
}

// ---------------------------------------------------------------------------------------------
// The view's state: the form's named controls, mirrored in the URL.

function formState() {
  const state = {};
  for (const [name, value] of new FormData(elements.filters)) {
    if (value !== "" && DEFAULTS[name] !== value) state[name] = String(value);
  }
  return state;
}

// The view the page's URL asks for, and what is wrong with it: each parameter the page cannot
// use is named (and left out of the view).
function urlState() {
  const params = new URLSearchParams(window.location.search);
  const state = {};
  const problems = [];
  let pageCount = 1;
  for (const [name, value] of params) {
    const problem = value === "" ? null : parameterProblem(name, value);
    if (problem) problems.push(`${name}=${value}: ${problem}`);
    else if (name === "pages" && value !== "") pageCount = Number(value);
    else if (value !== "") state[name] = value;
  }
  return { state, pages: pageCount, problems };
}

function parameterProblem(name, value) {
  const controls = elements.filters.elements;
  switch (name) {
    case "q":
      return null;
    case "order":
      return ORDERS.includes(value) ? null : `not an order (${ORDERS.join(", ")})`;
    case "category":
    case "level": {
      const known = Array.from(controls.namedItem(name).options, (option) => option.value);
      return known.includes(value) ? null : `no such ${name}`;
    }
    case "from":
    case "to":
      return isDay(value) ? null : "not a date (write it as YYYY-MM-DD, e.g. 2026-01-31)";
    case "pages": {
      const count = Number(value);
      const whole = /^[0-9]+$/.test(value) && count >= 1 && count <= MAX_PAGES;
      return whole ? null : `not a number of pages (1 to ${MAX_PAGES})`;
    }
    default:
      return "not a parameter of this page (q, order, category, level, from, to, pages)";
  }
}

function isDay(text) {
  if (!/^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(text)) return false;
  const moment = new Date(`${text}T00:00:00Z`);
  return !Number.isNaN(moment.getTime()) && moment.toISOString().slice(0, 10) === text;
}

function showAddressProblems(problems) {
  elements.addressError.hidden = problems.length === 0;
  elements.addressError.textContent = problems.length
    ? `This page's address has ${problems.length === 1 ? "a parameter" : "parameters"} it ` +
      `cannot use, left out: ${problems.join("; ")}.`
    : "";
}

function setForm(state) {
  for (const control of elements.filters.elements) {
    if (!control.name) continue;
    const value = state[control.name] ?? DEFAULTS[control.name] ?? "";
    if (control.type === "radio") control.checked = control.value === value;
    else control.value = value;
  }
  showFilterCount();
}

// On a phone the filters are folded: their button says how many are set.
function showFilterCount() {
  const set = Object.keys(formState()).filter((name) => name !== "q").length;
  elements.filtersCount.textContent = set ? ` (${set} set)` : "";
}

function toggleFilters() {
  const open = elements.filtersToggle.getAttribute("aria-expanded") !== "true";
  elements.filtersToggle.setAttribute("aria-expanded", String(open));
  elements.filterFields.classList.toggle("open", open);
}

function setBusy(value) {
  busy = value;
  elements.more.setAttribute("aria-disabled", String(value));
}

function pageUrl(state, pageCount) {
  const params = new URLSearchParams(state);
  if (pageCount > 1) params.set("pages", String(pageCount));
  const query = params.toString();
  return query ? `?${query}` : window.location.pathname;
}

// The API's parameters for a view: the dates are whole days, "to" included.
function apiParams(state) {
  const params = { order: state.order || DEFAULTS.order };
  for (const [name, value] of Object.entries(state)) {
    if (name === "from") params.since = value;
    else if (name === "to") params.until = nextDay(value);
    else if (name !== "order") params[name] = value;
  }
  return params;
}

function nextDay(day) {
  const moment = new Date(`${day}T00:00:00Z`);
  if (Number.isNaN(moment.getTime())) return day;
  return new Date(moment.getTime() + DAY_MS).toISOString().slice(0, 10);
}

// ---------------------------------------------------------------------------------------------
// Showing courses

function showError(error) {
  if (error.status === 401) {
    elements.keyForm.hidden = false;
    elements.key.focus();
  }
  elements.error.textContent = `The API failed: ${error.message}`;
  elements.error.hidden = false;
  elements.status.textContent = "";
}

function clearError() {
  elements.error.hidden = true;
  elements.error.textContent = "";
}

function formatStart(iso) {
  const moment = new Date(iso);
  return Number.isNaN(moment.getTime()) ? iso : moment.toISOString().slice(0, 16).replace("T", " ");
}

function cell(text, label, className) {
  const td = document.createElement("td");
  td.textContent = text;
  td.dataset.label = label;
  if (className) td.className = className;
  return td;
}

function appendCourses(courses) {
  const fragment = document.createDocumentFragment();
  for (const course of courses) {
    const tr = document.createElement("tr");
    tr.dataset.courseId = String(course.course_id);
    tr.append(
      cell(formatStart(course.start_date), "Start (UTC)", "when"),
      cell(course.course_name, "Course", "name"),
      cell(course.category_name, "Category"),
      cell(course.level_name, "Level"),
      cell(String(course.course_id), "Id", "id"),
    );
    fragment.append(tr);
  }
  elements.rows.append(fragment);
  shown += courses.length;
}

function describe() {
  if (shown === 0) return "No courses match.";
  const all = nextCursor ? "" : " (all of them)";
  return `Showing ${shown} course${shown === 1 ? "" : "s"}${all}.`;
}

// Show the view for `state`, `pageCount` pages of it; then put the scroll where it was.
async function showView(state, pageCount, scrollY) {
  const mine = ++generation;
  setBusy(true);
  elements.status.textContent = "Loading…";
  const params = apiParams(state);
  try {
    const wanted = pageCount * PAGE_SIZE;
    let page = await api("/v1/courses/recent", { ...params, limit: Math.min(wanted, MAX_LIMIT) });
    if (mine !== generation) return;
    clearError();
    elements.rows.replaceChildren();
    shown = 0;
    appendCourses(page.data);
    nextCursor = page.next_cursor;
    while (nextCursor && shown < wanted) {
      const limit = Math.min(wanted - shown, MAX_LIMIT);
      page = await api("/v1/courses/recent", { ...params, limit, cursor: nextCursor });
      if (mine !== generation) return;
      appendCourses(page.data);
      nextCursor = page.next_cursor;
    }
    pages = Math.max(1, Math.ceil(shown / PAGE_SIZE));
    elements.more.hidden = nextCursor === null;
    elements.status.textContent = describe();
    if (typeof scrollY === "number") window.scrollTo(0, scrollY);
  } catch (error) {
    if (mine === generation) showError(error);
  } finally {
    if (mine === generation) setBusy(false);
  }
}

async function showMore() {
  if (!nextCursor || busy) return;
  const mine = generation;
  setBusy(true); // not disabled: a disabled button loses the keyboard focus
  elements.status.textContent = "Loading…";
  try {
    const params = apiParams(formState());
    const page = await api("/v1/courses/recent", {
      ...params,
      limit: PAGE_SIZE,
      cursor: nextCursor,
    });
    if (mine !== generation) return;
    clearError();
    appendCourses(page.data);
    nextCursor = page.next_cursor;
    pages += 1;
    // More is not a new view: the URL counts the pages, so that reload and back keep them.
    history.replaceState(currentEntry(), "", pageUrl(formState(), pages));
    elements.more.hidden = nextCursor === null;
    elements.status.textContent = describe();
    if (elements.more.hidden) elements.table.focus({ preventScroll: true });
  } catch (error) {
    if (mine === generation) showError(error);
  } finally {
    if (mine === generation) setBusy(false);
  }
}

function currentEntry() {
  return { scrollY: window.scrollY };
}

// ---------------------------------------------------------------------------------------------
// How fresh the data is

function ago(seconds) {
  const format = new Intl.RelativeTimeFormat("en", { numeric: "auto" });
  const steps = [
    [60, "second", 1],
    [3600, "minute", 60],
    [86400, "hour", 3600],
    [Infinity, "day", 86400],
  ];
  for (const [limit, unit, size] of steps) {
    if (seconds < limit) return format.format(-Math.round(seconds / size), unit);
  }
  return "";
}

let freshness = null; // {loadedAt, ageSeconds, readAt}

function showFreshness() {
  if (!freshness) return;
  if (freshness.loadedAt === null) {
    elements.freshness.textContent = "No data loaded yet.";
    return;
  }
  const age = freshness.ageSeconds + (Date.now() - freshness.readAt) / 1000;
  elements.freshness.textContent = `Data loaded ${ago(Math.max(0, age))}.`;
  elements.freshness.title = `Latest load finished at ${freshness.loadedAt}`;
}

async function loadFreshness() {
  try {
    const body = await api("/v1/freshness");
    freshness = { loadedAt: body.loaded_at, ageSeconds: body.age_seconds ?? 0, readAt: Date.now() };
    showFreshness();
  } catch (error) {
    elements.freshness.textContent = "";
  }
}

// ---------------------------------------------------------------------------------------------
// Wiring

function fillSelect(select, items, idField, nameField) {
  const current = select.value;
  select.replaceChildren(select.options[0]);
  for (const item of items) {
    const option = document.createElement("option");
    option.value = String(item[idField]);
    option.textContent = item[nameField];
    select.append(option);
  }
  select.value = current;
}

async function loadFilters() {
  const [categories, levels] = await Promise.all([api("/v1/categories"), api("/v1/levels")]);
  fillSelect(elements.category, categories.data, "category_id", "category_name");
  fillSelect(elements.level, levels.data, "level_id", "level_name");
}

function fromUrl(scrollY) {
  const { state, pages: wanted, problems } = urlState();
  showAddressProblems(problems);
  setForm(state);
  return showView(formState(), wanted, scrollY);
}

function onFilterChange() {
  const state = formState();
  showFilterCount();
  const url = pageUrl(state, 1);
  if (new URL(url, window.location.href).href === window.location.href) return; // same view
  history.replaceState(currentEntry(), "", window.location.href);
  history.pushState({ scrollY: 0 }, "", url);
  showAddressProblems([]); // the new address holds only what the form has
  showView(state, 1, 0);
}

async function start() {
  try {
    await loadFilters();
  } catch (error) {
    showError(error);
    return;
  }
  loadFreshness();
  await fromUrl(history.state && history.state.scrollY);
}

if ("scrollRestoration" in history) history.scrollRestoration = "manual";
elements.filters.addEventListener("change", onFilterChange);
elements.filters.addEventListener("submit", (event) => {
  event.preventDefault(); // Enter in the search box: search now
  clearTimeout(typingTimer);
  onFilterChange();
});
// Typing searches once the typist pauses; each pause is one step of the history.
let typingTimer = null;
elements.filters.elements.namedItem("q").addEventListener("input", () => {
  clearTimeout(typingTimer);
  typingTimer = setTimeout(onFilterChange, SEARCH_PAUSE_MS);
});
elements.filters.addEventListener("reset", () => setTimeout(onFilterChange));
elements.more.addEventListener("click", showMore);
elements.filtersToggle.addEventListener("click", toggleFilters);
window.addEventListener("popstate", (event) => fromUrl(event.state && event.state.scrollY));
let scrollTimer = null;
window.addEventListener("scroll", () => {
  clearTimeout(scrollTimer);
  scrollTimer = setTimeout(() => history.replaceState(currentEntry(), ""), 150);
});
setInterval(showFreshness, 30_000);
elements.keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY_STORAGE, elements.key.value.trim());
  elements.keyForm.hidden = true;
  clearError();
  start();
});

start();
