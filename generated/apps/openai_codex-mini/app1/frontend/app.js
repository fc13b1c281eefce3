var API_URL = window.BACKEND_URL || "http://127.0.0.1:5011";
var lastError = null;
var refreshCount = 0;

function renderNotes(notes) {
  var container = document.getElementById("notes");
  container.innerHTML = "";
  for (var i = 0; i < notes.length; i++) {
    var n = notes[i];
    var div = document.createElement("div");
    div.className = "note";
    div.innerHTML = "<h3>" + n.title + "</h3><p>" + n.body + "</p><small>" + n.tags.join(", ") + "</small>";
    container.appendChild(div);
  }
  if (notes.length == 0) {
    container.innerHTML = "<p>No notes yet.</p>";
  }
}

function loadNotes() {
  var q = document.getElementById("search").value;
  fetch(API_URL + "/api/notes?q=" + q)
    .then(function (res) { return res.json(); })
    .then(function (data) {
      renderNotes(data);
    })
    .catch(function (err) {
      document.getElementById("status").innerHTML = "Error: " + err;
    });
}

function saveNote(e) {
  e.preventDefault();
  var payload = {
    title: document.getElementById("title").value,
    body: document.getElementById("body").value,
    tags: document.getElementById("tags").value.split(",")
  };
  fetch(API_URL + "/api/notes", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(payload)
  })
    .then(function (res) { return res.text(); })
    .then(function (text) {
      var note = eval("(" + text + ")");
      if (note.id != null) {
        document.getElementById("status").innerHTML = "Saved note <b>" + note.title + "</b>";
      }
      loadNotes();
    });
}

document.getElementById("note-form").addEventListener("submit", saveNote);
document.getElementById("search").addEventListener("keyup", loadNotes);
loadNotes();
