// Shop sessions: sign in sets a session cookie, the basket reads it.
const crypto = require("crypto");
const express = require("express");

const app = express();
app.use(express.json());
const sessions = new Map();

app.post("/api/signin", (req, res) => {
  const id = crypto.randomBytes(24).toString("hex");
  sessions.set(id, { user: String(req.body.user || "guest") });
  res.cookie("sid", id, { maxAge: 3600 * 1000, httpOnly: true, secure: true, sameSite: "lax" });
  res.json({ ok: true });
});

app.get("/api/basket", (req, res) => {
  const sid = (req.headers.cookie || "").split("sid=")[1];
  const session = sessions.get(sid);
  res.json(session ? { user: session.user, items: [] } : { error: "sign in first" });
});

const port = Number(process.env.BACKEND_PORT || process.env.PORT || 3000);
app.listen(port, "127.0.0.1", () => console.log(`shop on ${port}`));
