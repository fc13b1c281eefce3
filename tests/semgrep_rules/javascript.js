// Cases for services/analyzers/static/rules/javascript.yml, checked by `semgrep --test` (tests/test_semgrep_rules.py):
// a `ruleid:` comment says the next line must be reported by that rule, an `ok:` comment that it must not be.
const { exec, execFile } = require("child_process");
const crypto = require("crypto");
const express = require("express");
const fs = require("fs");
const jwt = require("jsonwebtoken");
const path = require("path");
const session = require("express-session");

const app = express();

// ---------------------------------------------------------------- Express
app.post("/catalogue/filter", (req, res) => {
  const category = req.body.category;
  // ruleid: js-sql-injection
  const rows = db.exec(`SELECT id, name FROM products WHERE category = '${category}'`);
  // ok: js-sql-injection
  const safe = db.prepare("SELECT id, name FROM products WHERE category = ?").all(category);
  // ok: js-sql-injection
  const count = db.exec(`SELECT COUNT(*) FROM products WHERE price > ${LIMIT}`);
  res.json([rows, safe, count]);
});

app.post("/api/backups", (request, response) => {
  const { label } = request.body;
  // ruleid: js-command-injection
  exec(`touch backups/${label}.bak`, () => response.end());
  // ok: js-command-injection
  execFile("touch", [path.join("backups", `${path.basename(String(label))}.bak`)], () => response.end());
  // ok: js-command-injection
  exec("uptime", () => response.end());
});

app.get("/api/calc", (req, res) => {
  // ruleid: js-code-injection, js-eval
  res.json({ value: eval(req.query.expression) });
  // ok: js-code-injection, js-eval
  res.json({ value: JSON.parse(req.query.expression) });
});

app.get("/api/manuals/:manual", (req, res) => {
  // ruleid: js-path-traversal
  const file = path.join(MANUALS, req.params.manual);
  // ok: js-path-traversal
  const safe = path.join(MANUALS, path.basename(req.params.manual));
  // ruleid: js-path-traversal
  fs.readFile(file, "utf8", (error, text) => res.send(text));
  // ok: js-path-traversal
  fs.readFile(safe, "utf8", (error, text) => res.send(text));
});

app.get("/events/search", (req, res) => {
  const term = req.query.term || "";
  // ruleid: js-xss-response
  res.send(`<h1>Events matching ${term}</h1>`);
  // ok: js-xss-response
  res.send(`<h1>Events matching ${escapeHtml(term)}</h1>`);
  // ok: js-xss-response
  res.json({ term });
});

app.get("/go", (req, res) => {
  // ruleid: js-open-redirect
  res.redirect(req.query.next);
  // ok: js-open-redirect
  res.redirect("/home");
});

app.post("/login", (req, res) => {
  // ruleid: js-cookie-without-flags
  res.cookie("session", token);
  // ok: js-cookie-without-flags
  res.cookie("session", token, { httpOnly: true, secure: true, sameSite: "lax" });
  // ruleid: js-cookie-without-flags
  res.cookie("session", token, { maxAge: 3600 * 1000 });
  // ok: js-cookie-without-flags
  res.cookie("session", token, cookieOptions);
  // ruleid: js-jwt-not-verified
  const claims = jwt.decode(req.cookies.token);
  // ok: js-jwt-not-verified
  const verified = jwt.verify(req.cookies.token, process.env.JWT_SECRET, { algorithms: ["HS256"] });
  // ruleid: js-password-fast-hash
  const digest = crypto.createHash("md5").update(req.body.password).digest("hex");
  // ok: js-password-fast-hash
  const etag = crypto.createHash("sha256").update(body).digest("hex");
  res.json([claims, verified, digest, etag]);
});

// ruleid: js-session-cookie-insecure
app.use(session({ secret: process.env.SESSION_SECRET, cookie: { secure: false } }));
// ok: js-session-cookie-insecure
app.use(session({ secret: process.env.SESSION_SECRET, cookie: { secure: true, httpOnly: true } }));

// ruleid: js-hardcoded-secret
const JWT_SECRET = "super-secret-key";
// ok: js-hardcoded-secret
const TOKEN_HEADER = "AUTH_TOKEN";
// ruleid: js-hardcoded-secret
const SESSION_SECRET = process.env.SESSION_SECRET || "keyboard cat";
// ok: js-hardcoded-secret
const API_KEY = process.env.API_KEY;

// ---------------------------------------------------------------- browser
function show(list, item, message) {
  // ruleid: js-innerhtml-assignment
  list.innerHTML = item.description;
  // ok: js-innerhtml-assignment
  list.innerHTML = "";
  // ruleid: js-innerhtml-assignment
  list.innerHTML = item.tags.map((tag) => `<li>${tag}</li>`).join("");
  // ok: js-innerhtml-assignment
  list.innerHTML = escapeHtml(item.description);
  // ok: js-innerhtml-assignment
  list.textContent = item.description;
  // ruleid: js-innerhtml-template
  list.innerHTML += `<li>${item.name}</li>`;
  // ok: js-innerhtml-template
  list.innerHTML += `<li>${escapeHtml(item.name)}</li>`;
  // ruleid: js-eval
  eval(message);
  // ruleid: js-document-write
  document.write(message);
  // ok: js-document-write
  document.write("<p>loading</p>");
  // ruleid: js-token-in-localstorage
  localStorage.setItem("authToken", item.token);
  // ok: js-token-in-localstorage
  localStorage.setItem("theme", "dark");
}

// ruleid: js-postmessage-any-origin
window.addEventListener("message", function (event) { run(event.data); });
// ok: js-postmessage-any-origin
window.addEventListener("message", function (event) { if (event.origin === ORIGIN) run(event.data); });
