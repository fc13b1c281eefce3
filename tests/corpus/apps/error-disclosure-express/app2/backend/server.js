// Contacts import: upload a JSON list of contacts as text.
const express = require("express");

const app = express();
app.use(express.json());
const CONTACTS = [];

app.get("/api/contacts", (req, res) => res.json(CONTACTS));

app.post("/api/contacts/import", (req, res) => {
  const imported = JSON.parse(req.body.data);
  CONTACTS.push(...[].concat(imported));
  res.json({ imported: CONTACTS.length });
});

app.use((error, req, res, next) => res.status(400).json({ error: "the import could not be read" }));

const port = Number(
process.env.BACKEND_PORT || process.env.PORT || 3000);
app.listen(port, "127.0.0.1", () => console.log(`contacts on ${port}`));
