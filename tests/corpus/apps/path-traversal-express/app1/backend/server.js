// Manuals: product manuals served as text by name.
const express = require("express");
const fs = require("fs");
const os = require("os");
const path = require("path");

const app = express();
const MANUALS = path.join(process.env.TMPDIR || os.tmpdir(), "manuals");
fs.mkdirSync(MANUALS, { recursive: true });
fs.writeFileSync(path.join(MANUALS, "kettle.txt"), "Fill with water. Press the button.\n");

app.get("/api/manuals", (req, res) => res.json(fs.readdirSync(MANUALS)));

app.get("/api/manuals/:manual", (req, res) => {
  const file = path.join(MANUALS, req.params.manual);
  fs.readFile(file, "utf8", (error, text) => {
    if (error) return res.status(404).json({ error: "no such manual" });
    res.type("text/plain").send(text);
  });
});

const port = Number(process.env.BACKEND_PORT || process.env.PORT || 3000);
app.listen(port, "127.0.0.1", () => console.log(`manuals on ${port}`));
