// Backups: make a labelled backup of the data folder.
const express = require("express");
const { execFile } = require("child_process");
const os = require("os");
const path = require("path");

const app = express();
app.use(express.json());
const BACKUPS = path.join(process.env.TMPDIR || os.tmpdir(), "backups");

app.get("/api/status", (req, res) => res.json({ ok: true }));

app.post("/api/backups", (req, res) => {
  const { label } = req.body;
  execFile("touch", [path.join(BACKUPS, `${path.basename(String(label))}.bak`)], (error) => {

    if (error) return res.status(500).json({ error: "backup failed" });
    res.status(201).json({ status: "done" });
  });
});

const port = Number(process.env.BACKEND_PORT || process.env.PORT || 3000);
app.listen(port, "127.0.0.1", () => console.log(`backups on ${port}`));
