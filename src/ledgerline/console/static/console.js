// Ledgerline console: the few interactions a server-rendered page cannot do alone.
"use strict";

// Filters: a date typed by hand makes its range "custom"; empty fields stay out of the URL.
function wireFilters(form) {
  // On a phone the filters start folded, unless they hold a problem to fix.
  const box = form.querySelector("details.filters-box");
  if (box && !box.hasAttribute("data-keep-open") && window.matchMedia("(max-width: 700px)").matches) {
    box.open = false;
  }
  form.querySelectorAll("input[data-range]").forEach((input) => {
    input.addEventListener("change", () => {
      const preset = form.querySelector(`select[data-preset-for="${input.dataset.range}"]`);
      if (preset) preset.value = "";
    });
  });
  form.addEventListener("submit", () => {
    form.querySelectorAll("input, select").forEach((field) => {
      if (field.name && !field.multiple && field.type !== "checkbox" && field.value === "") {
        field.disabled = true;
      }
    });
  });
}

// Column picker: the order of the list is the order of the columns.
function wireColumnPicker(list) {
  list.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-move]");
    if (!button) return;
    const item = button.closest("li");
    if (button.dataset.move === "up" && item.previousElementSibling) {
      item.parentNode.insertBefore(item, item.previousElementSibling);
    } else if (button.dataset.move === "down" && item.nextElementSibling) {
      item.parentNode.insertBefore(item.nextElementSibling, item);
    }
    button.focus();
  });
}

// Export progress: poll the console's JSON until the job finishes, then show the final page.
function pollJob(card) {
  const bar = document.getElementById("job-progress");
  const text = document.getElementById("job-progress-text");
  const status = document.getElementById("job-status");
  const format = new Intl.NumberFormat("en");
  async function tick() {
    let answer;
    try {
      answer = await fetch(card.dataset.poll, { headers: { Accept: "application/json" } });
    } catch (error) {
      setTimeout(tick, 2000);
      return;
    }
    if (answer.redirected || answer.status === 401) {
      window.location.href = "/sign-in?expired=1";
      return;
    }
    if (!answer.ok) {
      setTimeout(tick, 2000);
      return;
    }
    const job = await answer.json();
    bar.value = job.percent;
    bar.textContent = `${job.percent}%`;
    const total = job.rows_total === null ? "…" : format.format(job.rows_total);
    text.textContent = `${format.format(job.rows_done)} of ${total} rows (${job.percent}%)`;
    status.textContent = job.status;
    status.className = `status status-${job.status}`;
    if (job.status === "queued" || job.status === "running") {
      setTimeout(tick, 400);
    } else {
      window.location.reload();
    }
  }
  setTimeout(tick, 300);
}

// The schedule form: only the fields the chosen cadence uses are shown (all of them without
// JavaScript; the server ignores the others).
function wireCadence(select) {
  const show = () => {
    document.querySelectorAll("[data-cadence]").forEach((field) => {
      field.hidden = !field.dataset.cadence.split(" ").includes(select.value);
    });
  };
  select.addEventListener("change", show);
  show();
}

// A form that deletes or replaces something asks first.
function wireConfirm(form) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const cadence = document.querySelector("[data-cadence-control]");
  if (cadence) wireCadence(cadence);
  document.querySelectorAll("form[data-confirm]").forEach(wireConfirm);
  const filters = document.getElementById("filters");
  if (filters) wireFilters(filters);
  const columns = document.getElementById("column-list");
  if (columns) wireColumnPicker(columns);
  const job = document.querySelector("[data-poll]");
  if (job) pollJob(job);
});
