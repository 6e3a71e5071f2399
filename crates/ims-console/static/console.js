// The console's only script: streamed uploads with a progress bar, the format a file's
// first bytes show, and live job progress. Every value is written with textContent.
"use strict";
(function () {
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // A file straight from disk to PUT /console/images/{id}/file: the browser streams it
  // (XMLHttpRequest sends a File without reading it into memory) and reports progress.
  function upload(imageId, file, ui) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      const started = Date.now();
      xhr.open("PUT", "/console/images/" + encodeURIComponent(imageId) + "/file");
      xhr.setRequestHeader("X-CSRF-Token", csrf());
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.upload.onprogress = (e) => {
        if (!e.lengthComputable) return;
        const pct = Math.floor((e.loaded / e.total) * 100);
        ui.bar.value = pct;
        ui.percent.textContent = pct + "%";
        const secs = (Date.now() - started) / 1000;
        if (secs > 0.5) ui.rate.textContent = (e.loaded / secs / 1048576).toFixed(1) + " MiB/s";
      };
      xhr.onload = () => {
        let body = {};
        try { body = JSON.parse(xhr.responseText); } catch (_) { /* a page, not JSON */ }
        if (xhr.status >= 200 && xhr.status < 300) {
          ui.bar.value = 100;
          ui.percent.textContent = "100%";
          resolve(body);
        } else {
          reject(new Error(body.error || ("The upload failed: HTTP " + xhr.status)));
        }
      };
      xhr.onerror = () => reject(new Error("The upload was interrupted."));
      xhr.onabort = () => reject(new Error("The upload was cancelled; the image stays queued."));
      if (ui.cancel) {
        ui.cancel.hidden = false;
        ui.cancel.onclick = () => xhr.abort();
      }
      xhr.send(file);
    });
  }

  function progressUi() {
    const box = document.getElementById("upload-progress-box");
    if (box) box.hidden = false;
    return {
      bar: document.getElementById("upload-progress"),
      percent: document.getElementById("upload-percent"),
      rate: document.getElementById("upload-rate"),
      cancel: document.getElementById("upload-cancel"),
    };
  }

  function showError(id, message) {
    const el = document.getElementById(id);
    if (!el) return;
    el.hidden = false;
    el.textContent = message;
  }

  // The detail page of a queued image: upload into it.
  const uploadForm = document.getElementById("upload-form");
  if (uploadForm) {
    uploadForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const file = document.getElementById("upload-file").files[0];
      if (!file) return;
      document.getElementById("upload-start").disabled = true;
      try {
        await upload(uploadForm.dataset.image, file, progressUi());
        await new Promise((r) => setTimeout(r, 400));
        location.reload();
      } catch (e) {
        showError("upload-error", e.message);
        document.getElementById("upload-start").disabled = false;
      }
    });
  }

  // The create page: with a file chosen, create the image, then upload into it here
  // with the bar, then open its page.
  const createForm = document.getElementById("create-form");
  if (createForm) {
    const fileInput = document.getElementById("file");
    fileInput.addEventListener("change", suggestFormat);
    createForm.addEventListener("submit", async (ev) => {
      const file = fileInput.files[0];
      if (!file) return; // no file: a plain form post (web-download or an empty image)
      ev.preventDefault();
      const button = document.getElementById("create");
      button.disabled = true;
      const resp = await fetch(createForm.action, {
        method: "POST",
        headers: { "Accept": "application/json" },
        body: new URLSearchParams(new FormData(createForm)),
      });
      const body = await resp.json().catch(() => ({}));
      if (!resp.ok) {
        showError("create-error", body.error || ("HTTP " + resp.status));
        button.disabled = false;
        return;
      }
      const box = document.createElement("div");
      box.innerHTML = '<div class="progress" id="upload-progress-box"><progress id="upload-progress" max="100" value="0"></progress><output id="upload-percent">0%</output><span id="upload-rate"></span><button type="button" id="upload-cancel" hidden>Cancel</button></div>';
      createForm.appendChild(box);
      try {
        await upload(body.id, file, progressUi());
        // A moment at 100% before the image's page, so the bar is seen full.
        await new Promise((r) => setTimeout(r, 400));
      } catch (e) {
        showError("create-error", e.message);
        await new Promise((r) => setTimeout(r, 1500));
      }
      location.href = "/console/images/" + encodeURIComponent(body.id);
    });
  }

  // The format `ims inspect` would see in the file's first bytes.
  async function suggestFormat() {
    const file = document.getElementById("file").files[0];
    const hint = document.getElementById("format-hint");
    if (!file || !hint) return;
    const head = file.slice(0, 4 << 20);
    const resp = await fetch("/console/inspect", {
      method: "POST",
      headers: { "X-CSRF-Token": csrf(), "Content-Type": "application/octet-stream", "Accept": "application/json" },
      body: head,
    });
    if (!resp.ok) return;
    const found = await resp.json();
    if (!found.disk_format) { hint.textContent = "The format could not be told from the file's start."; return; }
    hint.textContent = "The file looks like " + found.disk_format + ".";
    const select = document.getElementById("disk_format");
    if ([...select.options].some((o) => o.value === found.disk_format)) select.value = found.disk_format;
  }

  // Live job rows: the server pushes each job that changed.
  const live = document.querySelector("table.jobs[data-live='true']");
  if (live && window.EventSource) {
    const image = document.getElementById("image-id");
    const url = "/console/jobs/events" + (image ? "?image=" + encodeURIComponent(image.textContent.trim()) : "");
    const source = new EventSource(url);
    source.addEventListener("job", (ev) => {
      const job = JSON.parse(ev.data);
      let row = document.getElementById("job-" + job.id);
      if (!row) {
        const body = live.tBodies[0];
        const empty = body.querySelector("td[colspan]");
        if (empty) empty.parentElement.remove();
        row = document.createElement("tr");
        row.id = "job-" + job.id;
        row.dataset.job = job.id;
        for (const field of ["id", "kind", "status", "progress", "subject", "created", "reason"]) {
          const td = document.createElement("td");
          if (field === "status") { const s = document.createElement("span"); s.dataset.field = "status"; td.appendChild(s); }
          else if (field === "progress") {
            const bar = document.createElement("progress"); bar.max = 100; bar.dataset.field = "bar";
            const pct = document.createElement("span"); pct.dataset.field = "progress";
            td.append(bar, " ", pct);
          } else { td.dataset.field = field; }
          row.appendChild(td);
        }
        body.insertBefore(row, body.firstChild);
      }
      const set = (f, v) => { const el = row.querySelector('[data-field="' + f + '"]'); if (el) el.textContent = v; };
      set("id", job.id); set("kind", job.kind); set("subject", job.subject); set("created", job.created);
      set("status", job.status); set("progress", job.progress + "%"); set("reason", job.reason);
      const status = row.querySelector('[data-field="status"]');
      if (status) status.className = "status j-" + job.status;
      const bar = row.querySelector('[data-field="bar"]');
      if (bar) bar.value = job.progress;
    });
  }
})();
