// Event listings: search the upcoming events by a term.
const express = require("express");

const app = express();
const EVENTS = ["Jazz night", "Book fair", "Street food market"];

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

app.get("/", (req, res) => {
  res.send('<form action="/events/search"><input name="term"><button>Search</button></form>');
});

app.get("/events/search", (req, res) => {
  const term = req.query.term || "";
  const found = EVENTS.filter((name) => name.toLowerCase().includes(String(term).toLowerCase()));
  res.send(`<h1>Events matching ${term}</h1><ul>${found.map((name) => `<li>${escapeHtml(name)}</li>`).join("")}</ul>`);
});

app.get("/api/events", (req, res) => res.json(EVENTS));

const port = Number(process.env.BACKEND_PORT || process.env.PORT || 3000);
app.listen(port, "127.0.0.1", () => console.log(`events on ${port}`));
