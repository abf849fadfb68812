// The coursemart page: recent courses from /v1/courses/recent, filters, and paging by cursor.
"use strict";

const PAGE_SIZE = 50;
const KEY_STORAGE = "coursemart.apiKey";

const elements = {
  keyForm: document.getElementById("key-form"),
  key: document.getElementById("api-key"),
  category: document.getElementById("category"),
  level: document.getElementById("level"),
  error: document.getElementById("error"),
  status: document.getElementById("status"),
  rows: document.querySelector("#courses tbody"),
  more: document.getElementById("more"),
};

let nextCursor = null;
let shown = 0;
let generation = 0; // a newer listing makes older answers stale

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, params = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== "") url.searchParams.set(name, value);
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

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function appendCourses(courses) {
  const fragment = document.createDocumentFragment();
  for (const course of courses) {
    const tr = document.createElement("tr");
    tr.dataset.courseId = String(course.course_id);
    tr.append(
      cell(formatStart(course.start_date), "when"),
      cell(course.course_name),
      cell(course.category_name),
      cell(course.level_name),
      cell(String(course.course_id), "id"),
    );
    fragment.append(tr);
  }
  elements.rows.append(fragment);
  shown += courses.length;
}

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

async function loadPage(first) {
  const mine = first ? ++generation : generation;
  elements.more.disabled = true;
  elements.status.textContent = "Loading…";
  try {
    const page = await api("/v1/courses/recent", {
      limit: PAGE_SIZE,
      category: elements.category.value,
      level: elements.level.value,
      cursor: first ? null : nextCursor,
    });
    if (mine !== generation) return;
    clearError();
    if (first) {
      elements.rows.replaceChildren();
      shown = 0;
    }
    appendCourses(page.data);
    nextCursor = page.next_cursor;
    elements.more.hidden = nextCursor === null;
    elements.status.textContent =
      shown === 0
        ? "No courses match."
        : `Showing ${shown} course${shown === 1 ? "" : "s"}${nextCursor ? "" : " (all of them)"}.`;
  } catch (error) {
    if (mine === generation) showError(error);
  } finally {
    elements.more.disabled = false;
  }
}

async function start() {
  try {
    await loadFilters();
  } catch (error) {
    showError(error);
    return;
  }
  await loadPage(true);
}

elements.category.addEventListener("change", () => loadPage(true));
elements.level.addEventListener("change", () => loadPage(true));
elements.more.addEventListener("click", () => loadPage(false));
elements.keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY_STORAGE, elements.key.value.trim());
  elements.keyForm.hidden = true;
  clearError();
  start();
});

start();
